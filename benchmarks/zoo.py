"""Fill the zoo: train every catalogue entry whose dataset is available, with the entry's own recipe command.

    python benchmarks/zoo.py                      # train what can be trained here, into zoo-runs/
    python benchmarks/zoo.py --only 'dcgan*'      # a subset (shell wildcard on catalogue names)
    python benchmarks/zoo.py --push               # also publish each to its repo and print lines to pin

For each entry the script runs the `recipe` command the catalogue declares (so what is published is exactly
what the catalogue says), writes the run and its model folder (config, weights, model card, samples), and
prints the sha256 of each weight file. With --push it publishes the model folder to the entry's repository
(or --namespace/NAME) and prints the `revision=` and `sha256=` values to paste into the plugin's entry.
Entries whose dataset is not available offline (and cannot be downloaded) are skipped with the reason.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import ganzoo
from ganzoo.data import load_dataset
from ganzoo.errors import GanzooError
from ganzoo.hub import push, sha256_of
from ganzoo.registry import get_pretrained, list_pretrained

WEIGHTS = ("generator.safetensors", "discriminator.safetensors")


def available(dataset: str) -> str | None:
    """None when the dataset can be loaded here, else the reason it cannot."""
    try:
        load_dataset(dataset, img_size=8, download=True)
    except GanzooError as exc:
        return str(exc)
    return None


def train_entry(command: str, out: Path, steps: int | None) -> None:
    from ganzoo.cli import cli

    args = shlex.split(command)
    if args[:2] != ["ganzoo", "train"]:
        raise SystemExit(f"catalogue recipe must be a `ganzoo train` command, got: {command}")
    args = args[1:] + ["--out", str(out), "--overwrite"]
    if steps is not None:
        args += ["--steps", str(steps)]
    try:
        cli.main(args=args, prog_name="ganzoo", standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="wildcard on catalogue names, e.g. 'dcgan*'")
    parser.add_argument("--out", type=Path, default=Path("zoo-runs"), help="where the runs go")
    parser.add_argument("--steps", type=int, help="override the recipe's steps (for a quick smoke run)")
    parser.add_argument("--push", action="store_true", help="publish each trained model to its Hub repository")
    parser.add_argument("--namespace", help="push to NAMESPACE/<entry name> instead of the entry's repo")
    args = parser.parse_args()

    names = list_pretrained(args.only)
    if not names:
        print(f"no catalogue entries match {args.only!r}", file=sys.stderr)
        return 2
    pins = []
    for name in names:
        architecture, entry = get_pretrained(name)
        reason = available(entry.dataset)
        if reason is not None:
            print(f"skip {name}: dataset {entry.dataset} is not available ({reason})")
            continue
        run = args.out / name
        print(f"train {name}: {entry.recipe}")
        start = time.perf_counter()
        train_entry(entry.recipe, run, args.steps)
        model = ganzoo.load(run)
        hashes = {f: sha256_of(run / "model" / f) for f in WEIGHTS if (run / "model" / f).is_file()}
        print(f"  {time.perf_counter() - start:.0f} s, model folder {run / 'model'}")
        for filename, digest in hashes.items():
            print(f"  sha256 {filename} {digest}")
        if args.push:
            repo = f"{args.namespace}/{name}" if args.namespace else entry.repo_id
            result = push(run / "model", repo, message=f"{name}: {entry.recipe}")
            print(f"  pushed {result['commit_url']}")
            pins.append((architecture, name, repo, result["commit"], hashes))
        del model
    for architecture, name, repo, commit, hashes in pins:
        print(f"\n# {architecture} plugin, entry {name}:\n    repo_id={repo!r}, revision={commit!r},\n"
              f"    sha256={hashes!r},")
    return 0


if __name__ == "__main__":
    sys.exit(main())

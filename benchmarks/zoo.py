"""Fill the zoo: train every catalogue entry whose dataset is available, with the entry's own recipe command.

    python benchmarks/zoo.py                      # train and evaluate what can be trained here, into zoo-runs/
    python benchmarks/zoo.py --only 'dcgan*'      # a subset (shell wildcard on catalogue names)
    python benchmarks/zoo.py --push               # also publish each to its repo and print lines to pin
    python benchmarks/zoo.py --only gan-mnist-5k --steps 20 --eval-samples 500   # a smoke run

For each entry the script runs the `recipe` command the catalogue declares (so what is published is exactly what
the catalogue says), writes the run and its model folder (config, weights, model card, samples), evaluates the
model against the entry's dataset (its test split, unless --split says otherwise) and stores the metrics with their
provenance in the model folder's config.json and model card (`ganzoo.metrics.evaluation.record`, as `ganzoo eval`
does), and prints the sha256 of each weight file. Digit datasets are measured in the feature space of ganzoo's
digit classifier (offline); other datasets with Inception (the network of published FIDs, downloaded once; where it
cannot be had the entry is reported as not evaluated). With --push it publishes each evaluated model folder to the
entry's repository (or --namespace/NAME) and prints the `revision=`, `sha256=` and `metrics=` values to paste into
the plugin's entry; a model that was not evaluated is not published. Entries whose dataset is not available are
skipped with the reason. Exit status: 0 when every entry that could be trained was trained (and evaluated and
pushed when asked), 1 otherwise, 2 for a bad request.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import ganzoo
from ganzoo.data import load_dataset
from ganzoo.errors import GanzooError
from ganzoo.hub import push, sha256_of
from ganzoo.metrics import parse_metrics
from ganzoo.metrics.digits import DIGIT_DATASETS
from ganzoo.metrics.evaluation import EvalResult, record
from ganzoo.registry import get_pretrained, list_pretrained

WEIGHTS = ("generator.safetensors", "discriminator.safetensors")
DEFAULT_METRICS = "fid,kid,is,pr"


def available(dataset: str) -> str | None:
    """None when the dataset can be loaded here, else the reason it cannot."""
    try:
        load_dataset(dataset, img_size=8, download=True)
    except GanzooError as exc:
        return str(exc)
    return None


def extractor_for(dataset: str) -> str:
    """The feature space a dataset's models are measured in: `digits` (trained on mnist-5k's train part, shipped,
    offline) for the digit datasets, `inception` otherwise."""
    return "digits" if dataset in DIGIT_DATASETS else "inception"


def train_entry(command: str, out: Path, steps: int | None) -> int:
    """Run a catalogue recipe (a `ganzoo train` command) into `out`; returns its exit code."""
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
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def evaluate_entry(run: Path, dataset: str, metrics: str, extractor: str, num_samples: int | None,
                   device: str | None, split: str | None = None) -> EvalResult:
    """Measure the run's model against `dataset`'s `split` (default: its test split) and store the result in the run
    and its model folder."""
    result = ganzoo.evaluate(run, dataset, metrics, extractor=extractor, num_samples=num_samples, device=device,
                             split=split)
    record(result, run)
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="wildcard on catalogue names, e.g. 'dcgan*'")
    parser.add_argument("--out", type=Path, default=Path("zoo-runs"), help="where the runs go")
    parser.add_argument("--steps", type=int, help="override the recipe's steps (for a quick smoke run)")
    parser.add_argument("--metrics", default=DEFAULT_METRICS, help="metrics to measure (default: %(default)s)")
    parser.add_argument("--extractor", help="feature extractor for every entry (default: digits for digit "
                                            "datasets, inception otherwise)")
    parser.add_argument("--eval-samples", type=int, help="generated images per evaluation (default: as many as "
                                                         "there are real images, at most 50,000)")
    parser.add_argument("--split", choices=("test", "train", "all"),
                        help="part of each dataset to evaluate against (default: its test split)")
    parser.add_argument("--device", help="where training and evaluation run (default: the trainer's choice)")
    parser.add_argument("--push", action="store_true", help="publish each evaluated model to its Hub repository")
    parser.add_argument("--namespace", help="push to NAMESPACE/<entry name> instead of the entry's repo")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.eval_samples is not None and args.eval_samples < 2:
        parser.error("--eval-samples must be at least 2")
    try:
        args.metrics = ",".join(parse_metrics(args.metrics))
    except GanzooError as exc:
        parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = list_pretrained(args.only)
    if not names:
        print(f"no catalogue entries match {args.only!r}; see `ganzoo list --pretrained`", file=sys.stderr)
        return 2
    pins, failed = [], []
    for name in names:
        architecture, entry = get_pretrained(name)
        reason = available(entry.dataset)
        if reason is not None:
            print(f"skip {name}: dataset {entry.dataset} is not available ({reason})")
            continue
        run = args.out / name
        recipe = entry.recipe + (f" --device {args.device}" if args.device else "")
        print(f"train {name}: {recipe}" + (f" --steps {args.steps}" if args.steps else ""))
        start = time.perf_counter()
        code = train_entry(recipe, run, args.steps)
        if code != 0:
            print(f"  FAILED {name}: training exited with status {code}")
            failed.append(name)
            continue
        hashes = {f: sha256_of(run / "model" / f) for f in WEIGHTS if (run / "model" / f).is_file()}
        print(f"  {time.perf_counter() - start:.0f} s, model folder {run / 'model'}")
        for filename, digest in hashes.items():
            print(f"  sha256 {filename} {digest}")

        extractor = args.extractor or extractor_for(entry.dataset)
        start = time.perf_counter()
        try:
            result = evaluate_entry(run, entry.dataset, args.metrics, extractor, args.eval_samples, args.device,
                                    args.split)
        except GanzooError as exc:
            print(f"  NOT EVALUATED {name} ({extractor} features): {exc}")
            failed.append(name)
            continue
        values = ", ".join(f"{k} {v:.4g}" for k, v in result.values.items())
        print(f"  {time.perf_counter() - start:.0f} s, {result.provenance['fake_images']} generated vs "
              f"{result.provenance['real_images']} real images ({result.provenance['split']} split), {extractor} "
              f"features: {values}")
        print(f"  metrics and provenance stored in {run / 'model' / 'config.json'} and the model card")

        if args.push:
            repo = f"{args.namespace}/{name}" if args.namespace else entry.repo_id
            try:
                pushed = push(run / "model", repo, message=f"{name}: {entry.recipe}")
            except GanzooError as exc:
                print(f"  NOT PUSHED {name}: {exc}")
                failed.append(name)
                continue
            print(f"  pushed {pushed['commit_url']}")
            pins.append((architecture, name, repo, pushed["commit"], hashes, result.values))
    for architecture, name, repo, commit, hashes, values in pins:
        rounded = {k: round(v, 4) for k, v in values.items()}
        print(f"\n# {architecture} plugin, entry {name}:\n    repo_id={repo!r}, revision={commit!r},\n"
              f"    sha256={hashes!r},\n    metrics={rounded!r},")
    if failed:
        print(f"\n{len(failed)} entr{'y' if len(failed) == 1 else 'ies'} not finished: {', '.join(failed)}",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

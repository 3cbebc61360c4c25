"""Fill the zoo: train every catalogue entry whose dataset is available, with the entry's own recipe command.

    python benchmarks/zoo.py                      # train and evaluate what can be trained here, into zoo-runs/
    python benchmarks/zoo.py --only 'dcgan*'      # a subset (shell wildcard on catalogue names)
    python benchmarks/zoo.py --push               # also publish each to its repo and print lines to pin
    python benchmarks/zoo.py --ship --push        # also copy each into its plugin's package, to ship with it
    python benchmarks/zoo.py --only gan-mnist-5k --steps 20 --eval-samples 500   # a smoke run

For each entry the script runs the `recipe` command the catalogue declares (so what is published is exactly what the
catalogue says), writes the run and its model folder (config, weights, model card, samples), evaluates the model
against the entry's dataset (its test split, unless --split says otherwise) and stores the metrics with their
provenance in the model folder's config.json and model card (`ganzoo.metrics.evaluation.record`, as `ganzoo eval`
does), and prints the sha256 of each file ganzoo loads (config.json and the weights). Digit datasets are measured in
the feature space of ganzoo's digit classifier (offline); other datasets with Inception (the network of published
FIDs, downloaded once; where it cannot be had the entry is reported as not evaluated). With --push it publishes each
evaluated model folder to the entry's repository (or --namespace/NAME) and prints the `revision=`, `sha256=` and
`metrics=` values to paste into the plugin's entry; a model that was not evaluated is not published. With --ship it
writes the files a push publishes (the same bytes, from `ganzoo.hub.repo_files`; the model card names the repository
of the push) into the entry's shipped folder in its plugin's package (the entry's `files`, else `pretrained/NAME`),
replacing the model files that were there, and prints the `files=` line to paste as well: one `sha256=` pins both
copies. Commit the folder with the plugin and check it with `pytest tests/test_shipped.py` (every file ganzoo loads
is pinned, 60 MB at most for all entries together, each loads offline). Entries whose dataset is not available are
skipped with the reason. Exit status: 0 when every entry that could be trained was trained (and evaluated, shipped
and pushed when asked), 1 otherwise, 2 for a bad request.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ganzoo
from ganzoo._io import atomic_path, write_bytes
from ganzoo.data import load_dataset
from ganzoo.errors import GanzooError
from ganzoo.hub import LOADED_FILES, MODEL_FILES, push, repo_files, sha256_of
from ganzoo.interfaces import PretrainedCfg
from ganzoo.metrics import parse_metrics
from ganzoo.metrics.colour import is_emoji_data
from ganzoo.metrics.digits import DIGIT_DATASETS
from ganzoo.metrics.evaluation import EvalResult, record
from ganzoo.registry import get_pretrained, list_pretrained, package_path

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
    offline) for the digit datasets, `colour` (trained on the emoji sets' train parts, shipped, offline) for the emoji
    sets, `inception` otherwise."""
    if dataset in DIGIT_DATASETS:
        return "digits"
    return "colour" if is_emoji_data(dataset) else "inception"


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


#: what makes two runs train the same weights (run options such as log or checkpoint cadence do not)
_SAME_WEIGHTS = ("architecture", "preset", "config", "recipe")
_SAME_WEIGHTS_OPTIONS = ("data", "seed")


def planned(command: str, steps: int | None) -> dict[str, object]:
    """The plan (what a run's config.json holds) that a catalogue recipe command resolves to."""
    from ganzoo.cli import cli

    args = shlex.split(command)[1:] + ["--dry-run"] + (["--steps", str(steps)] if steps is not None else [])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            cli.main(args=args, prog_name="ganzoo", standalone_mode=False)
        except SystemExit as exc:  # the CLI ends with an exit code even when it succeeds
            if exc.code not in (0, None):
                raise
    return json.loads(out.getvalue())


def _full_recipe(plan: dict[str, Any]) -> dict[str, Any]:
    """A plan's recipe with every field the current Recipe has: a run planned before a field existed trained with
    its default (what a resume of it assumes too)."""
    from ganzoo.registry import get_architecture

    return get_architecture(str(plan["architecture"])).make_recipe(None, **plan["recipe"]).to_dict()


def reuse_check(run: Path, command: str, steps: int | None) -> tuple[str | None, list[str]]:
    """Whether the finished run in `run` trained exactly what `command` would: (why it can be reused, None when it
    cannot), and what differs (empty when it is the same, or when `run` holds no finished run).

    A run of the same architecture, preset, config, recipe, data and seed has the same weights whatever its run
    options (logging, sampling and checkpoint cadence), e.g. one that benchmarks/quality_time.py trained. Recipe
    fields added after the run was planned count at their defaults, as a resume would read them.
    """
    from ganzoo.trainer.run import read_plan

    try:
        have = read_plan(run)
        finished = json.loads((run / "model" / "config.json").read_text(encoding="utf-8"))["training"]["steps"]
    except (GanzooError, OSError, ValueError, KeyError, TypeError):
        return None, []
    want = planned(command, steps)
    if want.get("config", {}).get("num_classes") == 0 and "num_classes" in have.get("config", {}):
        # 0 in a plan means "from the data": the run resolved it when it started
        want["config"] = {**want["config"], "num_classes": have["config"]["num_classes"]}  # type: ignore[dict-item]
    differ = [k for k in _SAME_WEIGHTS if k != "recipe" and have.get(k) != want.get(k)]
    recipes = _full_recipe(have), _full_recipe(want)  # type: ignore[arg-type]
    differ += [f"recipe.{k}" for k in sorted(set(recipes[0]) | set(recipes[1]))
               if recipes[0].get(k) != recipes[1].get(k)]
    differ += [f"options.{k}" for k in _SAME_WEIGHTS_OPTIONS
               if have.get("options", {}).get(k) != want.get("options", {}).get(k)]
    if finished != want["recipe"]["steps"] and "recipe.steps" not in differ:  # type: ignore[index]
        differ.append(f"finished at {finished} steps")
    if differ:
        return None, differ
    return f"{run} already holds this recipe's finished run ({finished} steps)", []


def reusable(run: Path, command: str, steps: int | None) -> str | None:
    """Why a finished run in `run` trained exactly what `command` would (None when it did not, or is unfinished)."""
    return reuse_check(run, command, steps)[0]


def evaluate_entry(run: Path, dataset: str, metrics: str, extractor: str, num_samples: int | None,
                   device: str | None, split: str | None = None) -> EvalResult:
    """Measure the run's model against `dataset`'s `split` (default: its test split) and store the result in the run
    and its model folder."""
    result = ganzoo.evaluate(run, dataset, metrics, extractor=extractor, num_samples=num_samples, device=device,
                             split=split)
    record(result, run)
    return result


def ship_entry(architecture: str, entry: PretrainedCfg, model_folder: Path, repo_id: str) -> tuple[str, Path]:
    """Write the files `push` publishes to `repo_id` from `model_folder` into the entry's shipped folder.

    Returns the folder's `files=` value (relative to the plugin's package) and the folder. Model files that the new
    set lacks are removed from the folder, so it holds exactly what the Hub repository would.
    """
    relative = entry.files or f"pretrained/{entry.name}"
    target = package_path(architecture, relative)
    if target is None:
        raise GanzooError(f"the {architecture} plugin's package is not a folder on disk, so nothing can ship in it; "
                          "install the plugin from a source checkout (pip install -e)")
    files = repo_files(model_folder, repo_id)
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            write_bytes(target / name, content)
        else:
            with atomic_path(target / name) as tmp:
                shutil.copyfile(content, tmp)
    for name in MODEL_FILES:
        if name not in files and (target / name).exists():
            (target / name).unlink()
    return relative, target


def shipped_bytes(new: Iterable[Path] = ()) -> int:
    """Bytes of every file shipped for a catalogue entry, the folders in `new` included even before an entry declares
    them (all together may be at most 60 MB)."""
    folders = {folder.resolve() for folder in new}
    for name in list_pretrained():
        architecture, entry = get_pretrained(name)
        folder = package_path(architecture, entry.files) if entry.shipped else None
        if folder is not None and folder.is_dir():
            folders.add(folder.resolve())
    return sum(path.stat().st_size for folder in folders for path in folder.rglob("*") if path.is_file())


def _keyword(name: str, values: dict[str, object]) -> list[str]:
    """`name={...},` as lines to paste into a PretrainedCfg(...), one item a line so each stays under 120 chars."""
    return [f"    {name}={{", *(f"        {key!r}: {value!r}," for key, value in values.items()), "    },"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="wildcard on catalogue names, e.g. 'dcgan*'")
    parser.add_argument("--out", type=Path, default=Path("zoo-runs"), help="where the runs go")
    parser.add_argument("--steps", type=int, help="override the recipe's steps (for a quick smoke run)")
    parser.add_argument("--reuse", action="store_true", help="keep a finished run in OUT/NAME that trained exactly "
                                                             "this recipe (e.g. from quality_time.py) instead of "
                                                             "training it again")
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
    parser.add_argument("--ship", action="store_true", help="copy each evaluated model's files (those a push "
                        "publishes, byte for byte) into its plugin's package, to ship with it")
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
    pins, failed, shipped = [], [], []
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
        reason, differ = reuse_check(run, recipe, args.steps) if args.reuse else (None, [])
        if reason is not None:
            print(f"  reused: {reason}")
        elif differ:  # a finished run of another plan: never trained over (--overwrite) without being asked
            print(f"  FAILED {name}: {run} holds a finished run of another plan ({', '.join(differ)}); "
                  "move it away or drop --reuse to train over it")
            failed.append(name)
            continue
        code = 0 if reason is not None else train_entry(recipe, run, args.steps)
        if code != 0:
            print(f"  FAILED {name}: training exited with status {code}")
            failed.append(name)
            continue
        print(f"  {time.perf_counter() - start:.0f} s, model folder {run / 'model'}")

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
        # the files ganzoo loads, after `record` rewrote config.json: what a shipped copy and a Hub copy both pin
        hashes = {f: sha256_of(run / "model" / f) for f in LOADED_FILES if (run / "model" / f).is_file()}
        for filename, digest in hashes.items():
            print(f"  sha256 {filename} {digest}")

        repo = f"{args.namespace}/{name}" if args.namespace else entry.repo_id
        pin = {"architecture": architecture, "name": name, "sha256": hashes, "metrics": result.values}
        if args.ship:
            try:
                pin["files"], folder = ship_entry(architecture, entry, run / "model", repo)
            except (GanzooError, OSError) as exc:
                print(f"  NOT SHIPPED {name}: {exc}")
                failed.append(name)
                continue
            print(f"  shipped in {folder}")
            shipped.append(folder)
        if args.push:
            try:
                pushed = push(run / "model", repo, message=f"{name}: {entry.recipe}")
            except GanzooError as exc:
                print(f"  NOT PUSHED {name}: {exc}")
                failed.append(name)
                continue
            print(f"  pushed {pushed['commit_url']}")
            pin.update(repo_id=repo, revision=pushed["commit"])
        if args.ship or args.push:
            pins.append(pin)
    for pin in pins:
        rounded = {k: round(v, 4) for k, v in pin["metrics"].items()}
        lines = [f"# {pin['architecture']} plugin, entry {pin['name']}:"]
        if "revision" in pin:
            lines.append(f"    repo_id={pin['repo_id']!r}, revision={pin['revision']!r},")
        if "files" in pin:
            lines.append(f"    files={pin['files']!r},")
        lines += [*_keyword("sha256", pin["sha256"]), *_keyword("metrics", rounded)]
        print("\n" + "\n".join(lines))
    if args.ship:
        print(f"\nall shipped entries together: {shipped_bytes(shipped) / 1e6:.2f} MB (at most 60 MB may ship)")
    if failed:
        print(f"\n{len(failed)} entr{'y' if len(failed) == 1 else 'ies'} not finished: {', '.join(failed)}",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

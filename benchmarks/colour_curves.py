"""Colour recipes against CPU time on twemoji, limited data: with and without adaptive augmentation (and DiffAugment).

Twemoji's train part has 1,560 emoji: limited data, what adaptive discriminator augmentation (ADA) and DiffAugment
exist for. This script trains the variants below on it (phase `train`) and measures every checkpoint of each with the
colour yardstick (phase `eval`): colour FD and KID of 2,000 samples (seed 0) against twemoji's test part (338 emoji
that neither the run nor the colour network saw), against the process CPU time of training.

    .venv/bin/python benchmarks/colour_curves.py --only stylegan-lite,stylegan-lite-ada     # both phases
    .venv/bin/python benchmarks/colour_curves.py --phase eval --adopt stylegan-lite=RUN ...  # measure CLI runs

The variants (`VARIANTS`), each `ganzoo train --data twemoji --arch ARCH` with:

- `stylegan-lite`: the recipe as it is (no augmentation);
- `stylegan-lite-ada`: ADA (Karras et al. 2020) over xflip, translation, colour and cutout, with the held-out signal
  and target 0.05 (`benchmarks/ada_signal.py`), and `ada_kimg=100`: at the default 500, p could cross only a third of
  its range in these runs of a few hundred kimg;
- `stylegan-lite-diffaugment`: DiffAugment (Zhao et al. 2020): colour, translation and cutout on every image D sees,
  real and generated, always (p = 1, not adapted);
- `cgan-ada`: the category-conditional cgan (the nine Unicode groups) at 32 px with the same ADA;
- `r3gan`, `r3gan-ada`: R3GAN as it is and with ADA (each of its steps costs about 8 of stylegan-lite's).

`--adopt NAME=RUN` measures a run trained by `ganzoo train` instead (e.g. in the background, one thread each): every
checkpoint in RUN/checkpoints, with the CPU seconds of the `/usr/bin/time -v` report in RUN.log spread over the steps
in proportion (as benchmarks/quality_time.py does for the zoo's runs; each evaluation's few seconds are in it).

Writes into --out: RESULTS-colour-curves.{json,md}, `colour_curves.png` (colour FD against CPU seconds, log scale)
and, per variant, `strip-NAME.png`: 16 samples (seed 0) of each measured checkpoint, one row per checkpoint, top to
bottom: the grids the numbers were measured on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))

import ganzoo  # noqa: E402
from ganzoo._io import write_json, write_text  # noqa: E402
from ganzoo.data import load_dataset  # noqa: E402
from ganzoo.images import save_grid  # noqa: E402

DATA = "twemoji"
SEED = 0
DEFAULT_OUT = Path(__file__).parent / "out" / "colour-curves"
ADA = {"augment": "xflip,translation,color,cutout", "ada_target": 0.05, "ada_kimg": 100.0}
#: name -> (architecture, config overrides, recipe overrides, steps: about one CPU hour on one thread)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any], int]] = {
    "stylegan-lite": ("stylegan-lite", {}, {}, 14_000),
    "stylegan-lite-ada": ("stylegan-lite", {}, ADA, 14_000),
    "stylegan-lite-diffaugment": ("stylegan-lite", {}, {"augment": "color,translation,cutout"}, 14_000),
    "cgan-ada": ("cgan", {"img_size": 32}, ADA, 9_000),
    "r3gan": ("r3gan", {}, {}, 1_600),
    "r3gan-ada": ("r3gan", {}, ADA, 1_600),
}


def train_variant(name: str, out: Path, points: int, device: str, steps: int | None = None) -> None:
    """Train one variant into OUT/NAME with a checkpoint at `points` evenly spaced steps, and OUT/NAME/clock.json:
    the process CPU time at each checkpointed step (from the start of step 1). `steps` replaces the variant's."""
    arch, config, recipe, planned = VARIANTS[name]
    steps = steps or planned
    every = max(1, steps // points)
    clock: dict[int, float] = {}
    start: list[float] = []

    def tick(step: int, total: int, record: Any) -> None:
        now = time.process_time()
        if not start:
            start.append(now)
        if step % every == 0 or step == total:
            clock[step] = round(now - start[0], 2)

    torch.set_num_threads(1)
    ganzoo.train(arch, data=DATA, out=out / name, steps=steps, seed=SEED, device=device, overwrite=True,
                 config=config, recipe=recipe, checkpoint_every=every, keep_checkpoints=points + 1,
                 log_every=every, progress=tick)
    write_json(out / name / "clock.json", {str(k): v for k, v in clock.items()})


def _time_log_cpu(log: Path) -> float | None:
    from quality_time import _time_log_cpu as read

    return read(log)


def run_clock(run: Path) -> dict[int, float]:
    """Step -> CPU seconds: the run's clock.json (trained here) or, for an adopted run, its /usr/bin/time report
    (RUN.log) spread over its steps."""
    if (run / "clock.json").is_file():
        return {int(k): v for k, v in json.loads((run / "clock.json").read_text(encoding="utf-8")).items()}
    cpu = _time_log_cpu(run.parent / f"{run.name}.log")
    if cpu is None:
        raise SystemExit(f"{run}: no clock.json and no /usr/bin/time -v report in {run.parent / (run.name + '.log')}")
    steps = json.loads((run / "model" / "config.json").read_text(encoding="utf-8"))["training"]["steps"]
    return {step: round(cpu * step / steps, 1) for step in range(0, steps + 1)}


def measure_run(name: str, run: Path, evaluator: Any, out: Path) -> list[dict[str, Any]]:
    """Colour FD and KID of every checkpoint of `run` (its sampling generator) and of its final model; the strip of
    samples each was measured on."""
    from quality_time import _checkpoint_model

    from ganzoo.trainer.checkpoint import find_checkpoints

    clock = run_clock(run)
    final = ganzoo.load(str(run / "model"))
    steps = final.info["training"]["steps"]
    models = [_checkpoint_model(run, path) for _, path in find_checkpoints(run / "checkpoints")]
    models = [(m, s) for m, s in models if s < steps] + [(final, steps)]
    points, rows = [], []
    for model, step in models:
        result = evaluator.evaluate(model)
        points.append({"step": step, "cpu_s": clock[step], "fid": round(result.values["fid"], 3),
                       "kid": round(result.values["kid"], 5)})
        rows.append(model.sample(16, seed=SEED))
        print(f"  {name}: step {step}, {clock[step]:.0f} CPU s, colour FD {points[-1]['fid']:.2f}", flush=True)
    save_grid(torch.cat(rows), out / f"strip-{name}.png", nrow=16)
    return points


def plot(curves: dict[str, list[dict[str, Any]]], floor: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        ax.plot([p["cpu_s"] for p in points], [p["fid"] for p in points], marker="o", ms=3, label=name)
    ax.axhline(floor, color="gray", ls=":", label=f"real (train part vs test), {floor:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training CPU seconds (one thread)")
    ax.set_ylabel("colour FD vs twemoji test part")
    ax.set_title("twemoji, 32 px, 1,560 train emoji")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(curves: dict[str, list[dict[str, Any]]], floor: float) -> str:
    lines = ["| variant | steps | CPU s | colour FD | KID | best FD (at step) |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, points in curves.items():
        last, best = points[-1], min(points, key=lambda p: p["fid"])
        lines.append(f"| {name} | {last['step']:,} | {last['cpu_s']:,.0f} | {last['fid']:.2f} | {last['kid']:.4f} | "
                     f"{best['fid']:.2f} ({best['step']:,}) |")
    lines.append(f"| real: twemoji's train part (2,000 draws of 1,560) | | | {floor:.2f} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=("train", "eval", "all"), default="all")
    parser.add_argument("--only", help="comma-separated variants (default: all of VARIANTS)")
    parser.add_argument("--adopt", action="append", default=[], metavar="NAME=RUN",
                        help="measure a run trained elsewhere under this name (repeatable)")
    parser.add_argument("--points", type=int, default=14, help="checkpoints a trained variant keeps")
    parser.add_argument("--steps", type=int, help="train every variant this many steps instead (a smoke run)")
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else ([] if args.adopt else list(VARIANTS))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    adopted = dict(item.split("=", 1) for item in args.adopt)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.phase in ("train", "all"):
        for name in names:
            train_variant(name, args.out, args.points, args.device, args.steps)
    if args.phase == "train":
        return

    from quality import RealImages

    from ganzoo.metrics import Evaluator

    real = load_dataset(DATA, img_size=32, channels=3, split="test")
    evaluator = Evaluator(real, "fid,kid", "colour", num_samples=args.eval_samples, seed=SEED, device=args.device)
    runs = {name: args.out / name for name in names} | {name: Path(path) for name, path in adopted.items()}
    curves = {name: measure_run(name, run, evaluator, args.out) for name, run in runs.items()}
    train = load_dataset(DATA, img_size=32, channels=3, split="train")
    draws = torch.linspace(0, len(train) - 1, args.eval_samples).round().long()  # every emoji once or twice
    spread = dataclasses.replace(train, images=train.images[draws],
                                 labels=None if train.labels is None else train.labels[draws])
    floor = round(evaluator.evaluate(RealImages(spread, torch.device("cpu"))).values["fid"], 3)
    write_json(args.out / "RESULTS-colour-curves.json", {"curves": curves, "floor_fid": floor,
                                                         "eval_samples": args.eval_samples, "data": DATA})
    plot(curves, floor, args.out / "colour_curves.png")
    text = table(curves, floor)
    write_text(args.out / "RESULTS-colour-curves.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()

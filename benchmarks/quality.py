"""Quality at a fixed CPU budget: how close each architecture's default recipe gets to mnist-5k in N CPU minutes.

For every architecture the script builds the model as `ganzoo.train(arch)` does (default config and recipe,
1-channel mnist-5k, seed 0), measures its untrained generator, trains it through the shared `Trainer` (with the
architecture's own training hooks, so progressive growing grows) until the process has used the CPU budget, and
measures the sampling (EMA) generator again. The measure is the digits Fréchet distance and KID from
`ganzoo.metrics`: a fixed number of generated images (seed 0; conditional models get labels cycling through the
classes) against mnist-5k's test part (the 1,000 digits the digits extractor never saw, what `ganzoo eval` compares
with by default). For scale, the table starts with the floor: as many real images of the train part (every class
alike) against the same test part. Before any training the script scores the extractor's ladder
(`ganzoo.metrics.ladder`: real, blurred, noisy, one-class, blank and noise image sets of known order) and reports
any rung it ranks otherwise than a person would.

The budget is process CPU time (`time.process_time()`, all threads), which stays about the same whatever else runs
on the machine; wall time and steps reached are reported next to it. On CUDA the budget is wall time.

    .venv/bin/python benchmarks/quality.py                  # 3 CPU minutes each: about 12 minutes on 2 idle cores
    .venv/bin/python benchmarks/quality.py --only dcgan,wgan --cpu-minutes 10
    .venv/bin/python benchmarks/quality.py --quick          # smoke run: seconds of training, a few hundred images
    .venv/bin/python benchmarks/quality.py --device cuda --cpu-minutes 2
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import (
    DATA,
    add_arch_arg,
    add_common_args,
    check_args,
    finish,
    make_setup,
    make_trainer,
    md_table,
    result_header,
    setup_device,
    synchronize,
)

from ganzoo.data import ImageDataset, load_dataset
from ganzoo.metrics import EvalResult, Evaluator
from ganzoo.metrics.evaluation import KID_SUBSETS
from ganzoo.metrics.ladder import score_ladder, violations

METRICS = "fid,kid"
EXTRACTOR = "digits"
SEED = 0


# ---------------------------------------------------------------------------------------------------------------------
# real images: the reference set
# ---------------------------------------------------------------------------------------------------------------------


def _class_indices(dataset: ImageDataset) -> list[torch.Tensor]:
    """Indices of every class in dataset order (one group of everything for unlabelled data)."""
    if dataset.labels is None or not dataset.num_classes:
        return [torch.arange(len(dataset))]
    return [torch.nonzero(dataset.labels == c).flatten() for c in range(dataset.num_classes)]


def _subset(dataset: ImageDataset, index: torch.Tensor) -> ImageDataset:
    """The images at `index`, in dataset order; the name stays, so digit data is still known as digit data."""
    index = index.sort().values
    labels = dataset.labels[index] if dataset.labels is not None else None
    return dataclasses.replace(dataset, images=dataset.images[index], labels=labels)


def reference_set(dataset: ImageDataset, n: int) -> ImageDataset:
    """The first images of every class (in dataset order), `n` in all, classes in their dataset proportions."""
    if n >= len(dataset):
        return dataset
    groups = _class_indices(dataset)
    take = [g[:round(n * len(g) / len(dataset))] for g in groups]
    return _subset(dataset, torch.cat(take))


class RealImages:
    """Stands in for a model in `Evaluator.evaluate`: its "samples" are n of a set of real images drawn at random
    (seeded), so the floor goes through exactly the code path (quantisation, extractor, statistics) the generators
    do. Not the first n: mnist-5k's parts are stored class by class, and the first 2,000 train digits are 0 to 4."""

    num_classes = 0

    def __init__(self, dataset: ImageDataset, device: torch.device) -> None:
        self.images = dataset.images
        self.device = device

    @property
    def img_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def sample(self, n: int, seed: int | None = None, labels: Any = None, batch_size: int = 256,
               **kwargs: Any) -> torch.Tensor:
        if n > len(self.images):
            raise ValueError(f"asked for {n} real images, have {len(self.images)}")
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(seed or 0))
        return self.images[order[:n]].to(self.device).float().div(127.5).sub(1.0)


# ---------------------------------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------------------------------


def _values(result: EvalResult) -> dict[str, Any]:
    out: dict[str, Any] = {"fid": round(result.values["fid"], 3), "kid": result.values["kid"],
                           "kid_std": result.values["kid_std"],
                           "fake_images": result.provenance["fake_images"],
                           "real_images": result.provenance["real_images"]}
    if "classes_covered" in result.diagnostics:
        out["classes_covered"] = result.diagnostics["classes_covered"]
        out["num_classes"] = result.diagnostics["num_classes"]
    if "class_control" in result.diagnostics:
        out["class_control"] = result.diagnostics["class_control"]
    return out


class References:
    """One Evaluator per image size (its real features are extracted once), and the floor at that size."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.args = args
        self.device = device
        self.evaluators: dict[int, Evaluator] = {}
        self.floors: dict[int, dict[str, Any]] = {}
        self.provenance: dict[str, Any] | None = None

    def evaluator(self, img_size: int) -> Evaluator:
        if img_size not in self.evaluators:
            test = load_dataset(DATA, img_size=img_size, channels=1, split="test")
            real = reference_set(test, self.args.real_images)
            self.evaluators[img_size] = Evaluator(real, METRICS, EXTRACTOR, num_samples=self.args.num_samples,
                                                  seed=SEED, device=self.device)
            train = load_dataset(DATA, img_size=img_size, channels=1, split="train")
            self.floors[img_size] = self._floor(self.evaluators[img_size], reference_set(train, self.args.num_samples))
        return self.evaluators[img_size]

    def _floor(self, evaluator: Evaluator, train: ImageDataset) -> dict[str, Any]:
        """Real against real: train-part images (every class alike) in the generators' place."""
        t0 = time.perf_counter()
        result = Evaluator(evaluator.dataset, METRICS, EXTRACTOR, num_samples=len(train), seed=SEED,
                           device=self.device).evaluate(
            RealImages(train, self.device))  # type: ignore[arg-type]  # duck-typed: img_shape, num_classes, sample
        floor = {**_values(result), "eval_s": round(time.perf_counter() - t0, 1)}
        self.provenance = {k: v for k, v in result.provenance.items() if k not in ("real_images", "fake_images",
                                                                                  "real_data")}
        print(f"  floor at {train.images.shape[-1]}px (real vs real: {len(train)} train vs {len(evaluator.dataset)} "
              f"test images): digits FD {floor['fid']:.2f}, KID {floor['kid']:.5f}", flush=True)
        return floor

    def measure(self, img_size: int, model: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = self.evaluator(img_size).evaluate(model)
        return {**_values(result), "eval_s": round(time.perf_counter() - t0, 1)}


def budget_clock(args: argparse.Namespace, device: torch.device) -> tuple[str, Callable[[], float]]:
    """Which clock the budget is counted on: process CPU seconds on the CPU, wall seconds on CUDA."""
    kind = args.clock if args.clock != "auto" else ("wall" if device.type == "cuda" else "process")
    return kind, (time.process_time if kind == "process" else time.perf_counter)


def bench_architecture(name: str, args: argparse.Namespace, device: torch.device, refs: References,
                       tmp: Path) -> dict[str, Any]:
    setup = make_setup(name)
    size = setup.config.img_size
    print(f"\n{setup.describe()}", flush=True)
    result: dict[str, Any] = {"architecture": name, "img_size": size, "batch_size": setup.recipe.batch_size,
                              "d_steps": setup.recipe.d_steps, "loss": setup.recipe.loss,
                              "recipe_steps": setup.recipe.steps}
    model = setup.model.to(device)
    result["untrained"] = refs.measure(size, model)
    print(f"  untrained: digits FD {result['untrained']['fid']:.2f}", flush=True)

    trainer = make_trainer(setup, model, device, tmp / name, hooks=True)
    clock_kind, clock = budget_clock(args, device)
    budget = args.budget_s
    torch.manual_seed(SEED)  # as Trainer.run does before its first step
    synchronize(device)
    wall0, cpu0, start = time.perf_counter(), time.process_time(), clock()
    steps = 0
    while steps == 0 or clock() - start < budget:
        trainer.train_step()
        steps += 1
    synchronize(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    images = trainer.images_seen
    result["training"] = {"clock": clock_kind, "budget_s": budget, "steps": steps, "images_seen": images,
                          "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "img_per_s": round(images / wall, 1),
                          "cpu_util": round(cpu / wall, 2)}
    for hook in trainer.hooks:  # e.g. the resolution progressive growing reached
        result["training"].update(hook.stats())
    result["trained"] = refs.measure(size, model)
    print(f"  {steps} steps ({images / 1000:.1f} kimg) in {cpu:.0f} CPU s / {wall:.0f} s wall: digits FD "
          f"{result['trained']['fid']:.2f} (untrained {result['untrained']['fid']:.2f})", flush=True)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------------


def _metric_cells(m: dict[str, Any]) -> list[str]:
    covered = f"{m['classes_covered']}/{m['num_classes']}" if "classes_covered" in m else "-"
    return [f"{m['fid']:.2f}", f"{m['kid']:.4g} ± {m['kid_std']:.2g}", covered,
            f"{m['fake_images']} / {m['real_images']}"]


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    unit = "CPU" if s["clock"] == "process" else "wall"
    rows = []
    for size, floor in sorted(result["floors"].items(), key=lambda kv: int(kv[0])):
        rows.append([f"real vs real (floor, {size}px)", "", "-", "-", "-", "-", *_metric_cells(floor)])
    for a in result["architectures"]:
        if "error" in a:
            rows.append([a["architecture"], "", "", "", "", "", a["error"], "", "", ""])
            continue
        label = f"{a['architecture']} {a['img_size']}px"
        rows.append([label, "untrained", "0", "0", "-", "-", *_metric_cells(a["untrained"])])
        t = a["training"]
        extra = f" (at {t['resolution']:.0f}px)" if "resolution" in t else ""
        rows.append([label, f"{t['budget_s'] / 60:g} {unit} min{extra}", str(t["steps"]),
                     f"{t['images_seen'] / 1000:.1f}", f"{t['cpu_s']:.0f}", f"{t['wall_s']:.0f}",
                     *_metric_cells(a["trained"])])
    head = (f"Each architecture's default recipe trained on {DATA} through the shared Trainer until "
            f"{s['budget_s'] / 60:g} {unit} minutes were spent; digits Fréchet distance (FD) and KID of the sampling "
            f"(EMA) generator, {s['num_samples']} generated images (seed {SEED}), against {s['real_images_used']} "
            f"real images of {DATA}'s test part (digits the extractor never saw). Floor: as many real images of the "
            f"train part, every class alike, against the same test images. Lower is "
            f"better (KID is unbiased, so it can come out below zero; it is in the digits features' own units, not "
            f"comparable with Inception KIDs). Classes: classes given at least a tenth of their fair share of "
            f"samples by the digits classifier.\n\n")
    table = md_table(["model", "training", "steps", "kimg", "CPU s", "wall s", "digits FD", "digits KID",
                      "classes", "fake / real images"], rows)
    return head + table + ladder_markdown(result.get("ladder"))


def ladder_markdown(ladder: dict[str, Any] | None) -> str:
    """The extractor's ladder: every rung's FD and KID, and what it ranks otherwise than a person would."""
    if not ladder:
        return ""
    rows = [[name, f"{v['fid']:.3f}", f"{v['kid']:.4g}"] for name, v in ladder["scores"].items()]
    verdict = ("Every rung is ranked as a person would." if not ladder["violations"] else
               "Ranked otherwise than a person would: " + "; ".join(ladder["violations"]) + ".")
    return (f"\n\nThe {EXTRACTOR} extractor's ladder (`ganzoo.metrics.ladder`: 400 images per rung against "
            f"{DATA}'s test part; KID from {ladder.get('kid_subsets', KID_SUBSETS)} subsets). {verdict}\n\n"
            + md_table(["rung", "FD", "KID"], rows))


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One target: the extractor ranks its ladder as a person would. The generators' quality is reported, not
    judged."""
    ladder = result.get("ladder")
    if not ladder:
        return []
    wrong = len(ladder["violations"])
    return [{"what": f"{EXTRACTOR} extractor ranks the ladder as a person would (FD and KID)",
             "value": "every rung in order" if not wrong else f"{wrong} pair(s) out of order",
             "target": "every rung in order", "verdict": "pass" if not wrong else "fail"}]


# ---------------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arch_arg(parser)
    add_common_args(parser)
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="training budget per architecture in CPU minutes of this process (all threads; wall "
                             "minutes on CUDA) (default 3, --quick 0.05)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="generated images per evaluation (default 2000, --quick 200)")
    parser.add_argument("--real-images", type=int, default=None,
                        help="real images to compare against, the first of every class of the test part (default "
                             "1000: all of it; --quick 600)")
    parser.add_argument("--clock", choices=("auto", "process", "wall"), default="auto",
                        help="what the budget counts: process CPU seconds or wall seconds; auto: process on the "
                             "CPU, wall on CUDA")
    args = parser.parse_args(argv)
    quick = args.quick
    args.cpu_minutes = args.cpu_minutes if args.cpu_minutes is not None else (0.05 if quick else 3.0)
    args.num_samples = args.num_samples if args.num_samples is not None else (200 if quick else 2000)
    args.real_images = args.real_images if args.real_images is not None else (600 if quick else 1000)
    check_args(parser, args, positive=("num_samples", "real_images"))
    if not args.cpu_minutes > 0:
        parser.error("--cpu-minutes must be positive")
    if args.num_samples < 2 or args.real_images < 4:
        parser.error("need at least 2 generated and 4 real images")
    if args.num_samples > 4000:
        parser.error("--num-samples is at most 4000: the floor takes as many real images from the train part")
    args.budget_s = 60.0 * args.cpu_minutes
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the floor and every architecture in `args.arch`; the section's result (see run_all.py)."""
    device = setup_device(args)
    t_start = time.perf_counter()
    clock_kind, _ = budget_clock(args, device)
    result = result_header("quality", device, {
        "architectures": args.arch, "budget_s": args.budget_s, "clock": clock_kind, "num_samples": args.num_samples,
        "real_images": args.real_images, "metrics": METRICS, "extractor": EXTRACTOR, "seed": SEED, "data": DATA,
        "quick": args.quick})
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; budget "
          f"{args.budget_s:g} {'CPU' if clock_kind == 'process' else 'wall'} s per architecture; "
          f"load average {result['load_average_before']}", flush=True)
    t0 = time.perf_counter()
    kid_subsets = 20 if args.quick else KID_SUBSETS  # the ladder's KIDs take a minute on 2 busy cores with 100
    scores = score_ladder(EXTRACTOR, device=device, kid_subsets=kid_subsets)
    problems = violations(scores, "fid") + violations(scores, "kid")
    result["ladder"] = {"scores": scores, "violations": problems, "kid_subsets": kid_subsets,
                        "eval_s": round(time.perf_counter() - t0, 1)}
    print(f"  {EXTRACTOR} ladder: " + ", ".join(f"{k} {v['fid']:.2f}" for k, v in scores.items())
          + (f"; WRONG ORDER: {'; '.join(problems)}" if problems else "; every rung in order"), flush=True)
    refs = References(args, device)
    result["architectures"] = []
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-quality-") as tmp:
        for name in args.arch:
            try:
                result["architectures"].append(bench_architecture(name, args, device, refs, Path(tmp)))
            except Exception as exc:  # one broken architecture must not lose the others' figures
                message = f"{type(exc).__name__}: {exc}"
                print(f"  {name} failed: {message}", file=sys.stderr)
                result["architectures"].append({"architecture": name, "error": message})
    result["floors"] = {str(size): floor for size, floor in refs.floors.items()}
    result["settings"]["real_images_used"] = min(len(e.dataset) for e in refs.evaluators.values()) \
        if refs.evaluators else args.real_images
    result["evaluation_provenance"] = refs.provenance
    finish(result, args.json, t_start)
    return result


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    print()
    print(markdown(result))
    return 1 if any("error" in a for a in result["architectures"]) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Mode coverage on StackedMNIST at a fixed CPU budget: how many of the 1,000 digit triples each architecture draws.

For every registered unconditional architecture the script builds its default config at 32 px with 3 channels and
its default recipe (seed 0), trains it on `stacked-mnist` (`ganzoo.data`: three mnist-5k train digits per image, one
per colour channel) through the shared `Trainer`, with its own training hooks, until the process has used
`--cpu-seconds` of CPU time (`time.process_time()`, all threads; wall time on CUDA), then draws `--samples` images
(25,600, the protocol of VEEGAN and PacGAN) from the sampling (EMA) generator and reads each channel with the shipped
digit classifier (`ganzoo.metrics.modes`). Reported: modes covered (of 1,000) and the KL divergence of the mode
histogram from uniform by plain argmax, the same two over the samples whose three channels are all read with
confidence (probability >= 0.9 and a feature vector within the Mahalanobis radius of 99 % of the real train digits
of the class read), and the share of those. Plain argmax reads a digit in anything, so colour blobs spread over
hundreds of argmax "modes"; the confident columns are the ones that tell a generator of digits from one of blobs.

An independent check: a second reader (`ganzoo.metrics.second_reader`: another network, another seed, no degradation
augmentation), trained at the start of the run on the same train part (`--second-reader-epochs`, about a minute on
one busy thread; 0 leaves it out), counts every set's confident modes by the same rule in its own feature space,
beside the shipped classifier's count. The real row also carries the shipped classifier's calibration on the real
test stacks (confidence against accuracy, per channel).

Conditional architectures (cgan) are left out: they are told which stack to draw. A plugin that fails to import is
left out with its error. The table starts with the same measure on as many real stacks of the test split (digits
the classifier never saw) and the classifier's per-channel accuracy on them, and ends with published figures for
scale (plain argmax, other networks, other training lengths and the full MNIST).

Writes RESULTS-stacked-mnist.json and .md into --out, and one grid of 64 samples per architecture (grid-ARCH.png,
and grid-real.png) into --figures, which the results link by a relative path. The default run writes its results to
benchmarks/stacked-mnist/ and its grids to docs/img/stacked-mnist/, where docs/evaluation.md shows them (the docs
site serves only what is under docs/), so a re-run keeps the docs' pictures current; any other --out takes the
grids too unless --figures says otherwise.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stacked_mnist.py --threads 1   # every architecture, 10 CPU min each
    # the same in parallel processes (the budget counts each process's own CPU time), then one table:
    .venv/bin/python benchmarks/stacked_mnist.py --threads 1 --arch dcgan,gan --out /tmp/sm-1 &
    .venv/bin/python benchmarks/stacked_mnist.py --threads 1 --arch r3gan,sngan --out /tmp/sm-2 &
    wait; .venv/bin/python benchmarks/stacked_mnist.py --merge /tmp/sm-1 /tmp/sm-2
    .venv/bin/python benchmarks/stacked_mnist.py --arch dcgan --cpu-seconds 120
    .venv/bin/python benchmarks/stacked_mnist.py --quick                          # smoke run: seconds per architecture
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import (
    add_arch_arg,
    add_common_args,
    check_args,
    finish,
    md_table,
    result_header,
    setup_device,
    synchronize,
)
from quality import budget_clock

from ganzoo.data import STACKED_MNIST_SIZES, ImageDataset, load_dataset
from ganzoo.images import save_grid
from ganzoo.metrics.evaluation import to_uint8
from ganzoo.metrics.modes import (
    CONFIDENCE,
    PROTOCOL_SAMPLES,
    RULE,
    DigitReference,
    ModeCounter,
    ModeCoverage,
    calibration,
    digit_accuracy,
    fit_reference,
    read_digits,
)
from ganzoo.metrics.second_reader import train_second_reader
from ganzoo.model import build_model
from ganzoo.registry import get_architecture
from ganzoo.trainer.loop import RunOptions, Trainer

DATA = "stacked-mnist"
IMG_SIZE = 32
CHANNELS = 3
SEED = 0
CHUNK = 1024  # images sampled and read at a time: the 25,600 never sit in memory as floats
DEFAULT_OUT = Path(__file__).resolve().parent / "stacked-mnist"
#: where the default run's grids go: docs/evaluation.md shows them, and the docs site holds only what is under docs/
DEFAULT_FIGURES = Path(__file__).resolve().parent.parent / "docs" / "img" / "stacked-mnist"
#: published StackedMNIST figures (1,000 modes, 25,600 samples, plain argmax of a pretrained MNIST classifier)
PUBLISHED = [
    {"name": "DCGAN", "modes": 99.0, "kl": 3.40, "source": "as cited by PacGAN (Lin et al. 2018)"},
    {"name": "PacDCGAN", "modes": 1000.0, "kl": 0.06, "source": "PacGAN (Lin et al. 2018)"},
    {"name": "R3GAN", "modes": 1000.0, "kl": 0.078, "source": "R3GAN (Huang et al. 2024)"},
]
#: the issue's aim for r3gan at the shared budget
R3GAN_CONFIDENT_MODES = 900


# ---------------------------------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------------------------------


def _link(path: Path, start: Path) -> str:
    """`path` as a file in `start` links it: relative, with forward slashes (Markdown and JSON read the same on every
    system); absolute where no relative path exists (another drive on Windows)."""
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _coverage_cells(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("samples", "modes", "kl", "confident_modes", "confident_kl", "confident_fraction",
                              "softmax_confident_modes", "softmax_confident_fraction")}


def second_reader(epochs: int, device: torch.device) -> tuple[DigitReference | None, dict[str, Any]]:
    """The independent reader (`ganzoo.metrics.second_reader`) and its reference at IMG_SIZE, with its test accuracy
    and calibration; None when `epochs` is 0."""
    if epochs == 0:
        return None, {}
    t0 = time.perf_counter()
    model, accuracy = train_second_reader(epochs=epochs)
    reference = fit_reference(model.to(device), IMG_SIZE, device)
    cal = calibration(IMG_SIZE, device, reference)
    info = {"epochs": epochs, "test_accuracy": round(accuracy, 4), "ece": cal["ece"],
            "stacks_confident": cal["stacks_confident"], "train_s": round(time.perf_counter() - t0, 1)}
    print(f"second reader: {epochs} epochs, test accuracy {accuracy:.2%}, ECE {cal['ece']:.4f}, "
          f"{cal['stacks_confident']:.1%} of real test stacks read with confidence ({info['train_s']:.0f} s)",
          flush=True)
    return reference, info


def measure_generator(model: Any, n: int, device: torch.device, grid: Path | None,
                      second: DigitReference | None = None) -> tuple[ModeCoverage, ModeCoverage | None, dict]:
    """Sample `n` images from the model's sampling generator in chunks (seed SEED + chunk index), round them to uint8
    as a saved image would be, and count their modes (and by the `second` reader, when given); saves the first 64
    as a grid. Returns the coverage, the second reader's and the time it took (wall and CPU seconds)."""
    counter = ModeCounter(CONFIDENCE, device)
    check = ModeCounter(CONFIDENCE, device, reference=second) if second is not None else None
    synchronize(device)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i, start in enumerate(range(0, n, CHUNK)):
        images = to_uint8(model.sample(min(CHUNK, n - start), seed=SEED + i))
        if i == 0 and grid is not None:
            save_grid(images[:64].float().div(127.5).sub(1.0).cpu(), grid, nrow=8)
        counter.update(images)
        if check is not None:
            check.update(images)
    result = counter.result()  # the one read-back
    timing = {"wall_s": round(time.perf_counter() - wall0, 1), "cpu_s": round(time.process_time() - cpu0, 1)}
    return result, check.result() if check is not None else None, timing


def measure_real(test: ImageDataset, n: int, device: torch.device, grid: Path,
                 second: DigitReference | None = None) -> dict[str, Any]:
    """The yardstick on real stacks: the first `n` of the test split, the classifier's per-channel accuracy and its
    calibration on all test stacks, and the second reader's count when given; the first 64 stacks saved to `grid`."""
    images, labels = test.images[:n], test.labels
    assert labels is not None
    t0 = time.perf_counter()
    reading = read_digits(images, device)  # one pass gives both the modes and the accuracy
    counter = ModeCounter(CONFIDENCE, device)
    counter.add(reading)
    coverage = counter.result()
    accuracy = digit_accuracy(reading.digits, labels[:n])
    cal = calibration(IMG_SIZE, device)
    save_grid(images[:64].float().div(127.5).sub(1.0), grid, nrow=8)
    real = {**_coverage_cells(coverage.to_dict()), "channel_accuracy": [round(a, 4) for a in accuracy],
            "calibration": cal, "eval_s": round(time.perf_counter() - t0, 1)}
    if second is not None:
        real["second_reader"] = _coverage_cells(_second_coverage(images, device, second))
    print(f"  real test stacks ({n}): {coverage.modes} modes, KL {coverage.kl:.3f}; confident "
          f"{coverage.confident_modes} modes, KL {coverage.confident_kl:.3f}, {coverage.confident_fraction:.1%} of "
          f"samples; per-channel accuracy {' / '.join(f'{a:.2%}' for a in accuracy)}; calibration on all test "
          f"stacks: ECE {cal['ece']:.4f}, {cal['stacks_confident']:.1%} read with confidence", flush=True)
    return real


def _second_coverage(images: torch.Tensor, device: torch.device, second: DigitReference) -> dict[str, Any]:
    counter = ModeCounter(CONFIDENCE, device, reference=second)
    counter.update(images)
    return counter.result().to_dict()


def bench_architecture(name: str, args: argparse.Namespace, device: torch.device, dataset: ImageDataset,
                       tmp: Path, second: DigitReference | None = None) -> dict[str, Any]:
    """Train one architecture for the budget on stacked-mnist and measure its mode coverage."""
    arch = get_architecture(name)
    if arch.conditional:
        return {"architecture": name, "skipped": "conditional: it is told which stack to draw"}
    cfg = arch.make_config(None, img_size=IMG_SIZE, channels=CHANNELS)
    recipe = arch.make_recipe(None)
    torch.manual_seed(SEED)  # as ganzoo.train does before building the model
    model = build_model(arch.name, cfg).to(device)
    options = RunOptions(data=DATA, seed=SEED, device=str(device))
    trainer = Trainer(model, recipe, dataset, options, out=tmp / name, hooks=arch.hooks(cfg, recipe))
    print(f"\n{name} {IMG_SIZE}x{IMG_SIZE}x{CHANNELS}, batch {recipe.batch_size}, {recipe.d_steps} D step(s), loss "
          f"{recipe.loss}", flush=True)
    clock_kind, clock = budget_clock(args, device)
    torch.manual_seed(SEED)  # as Trainer.run does before its first step
    synchronize(device)
    wall0, cpu0, start = time.perf_counter(), time.process_time(), clock()
    steps = 0
    while steps == 0 or clock() - start < args.cpu_seconds:
        trainer.train_step()
        steps += 1
    synchronize(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    training = {"clock": clock_kind, "budget_s": args.cpu_seconds, "steps": steps, "recipe_steps": recipe.steps,
                "images_seen": trainer.images_seen, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1)}
    for hook in trainer.hooks:  # e.g. the resolution progressive growing reached
        training.update(hook.stats())
    grid = args.figures / f"grid-{name}.png"
    coverage, check, timing = measure_generator(model, args.samples, device, grid, second)
    also = f"; the second reader: {check.confident_modes} confident modes" if check is not None else ""
    print(f"  {steps} steps in {cpu:.0f} CPU s / {wall:.0f} s: {coverage.modes} modes, KL {coverage.kl:.3f}; "
          f"confident {coverage.confident_modes} modes, KL {coverage.confident_kl:.3f}, "
          f"{coverage.confident_fraction:.1%} of samples{also} (sampling and reading {args.samples}: "
          f"{timing['cpu_s']:.0f} CPU s / {timing['wall_s']:.0f} s)", flush=True)
    entry = {"architecture": name, "img_size": IMG_SIZE, "batch_size": recipe.batch_size, "loss": recipe.loss,
             "training": training, "coverage": _coverage_cells(coverage.to_dict()), "measure": timing,
             "grid": _link(grid, args.out)}
    if check is not None:
        entry["second_reader"] = _coverage_cells(check.to_dict())
    return entry


# ---------------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------------


def _cells(c: dict[str, Any], second: dict[str, Any] | None) -> list[str]:
    check = f"{second['confident_modes']} ({second['confident_fraction']:.1%})" if second else "-"
    return [str(c["modes"]), f"{c['kl']:.3f}", str(c["confident_modes"]), f"{c['confident_kl']:.3f}",
            f"{c['confident_fraction']:.1%}", check]


def markdown(result: dict[str, Any]) -> str:
    """The section's table: real stacks, every architecture, the published anchors; then the grids."""
    s = result["settings"]
    unit = "CPU" if s["clock"] == "process" else "wall"
    real = result["real"]
    rows = [["real test stacks", "-", "-", *_cells(real, real.get("second_reader"))]]
    notes = []
    for a in result["architectures"]:
        if "coverage" in a:
            t = a["training"]
            extra = f" (at {t['resolution']:.0f}px)" if "resolution" in t else ""
            rows.append([a["architecture"], f"{t['steps']}{extra}", f"{t['cpu_s']:.0f}",
                         *_cells(a["coverage"], a.get("second_reader"))])
        else:
            notes.append(f"- {a['architecture']}: left out ({a.get('skipped') or a.get('error')})")
    for p in PUBLISHED:
        rows.append([f"{p['name']} (published, plain argmax)", "-", "-", f"{p['modes']:.0f}", f"{p['kl']:.3f}",
                     "-", "-", "-", "-"])
    accuracy = " / ".join(f"{a:.1%}" for a in real["channel_accuracy"])
    head = (f"Each unconditional architecture's default recipe at {IMG_SIZE} px with {CHANNELS} channels, trained on "
            f"{DATA} until {s['cpu_seconds']:g} {unit} seconds were spent (seed {SEED}); then {s['samples']} samples "
            f"of the sampling (EMA) generator, each channel read by the digits classifier. Modes: of 1,000 (100 r + "
            f"10 g + b), with at least one sample; KL: of the mode histogram from uniform (nats; 0 is perfect, "
            f"6.91 one mode). Confident: only the samples whose three channels are all read with confidence "
            f"({s.get('rule', 'softmax >= ' + str(s['confidence']))}; a KL of 6.91 when there is none), and their "
            f"share; the second reader's count: the same rule in an independent classifier's feature space. Real "
            f"test stacks: the same "
            f"measure on {real['samples']} stacks of the test split (digits the classifier never saw); its per-"
            f"channel accuracy there (red / green / blue) is {accuracy}. Published rows: plain argmax, 25,600 samples "
            f"of fully trained networks on the full MNIST, for scale only.\n\n")
    table = md_table(["model", "steps", f"{unit} s", "modes", "KL", "confident modes", "confident KL",
                      "confident share", "second reader: confident modes (share)"], rows)
    tail = "\n\n" + "\n".join(notes) if notes else ""
    grids = [f"- {a['architecture']}: ![{a['architecture']}]({a['grid']})" for a in result["architectures"]
             if "grid" in a]
    tail += f"\n\nSamples (the first 64 of each set): real: ![real]({real.get('grid', 'grid-real.png')})\n"
    tail += "\n".join(grids)
    return head + table + tail + "\n"


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Targets: the yardstick reads real stacks as 1,000 confident modes; r3gan (when measured) covers more
    confident modes with a lower confident KL than every other architecture, and at least 900."""
    real = result["real"]
    rows = [{"what": "real test stacks: confident modes (of 1,000)", "value": str(real["confident_modes"]),
             "target": ">= 990" if real["samples"] >= PROTOCOL_SAMPLES else "- (fewer samples than the protocol)",
             "verdict": ("pass" if real["confident_modes"] >= 990 else "fail")
             if real["samples"] >= PROTOCOL_SAMPLES else "-"}]
    measured = {a["architecture"]: a["coverage"] for a in result["architectures"] if "coverage" in a}
    if "r3gan" in measured:
        mine = measured.pop("r3gan")
        best_other = all(mine["confident_modes"] > c["confident_modes"] and mine["confident_kl"] < c["confident_kl"]
                         for c in measured.values())
        ok = best_other and mine["confident_modes"] >= R3GAN_CONFIDENT_MODES
        rows.append({"what": "r3gan: most confident modes and lowest confident KL of the zoo, and >= 900",
                     "value": f"{mine['confident_modes']} modes, KL {mine['confident_kl']:.3f}",
                     "target": f"> every other architecture, >= {R3GAN_CONFIDENT_MODES}",
                     "verdict": "pass" if ok else "fail"})
    return rows


# ---------------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arch_arg(parser)
    add_common_args(parser)
    parser.add_argument("--cpu-seconds", type=float, default=None,
                        help="training budget per architecture in CPU seconds of this process (all threads; wall "
                             "seconds on CUDA) (default 600, --quick 3)")
    parser.add_argument("--samples", type=int, default=None,
                        help=f"generated images per architecture, and real test stacks (default {PROTOCOL_SAMPLES}, "
                             "the published protocol; --quick 256)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder for the results and grids (default {DEFAULT_OUT}; --quick: a temporary "
                             "folder's ganzoo-stacked-mnist-quick)")
    parser.add_argument("--figures", type=Path, default=None, metavar="DIR",
                        help=f"folder for the grids, which the results link relatively (default {DEFAULT_FIGURES} "
                             "when --out is the default, where the docs show them; else --out)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                        help="measure nothing: combine the results of runs in these --out folders (same budget, "
                             "samples and clock) into one table in --out and their grids into --figures")
    parser.add_argument("--second-reader-epochs", type=int, default=None,
                        help="epochs of the independent second reader trained at the start (default 15, --quick 1; "
                             "0 leaves the check out)")
    parser.add_argument("--clock", choices=("auto", "process", "wall"), default="auto",
                        help="what the budget counts: process CPU seconds or wall seconds; auto: process on the "
                             "CPU, wall on CUDA")
    args = parser.parse_args(argv)
    quick = args.quick
    args.cpu_seconds = args.cpu_seconds if args.cpu_seconds is not None else (3.0 if quick else 600.0)
    args.samples = args.samples if args.samples is not None else (256 if quick else PROTOCOL_SAMPLES)
    if args.second_reader_epochs is None:
        args.second_reader_epochs = 1 if quick else 15
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "ganzoo-stacked-mnist-quick" if quick else DEFAULT_OUT
    if args.figures is None:
        args.figures = DEFAULT_FIGURES if args.out.resolve() == DEFAULT_OUT else args.out
    check_args(parser, args, positive=("samples",), non_negative=("second_reader_epochs",))
    if not args.cpu_seconds > 0:
        parser.error("--cpu-seconds must be positive")
    if args.samples > STACKED_MNIST_SIZES["test"]:
        parser.error(f"--samples is at most {STACKED_MNIST_SIZES['test']}: the real row takes as many test stacks")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure real stacks and every architecture in `args.arch`; the section's result (see run_all.py)."""
    device = setup_device(args)
    t_start = time.perf_counter()
    clock_kind, _ = budget_clock(args, device)
    args.out.mkdir(parents=True, exist_ok=True)
    args.figures.mkdir(parents=True, exist_ok=True)
    result = result_header("stacked-mnist", device, {
        "architectures": args.arch, "cpu_seconds": args.cpu_seconds, "clock": clock_kind, "samples": args.samples,
        "confidence": CONFIDENCE, "rule": RULE, "second_reader_epochs": args.second_reader_epochs,
        "img_size": IMG_SIZE, "channels": CHANNELS, "seed": SEED, "data": DATA, "quick": args.quick})
    result["published"] = PUBLISHED
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; budget "
          f"{args.cpu_seconds:g} {'CPU' if clock_kind == 'process' else 'wall'} s per architecture, {args.samples} "
          f"samples; load average {result['load_average_before']}", flush=True)
    second, result["second_reader"] = second_reader(args.second_reader_epochs, device)
    test = load_dataset(DATA, img_size=IMG_SIZE, split="test")
    real_grid = args.figures / "grid-real.png"
    result["real"] = {**measure_real(test, args.samples, device, real_grid, second), "grid": _link(real_grid, args.out)}
    del test
    train = load_dataset(DATA, img_size=IMG_SIZE)
    result["architectures"] = []
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-stacked-") as tmp:
        for name in args.arch:
            try:
                entry = bench_architecture(name, args, device, train, Path(tmp), second)
            except Exception as exc:  # a broken plugin or a failing recipe must not lose the others' figures
                message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                print(f"  {name} left out: {message}", flush=True)
                entry = {"architecture": name, "error": message}
            if "skipped" in entry:
                print(f"\n{name} left out: {entry['skipped']}", flush=True)
            result["architectures"].append(entry)
    finish(result, args.json, t_start)
    from ganzoo._io import write_json, write_text

    write_json(args.out / "RESULTS-stacked-mnist.json", result)
    write_text(args.out / "RESULTS-stacked-mnist.md", "# Mode coverage on StackedMNIST\n\n" + markdown(result))
    print(f"results written to {args.out}, grids to {args.figures}", flush=True)
    return result


def merge(folders: list[Path], out: Path, figures: Path | None = None) -> dict[str, Any]:
    """One result from runs made apart (e.g. in parallel processes): their architectures in order, the real row
    and header of the first; refuses runs whose settings other than the architectures differ. The grids each run
    links are copied into `figures` (default `out`) and linked from there."""
    import shutil

    from ganzoo._io import write_json, write_text

    results = []
    for folder in folders:
        path = folder / "RESULTS-stacked-mnist.json"
        if not path.is_file():
            raise SystemExit(f"error: {path} does not exist; give the --out folders of finished runs")
        results.append((folder, json.loads(path.read_text(encoding="utf-8"))))
    first = results[0][1]

    def comparable(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r["settings"].items() if k != "architectures"}

    for folder, r in results:
        if comparable(r) != comparable(first):
            raise SystemExit(f"error: {folder} was measured with other settings than {results[0][0]}; "
                             "merge only runs with the same budget, samples and clock")
    figures = out if figures is None else figures
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    def gather(folder: Path, link: str) -> str:
        """Copy the grid `link` of the run in `folder` into `figures` (results written before --figures existed
        name a file beside them); its link from `out`."""
        source = folder / link
        if not source.is_file():
            raise SystemExit(f"error: {source} does not exist, yet {folder / 'RESULTS-stacked-mnist.json'} links "
                             "it; merge only finished runs with their grids")
        target = figures / source.name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        return _link(target, out)

    merged = {**first, "architectures": [], "merged_from": [str(f) for f, _ in results]}
    merged["settings"] = {**first["settings"], "architectures": []}
    merged["real"] = {**first["real"], "grid": gather(results[0][0], first["real"].get("grid", "grid-real.png"))}
    for folder, r in results:
        merged["settings"]["architectures"] += r["settings"]["architectures"]
        merged["architectures"] += [{**a, "grid": gather(folder, a["grid"])} if "grid" in a else a
                                    for a in r["architectures"]]
        merged["elapsed_s"] = max(merged.get("elapsed_s", 0), r.get("elapsed_s", 0))
    write_json(out / "RESULTS-stacked-mnist.json", merged)
    write_text(out / "RESULTS-stacked-mnist.md", "# Mode coverage on StackedMNIST\n\n" + markdown(merged))
    return merged


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        result = merge(args.merge, args.out, args.figures)
        print(markdown(result))
        for row in summary(result):
            print(f"{row['what']}: {row['value']} (target {row['target']}): {row['verdict']}")
        return 0
    result = run(args)
    print()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

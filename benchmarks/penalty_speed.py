"""Per-step cost of the penalties and of r3gan's resampler: the computation before issue 19 against today's, side
by side in one process.

Before, each R1 and R2 penalty ran D again on its batch (a forward pass and a double backward of its own, eager
even under `--compile`), and r3gan's low-pass resampler was a sum of shifted slices per filter tap and axis. Today
the penalties take D's input gradient from the forward pass that gives the adversarial logits (under `--compile`
through a compiled function), and the resampler is one depthwise convolution. The old computations are rebuilt here
from what the library keeps: `two_pass_d_loss` below is the old `GANLoss.d_loss` (its penalties through
`ganzoo.losses.r1_penalty`, a pass of their own through the eager D), and `ganzoo_r3gan.resample_reference` is the
old resampler. Both compute the same values as today's (tests/test_losses.py, tests/test_r3gan.py).

Every variant is a trainer of the architecture's default config and recipe on 1-channel mnist-5k, with its own copy
of the same initial model. Rounds alternate the variants (A B C, B C A, ...), each a block of training steps after a
warm-up; the figures are medians of per-round ratios to the old computation. Steps per round are a multiple of the
recipe's `r1_interval`, so every round has the same share of steps with a penalty due.

    .venv/bin/python benchmarks/penalty_speed.py                             # r3gan and stylegan-lite, eager
    .venv/bin/python benchmarks/penalty_speed.py --arch r3gan --compile      # also under torch.compile
    .venv/bin/python benchmarks/penalty_speed.py --quick

sngan is not measured: its recipe has no R1 or R2 (hinge loss, spectral normalisation).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import (
    Variant,
    add_common_args,
    check_args,
    finish,
    make_setup,
    make_trainer,
    md_table,
    ratio_summary,
    result_header,
    run_rounds,
    setup_device,
)

from ganzoo._io import write_json, write_text
from ganzoo.losses import GANLoss, gradient_penalty, r1_penalty

ARCHS = ("r3gan", "stylegan-lite")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "penalty-speed"


def two_pass_d_loss(loss: GANLoss, penalty_D: Callable[..., torch.Tensor]) -> Callable[..., Any]:
    """`loss.d_loss` as ganzoo computed it before issue 19: the adversarial logits, then one more pass through
    `penalty_D` (the eager D behind the trainer's D inputs) per penalty due."""

    def d_loss(D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
               labels: torch.Tensor | None = None, step: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        fake = fake.detach()
        real_logits = D(real, labels)
        fake_logits = D(fake, labels)
        value, stats = loss.d_adversarial(real_logits, fake_logits)
        stats["d_real"] = real_logits.detach().mean()
        stats["d_fake"] = fake_logits.detach().mean()
        stats["overfit_signal"] = loss.overfit_signal(real_logits.detach().float(), fake_logits.detach().float())
        if loss.gp_weight > 0:
            gp = gradient_penalty(penalty_D, real, fake, labels)
            value = value + loss.gp_weight * gp
            stats["gradient_penalty"] = gp.detach()
        if step % loss.r1_interval == 0:
            for key, gamma, images in (("r1_penalty", loss.r1_gamma, real), ("r2_penalty", loss.r2_gamma, fake)):
                if gamma > 0:
                    penalty = r1_penalty(penalty_D, images, labels)  # a forward pass of its own
                    value = value + (gamma / 2) * loss.r1_interval * penalty
                    stats[key] = penalty.detach()
        if loss.drift > 0:
            value = value + loss.drift * real_logits.square().mean()
        stats["d_loss"] = value.detach()
        return value, stats

    return d_loss


def use_slice_sums(model: torch.nn.Module) -> int:
    """Give every r3gan resampler in `model` the old slice-sum forward pass; returns how many there are."""
    try:
        from ganzoo_r3gan.networks import LowPassResample, resample_reference
    except ImportError:
        return 0

    class SliceSums(LowPassResample):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return resample_reference(x, self.direction, self.taps)

    found = 0
    for module in model.modules():
        if isinstance(module, LowPassResample):
            module.__class__ = SliceSums
            found += 1
    return found


def make_variant(setup: Any, key: str, label: str, device: torch.device, out: Path, *, two_pass: bool,
                 slice_sums: bool, compile: bool) -> Variant:
    model = copy.deepcopy(setup.model)
    if slice_sums:
        use_slice_sums(model)
    trainer = make_trainer(setup, model, device, out / key, compile=compile)
    if two_pass:
        def penalty_D(images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return trainer.D(trainer._d_input(images), labels)

        trainer.loss.d_loss = two_pass_d_loss(trainer.loss, penalty_D)  # type: ignore[method-assign]
    variant = Variant(key, label, trainer.train_step, setup.images_per_step)
    variant.trainer = trainer  # type: ignore[attr-defined]
    return variant


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--arch", default=",".join(ARCHS), help="comma-separated architectures (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20,
                        help="training steps per round, rounded up to a multiple of r1_interval (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (default: %(default)s)")
    parser.add_argument("--compile", action="store_true", help="also time both computations under torch.compile")
    parser.add_argument("--no-eager", action="store_true", help="with --compile: time only the compiled variants")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help=f"write RESULTS-penalty-speed.{{md,json}} there (e.g. {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--report-from", type=Path, nargs="+", default=None, metavar="JSON",
                        help="measure nothing: write --out's report from the --json files of earlier runs")
    args = parser.parse_args(argv)
    if args.report_from and args.out is None:
        parser.error("--report-from needs --out")
    if args.quick:
        args.rounds, args.steps, args.warmup = 2, 1, 1
    check_args(parser, args, positive=("rounds", "steps", "warmup"))
    if args.no_eager and not args.compile:
        parser.error("--no-eager needs --compile")
    return args


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = setup_device(args)
    t_start = time.perf_counter()
    result = result_header("penalty_speed", device, {"rounds": args.rounds, "steps": args.steps,
                                                     "warmup": args.warmup, "compile": args.compile})
    result["command"] = getattr(args, "command", None)
    result["archs"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.arch:
            setup = make_setup(name)
            interval = setup.recipe.r1_interval
            steps = -(-args.steps // interval) * interval
            has_resampler = use_slice_sums(copy.deepcopy(setup.model)) > 0
            modes = ([] if args.no_eager else [False]) + ([True] if args.compile else [])
            for compiled in modes:
                tag = "compile" if compiled else "eager"
                specs = [("before", "two-pass penalties" + (", slice sums" if has_resampler else ""), True,
                          has_resampler)]
                if has_resampler and not compiled:
                    specs.append(("penalties", "one-pass penalties, slice sums", False, True))
                specs.append(("after", "one-pass penalties" + (", depthwise conv" if has_resampler else ""), False,
                              False))
                log(f"{setup.describe()}, r1_interval {interval}, {tag}: {steps} steps per round")
                variants = []
                for key, label, two_pass, slices in specs:
                    variant = make_variant(setup, key, label, device, Path(tmp) / f"{name}-{tag}", two_pass=two_pass,
                                           slice_sums=slices, compile=compiled)
                    t0 = time.perf_counter()
                    for _ in range(args.warmup):
                        variant.step()
                    log(f"  {label}: warm-up {time.perf_counter() - t0:.1f} s")
                    variants.append(variant)
                ratios = run_rounds(variants, args.rounds, steps, 0, "block", device, reference="before", log=log)
                # CPU seconds per step (wall seconds times the process's CPU use): less moved by other processes
                per_step = setup.images_per_step
                cpu = {v.key: [per_step / rate * util for rate, util in zip(v.rates, v.cpu_util, strict=True)]
                       for v in variants}
                cpu_ratios = {key: [b / a for b, a in zip(cpu["before"], cpu[key], strict=True)] for key in ratios}
                result["archs"].setdefault(name, {})[tag] = {
                    "describe": setup.describe(), "r1_interval": interval, "steps_per_round": steps,
                    "labels": {v.key: v.label for v in variants},
                    "step_seconds": {v.key: round(setup.images_per_step / v.median, 4) for v in variants},
                    "step_cpu_seconds": {key: round(statistics.median(values), 4) for key, values in cpu.items()},
                    "speedup": {key: ratio_summary(values) for key, values in ratios.items()},
                    "cpu_speedup": {key: ratio_summary(values) for key, values in cpu_ratios.items()},
                }
                summary = ", ".join(f"{v.label} {statistics.median(ratios[v.key]):.2f}x" for v in variants
                                    if v.key != "before")
                log(f"  speed against the two-pass computation (median of per-round wall ratios): {summary}")
    finish(result, args.json, t_start)
    return result


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for name, modes in result["archs"].items():
        for tag, entry in modes.items():
            for key, label in entry["labels"].items():
                if key == "before":
                    continue
                s = entry["speedup"][key]
                c = entry["cpu_speedup"][key]
                rows.append([name, tag, label, f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]",
                             f"{c['median']:.2f}x [{c['min']:.2f}-{c['max']:.2f}]",
                             f"{entry['step_seconds']['before']:.2f} / {entry['step_seconds'][key]:.2f}",
                             f"{entry['step_cpu_seconds']['before']:.2f} / {entry['step_cpu_seconds'][key]:.2f}"])
    return md_table(["arch", "mode", "variant", "speed vs. two-pass, wall (median [range] of rounds)",
                     "same, CPU time", "wall s per step, before / variant", "CPU s per step, before / variant"],
                    rows)


def write_report(results: list[dict[str, Any]], out: Path, command: str) -> None:
    """RESULTS-penalty-speed.md (what ran where, then the table of every run) and .json (every run), atomically."""
    lines = ["# Penalties and resampler: per-step cost before and after issue 19", "",
             "Per-step cost of training with the old computation (each R1 / R2 penalty a forward pass and double "
             "backward of its own, eager even under `--compile`; r3gan's resampler as slice sums) against today's "
             "(the penalties from the adversarial forward pass, compiled under `--compile`; one depthwise "
             "convolution), each variant a trainer of the default config and recipe on mnist-5k with a copy of the "
             "same initial model, in alternating rounds in one process. Ratios above 1 mean today's is faster: "
             "the median [range] over rounds of (old time per step) / (variant's time per step). On a shared "
             "machine read the CPU-time column first: wall times include waiting for other processes (see the load "
             "averages of each run).", "",
             f"Report: `{command}`. The runs:", ""]
    for result in results:
        machine = result["machine"]
        command = f"`{result['command']}`" if result.get("command") else "(command not recorded)"
        lines.append(f"- {command}: {result['date']}, {machine.get('cpu_model', '?')}, "
                     f"{machine.get('cpu_count', '?')} cores, torch {result['torch_version']}, "
                     f"{result['settings']}, load average {result['load_average_before']} before, "
                     f"{result['load_average_after']} after, {result['elapsed_s']} s")
    merged: dict[str, Any] = {"archs": {}}
    for result in results:
        for name, modes in result["archs"].items():
            merged["archs"].setdefault(name, {}).update(modes)
    lines += ["", markdown(merged), ""]
    write_text(out / "RESULTS-penalty-speed.md", "\n".join(lines))
    write_json(out / "RESULTS-penalty-speed.json", {"runs": results})


def summary(result: dict[str, Any]) -> str:
    parts = [f"{name} {tag} {entry['speedup']['after']['median']:.2f}x"
             for name, modes in result["archs"].items() for tag, entry in modes.items()]
    return "penalty_speed: " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["benchmarks/penalty_speed.py", *(sys.argv[1:] if argv is None else argv)])
    if args.report_from:
        results = [json.loads(path.read_text(encoding="utf-8")) for path in args.report_from]
    else:
        args.command = command
        results = [run(args)]
        print(markdown(results[0]))
    if args.out is not None:
        write_report(results, args.out, command)
        print(f"report written to {args.out / 'RESULTS-penalty-speed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

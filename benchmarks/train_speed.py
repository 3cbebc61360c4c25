"""Training speed per architecture: the ganzoo trainer against a plain hand-written loop on the identical model.

For every architecture (default config and recipe, 1-channel mnist-5k) the script times, in one process and in
alternating rounds: a plain PyTorch loop doing the same useful work per step as the recipe, the trainer with its
default options, and the trainer's fast-path candidates (channels_last, bf16 autocast, optionally torch.compile).
Speeds are real images per second; the figures to read are the medians over rounds of the per-round ratios to
the plain loop. It also counts the FLOPs of one training step (torch's flop counter) and measures this machine's
fp32 matmul and convolution peak, to say what fraction of the peak the trainer reaches.

    .venv/bin/python benchmarks/train_speed.py                      # all architectures, about 10 minutes on 2 cores
    .venv/bin/python benchmarks/train_speed.py --arch dcgan --fast cl
    .venv/bin/python benchmarks/train_speed.py --quick              # smoke run
    .venv/bin/python benchmarks/train_speed.py --device cuda --compile

See benchmarks/README.md for what each plain loop does and how to read the output.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import (
    SEED,
    PlainLoop,
    UnsupportedRecipe,
    Variant,
    add_arch_arg,
    add_common_args,
    calibrate_steps,
    check_args,
    finish,
    fmt_ratio,
    make_setup,
    make_trainer,
    md_table,
    plain_copies,
    rate_summary,
    ratio_summary,
    result_header,
    run_rounds,
    setup_device,
    synchronize,
    verdict,
)
from torch.utils.flop_counter import FlopCounterMode

TARGET_DEFAULT = 1.0  # trainer with default options / plain loop
TARGET_FAST = 1.3  # trainer's fast path / plain loop
#: fast-path options by the short names used on the command line
FAST_OPTIONS = {"cl": "channels_last", "bf16": "amp", "compile": "compile"}


# ---------------------------------------------------------------------------------------------------------------------
# this machine's peak
# ---------------------------------------------------------------------------------------------------------------------


def _best_rate(fn: Callable[[], Any], flops: float, device: torch.device, calls: int, blocks: int) -> float:
    """FLOP/s of the fastest of `blocks` timed blocks of `calls` calls (after one untimed call)."""
    fn()
    synchronize(device)
    best = float("inf")
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        best = min(best, (time.perf_counter() - t0) / calls)
    return flops / best


def measure_peaks(device: torch.device, quick: bool) -> dict[str, Any]:
    """fp32 GFLOP/s of a large matrix multiply and of a 3x3 convolution (best memory format), best of blocks."""
    gen = torch.Generator().manual_seed(0)
    cuda = device.type == "cuda"
    n = 1024 if quick else (8192 if cuda else 2048)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    out = torch.empty(n, n, device=device)
    calls, blocks = (2, 2) if quick else ((20, 5) if cuda else (5, 5))
    matmul = _best_rate(lambda: torch.mm(a, b, out=out), 2.0 * n ** 3, device, calls, blocks)

    batch, channels, size = (16 if quick else (256 if cuda else 64)), 128, 32
    x = torch.randn(batch, channels, size, size, generator=gen).to(device)
    w = torch.randn(channels, channels, 3, 3, generator=gen).to(device)
    conv_flops = 2.0 * batch * channels * size * size * channels * 9
    conv = {}
    for fmt_name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
        xf, wf = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
        with torch.no_grad():
            conv[fmt_name] = _best_rate(lambda xf=xf, wf=wf: torch.nn.functional.conv2d(xf, wf, padding=1),
                                        conv_flops, device, calls, blocks)
    best_fmt = max(conv, key=conv.__getitem__)
    return {"matmul_gflops": round(matmul / 1e9, 1), "matmul_size": n,
            "conv_gflops": round(conv[best_fmt] / 1e9, 1), "conv_memory_format": best_fmt,
            "conv_shape": [batch, channels, size, size], "conv_gflops_by_format": {k: round(v / 1e9, 1)
                                                                                  for k, v in conv.items()},
            "dtype": "float32", "tf32": bool(cuda and torch.backends.cuda.matmul.allow_tf32),
            "tf32_conv": bool(cuda and torch.backends.cudnn.allow_tf32)}


class _NoModuleTracking:
    """Stands in for FlopCounterMode's per-module tracker, which breaks `torch.autograd.grad` (pytorch/pytorch
    issue 131753: "A leaf node was passed to _will_engine_execute_node"), so gradient penalties and R1 could not
    be counted. Every FLOP is then attributed to "Global", which is all `get_total_flops` reads."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _NoModuleTracking:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def count_flops(step: Callable[[], Any]) -> int:
    """FLOPs of one call of `step`, as torch's flop counter sees them (matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _NoModuleTracking()
    with counter:
        step()
    return int(counter.get_total_flops())


# ---------------------------------------------------------------------------------------------------------------------
# one architecture
# ---------------------------------------------------------------------------------------------------------------------


def parse_fast(spec: str, compile_too: bool) -> list[str]:
    """Candidate names like 'cl', 'cl+bf16'; each a '+'-joined set of FAST_OPTIONS keys."""
    names = [] if spec.strip() == "none" else [s.strip() for s in spec.split(",") if s.strip()]
    if compile_too and "cl+compile" not in names:
        names.append("cl+compile")
    for name in names:
        unknown = [p for p in name.split("+") if p not in FAST_OPTIONS]
        if unknown:
            raise ValueError(f"unknown fast-path option {unknown[0]!r} in {name!r}; use {', '.join(FAST_OPTIONS)} "
                             "joined by +, e.g. cl+bf16")
    return names


def bench_architecture(name: str, args: argparse.Namespace, device: torch.device, tmp: Path) -> dict[str, Any]:
    setup = make_setup(name, batch_size=args.batch_size)
    print(f"\n{setup.describe()}", flush=True)
    result: dict[str, Any] = {"architecture": name, "img_size": setup.config.img_size,
                              "batch_size": setup.recipe.batch_size, "d_steps": setup.recipe.d_steps,
                              "loss": setup.recipe.loss, "images_per_step": setup.images_per_step}
    plain_G, plain_D = plain_copies(setup.model)
    fast_models = {cand: copy.deepcopy(setup.model) for cand in args.fast}
    try:
        plain = PlainLoop(plain_G, plain_D, setup.dataset, setup.recipe, device)
    except UnsupportedRecipe as exc:
        print(f"  skipped: {exc}")
        result["skipped"] = str(exc)
        return result
    trainer = make_trainer(setup, setup.model, device, tmp / name)
    ips = setup.images_per_step
    variants = [Variant("plain", "plain loop", plain.step, ips), Variant("trainer", "trainer", trainer.train_step, ips)]
    torch.manual_seed(SEED)  # as Trainer.run does before its first step
    for v in variants:  # first calls: oneDNN/cuDNN set-up
        for _ in range(args.warmup):
            v.step()

    failed: dict[str, str] = {}
    for cand, model in fast_models.items():
        options = {FAST_OPTIONS[p]: True for p in cand.split("+")}
        try:
            fast = make_trainer(setup, model, device, tmp / f"{name}-{cand}", **options)
            t0 = time.perf_counter()
            for _ in range(max(1, args.warmup)):  # compilation happens here
                fast.train_step()
            synchronize(device)
            if "compile" in cand:
                result.setdefault("compile_warmup_s", {})[cand] = round(time.perf_counter() - t0, 1)
        except Exception as exc:  # a candidate that does not work here is reported, not fatal
            failed[cand] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"  fast-path candidate {cand} failed: {failed[cand]}")
            continue
        variants.append(Variant(f"trainer+{cand}", f"trainer {cand}", fast.train_step, ips))

    steps = args.steps or calibrate_steps(plain.step, device, args.seconds)
    flops = {"trainer": count_flops(trainer.train_step), "plain": count_flops(plain.step)}
    interleave = args.interleave if args.interleave != "auto" else ("block" if device.type == "cuda" else "step")
    print(f"  {args.rounds} rounds x {steps} steps (+{args.warmup} warm-up) per variant, alternating every "
          f"{'step' if interleave == 'step' else 'block'}; {flops['trainer'] / 1e9:.2f} GFLOP per trainer step",
          flush=True)
    ratios = run_rounds(variants, args.rounds, steps, args.warmup, interleave, device, reference="plain")

    result.update({
        "steps_per_round": steps, "rounds": args.rounds, "interleave": interleave,
        "img_per_s": {v.key: rate_summary(v) for v in variants},
        "ratio_to_plain": {k: ratio_summary(r) for k, r in ratios.items()},
        "flops_per_step": flops,
        "gflop_per_image": {k: round(f / ips / 1e9, 4) for k, f in flops.items()},
    })
    trainer_rate = result["img_per_s"]["trainer"]["median"]
    result["trainer_gflops"] = round(flops["trainer"] / ips * trainer_rate / 1e9, 1)
    if failed:
        result["fast_failed"] = failed
    fast_keys = [k for k in ratios if k.startswith("trainer+")]
    if fast_keys:
        best = max(fast_keys, key=lambda k: result["ratio_to_plain"][k]["median"])
        result["fast_best"] = best
        # the best candidate against the default trainer, round by round
        default = next(v for v in variants if v.key == "trainer")
        chosen = next(v for v in variants if v.key == best)
        result["fast_over_default"] = ratio_summary([a / b for a, b in zip(chosen.rates, default.rates, strict=True)])
    default_ratio = result["ratio_to_plain"]["trainer"]["median"]
    line = f"  trainer / plain loop: {default_ratio:.2f}x [target >= {TARGET_DEFAULT}]"
    if fast_keys:
        line += (f"; fast path ({result['fast_best'].removeprefix('trainer+')}) / plain loop: "
                 f"{result['ratio_to_plain'][result['fast_best']]['median']:.2f}x [target >= {TARGET_FAST}]")
    print(line, flush=True)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    """The section's tables for RESULTS.md."""
    peaks = result["peaks"]
    archs = [a for a in result["architectures"] if "skipped" not in a and "error" not in a]
    machine = result["machine"]
    if "gpu" in machine:  # cuDNN convolutions run in TF32 unless turned off, the trainer's as well as the peak's
        where = f"{machine['gpu']}" + (", TF32 convolutions" if peaks.get("tf32_conv") else "") + (
            ", TF32 matrix multiplies" if peaks.get("tf32") else "")
    else:
        where = f"{machine['torch_threads']} threads on the CPU"
    out = [f"Measured peak (fp32, {where}): matrix multiply "
           f"{peaks['matmul_gflops']:.0f} GFLOP/s ({peaks['matmul_size']}x{peaks['matmul_size']}), 3x3 convolution "
           f"{peaks['conv_gflops']:.0f} GFLOP/s ({peaks['conv_memory_format']}, input "
           f"{'x'.join(map(str, peaks['conv_shape']))}).", ""]
    rows = []
    for a in archs:
        ratio = a["ratio_to_plain"]["trainer"]
        gflops = a["trainer_gflops"]
        rows.append([f"{a['architecture']} {a['img_size']}px b{a['batch_size']}" + (
            f" x{a['d_steps']}" if a["d_steps"] > 1 else ""),
            f"{a['img_per_s']['plain']['median']:.1f}", f"{a['img_per_s']['trainer']['median']:.1f}",
            fmt_ratio(ratio), f">= {TARGET_DEFAULT}", verdict(ratio["median"], TARGET_DEFAULT),
            f"{a['gflop_per_image']['trainer']:.3f}", f"{gflops:.0f}",
            f"{100 * gflops / peaks['matmul_gflops']:.0f} %", f"{100 * gflops / peaks['conv_gflops']:.0f} %"])
    out.append(md_table(["architecture", "plain img/s", "trainer img/s", "trainer / plain", "target", "",
                         "GFLOP / img", "trainer GFLOP/s", "of matmul peak", "of conv peak"], rows))
    out.append("")
    fast_rows = []
    for a in archs:
        if "fast_best" not in a:
            continue
        best = a["fast_best"]
        cands = ", ".join(f"{k.removeprefix('trainer+')} {a['img_per_s'][k]['median']:.1f}"
                          for k in a["img_per_s"] if k.startswith("trainer+"))
        ratio = a["ratio_to_plain"][best]
        fast_rows.append([a["architecture"], f"{a['img_per_s']['trainer']['median']:.1f}", cands,
                          best.removeprefix("trainer+"), fmt_ratio(a["fast_over_default"]), fmt_ratio(ratio),
                          f">= {TARGET_FAST}", verdict(ratio["median"], TARGET_FAST)])
    if fast_rows:
        out.append("Fast path: the trainer's candidates (img/s), the best one per architecture, against the "
                   "default trainer and against the plain loop.")
        out.append("")
        out.append(md_table(["architecture", "default img/s", "candidates img/s", "best", "best / default",
                             "best / plain", "target", ""], fast_rows))
    notes = [f"- {a['architecture']}: {a.get('skipped') or a.get('error')}" for a in result["architectures"]
             if "skipped" in a or "error" in a]
    notes += [f"- {a['architecture']}: fast-path candidate {k} failed ({v})" for a in archs
              for k, v in a.get("fast_failed", {}).items()]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Target rows for the overview table of RESULTS.md."""
    rows = []
    for a in result["architectures"]:
        if "ratio_to_plain" not in a:
            continue
        value = a["ratio_to_plain"]["trainer"]["median"]
        rows.append({"what": f"training speed {a['architecture']}: trainer / plain loop", "value": f"{value:.2f}x",
                     "target": f">= {TARGET_DEFAULT}x", "verdict": verdict(value, TARGET_DEFAULT)})
        if "fast_best" in a:
            value = a["ratio_to_plain"][a["fast_best"]]["median"]
            rows.append({"what": f"training speed {a['architecture']}: fast path "
                                 f"({a['fast_best'].removeprefix('trainer+')}) / plain loop",
                         "value": f"{value:.2f}x", "target": f">= {TARGET_FAST}x",
                         "verdict": verdict(value, TARGET_FAST)})
    return rows


# ---------------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arch_arg(parser)
    add_common_args(parser)
    parser.add_argument("--rounds", type=int, default=None, help="rounds; each gives one ratio per variant "
                        "(default 5, --quick 2)")
    parser.add_argument("--steps", type=int, default=0,
                        help="timed steps per variant and round; 0 sizes them to --seconds of the plain loop")
    parser.add_argument("--seconds", type=float, default=None,
                        help="with --steps 0: about this many seconds per variant and round (default 3, --quick 0.3)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per variant at the start of each round (default 2, --quick 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipes' batch sizes")
    parser.add_argument("--interleave", choices=("auto", "block", "step"), default="auto",
                        help="alternate the variants every single step, or every block of steps; "
                             "auto: step on the CPU, block on CUDA")
    parser.add_argument("--fast", default=None,
                        help="fast-path candidates of the trainer, comma-separated, each options joined by +: "
                             "cl (channels_last), bf16 (autocast), compile; none for no candidates "
                             "(default cl,cl+bf16; --quick cl)")
    parser.add_argument("--compile", action="store_true",
                        help="add the candidate cl+compile (torch.compile has a long warm-up)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds if args.rounds is not None else (2 if quick else 5)
    args.seconds = args.seconds if args.seconds is not None else (0.3 if quick else 3.0)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    check_args(parser, args, positive=("rounds",), non_negative=("steps", "warmup"))
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    try:
        args.fast = parse_fast(args.fast if args.fast is not None else ("cl" if quick else "cl,cl+bf16"),
                               args.compile)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every architecture in `args.arch`; the section's result (see run_all.py)."""
    device = setup_device(args)
    t_start = time.perf_counter()
    result = result_header("train_speed", device, {
        "architectures": args.arch, "rounds": args.rounds, "steps": args.steps, "seconds": args.seconds,
        "warmup": args.warmup, "batch_size": args.batch_size, "fast": args.fast, "quick": args.quick})
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
          f"load average {result['load_average_before']}")
    result["peaks"] = measure_peaks(device, args.quick)
    p = result["peaks"]
    print(f"peak fp32: matmul {p['matmul_gflops']:.0f} GFLOP/s, conv {p['conv_gflops']:.0f} GFLOP/s "
          f"({p['conv_memory_format']})")
    result["architectures"] = []
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        for name in args.arch:
            try:
                result["architectures"].append(bench_architecture(name, args, device, Path(tmp)))
            except Exception as exc:  # one broken architecture must not lose the others' figures
                message = f"{type(exc).__name__}: {exc}"
                print(f"  {name} failed: {message}", file=sys.stderr)
                result["architectures"].append({"architecture": name, "error": message})
    finish(result, args.json, t_start)
    return result


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    print()
    print(markdown(result))
    ok = [a for a in result["architectures"] if "ratio_to_plain" in a]
    if ok:
        print(f"\nmedian over architectures of trainer / plain: "
              f"{statistics.median(a['ratio_to_plain']['trainer']['median'] for a in ok):.2f}x")
    return 1 if any("error" in a for a in result["architectures"]) else 0


if __name__ == "__main__":
    sys.exit(main())

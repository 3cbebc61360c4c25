"""Peak memory of training: the ganzoo trainer against the plain hand-written loop, per architecture.

Every measurement runs in a fresh Python process that loads the data and builds the model (as in
train_speed.py), records its memory, then builds the trainer (or the plain loop) and trains a few steps. The
figure is the growth of the peak over that starting point: on the CPU the peak resident set size (VmHWM, reset
through /proc/self/clear_refs after set-up, so start-up transients do not count), on CUDA
`torch.cuda.max_memory_allocated`. It covers what training adds: optimiser state, gradients, activations, the
trainer's EMA copy of G and its other buffers, and on the CPU the allocator's caching of all of these (on CUDA
the caching allocator's reserve is not counted).

    .venv/bin/python benchmarks/memory.py                   # all architectures, 3 runs each, about 2 minutes
    .venv/bin/python benchmarks/memory.py --device cuda
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import (
    SEED,
    PlainLoop,
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
    verdict,
)

TARGET = 1.2  # trainer peak growth / plain loop peak growth, at most
VARIANTS = ("trainer", "plain")
_RESULT_PREFIX = "MEMORY-RESULT "


# ---------------------------------------------------------------------------------------------------------------------
# the child process
# ---------------------------------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Set the peak RSS to the current RSS (Linux 4.0+); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure_child(name: str, variant: str, steps: int, device: torch.device) -> dict[str, Any]:
    """Build, train `steps` steps, and return the memory figures in MiB."""
    setup = make_setup(name)
    gc.collect()
    out: dict[str, Any] = {"architecture": name, "variant": variant, "steps": steps}
    if device.type == "cuda":
        # the weights and the data on the GPU before the starting point, as they are in memory on the CPU
        setup.model.to(device)
        setup.dataset.images = setup.dataset.images.to(device)
        if setup.dataset.labels is not None:
            setup.dataset.labels = setup.dataset.labels.to(device)
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        out["peak_reset"] = _reset_peak_rss()
        rss = _status_kib("VmRSS")
        base_kib = rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        base = base_kib * 1024
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-mem-") as tmp:
        if variant == "trainer":
            step = make_trainer(setup, setup.model, device, Path(tmp)).train_step
        else:  # the model's own modules: no copy, so both variants start from the same memory
            assert setup.model.discriminator is not None
            step = PlainLoop(setup.model.generator, setup.model.discriminator, setup.dataset, setup.recipe,
                             device).step
        torch.manual_seed(SEED)
        for _ in range(steps):
            step()
        synchronize(device)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            now = torch.cuda.memory_allocated(device)
        else:
            hwm = _status_kib("VmHWM") if out["peak_reset"] else None
            peak = (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
            now = (_status_kib("VmRSS") or 0) * 1024
    mib = 1024 ** 2
    out.update({"base_mib": round(base / mib, 1), "peak_growth_mib": round((peak - base) / mib, 1),
                "end_growth_mib": round((now - base) / mib, 1)})
    return out


def run_child(name: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--arch", name, "--variant", variant,
            "--steps", str(args.steps), "--device", args.device, "--threads", str(args.threads)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"measuring {name} {variant} failed (exit {proc.returncode}): {tail}")
    return json.loads(lines[-1][len(_RESULT_PREFIX):])


# ---------------------------------------------------------------------------------------------------------------------
# the parent
# ---------------------------------------------------------------------------------------------------------------------


def bench_architecture(name: str, args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for r in range(args.repeats):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            runs[variant].append(run_child(name, variant, args))
    growth = {v: statistics.median(x["peak_growth_mib"] for x in runs[v]) for v in VARIANTS}
    result = {"architecture": name, "steps": args.steps, "repeats": args.repeats,
              "base_mib": {v: statistics.median(x["base_mib"] for x in runs[v]) for v in VARIANTS},
              "peak_growth_mib": growth,
              "end_growth_mib": {v: statistics.median(x["end_growth_mib"] for x in runs[v]) for v in VARIANTS},
              "runs": runs,
              "ratio": round(growth["trainer"] / growth["plain"], 3) if growth["plain"] > 0 else None}
    ratio = f"{result['ratio']:.2f}x" if result["ratio"] is not None else "-"
    print(f"  {name}: peak growth trainer {growth['trainer']:.1f} MiB, plain loop {growth['plain']:.1f} MiB, "
          f"ratio {ratio} [target <= {TARGET}]", flush=True)
    return result


def markdown(result: dict[str, Any]) -> str:
    cuda = result["machine"]["device"].startswith("cuda")
    what = ("torch.cuda.max_memory_allocated" if cuda else "peak resident set size (VmHWM)")
    rows = []
    for a in result["architectures"]:
        if "error" in a:
            rows.append([a["architecture"], "-", "-", a["error"], "", ""])
            continue
        g = a["peak_growth_mib"]
        ratio = a["ratio"]
        rows.append([a["architecture"], f"{g['plain']:.1f}", f"{g['trainer']:.1f}",
                     f"{ratio:.2f}x" if ratio is not None else "-", f"<= {TARGET}",
                     verdict(ratio, TARGET, higher_is_better=False)])
    settings = result["settings"]
    return (f"Growth of the {what} over the process after loading the data and building the model, during "
            f"{settings['steps']} training steps; median of {settings['repeats']} fresh processes per variant.\n\n"
            + md_table(["architecture", "plain loop MiB", "trainer MiB", "trainer / plain", "target", ""], rows))


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    ok = [a for a in result["architectures"] if a.get("ratio") is not None]
    if not ok:
        return []
    worst = max(ok, key=lambda a: a["ratio"])
    return [{"what": f"peak memory: trainer / plain loop (highest: {worst['architecture']})",
             "value": f"{worst['ratio']:.2f}x", "target": f"<= {TARGET}x",
             "verdict": verdict(worst["ratio"], TARGET, higher_is_better=False)}]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arch_arg(parser)
    add_common_args(parser)
    parser.add_argument("--steps", type=int, default=None, help="training steps per process (default 10, --quick 2)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="processes per variant and architecture (default 3, --quick 1)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, default="trainer", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = args.steps if args.steps is not None else (2 if args.quick else 10)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    check_args(parser, args, positive=("steps", "repeats"))
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every architecture in `args.arch`, each in fresh processes; the section's result (see run_all.py)."""
    device = setup_device(args)
    t_start = time.perf_counter()
    result = result_header("memory", device, {"architectures": args.arch, "steps": args.steps,
                                              "repeats": args.repeats, "quick": args.quick})
    print(f"torch {torch.__version__}, device {device}; {args.repeats} process(es) per variant, {args.steps} steps")
    result["architectures"] = []
    for name in args.arch:
        try:
            result["architectures"].append(bench_architecture(name, args))
        except Exception as exc:  # one broken architecture must not lose the others' figures
            print(f"  {name} failed: {exc}", file=sys.stderr)
            result["architectures"].append({"architecture": name, "error": str(exc)})
    finish(result, args.json, t_start)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        if len(args.arch) != 1:
            raise SystemExit("--child measures one architecture")
        device = setup_device(args)
        print(_RESULT_PREFIX + json.dumps(measure_child(args.arch[0], args.variant, args.steps, device)), flush=True)
        return 0
    result = run(args)
    print()
    print(markdown(result))
    return 1 if any("error" in a for a in result["architectures"]) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Streamed against in-memory data: training speed of DCGAN at 64 px, and peak memory as the dataset grows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/streaming.py --threads 1          # 20,000 images; 5,000 vs 50,000
    .venv/bin/python benchmarks/streaming.py --quick                                 # smoke run, tiny sizes
    .venv/bin/python benchmarks/streaming.py --device cuda --json /tmp/streaming.json

Images: `--images` (default 50,000) generated 64-px RGB PNGs (a coloured disc on a graded background, each image
different), written once to `--folder` (default $TMPDIR/ganzoo-bench-streaming) and reused by later runs; folders
of the first N files (hard links) give the smaller datasets.

Speed: DCGAN's default config at 64 px and its default recipe (batch 64), trained by two `Trainer`s from the same
initial weights in one process, in alternating rounds (A B, B A, ...; each variant `--steps` steps a round after
`--warmup` untimed ones): one on the `--speed-images` (default 20,000) folder held in memory (`ganzoo train --data
FOLDER`), one on the same folder streamed (`--data stream:FOLDER`: DataLoader worker processes decode the batches
ahead). The figure is the median over rounds of streamed / in-memory images per second (target >= 0.8).

Memory: peak resident set size of a fresh process that opens the data, builds the trainer and trains `--mem-steps`
steps, for each variant at `--small` (5,000) and `--large` (50,000) images; a streamed run's figure adds the largest
peak of its decoding workers. Target: streaming is flat, its peak at 50,000 images at most 1.1 times that at 5,000.
Results go to `--out` (default benchmarks/streaming/) as RESULTS.json and RESULTS.md, with the machine named.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    SEED,
    Variant,
    add_common_args,
    check_args,
    finish,
    fmt_ratio,
    md_table,
    rate_summary,
    ratio_summary,
    result_header,
    run_rounds,
    setup_device,
    synchronize,
    verdict,
)

from ganzoo._io import write_text
from ganzoo.data import open_dataset
from ganzoo.model import build_model
from ganzoo.registry import get_architecture
from ganzoo.trainer.loop import RunOptions, Trainer

SPEED_TARGET = 0.8  # streamed / in-memory images per second, at least
FLAT_TARGET = 1.1  # streamed peak memory at the large size / at the small size, at most
SIZE = 64
_RESULT_PREFIX = "STREAMING-RESULT "


# ---------------------------------------------------------------------------------------------------------------------
# the images
# ---------------------------------------------------------------------------------------------------------------------


def generate(folder: Path, count: int, size: int = SIZE) -> Path:
    """`count` different size-px RGB PNGs in `folder`/all (kept between runs; only the missing ones are written)."""
    from PIL import Image

    target = folder / "all"
    target.mkdir(parents=True, exist_ok=True)
    have = {p.name for p in target.iterdir()}
    missing = [i for i in range(count) if f"{i:06d}.png" not in have]
    if missing:
        print(f"generating {len(missing)} {size}-px images in {target} ...", flush=True)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in missing:
        rng = np.random.default_rng(i)
        image = np.empty((size, size, 3), np.uint8)
        image[:] = (rng.integers(0, 200, 3) + yy[..., None] * 56 // size).clip(0, 255)
        cy, cx = rng.integers(0, size, 2)
        radius = rng.integers(size // 8, size // 2)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2] = rng.integers(0, 256, 3)
        Image.fromarray(image).save(target / f".{i:06d}.png.tmp", format="png", compress_level=1)
        os.replace(target / f".{i:06d}.png.tmp", target / f"{i:06d}.png")
    return target


def subset(folder: Path, count: int) -> Path:
    """A folder holding hard links to the first `count` generated images."""
    out = folder / f"first-{count}"
    out.mkdir(exist_ok=True)
    have = {p.name for p in out.iterdir()}
    for i in range(count):
        name = f"{i:06d}.png"
        if name not in have:
            os.link(folder / "all" / name, out / name)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# trainers
# ---------------------------------------------------------------------------------------------------------------------


def build_trainer(spec: str, device: torch.device, out: Path, workers: int | None,
                  model: Any = None) -> tuple[Trainer, Any]:
    """A DCGAN trainer at 64 px on `spec`, built as `ganzoo.train` builds it (the same initial weights each time)."""
    arch = get_architecture("dcgan")
    cfg = arch.make_config(None, channels=3, img_size=SIZE)
    recipe = arch.make_recipe(None)
    dataset = open_dataset(spec, img_size=SIZE, channels=3)
    if model is None:
        torch.manual_seed(SEED)
        model = build_model(arch.name, cfg)
    options = RunOptions(data=spec, seed=SEED, device=str(device), data_workers=workers)
    return Trainer(copy.deepcopy(model), recipe, dataset, options, out), model


def bench_speed(folder: Path, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-stream-") as tmp:
        t0 = time.perf_counter()
        memory, model = build_trainer(str(folder), device, Path(tmp) / "memory", args.workers)
        load_s = time.perf_counter() - t0
        streamed, _ = build_trainer(f"stream:{folder}", device, Path(tmp) / "stream", args.workers, model)
        batch = memory.recipe.batch_size * memory.recipe.d_steps
        variants = [Variant("memory", "in memory", memory.train_step, batch),
                    Variant("stream", "streamed", streamed.train_step, batch)]
        torch.manual_seed(SEED)
        print(f"speed: dcgan {SIZE}px, batch {batch}, {len(memory.batches.images)} images (loaded into memory in "
              f"{load_s:.1f} s); {args.rounds} rounds x {args.steps} steps (+{args.warmup}), "
              f"{streamed.batches.workers} decoding worker(s)", flush=True)
        ratios = run_rounds(variants, args.rounds, args.steps, args.warmup, "block", device, "memory")
        streamed.release()
    out = {"images": len(memory.batches.images), "batch_size": batch, "workers": streamed.batches.workers,
           "load_into_memory_s": round(load_s, 1), "memory": rate_summary(variants[0]),
           "stream": rate_summary(variants[1]), "ratio": ratio_summary(ratios["stream"])}
    print(f"  streamed / in memory: {fmt_ratio(out['ratio'])} [target >= {SPEED_TARGET}]", flush=True)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# memory, each figure in a fresh process
# ---------------------------------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text(encoding="utf-8")
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _private_kib(pid: int) -> int:
    """Memory a process holds alone (private clean + dirty pages, its USS): what a forked worker added."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8")
    except OSError:
        return 0
    return sum(int(m) for m in re.findall(r"^Private_(?:Clean|Dirty):\s+(\d+) kB", text, re.MULTILINE))


def _child_pids() -> list[int]:
    """Processes whose parent is this one (the DataLoader's decoding workers)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="ascii")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry.name))
    return found


def measure_child(spec: str, steps: int, workers: int | None, device: torch.device) -> dict[str, Any]:
    """Open the data, build the trainer, train `steps` steps: this process's peak RSS and its workers' private
    memory at the end (MiB; forked workers share the parent's pages, so their RSS would count those again)."""
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-stream-mem-") as tmp:
        t0 = time.perf_counter()
        trainer, _ = build_trainer(spec, device, Path(tmp), workers)
        torch.manual_seed(SEED)
        for _ in range(steps):
            trainer.train_step()
        synchronize(device)
        workers_kib = sum(_private_kib(pid) for pid in _child_pids())
        trainer.release()
        seconds = time.perf_counter() - t0
    main_kib = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mib = 1024
    return {"spec": spec, "steps": steps, "seconds": round(seconds, 1), "peak_mib": round(main_kib / mib, 1),
            "workers_private_mib": round(workers_kib / mib, 1),
            "total_mib": round((main_kib + workers_kib) / mib, 1)}


def run_child(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", spec, "--mem-steps", str(args.mem_steps),
            "--device", args.device, "--threads", str(args.threads)]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"measuring {spec} failed (exit {proc.returncode}): {tail}")
    return json.loads(lines[-1][len(_RESULT_PREFIX):])


def bench_memory(folders: dict[int, Path], args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, dict[int, dict[str, Any]]] = {v: {} for v in args.memory_variants}
    for count, folder in folders.items():
        for variant in args.memory_variants:
            spec = f"stream:{folder}" if variant == "stream" else str(folder)
            runs[variant][count] = run_child(spec, args)
            r = runs[variant][count]
            print(f"  memory: {variant:<6} {count:>6} images: peak {r['peak_mib']:.0f} MiB "
                  f"(+ workers {r['workers_private_mib']:.0f} MiB) in {r['seconds']:.0f} s", flush=True)
    small, large = min(folders), max(folders)
    growth = {v: round(runs[v][large]["total_mib"] / runs[v][small]["total_mib"], 3) for v in runs}
    shown = ", ".join(f"{v} {g:.2f}x" for v, g in growth.items())
    print(f"  peak at {large} / at {small} images: {shown} [target: stream <= {FLAT_TARGET}]", flush=True)
    return {"small": small, "large": large, "steps": args.mem_steps, "runs": {v: {str(k): x for k, x in r.items()}
                                                                              for v, r in runs.items()},
            "growth": growth}


# ---------------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = ["# Streamed against in-memory data\n",
             f"Measured {result['date']} on {m.get('cpu_model', m['processor'])} ({m['cpu_count']} cores, "
             f"{m.get('memory_gib', '?')} GiB{', ' + m['gpu'] if 'gpu' in m else ''}), device {m['device']}, "
             f"{m['torch_threads']} torch thread(s); ganzoo {result['ganzoo_version']}, torch "
             f"{result['torch_version']}; load average {result['load_average_before']} before, "
             f"{result.get('load_average_after')} after.\n"]
    s = result.get("speed")
    if s is None:
        lines.append("Speed: not measured in this run (--skip-speed).\n")
    else:
        lines += _speed_lines(s, result)
    lines += _memory_lines(result["memory"])
    return "\n".join(lines)


def _speed_lines(s: dict[str, Any], result: dict[str, Any]) -> list[str]:
    lines = []
    lines.append(f"Speed: DCGAN 64 px (default config and recipe, batch {s['batch_size']}) on {s['images']:,} "
                 f"generated images, median img/s over {result['settings']['rounds']} alternating rounds of "
                 f"{result['settings']['steps']} steps; {s['workers']} decoding worker process(es). Loading the "
                 f"folder into memory took {s['load_into_memory_s']} s before training could start.\n")
    lines.append(md_table(["variant", "img/s", "range", "CPU use"], [
        ["in memory", s["memory"]["median"], f"{s['memory']['min']}-{s['memory']['max']}", s["memory"]["cpu_util"]],
        ["streamed", s["stream"]["median"], f"{s['stream']['min']}-{s['stream']['max']}", s["stream"]["cpu_util"]],
    ]))
    lines.append(f"\nstreamed / in memory: **{fmt_ratio(s['ratio'])}** (target >= {SPEED_TARGET}: "
                 f"{verdict(s['ratio']['median'], SPEED_TARGET)})\n")
    return lines


def _memory_lines(mem: dict[str, Any]) -> list[str]:
    lines, rows = [], []
    for variant, label in (("memory", "in memory"), ("stream", "streamed")):
        if variant not in mem["runs"]:
            continue
        r = mem["runs"][variant]
        small, large = r[str(mem["small"])], r[str(mem["large"])]
        rows.append([label, small["peak_mib"], small["workers_private_mib"], large["peak_mib"],
                     large["workers_private_mib"], f"{mem['growth'][variant]:.2f}x"])
    lines.append(f"Peak resident memory (MiB) of a fresh process that opens the data and trains {mem['steps']} "
                 "steps, and the private memory of its decoding workers after those steps (forked workers share "
                 "the parent's pages; what they hold alone is what they add):\n")
    lines.append(md_table(["variant", f"{mem['small']:,}: process", "workers", f"{mem['large']:,}: process",
                           "workers", "total large / small"], rows))
    lines.append(f"\nstreamed, {mem['large']:,} / {mem['small']:,} images: **{mem['growth']['stream']:.2f}x** "
                 f"(target <= {FLAT_TARGET}: {verdict(mem['growth']['stream'], FLAT_TARGET, False)})\n")
    return lines


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    growth = result["memory"]["growth"]["stream"]
    out = [{"what": "streamed peak memory, large / small dataset", "value": f"{growth:.2f}x",
            "target": f"<= {FLAT_TARGET}x", "verdict": verdict(growth, FLAT_TARGET, higher_is_better=False)}]
    if "speed" in result:
        ratio = result["speed"]["ratio"]["median"]
        out.insert(0, {"what": "streamed / in-memory img/s, dcgan 64 px", "value": f"{ratio:.2f}x",
                       "target": f">= {SPEED_TARGET}x", "verdict": verdict(ratio, SPEED_TARGET)})
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "ganzoo-bench-streaming",
                        help="where the generated images are kept between runs")
    parser.add_argument("--speed-images", type=int, default=None, help="images for the speed test (default 20000)")
    parser.add_argument("--small", type=int, default=None, help="small dataset of the memory test (default 5000)")
    parser.add_argument("--large", type=int, default=None, help="large dataset of the memory test (default 50000)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 4, --quick 2)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant and round (default 6)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant before each round")
    parser.add_argument("--mem-steps", type=int, default=3, help="training steps of each memory process")
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default: ganzoo's)")
    parser.add_argument("--memory-variants", default="stream,memory",
                        help="variants of the memory test; in memory, 50,000 images take 50,000 x 12 KiB more and "
                             "the decoding minutes")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "streaming", help="folder for RESULTS.{json,md}")
    parser.add_argument("--skip-speed", action="store_true", help="measure memory only")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.speed_images = args.speed_images or (1000 if quick else 20_000)
    args.small = args.small or (500 if quick else 5_000)
    args.large = args.large or (2000 if quick else 50_000)
    args.rounds = args.rounds or (2 if quick else 4)
    args.steps = args.steps or (2 if quick else 6)
    if quick and args.out == RESULTS_DIR / "streaming":
        args.out = Path(tempfile.gettempdir()) / "ganzoo-benchmarks-quick" / "streaming"
    check_args(parser, args, positive=("speed_images", "small", "large", "rounds", "steps", "mem_steps"),
               non_negative=("warmup",))
    args.memory_variants = [v.strip() for v in args.memory_variants.split(",") if v.strip()]
    if "stream" not in args.memory_variants or not set(args.memory_variants) <= {"stream", "memory"}:
        parser.error("--memory-variants: stream, optionally with memory")
    if args.small >= args.large:
        parser.error("--small must be smaller than --large")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the images (once), measure speed and memory; the section's result."""
    device = setup_device(args)
    t_start = time.perf_counter()
    result = result_header("streaming", device, {k: (str(v) if isinstance(v, Path) else v) for k, v in
                                                 vars(args).items() if k not in ("child", "json")})
    generate(args.folder, max(args.speed_images, args.large))
    if not args.skip_speed:
        result["speed"] = bench_speed(subset(args.folder, args.speed_images), args, device)
    result["memory"] = bench_memory({n: subset(args.folder, n) for n in (args.small, args.large)}, args)
    finish(result, args.json, t_start)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "RESULTS.json", json.dumps(result, indent=2) + "\n")
    write_text(args.out / "RESULTS.md", markdown(result))
    print(f"results written to {args.out}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        device = setup_device(args)
        print(_RESULT_PREFIX + json.dumps(measure_child(args.child, args.mem_steps, args.workers, device)), flush=True)
        return 0
    result = run(args)
    print()
    print(markdown(result))
    return 0 if all(s["verdict"] == "pass" for s in summary(result)) else 1


if __name__ == "__main__":
    sys.exit(main())

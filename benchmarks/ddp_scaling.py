"""Distributed data-parallel scaling: images/s of 2 processes against 1 on the same model and global batch.

On the CPU three set-ups train the same architecture on the same global batch with the shared trainer:

- `1 proc x 1 thread`: one process, `torch.set_num_threads(1)`;
- `1 proc x 2 threads`: one process using two cores through intra-op threads;
- `2 procs x 1 thread`: two processes joined over gloo (`ganzoo.trainer.distributed`), each training on half of
  every batch, gradients averaged before every optimiser step.

With `--device cuda` (two GPUs or more) the set-ups are `1 GPU` and `2 GPUs` (NCCL).

Each set-up runs in fresh processes started by this script (the set-ups take turns, `--repeats` times); each
launch does untimed warm-up steps and then `--rounds` timed rounds of `--steps` calls of `Trainer.train_step()`,
with the processes meeting at a barrier before and after each round. Reported: the median images/s of every
set-up and the ratios of the medians. A section of `run_all.py`; no target (the issue asks for the figure).

    .venv/bin/python benchmarks/ddp_scaling.py                  # dcgan 32x32, batch 64: a few minutes
    .venv/bin/python benchmarks/ddp_scaling.py --quick          # smoke run, figures mean little
    .venv/bin/python benchmarks/ddp_scaling.py --arch wgan --json results/ddp.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SETUPS = {  # name: (processes, threads per process)
    "1 proc x 1 thread": (1, 1),
    "1 proc x 2 threads": (1, 2),
    "2 procs x 1 thread": (2, 1),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ---------------------------------------------------------------------------------------------------------------------
# worker: one process of one set-up
# ---------------------------------------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ganzoo.data import load_dataset
    from ganzoo.model import build_model
    from ganzoo.registry import get_architecture
    from ganzoo.trainer.distributed import World
    from ganzoo.trainer.loop import RunOptions, Trainer

    world = World.from_env()
    arch = get_architecture(args.arch)
    cfg = arch.make_config(None, img_size=args.img_size, channels=1)
    recipe = arch.make_recipe(None, batch_size=args.batch_size)
    dataset = load_dataset("mnist-5k", img_size=cfg.img_size, channels=1)
    torch.manual_seed(0)
    model = build_model(arch.name, cfg)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model, recipe, dataset, RunOptions(device=args.device), Path(out),
                          hooks=arch.hooks(cfg, recipe), world=world)
        torch.manual_seed(0)
        for _ in range(args.warmup):
            trainer.train_step()

        def settle() -> None:
            """Every process's queued GPU work done, then all processes at the same point."""
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
            if world is not None:
                world.barrier()

        times = []
        for _ in range(args.rounds):
            settle()
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step()
            settle()
            times.append((time.perf_counter() - t0, time.process_time() - cpu0))
    if world is not None:
        world.close()
    if world is None or world.is_main:
        print(json.dumps({"times": times, "images_per_step": recipe.batch_size * recipe.d_steps}), flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------------------------------


def launch(setup: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start the processes of one set-up; return rank 0's report."""
    procs, threads = setups(args.device)[setup]
    command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--arch", args.arch,
               "--batch-size", str(args.batch_size), "--img-size", str(args.img_size), "--rounds", str(args.rounds),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device]
    port = _free_port()
    running = []
    for rank in range(procs):
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(name, None)
        if procs > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(procs), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port))
        running.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate() for p in running]
    for p, (_, err) in zip(running, outputs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"the {setup} run failed (exit code {p.returncode}): {err.strip().splitlines()[-1:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def setups(device: str) -> dict[str, tuple[int, int]]:
    """name: (processes, threads per process); on CUDA every process has its own GPU and half the CPU cores."""
    if device == "cuda":
        return {"1 GPU": (1, 0), "2 GPUs": (2, max(1, (os.cpu_count() or 2) // 2))}
    return SETUPS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="dcgan", help="architecture (see `ganzoo list`)")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size (even)")
    parser.add_argument("--img-size", type=int, default=32, help="image size")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per launch (default 4, --quick 2)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per round (default 10, --quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per launch (default 3, --quick 1)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="launches per set-up, set-ups taking turns (default 2, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 launch, 2 rounds of 3 steps")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="cpu: processes over gloo; cuda: one GPU per process over NCCL (needs 2 GPUs)")
    parser.add_argument("--threads", type=int, default=0,
                        help="ignored: the set-ups fix their own threads (accepted for run_all.py)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, default, quick in (("rounds", 4, 2), ("steps", 10, 3), ("warmup", 3, 1), ("repeats", 2, 1)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else default)
    for name in ("batch_size", "img_size", "rounds", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.batch_size % 2:
        parser.error(f"--batch-size {args.batch_size} does not split over 2 processes; use an even batch size")
    if args.worker:
        return args
    import torch

    import ganzoo

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.device_count() >= 2 else "cpu"
    if args.device == "cuda" and torch.cuda.device_count() < 2:
        parser.error(f"--device cuda needs 2 GPUs, found {torch.cuda.device_count()}; use --device cpu")
    if args.arch not in ganzoo.list_models():
        parser.error(f"unknown architecture {args.arch!r}; known: {', '.join(ganzoo.list_models())}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Launch every set-up in turns; the section's result (see run_all.py)."""
    import torch

    import ganzoo

    names = setups(args.device)
    print(f"ganzoo {ganzoo.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, device {args.device}; "
          f"{args.arch} {args.img_size}x{args.img_size}, global batch {args.batch_size}, mnist-5k; {args.repeats} "
          f"launches x {args.rounds} rounds x {args.steps} steps (+{args.warmup} warm-up) per set-up")
    load_before = _load()
    print(f"load average before: {load_before}")
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu_use: dict[str, list[float]] = {name: [] for name in names}
    started = time.perf_counter()
    order = list(names)
    for repeat in range(args.repeats):
        for setup in order[repeat % len(order):] + order[:repeat % len(order)]:
            report = launch(setup, args)
            per_step = report["images_per_step"]
            for wall, cpu in report["times"]:
                rates[setup].append(per_step * args.steps / wall)
                cpu_use[setup].append(cpu / wall)
            shown = ", ".join(f"{r:.1f}" for r in rates[setup][-args.rounds:])
            print(f"launch {repeat + 1}/{args.repeats} {setup:<20} img/s per round: {shown}", flush=True)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    two = medians[order[-1]]
    ratios = {f"{order[-1]} / {name}": two / medians[name] for name in order[:-1]}
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    result = {
        "benchmark": "ddp_scaling", "date": date, "ganzoo": ganzoo.__version__, "torch": torch.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": _load(),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "threads", "json")},
        "img_per_s": rates, "median_img_per_s": medians,
        "rounds_range": {n: [min(v), max(v)] for n, v in rates.items()},
        "cpu_use_rank0": {n: statistics.median(v) for n, v in cpu_use.items()}, "ratios": ratios}
    if args.json is not None:
        from ganzoo._io import write_json

        write_json(args.json, result)
        print(f"wrote {args.json}")
    return result


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    rows = [f"| {name} | {value:.1f} | {result['rounds_range'][name][0]:.1f}-{result['rounds_range'][name][1]:.1f} | "
            f"{result['cpu_use_rank0'][name]:.2f} |" for name, value in result["median_img_per_s"].items()]
    ratios = "; ".join(f"{name}: **{value:.2f}x**" for name, value in result["ratios"].items())
    return (f"{s['arch']} {s['img_size']}x{s['img_size']}, global batch {s['batch_size']}; {s['repeats']} launches x "
            f"{s['rounds']} rounds x {s['steps']} steps per set-up, in fresh processes taking turns.\n\n"
            "| set-up | median img/s | range | CPU use of rank 0 |\n| --- | --- | --- | --- |\n"
            + "\n".join(rows) + f"\n\nRatios of the medians: {ratios}.")


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """No target: the scaling figure is reported."""
    return []


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    result = run(args)
    print(f"median img/s over {args.repeats * args.rounds} rounds ({result['elapsed_s']:.0f} s):")
    for name, value in result["median_img_per_s"].items():
        print(f"  {name:<20} {value:8.1f}   (min {min(result['img_per_s'][name]):.1f}, max "
              f"{max(result['img_per_s'][name]):.1f}; CPU use of rank 0 {result['cpu_use_rank0'][name]:.2f})")
    print(f"load average after: {result['load_average_after']}")
    for name, value in result["ratios"].items():
        print(f"ratio {name}: {value:.2f}x")


if __name__ == "__main__":
    main()

"""Distributed data-parallel scaling on the CPU: images/s of 2 processes (1 thread each) against 1 process.

Three set-ups train the same architecture on the same global batch with the shared trainer:

- `1 proc x 1 thread`: one process, `torch.set_num_threads(1)`;
- `1 proc x 2 threads`: one process using both cores through intra-op threads;
- `2 procs x 1 thread`: two processes joined over gloo (`ganzoo.trainer.distributed`), each training on half of
  every batch, gradients averaged before every optimiser step.

Each set-up runs in fresh processes started by this script (the set-ups take turns, `--repeats` times); each
launch does untimed warm-up steps and then `--rounds` timed rounds of `--steps` calls of `Trainer.train_step()`,
with the processes meeting at a barrier before and after each round. The script prints the median images/s of
every set-up and the ratios of the medians.

    .venv/bin/python benchmarks/ddp_scaling.py                  # dcgan 32x32, batch 64: a few minutes
    .venv/bin/python benchmarks/ddp_scaling.py --quick          # smoke run, figures mean little
    .venv/bin/python benchmarks/ddp_scaling.py --arch wgan --batch-size 64 --json results/ddp.json
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

    torch.set_num_threads(args.threads)
    from ganzoo.data import load_dataset
    from ganzoo.registry import get_architecture
    from ganzoo.serialization import build_model
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
        trainer = Trainer(model, recipe, dataset, RunOptions(device="cpu"), Path(out), hooks=arch.hooks(cfg, recipe),
                          world=world)
        torch.manual_seed(0)
        for _ in range(args.warmup):
            trainer.train_step()
        times = []
        for _ in range(args.rounds):
            if world is not None:
                world.barrier()
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step()
            if world is not None:
                world.barrier()
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
    procs, threads = SETUPS[setup]
    command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--arch", args.arch,
               "--batch-size", str(args.batch_size), "--img-size", str(args.img_size), "--rounds", str(args.rounds),
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    port = _free_port()
    running = []
    for rank in range(procs):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(name, None)
        if procs > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(procs), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port))
        running.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate() for p in running]
    for p, (_, err) in zip(running, outputs, strict=True):
        if p.returncode != 0:
            sys.exit(f"error: the {setup} run failed (exit code {p.returncode}): {err.strip().splitlines()[-1:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="dcgan", help="architecture (see `ganzoo list`)")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size (even)")
    parser.add_argument("--img-size", type=int, default=32, help="image size")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds per launch")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per launch")
    parser.add_argument("--repeats", type=int, default=2, help="launches per set-up (set-ups take turns)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 launch, 2 rounds of 3 steps")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("batch_size", "img_size", "rounds", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.batch_size % 2:
        parser.error(f"--batch-size {args.batch_size} does not split over 2 processes; use an even batch size")
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.rounds, args.steps, args.warmup, args.repeats = 2, 3, 1, 1

    import torch

    import ganzoo

    if args.arch not in ganzoo.list_models():
        parser.error(f"unknown architecture {args.arch!r}; known: {', '.join(ganzoo.list_models())}")
    print(f"ganzoo {ganzoo.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs; {args.arch} "
          f"{args.img_size}x{args.img_size}, global batch {args.batch_size}, mnist-5k; {args.repeats} launches x "
          f"{args.rounds} rounds x {args.steps} steps (+{args.warmup} warm-up) per set-up")
    load_before = _load()
    print(f"load average before: {load_before}")
    rates: dict[str, list[float]] = {name: [] for name in SETUPS}
    cpu_use: dict[str, list[float]] = {name: [] for name in SETUPS}
    started = time.perf_counter()
    order = list(SETUPS)
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
    print(f"median img/s over {args.repeats * args.rounds} rounds ({time.perf_counter() - started:.0f} s):")
    for name, value in medians.items():
        print(f"  {name:<20} {value:8.1f}   (min {min(rates[name]):.1f}, max {max(rates[name]):.1f}; "
              f"CPU use of rank 0 {statistics.median(cpu_use[name]):.2f})")
    load_after = _load()
    print(f"load average after: {load_after}")
    two = medians["2 procs x 1 thread"]
    ratios = {"2 procs / 1 proc x 1 thread": two / medians["1 proc x 1 thread"],
              "2 procs / 1 proc x 2 threads": two / medians["1 proc x 2 threads"]}
    for name, value in ratios.items():
        print(f"ratio {name}: {value:.2f}x")
    if args.json is not None:
        from ganzoo._io import write_json

        date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        write_json(args.json, {
            "benchmark": "ddp_scaling", "date": date,
            "ganzoo": ganzoo.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after,
            "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "threads", "json")},
            "img_per_s": rates, "median_img_per_s": medians, "ratios": ratios})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

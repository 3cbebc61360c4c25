"""Training speed of the ganzoo trainer against a plain hand-written PyTorch DCGAN loop.

Both variants train the same DCGAN modules (deep copies of one initialisation) on the same in-memory data, one
discriminator step and one generator step per training step, and are timed in rounds in one process. Within a
round the variants alternate step by step (on the CPU; block by block on CUDA, see --interleave), so that load from
other processes and clock drift hit them alike. Speeds are real images per second (batch size x steps / seconds);
the figure to read is the median over rounds of the per-round ratio trainer / plain loop.

    .venv/bin/python benchmarks/train_speed.py                 # about 1-2 minutes on a 2-core CPU
    .venv/bin/python benchmarks/train_speed.py --fast          # also the trainer with channels_last
    .venv/bin/python benchmarks/train_speed.py --json results/train_speed.json

See benchmarks/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.data import ImageDataset, load_dataset
from ganzoo.model import GANModel
from ganzoo.registry import get_architecture
from ganzoo.serialization import build_model
from ganzoo.trainer.loop import RunOptions, Trainer, resolve_device

ARCHITECTURE = "dcgan"
DATA = "mnist-5k"
CHANNELS = 1
SEED = 0


class PlainLoop:
    """A minimal DCGAN training loop in the style of the PyTorch DCGAN tutorial.

    Per step: a random batch of real images, one D update on real and detached fake images (two backward
    passes, as the tutorial does), then one G update that reuses the same fake batch. No EMA, no freezing of
    D's weights during G's step, no statistics read back.
    """

    def __init__(self, G: nn.Module, D: nn.Module, images: torch.Tensor, batch_size: int, z_dim: int,
                 device: torch.device, seed: int) -> None:
        self.G = G.to(device).train()
        self.D = D.to(device).train()
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.images = images.to(device)  # uint8 (N, C, H, W)
        self.batch_size = batch_size
        self.z_dim = z_dim
        self.device = device
        self.per_epoch = len(images) // batch_size
        self.perm_gen = torch.Generator().manual_seed(seed)  # its own streams: independent of the trainer's RNG
        self.z_gen = torch.Generator(device=device).manual_seed(seed + 1)
        self.perm = torch.empty(0, dtype=torch.int64)
        self.index = 0

    def real_batch(self) -> torch.Tensor:
        offset = self.index % self.per_epoch
        if offset == 0:
            self.perm = torch.randperm(len(self.images), generator=self.perm_gen).to(self.device)
        self.index += 1
        idx = self.perm[offset * self.batch_size:(offset + 1) * self.batch_size]
        return self.images[idx].float().div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]

    def step(self) -> None:
        real = self.real_batch()
        n = real.shape[0]
        ones = torch.ones(n, device=self.device)
        zeros = torch.zeros(n, device=self.device)

        # D: maximise log D(x) + log(1 - D(G(z)))
        self.D.zero_grad()
        loss_real = F.binary_cross_entropy_with_logits(self.D(real), ones)
        loss_real.backward()
        z = torch.randn(n, self.z_dim, device=self.device, generator=self.z_gen)
        fake = self.G(z)
        loss_fake = F.binary_cross_entropy_with_logits(self.D(fake.detach()), zeros)
        loss_fake.backward()
        self.opt_D.step()

        # G: maximise log D(G(z)), on the same fake batch
        self.G.zero_grad()
        loss_g = F.binary_cross_entropy_with_logits(self.D(fake), ones)
        loss_g.backward()
        self.opt_G.step()


@dataclass
class Variant:
    key: str
    label: str
    step: Callable[[], None]
    img_per_s: list[float] = field(default_factory=list)
    cpu_util: list[float] = field(default_factory=list)  # process CPU seconds per wall second while timed


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(variant: Variant, steps: int, warmup: int, batch_size: int, device: torch.device) -> None:
    """Warm up, then time `steps` calls of the variant's step; appends images/s and CPU use to the variant."""
    for _ in range(warmup):
        variant.step()
    synchronize(device)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        variant.step()
    synchronize(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    variant.img_per_s.append(batch_size * steps / wall)
    variant.cpu_util.append(cpu / wall)


def measure_interleaved(variants: list[Variant], steps: int, warmup: int, batch_size: int,
                        device: torch.device) -> None:
    """Like `measure` for every variant at once, alternating single steps (A B A B ...) and timing each one.

    Load from other processes then falls on every variant alike even when it changes within a second. On CUDA
    each step ends in a synchronisation, which hides any overlap of one step's launches with the previous step.
    """
    for _ in range(warmup):
        for variant in variants:
            variant.step()
    synchronize(device)
    wall = [0.0] * len(variants)
    cpu = [0.0] * len(variants)
    for _ in range(steps):
        for i, variant in enumerate(variants):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            variant.step()
            synchronize(device)
            wall[i] += time.perf_counter() - wall0
            cpu[i] += time.process_time() - cpu0
    for i, variant in enumerate(variants):
        variant.img_per_s.append(batch_size * steps / wall[i])
        variant.cpu_util.append(cpu[i] / wall[i])


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "device": str(device),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        if names:
            info["cpu_model"] = names[0]
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def make_trainer(model: GANModel, dataset: ImageDataset, batch_size: int, device: torch.device, out: Path,
                 channels_last: bool) -> Trainer:
    """A Trainer set up as `ganzoo.train` would: the architecture's default recipe and default RunOptions."""
    recipe = get_architecture(ARCHITECTURE).make_recipe(None, batch_size=batch_size)
    options = RunOptions(data=DATA, seed=SEED, device=str(device), channels_last=channels_last)
    return Trainer(model, recipe, dataset, options, out=out, hooks=[])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each gives one ratio per variant pair")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per variant and round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant at the start of each round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=32, choices=(28, 32, 64, 128))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default); 1 is steadier on a busy machine")
    parser.add_argument("--interleave", choices=("auto", "block", "step"), default="auto",
                        help="alternate the variants every single step, or every block of --steps steps; "
                             "auto: step on the CPU, block on CUDA")
    parser.add_argument("--fast", action="store_true", help="also time the trainer with channels_last=True")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    for name in ("rounds", "steps", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads < 0:
        parser.error("--threads must be at least 0")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    batch = args.batch_size
    if args.interleave == "auto":  # per-step synchronisation would distort a GPU's asynchronous queue
        args.interleave = "block" if device.type == "cuda" else "step"
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset = load_dataset(DATA, img_size=args.img_size, channels=CHANNELS)
    torch.manual_seed(SEED)  # as ganzoo.train does before building the model
    model = build_model(ARCHITECTURE, None, img_size=args.img_size, channels=CHANNELS)
    # copies taken before any Trainer touches the model: every variant starts from the same weights
    plain_G = copy.deepcopy(model.generator)
    plain_D = copy.deepcopy(model.discriminator)
    model_cl = copy.deepcopy(model) if args.fast else None
    assert plain_D is not None

    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        trainer = make_trainer(model, dataset, batch, device, Path(tmp) / "trainer", channels_last=False)
        plain = PlainLoop(plain_G, plain_D, trainer.batches.images, batch, model.generator.z_dim, device, SEED)
        variants = [Variant("trainer", "trainer", trainer.train_step), Variant("plain", "plain loop", plain.step)]
        if model_cl is not None:
            trainer_cl = make_trainer(model_cl, dataset, batch, device, Path(tmp) / "trainer-cl", channels_last=True)
            variants.append(Variant("trainer_channels_last", "trainer channels_last", trainer_cl.train_step))
        torch.manual_seed(SEED)  # as Trainer.run does before its first step

        load_before = load_average()
        print(f"ganzoo {ganzoo.__version__}, torch {torch.__version__}, device {device}, "
              f"{torch.get_num_threads()} threads; {ARCHITECTURE} {args.img_size}x{args.img_size}x{CHANNELS}, "
              f"batch {batch}, {DATA}; {args.rounds} rounds x {args.steps} steps (+{args.warmup} warm-up), "
              f"alternating every {'step' if args.interleave == 'step' else 'block of steps'}")
        if load_before is not None:
            print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
        t_start = time.perf_counter()
        ratios: list[float] = []
        ratios_cl: list[float] = []
        for r in range(args.rounds):
            # rotate the order each round (A B, B A, ...) so that a steady drift favours no variant
            shift = r % len(variants)
            order = variants[shift:] + variants[:shift]
            if args.interleave == "step":
                measure_interleaved(order, args.steps, args.warmup, batch, device)
            else:
                for variant in order:
                    measure(variant, args.steps, args.warmup, batch, device)
            by_key = {v.key: v.img_per_s[-1] for v in variants}
            ratios.append(by_key["trainer"] / by_key["plain"])
            parts = [f"{v.label} {v.img_per_s[-1]:7.1f} img/s" for v in variants]
            line = f"round {r + 1}/{args.rounds}: " + ", ".join(parts) + f" | trainer/plain {ratios[-1]:.3f}"
            if "trainer_channels_last" in by_key:
                ratios_cl.append(by_key["trainer_channels_last"] / by_key["plain"])
                line += f", channels_last/plain {ratios_cl[-1]:.3f}"
            print(line, flush=True)
        elapsed = time.perf_counter() - t_start
    load_after = load_average()

    medians = {v.key: statistics.median(v.img_per_s) for v in variants}
    print()
    print(f"median img/s over {args.rounds} rounds ({elapsed:.0f} s):")
    for v in variants:
        spread = f"min {min(v.img_per_s):.1f}, max {max(v.img_per_s):.1f}"
        print(f"  {v.label:<24}{medians[v.key]:8.1f}   ({spread}; CPU use {statistics.median(v.cpu_util):.2f})")
    if load_after is not None:
        print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    ratio = statistics.median(ratios)
    print(f"per-round ratios trainer/plain: {' '.join(f'{x:.3f}' for x in ratios)}")
    if ratios_cl:
        print(f"per-round ratios channels_last/plain: {' '.join(f'{x:.3f}' for x in ratios_cl)}")
        print(f"ratio (trainer channels_last / plain loop): {statistics.median(ratios_cl):.2f}x")
    print(f"ratio (trainer / plain loop): {ratio:.2f}x  [target >= 1.0]")

    if args.json is not None:
        result: dict[str, Any] = {
            "benchmark": "train_speed",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "ganzoo_version": ganzoo.__version__,
            "torch_version": torch.__version__,
            "machine": machine_info(device),
            "settings": {"architecture": ARCHITECTURE, "data": DATA, "img_size": args.img_size, "channels": CHANNELS,
                         "batch_size": batch, "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup,
                         "fast": args.fast, "interleave": args.interleave, "threads": torch.get_num_threads(),
                         "seed": SEED},
            "load_average": {"before": load_before, "after": load_after},
            "elapsed_s": round(elapsed, 1),
            "img_per_s": {v.key: [round(x, 2) for x in v.img_per_s] for v in variants},
            "cpu_util": {v.key: [round(x, 3) for x in v.cpu_util] for v in variants},
            "median_img_per_s": {k: round(x, 2) for k, x in medians.items()},
            "ratios": {"trainer/plain": [round(x, 4) for x in ratios]},
            "ratio": {"trainer/plain": round(ratio, 4)},
        }
        if ratios_cl:
            result["ratios"]["trainer_channels_last/plain"] = [round(x, 4) for x in ratios_cl]
            result["ratio"]["trainer_channels_last/plain"] = round(statistics.median(ratios_cl), 4)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

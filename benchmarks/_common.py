"""Machinery the benchmark scripts share: settings, alternating timed rounds, the plain reference loop, results.

Not a benchmark itself. The scripts in this folder import it as `_common` (Python puts a script's own folder
first on `sys.path`), so run them as files: `.venv/bin/python benchmarks/train_speed.py`.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo._io import write_json
from ganzoo.data import ImageDataset, load_dataset
from ganzoo.interfaces import ArchConfig, Architecture, Recipe
from ganzoo.model import GANModel, build_model
from ganzoo.registry import get_architecture
from ganzoo.trainer.loop import RunOptions, Trainer, resolve_device

DATA = "mnist-5k"
CHANNELS = 1
SEED = 0
RESULTS_DIR = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------------------------------
# command line and environment
# ---------------------------------------------------------------------------------------------------------------------


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every section takes: device, threads, quick mode, JSON output."""
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to run; auto is CUDA when available")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default, one per core); 1 is steadier on a busy machine")
    parser.add_argument("--quick", action="store_true",
                        help="tiny rounds for a smoke run: checks that everything works, the figures mean little")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")


def add_arch_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", "--only", dest="arch", default="all",
                        help="comma-separated architectures (see `ganzoo list`), or all")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace, positive: Sequence[str] = (),
               non_negative: Sequence[str] = ()) -> None:
    """One-line errors for counts out of range and unknown architectures."""
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in (*non_negative, "threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be at least 0")
    if hasattr(args, "arch"):
        known = ganzoo.list_models()
        if args.arch == "all":
            args.arch = known
        else:
            names = [a.strip() for a in args.arch.split(",") if a.strip()]
            unknown = [a for a in names if a not in known]
            if unknown or not names:
                parser.error(f"unknown architecture {unknown[0] if unknown else args.arch!r}; "
                             f"known: {', '.join(known)}")
            args.arch = names
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but CUDA is not available here")


def setup_device(args: argparse.Namespace) -> torch.device:
    """The device to run on; applies --threads."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return resolve_device(args.device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on."""
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
    memory = _meminfo_kib("MemTotal")
    if memory is not None:
        info["memory_gib"] = round(memory / 1024 ** 2, 1)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 1024 ** 3, 1)
    return info


def _meminfo_kib(field: str) -> int | None:
    """A field of /proc/meminfo in KiB (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name == field:
                    return int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def result_header(benchmark: str, device: torch.device, settings: dict[str, Any]) -> dict[str, Any]:
    """The common head of every section's JSON: what, when, on what, with which settings."""
    return {"benchmark": benchmark, "date": now_iso(), "ganzoo_version": ganzoo.__version__,
            "torch_version": torch.__version__, "machine": machine_info(device), "settings": settings,
            "load_average_before": load_average()}


def finish(result: dict[str, Any], path: Path | None, t_start: float) -> None:
    """Stamp the end of a section and write its JSON (atomically) when asked."""
    result["load_average_after"] = load_average()
    result["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    if path is not None:
        write_json(path, result)
        print(f"results written to {path}")


def verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    """'pass' or 'fail' against a target; '-' when there is no value."""
    if value is None:
        return "-"
    ok = value >= target if higher_is_better else value <= target
    return "pass" if ok else "fail"


# ---------------------------------------------------------------------------------------------------------------------
# alternating timed rounds
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One thing being timed: `step()` does one unit of work worth `items_per_step` items (images)."""

    key: str
    label: str
    step: Callable[[], Any]
    items_per_step: int
    rates: list[float] = field(default_factory=list)  # items per second, one per round
    cpu_util: list[float] = field(default_factory=list)  # process CPU seconds per wall second while timed

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def measure_block(variant: Variant, steps: int, warmup: int, device: torch.device) -> None:
    """Warm up, then time `steps` calls in one block; appends the rate and CPU use to the variant."""
    for _ in range(warmup):
        variant.step()
    synchronize(device)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        variant.step()
    synchronize(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    variant.rates.append(variant.items_per_step * steps / wall)
    variant.cpu_util.append(cpu / wall)


def measure_interleaved(variants: Sequence[Variant], steps: int, warmup: int, device: torch.device) -> None:
    """Every variant at once, alternating single steps (A B A B ...) and timing each one on its own.

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
        variant.rates.append(variant.items_per_step * steps / wall[i])
        variant.cpu_util.append(cpu[i] / wall[i])


def calibrate_steps(step: Callable[[], Any], device: torch.device, seconds: float, lowest: int = 2,
                    highest: int = 500) -> int:
    """How many calls of `step` take about `seconds` (timed over a few calls), within [lowest, highest]."""
    synchronize(device)
    t0 = time.perf_counter()
    calls = 0
    while calls < 3 or (time.perf_counter() - t0 < 0.2 and calls < 50):
        step()
        synchronize(device)
        calls += 1
    per_call = (time.perf_counter() - t0) / calls
    return max(lowest, min(highest, round(seconds / per_call)))


def run_rounds(variants: Sequence[Variant], rounds: int, steps: int, warmup: int, interleave: str,
               device: torch.device, reference: str, log: Callable[[str], None] = print) -> dict[str, list[float]]:
    """Time every variant once per round; returns, per variant key, its per-round ratio to `reference`.

    The order rotates every round (A B C, B C A, ...) so that a steady drift favours no variant.
    """
    ratios: dict[str, list[float]] = {v.key: [] for v in variants if v.key != reference}
    for r in range(rounds):
        shift = r % len(variants)
        order = list(variants[shift:]) + list(variants[:shift])
        if interleave == "step":
            measure_interleaved(order, steps, warmup, device)
        else:
            for variant in order:
                measure_block(variant, steps, warmup, device)
        by_key = {v.key: v.rates[-1] for v in variants}
        for key in ratios:
            ratios[key].append(by_key[key] / by_key[reference])
        parts = ", ".join(f"{v.label} {v.rates[-1]:.1f}" for v in variants)
        log(f"  round {r + 1}/{rounds}: {parts} img/s")
    return ratios


def ratio_summary(values: Sequence[float]) -> dict[str, Any]:
    """Median and range of per-round ratios, rounded for the JSON."""
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "rounds": [round(x, 4) for x in values]}


def rate_summary(variant: Variant) -> dict[str, Any]:
    return {"median": round(variant.median, 2), "min": round(min(variant.rates), 2),
            "max": round(max(variant.rates), 2), "rounds": [round(x, 2) for x in variant.rates],
            "cpu_util": round(statistics.median(variant.cpu_util), 3)}


# ---------------------------------------------------------------------------------------------------------------------
# the models under test
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """One architecture as `ganzoo.train` would build it for mnist-5k: default config, recipe and data."""

    arch: Architecture
    config: ArchConfig
    recipe: Recipe
    dataset: ImageDataset
    model: GANModel  # freshly initialised with SEED; copy it before a Trainer touches it

    @property
    def name(self) -> str:
        return self.arch.name

    @property
    def images_per_step(self) -> int:
        """Real images one training step consumes (d_steps batches)."""
        return self.recipe.batch_size * self.recipe.d_steps

    def describe(self) -> str:
        c = self.config
        return (f"{self.name} {c.img_size}x{c.img_size}x{c.channels}, batch {self.recipe.batch_size}, "
                f"{self.recipe.d_steps} D step(s), loss {self.recipe.loss}")


def make_setup(name: str, batch_size: int | None = None) -> Setup:
    """The architecture's default config at its default size for 1-channel mnist-5k, and its default recipe.

    Conditional architectures get the dataset's classes, as `ganzoo.train` gives them.
    """
    arch = get_architecture(name)
    cfg = arch.make_config(None, channels=CHANNELS)
    dataset = load_dataset(DATA, img_size=cfg.img_size, channels=CHANNELS)
    if arch.conditional and cfg.num_classes == 0:
        cfg = cfg.replace(num_classes=dataset.num_classes)
    recipe = arch.make_recipe(None, **({"batch_size": batch_size} if batch_size else {}))
    torch.manual_seed(SEED)  # as ganzoo.train does before building the model
    model = build_model(arch.name, cfg)
    return Setup(arch, cfg, recipe, dataset, model)


def make_trainer(setup: Setup, model: GANModel, device: torch.device, out: Path, hooks: bool = False,
                 **options: Any) -> Trainer:
    """A Trainer as `ganzoo.train` builds it. Without `hooks` it has no training hooks (progressive growing then
    stays at its final resolution, fully faded in: a fresh progan model is built fully grown), which is what the
    speed and memory comparisons with a plain loop need; with `hooks`, the architecture's own, as in a real run."""
    run_options = RunOptions(data=DATA, seed=SEED, device=str(device), **options)
    hook_list = setup.arch.hooks(setup.config, setup.recipe) if hooks else []
    return Trainer(model, setup.recipe, setup.dataset, run_options, out=out, hooks=hook_list)


class UnsupportedRecipe(Exception):
    """The plain loop does not implement a feature this recipe uses."""


class PlainLoop:
    """A hand-written training loop for one recipe, on its own copies of G and D.

    Per step: `d_steps` times (a random batch of real images, a fake batch from G, the recipe's D loss written
    out by hand with its regulariser, one D update, weight clipping if the recipe clips), then one G update on
    the last fake batch. The losses: binary cross-entropy on logits (non-saturating and minimax), Wasserstein,
    hinge and least squares; the regularisers: gradient penalty, lazy R1, drift, label smoothing. Optimisers as
    the recipe sets them. No EMA, D's weights are not frozen during G's step, nothing is read back or logged.
    """

    def __init__(self, G: nn.Module, D: nn.Module, dataset: ImageDataset, recipe: Recipe, device: torch.device,
                 seed: int = SEED) -> None:
        missing = [name for name, off in (("label_noise", not recipe.label_noise),
                                          ("instance_noise", recipe.instance_noise == 0),
                                          ("augment", not recipe.augment),
                                          ("lr_decay", recipe.lr_decay == 0)) if not off]
        if recipe.loss not in ("non-saturating", "minimax", "wasserstein", "hinge", "least-squares"):
            missing.append(f"loss {recipe.loss!r}")
        if missing:
            raise UnsupportedRecipe(f"the plain loop does not implement {', '.join(missing)}")
        self.G = G.to(device).train()
        self.D = D.to(device).train()
        self.recipe = recipe
        self.device = device
        self.opt_G = self._optimizer(self.G, recipe.g_lr)
        self.opt_D = self._optimizer(self.D, recipe.d_lr)
        self.images = dataset.images.to(device)  # uint8 (N, C, H, W)
        self.labels = dataset.labels.to(device) if self.G.num_classes and dataset.labels is not None else None
        self.batch_size = recipe.batch_size
        self.per_epoch = len(dataset) // recipe.batch_size
        self.perm_gen = torch.Generator().manual_seed(seed)  # its own streams: independent of the trainer's RNG
        self.z_gen = torch.Generator(device=device).manual_seed(seed + 1)
        self.perm = torch.empty(0, dtype=torch.int64)
        self.batches = 0
        self.d_step_count = 0

    def _optimizer(self, module: nn.Module, lr: float) -> torch.optim.Optimizer:
        r = self.recipe
        if r.optimizer == "adam":
            return torch.optim.Adam(module.parameters(), lr=lr, betas=r.betas, eps=r.eps)
        if r.optimizer == "rmsprop":
            return torch.optim.RMSprop(module.parameters(), lr=lr, alpha=r.rho, eps=r.eps)
        return torch.optim.SGD(module.parameters(), lr=lr, momentum=r.momentum)

    def real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        offset = self.batches % self.per_epoch
        if offset == 0:
            self.perm = torch.randperm(len(self.images), generator=self.perm_gen).to(self.device)
        self.batches += 1
        idx = self.perm[offset * self.batch_size:(offset + 1) * self.batch_size]
        images = self.images[idx].float().div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
        return images, (self.labels[idx] if self.labels is not None else None)

    def _input_grad(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        (grad,) = torch.autograd.grad(self.D(x, y).sum(), x, create_graph=True)
        return grad.flatten(1)

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        r = self.recipe
        r1_due = r.r1_gamma > 0 and self.d_step_count % r.r1_interval == 0
        if r1_due:  # R1's input gradient from the forward pass that gives the logits
            real = real.detach().requires_grad_(True)
        real_logits = self.D(real, y)
        fake_logits = self.D(fake, y)
        if r.loss in ("non-saturating", "minimax"):
            real_target = torch.full_like(real_logits, 1.0 - r.label_smoothing)
            loss = (F.binary_cross_entropy_with_logits(real_logits, real_target)
                    + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        elif r.loss == "wasserstein":
            loss = fake_logits.mean() - real_logits.mean()
        elif r.loss == "hinge":
            loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        else:  # least squares
            loss = 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())
        if r.gp_weight > 0:  # WGAN-GP: unit gradient norm at random interpolates of real and fake
            eps = torch.rand(real.shape[0], 1, 1, 1, device=self.device)
            x_hat = torch.lerp(fake, real, eps).requires_grad_(True)
            loss = loss + r.gp_weight * (self._input_grad(x_hat, y).norm(2, dim=1) - 1).square().mean()
        if r1_due:  # lazy R1 on real images
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            r1 = grad.flatten(1).square().sum(dim=1).mean()
            loss = loss + (r.r1_gamma / 2) * r.r1_interval * r1
        if r.drift > 0:
            loss = loss + r.drift * real_logits.square().mean()
        return loss

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        loss = self.recipe.loss
        if loss == "non-saturating":
            return F.softplus(-fake_logits).mean()
        if loss == "minimax":
            return -F.softplus(fake_logits).mean()
        if loss in ("wasserstein", "hinge"):
            return -fake_logits.mean()
        return 0.5 * (fake_logits - 1).square().mean()

    def step(self) -> None:
        r = self.recipe
        fake = y = None
        for i in range(r.d_steps):
            real, y = self.real_batch()
            z = torch.randn(real.shape[0], self.G.z_dim, device=self.device, generator=self.z_gen)
            last = i == r.d_steps - 1
            with torch.set_grad_enabled(last):  # the last fake batch keeps its graph for G's update
                fake = self.G(z, y)
            self.opt_D.zero_grad()
            self.d_loss(real, fake.detach(), y).backward()
            self.opt_D.step()
            self.d_step_count += 1
            if r.clip_value > 0:
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-r.clip_value, r.clip_value)
        assert fake is not None
        self.opt_G.zero_grad()
        self.g_loss(self.D(fake, y)).backward()
        self.opt_G.step()


def plain_copies(model: GANModel) -> tuple[nn.Module, nn.Module]:
    """Deep copies of G and D for the plain loop (take them before any Trainer touches the model)."""
    assert model.discriminator is not None
    return copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)


# ---------------------------------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------------------------------


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ratio(summary: dict[str, Any] | None) -> str:
    """'1.03x (1.01-1.07)' from a ratio summary."""
    if not summary:
        return "-"
    return f"{summary['median']:.2f}x ({summary['min']:.2f}-{summary['max']:.2f})"

"""The one training loop every architecture shares.

Alternating updates: `recipe.d_steps` discriminator steps, then one generator step. What differs between
architectures lives in the recipe, the objective (what a step does with G and D: `ganzoo.objectives`), the loss
object and the architecture's hooks, never in a branch here.
Losses are accumulated on the device and read back every `log_every` steps, so a step never waits on the host.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from ganzoo import __version__
from ganzoo._io import write_bytes, write_text
from ganzoo.augment import Augment, parse_policy
from ganzoo.contract import (
    architecture_origin,
    call_hook,
    check_config_round_trip,
    check_discriminator_output,
    check_generator_output,
    check_hook_state,
    check_loss_output,
    check_sampling,
    hook_origin,
    loss_origin,
)
from ganzoo.data import ImageDataset
from ganzoo.errors import ConfigError, GanzooError
from ganzoo.images import save_grid, to_uint8
from ganzoo.interfaces import (
    SCHEDULE_ALIASES,
    SCHEDULE_OPTIMIZER_TARGETS,
    JsonConfig,
    Recipe,
    Schedule,
    TrainingContext,
    TrainingHook,
    expand_schedules,
    exposes_w,
    parse_schedules,
)
from ganzoo.losses import GANLoss, loss_from_recipe
from ganzoo.model import GANModel
from ganzoo.objectives import Objective, objective_from_recipe
from ganzoo.sharding import batch_shard, draw_rows
from ganzoo.streaming import StreamBatches, StreamingDataset, epoch_order, is_streamed
from ganzoo.trainer.ada import AdaptiveAugment, HeldOut, buffers_kept, check_ada, held_out_count, split_held_out
from ganzoo.trainer.checkpoint import Checkpoint, find_checkpoints, flatten_optimizer, unflatten_optimizer
from ganzoo.trainer.ema import ema_beta, update_ema

if TYPE_CHECKING:
    from ganzoo.metrics.evaluation import EvalResult
    from ganzoo.trainer.distributed import World
    from ganzoo.trainer.events import EventWriter

__all__ = ["RunOptions", "Trainer", "TrainingDiverged", "TrainingInterrupted", "check_training", "schedule_starts"]

logger = logging.getLogger(__name__)


class TrainingInterrupted(GanzooError):
    """Training stopped on request (Ctrl-C); a checkpoint was saved."""

    def __init__(self, message: str, step: int, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


class TrainingDiverged(GanzooError):
    """A loss became NaN or infinite."""


class _LossD:
    """D as the trainer's loss calls it: the step's D inputs (augmentation, instance noise), then D, compiled when
    the run asks.

    `logits_and_input_grad` serves the penalties (R1, R2, the gradient penalty; see `ganzoo.losses`): the logits
    and their gradient with respect to the images, from one forward pass, with the gradient's graph kept. Under
    `torch.compile` the penalty runs compiled too, as one compiled function that computes the logits and the input
    gradient (`torch.func.grad` inside `torch.compile`): the backward of a compiled module cannot be differentiated
    again (torch 2.14: "torch.compile with aot_autograd does not currently support double backward"), but the
    compiled function's own backward is a first derivative of what it computes, which the loss's backward needs.
    The gradient is taken with respect to the images before the augmentation, through it, as in eager mode.
    """

    def __init__(self, D: nn.Module, forward: Callable[..., torch.Tensor],
                 d_input: Callable[[torch.Tensor], torch.Tensor], compiled: dict[str, Any] | None) -> None:
        self.D = D
        self.forward = forward
        self.d_input = d_input
        self.checker: Callable[[torch.Tensor, int], None] | None = None  # the plugin contract, on the first step
        self.watch: torch.Tensor | None = None  # a batch whose logits to keep (the reals, for ADA's held-out signal)
        self.watched: torch.Tensor | None = None  # D's logits on `watch`, from the loss's first call on it
        # static shapes: a shape this function has not seen (progressive growing, another model in the same process)
        # compiles anew; torch 2.14's inductor failed on the double backward compiled with dynamic sizes
        # ("cannot determine truth value of Relational")
        self._compiled_grad = (torch.compile(self._logits_and_grad, dynamic=False, **compiled)
                               if compiled is not None else None)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.forward(self.d_input(images), labels)
        if self.checker is not None:
            self.checker(logits, images.shape[0])
        self._keep(images, logits)
        return logits

    def _keep(self, images: torch.Tensor, logits: torch.Tensor) -> None:
        if self.watch is not None and images is self.watch and self.watched is None:
            self.watched = logits.detach()

    def take_watched(self) -> torch.Tensor | None:
        """D's logits on the watched batch (None when the loss never called D on it as given); stops watching."""
        watched, self.watched, self.watch = self.watched, None, None
        return watched

    def _logits_and_grad(self, seen: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits at the images it sees and d sum(logits) / d images, as one function of the images."""
        def summed(x: torch.Tensor, buffers: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            logits = torch.func.functional_call(self.D, buffers, (x, labels))
            return logits.sum(), logits

        # D's buffers go in as arguments: a forward pass that updates them (BatchNorm's running statistics, spectral
        # normalisation's singular vectors) may not write to tensors the transform only captured
        grad, logits = torch.func.grad(summed, has_aux=True)(seen, dict(self.D.named_buffers()))
        return logits, grad

    def logits_and_input_grad(self, images: torch.Tensor, labels: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits at `images` and the gradient of their sum with respect to `images` (flattened per image), the
        gradient differentiable with respect to D's weights."""
        x = images.detach().requires_grad_(True)
        seen = self.d_input(x)
        if self._compiled_grad is None:
            logits = self.D(seen, labels)
            if self.checker is not None:
                self.checker(logits, images.shape[0])
            self._keep(images, logits)
            (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            return logits, grad.flatten(1)
        logits, grad_seen = self._compiled_grad(seen.detach(), labels)
        if self.checker is not None:
            self.checker(logits, images.shape[0])
        self._keep(images, logits)
        if seen is x:
            return logits, grad_seen.flatten(1)
        # back through the augmentation and the noise (eager), to the images as the loss passed them
        (grad,) = torch.autograd.grad(seen, x, grad_seen, create_graph=True)
        return logits, grad.flatten(1)


@dataclass(frozen=True)
class RunOptions(JsonConfig):
    """How a run is carried out, as opposed to what is trained (config) and how (recipe)."""

    data: str = "mnist-5k"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 50  # read losses back, write metrics.jsonl
    sample_every: int = 500  # fixed-latent sample grid
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    grid_size: int = 64
    amp: bool = False  # bf16 autocast (helps on GPUs; slower on CPUs without bf16 units)
    channels_last: bool = False
    compile: bool = False  # torch.compile G and D
    on_bad_image: Literal["fail", "skip"] = "fail"
    eval_every: int = 0  # steps between evaluations (0: none); see ganzoo.metrics
    eval_metrics: str = "fid"  # comma-separated metric names
    eval_extractor: str | None = None  # None: colour for the emoji sets, digits otherwise (default_extractor)
    eval_samples: int = 2000  # generated images per evaluation
    keep_best: str | None = None  # a value the metrics report (fid, precision, ...): export out/best when it improves
    data_workers: int | None = None  # processes decoding a streamed dataset (0: the training process; None: auto)
    background: str = "#ffffff"  # what transparent pixels are composited over: a colour name or #rrggbb (stored so)

    def validate(self) -> None:
        from ganzoo._imagefiles import background_hex
        from ganzoo.errors import ConfigError

        object.__setattr__(self, "background", background_hex(self.background))  # checked, and one spelling

        for name in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "grid_size",
                     "eval_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.data_workers is not None and self.data_workers < 0:
            raise ConfigError(f"data_workers must be 0 (decode in the training process) or more, got "
                              f"{self.data_workers}")
        if self.data_workers is not None and not is_streamed(self.data):
            raise ConfigError(f"data_workers sets the processes that decode streamed data, and {self.data} is held in "
                              "memory (nothing to decode); drop --data-workers, or stream it (--stream, a .zip, hf:)")
        if self.eval_every < 0:
            raise ConfigError(f"eval_every must be 0 (no evaluation) or a number of steps, got {self.eval_every}")
        if self.eval_every or self.keep_best is not None:  # names checked before a run folder is made
            from ganzoo.metrics import METRICS, parse_metrics
            from ganzoo.metrics.extractors import canonical_name

            if self.eval_extractor is not None:
                canonical_name(self.eval_extractor)
            values = [v for m in parse_metrics(self.eval_metrics) for v in METRICS[m][0]]
            if self.keep_best is not None and self.keep_best not in values:
                raise ConfigError(f"keep_best is {self.keep_best!r} but the evaluation reports {', '.join(values)}; "
                                  "pick one of those, or add its metric to the evaluated metrics")
            if self.keep_best is not None and not self.eval_every:
                raise ConfigError("keep_best needs evaluations during training: set eval_every")


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else the CPU; an unavailable CUDA is a clear error."""
    from ganzoo.errors import GanzooUsageError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanzooUsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanzooUsageError("CUDA was asked for but is not available here; use --device cpu")
    return device


class _Batches:
    """Shuffled batches from a dataset held as one uint8 tensor on the device: (images, condition), the condition
    being the labels, or the input images of paired data (`ImageDataset.inputs`).

    The permutation of epoch e depends only on (seed, e), so the position in the data is a single counter
    and a resumed run draws exactly the batches an uninterrupted one would. In a distributed run every process
    draws the same global batch and keeps its `rows` of it. With `positions` only those images are trained on
    (the others are held back for adaptive augmentation's held-out signal), without copying the data.

    Unpaired data (`ImageDataset.unpaired`: domain B as `images`, domain A as `inputs`, unrelated) is drawn in two
    independent orders, A's from a seed of its own, and its batch is both domains at once: the images are B's batch
    then A's, the condition A's batch then B's, so that row i of the condition is the input whose translation D
    compares with row i of the images (the layout `Objective`s of unpaired translation expect). Batch `batch_size`
    of each domain: 2 x `batch_size` rows.
    """

    def __init__(self, dataset: ImageDataset, batch_size: int, seed: int, device: torch.device,
                 memory_format: torch.memory_format, rows: slice = slice(None),
                 positions: torch.Tensor | None = None) -> None:
        count = len(dataset) if positions is None else len(positions)
        if count < batch_size:
            from ganzoo.errors import GanzooUsageError

            raise GanzooUsageError(f"the dataset has {count} images, fewer than the batch size {batch_size}; "
                                   "lower --batch-size")
        self.images = dataset.images.to(device)
        self.labels = dataset.labels.to(device) if dataset.labels is not None else None
        inputs = getattr(dataset, "inputs", None)  # paired data: the input image of each target
        self.inputs = inputs.to(device) if inputs is not None else None
        self.unpaired = bool(getattr(dataset, "unpaired", False))
        if self.unpaired:
            if positions is not None:
                from ganzoo.errors import ConfigError

                raise ConfigError("unpaired data cannot hold images back for adaptive augmentation; set ada_target=0")
            assert inputs is not None, "unpaired data has both domains"
            if len(inputs) < batch_size:
                from ganzoo.errors import GanzooUsageError

                raise GanzooUsageError(f"side A of the data has {len(inputs)} images, fewer than the batch size "
                                       f"{batch_size}; lower --batch-size")
            self._inputs_order = _IndependentOrder(len(inputs), -1 - seed, batch_size, device)
        self.positions = positions.to(device) if positions is not None else None
        self.count = count
        self.batch_size = batch_size
        self.per_epoch = count // batch_size
        self.seed = seed
        self.memory_format = memory_format
        self.rows = rows
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def get(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        epoch, offset = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            self._perm = epoch_order(self.count, self.seed, epoch).to(self.images.device)
            if self.positions is not None:
                self._perm = self.positions[self._perm]
            self._epoch = epoch
        idx = self._perm[offset * self.batch_size:(offset + 1) * self.batch_size][self.rows]
        x = self.images[idx].float().div_(127.5).sub_(1.0).contiguous(memory_format=self.memory_format)
        if self.unpaired:  # both domains: images [B; A], condition [A; B]
            a = self.inputs[self._inputs_order.indices(index)[self.rows]]
            a = a.float().div_(127.5).sub_(1.0)
            b = x
            return (torch.cat([b, a]).contiguous(memory_format=self.memory_format),
                    torch.cat([a, b]).contiguous(memory_format=self.memory_format))
        if self.inputs is not None:  # the batch's condition: the input images of paired data, else the labels
            return x, self.inputs[idx].float().div_(127.5).sub_(1.0).contiguous(memory_format=self.memory_format)
        return x, (self.labels[idx] if self.labels is not None else None)

    def close(self) -> None:
        """Nothing to stop: the data is in memory."""


class _IndependentOrder:
    """Batch `index`'s positions in a second set of `count` images, drawn in an order of its own (epochs of this
    set's length, permutations from `seed`), so a resumed run draws what an uninterrupted one would. Each epoch's
    order goes to `device` once, as the images' does."""

    def __init__(self, count: int, seed: int, batch_size: int, device: torch.device) -> None:
        self.count, self.seed, self.batch_size, self.device = count, seed, batch_size, device
        self.per_epoch = count // batch_size
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.int64)

    def indices(self, index: int) -> torch.Tensor:
        epoch, offset = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            self._perm, self._epoch = epoch_order(self.count, self.seed, epoch).to(self.device), epoch
        return self._perm[offset * self.batch_size:(offset + 1) * self.batch_size]


def _batch_source(dataset: ImageDataset | StreamingDataset, batch_size: int, options: RunOptions,
                  device: torch.device, memory_format: torch.memory_format,
                  rows: slice, positions: torch.Tensor | None = None) -> _Batches | StreamBatches:
    """In-memory batches, or batches decoded by worker processes for a streamed dataset: the same order either way.
    With `positions`, of those images of the dataset only."""
    if isinstance(dataset, ImageDataset):
        return _Batches(dataset, batch_size, options.seed, device, memory_format, rows, positions)
    if positions is not None:
        dataset = dataset.subset(positions)
    return StreamBatches(dataset, batch_size, options.seed, device, memory_format, rows, options.data_workers)


def _check_sync_batchnorm(G: nn.Module, D: nn.Module, world: World | None) -> None:
    """Say where `sync_batchnorm` has nothing to change rather than ignore it silently: a model without BatchNorm, and
    a run of one process, whose batch is the global batch, so plain BatchNorm already does what the option asks."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for net in (G, D) for m in net.modules()):
        logger.warning("sync_batchnorm: neither G nor D has a BatchNorm layer, so there is nothing to synchronise")
    elif world is None:
        logger.warning("sync_batchnorm: this run is one process, whose batch is the global batch, so BatchNorm "
                       "already normalises over it; the option matters in distributed runs (--nproc, torchrun)")


def _param_groups(module: nn.Module, lr: float) -> list[dict[str, Any]]:
    """The module's parameter groups (`Generator.param_groups`; one group for a plain module), each with its lr."""
    groups = module.param_groups() if hasattr(module, "param_groups") else [{"params": list(module.parameters())}]
    out = []
    for group in groups:
        mult = float(group.get("lr_mult", 1.0))
        if not mult > 0:
            raise ConfigError(f"{type(module).__name__}.param_groups: lr_mult must be positive, got {mult}")
        out.append({**group, "params": list(group["params"]), "lr_mult": mult, "lr": lr * mult})
    return out


def _make_optimizer(recipe: Recipe, module: nn.Module, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    groups = _param_groups(module, lr)
    if recipe.optimizer == "adam":
        # the fused kernel: about a third less time in the optimiser step than the per-tensor loop on this CPU
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=recipe.eps, fused=fused)
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=recipe.rho, eps=recipe.eps)
    return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum)


def schedule_starts(recipe: Recipe, loss: GANLoss) -> dict[str, tuple[Schedule, float]]:
    """Each scheduled value with its schedule and its start value (the recipe's, or the loss's option)."""
    starts = {"g_lr": recipe.g_lr, "d_lr": recipe.d_lr}
    for net in ("g", "d"):
        betas = recipe.betas_of(net)  # type: ignore[arg-type]
        starts[f"{net}_beta1"], starts[f"{net}_beta2"] = betas
    scheduled = expand_schedules(parse_schedules(recipe.schedules))
    for target in scheduled:
        if target in SCHEDULE_OPTIMIZER_TARGETS:
            continue
        value = getattr(loss, target, None)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"schedules: {target!r} is neither an optimiser value "
                              f"({', '.join(SCHEDULE_OPTIMIZER_TARGETS)}) nor a numeric option of loss "
                              f"{recipe.loss!r}; check the name")
        starts[target] = float(value)
    for key, targets in SCHEDULE_ALIASES.items():
        off = [t for t in targets if key in recipe.schedules and starts.get(t) == 0]
        if off:  # e.g. "gamma" with R2 off: a schedule from 0 would turn it on
            raise ConfigError(f"schedules: {key!r} also schedules {off[0]}, which is 0 (off); schedule "
                              f"{', '.join(t for t in targets if t not in off)} alone")
    return {target: (schedule, starts[target]) for target, schedule in scheduled.items()}


def check_training(architecture: Any, config: Any, recipe: Recipe) -> GANLoss:
    """Everything that can be checked before training starts: the loss and its options, the schedules' targets, the
    augmentations' names and the architecture's own check of config and recipe together. Returns the loss."""
    check_config_round_trip(config, architecture_origin(architecture.name))
    loss = loss_from_recipe(recipe)
    objective = objective_from_recipe(recipe, loss)
    task = getattr(architecture, "task", "generate")
    if objective.task != task:
        raise ConfigError(f"objective {objective.name!r} trains the {objective.task} task and {architecture.name} "
                          f"does the {task} task; drop objective from the recipe, or pick one for {task}")
    objective.check(recipe)
    check_ada(recipe, loss)
    schedule_starts(recipe, loss)
    parse_policy(recipe.augment)
    if recipe.pl_weight > 0:
        _check_w_space(architecture, config)
    architecture.check(config, recipe)
    return loss


def _check_w_space(architecture: Any, config: Any) -> None:
    """Path-length regularisation differentiates G's images with respect to its intermediate latents: refuse an
    architecture whose generator has none. The generator is built to ask it, without touching the random state."""
    with torch.random.fork_rng(devices=[]):
        generator = architecture.build_generator(config)
    if not exposes_w(generator):
        raise ConfigError(f"pl_weight needs a generator with an intermediate latent space W (style_latents and "
                          f"synthesize), and {architecture.name}'s has none; set pl_weight=0, or train stylegan-lite")


ProgressFn = Callable[[int, int, dict[str, float] | None], None]  # (step, total steps, logged values)
#: evaluates a model: values, provenance and diagnostics (`ganzoo.metrics.Evaluator` is one)
EvaluatorFn = Callable[[GANModel], "EvalResult"]


class Trainer:
    """Trains a `GANModel` on an in-memory or a streamed dataset, writing a run folder.

    Run folder: config.json (written by the caller), metrics.jsonl, samples/, checkpoints/, model/.

    With a `world` (a distributed run, see `ganzoo.trainer.distributed`) every process trains on its rows of each
    global batch of `recipe.batch_size`, gradients are averaged right before each optimiser step, and only rank 0
    writes to the run folder.
    """

    def __init__(self, model: GANModel, recipe: Recipe, dataset: ImageDataset | StreamingDataset,
                 options: RunOptions, out: Path, hooks: list[TrainingHook] | None = None,
                 run_info: dict[str, Any] | None = None, evaluator: EvaluatorFn | None = None,
                 world: World | None = None) -> None:
        if model.discriminator is None:
            raise GanzooError("training needs a discriminator; build the model with discriminator=True")
        self.model = model
        self.recipe = recipe
        self.options = options
        self.out = Path(out)
        self.hooks = list(hooks or [])
        self.run_info = dict(run_info or {})
        self.evaluator = evaluator
        self.world = world
        self.is_main = world is None or world.is_main
        self.best: dict[str, Any] | None = None  # {"metric", "value", "step"} of the best evaluation so far
        self.last_eval: list[dict[str, Any]] | None = None
        self.device = world.device(options.device) if world is not None else resolve_device(options.device)
        rows = world.rows(recipe.batch_size) if world is not None else slice(None)
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format

        if recipe.ema_kimg > 0:
            model.with_ema()
        model.to(self.device)
        if options.channels_last:
            model.to(memory_format=torch.channels_last)
        self.G = model.generator.train()
        self.D = model.discriminator.train()
        self._restore: list[Callable[[], None]] = []  # undoes what training changed in the modules (release())
        if recipe.sync_batchnorm:
            _check_sync_batchnorm(self.G, self.D, world)
        if world is not None and recipe.sync_batchnorm:
            from ganzoo.trainer.distributed import convert_batchnorm

            # shares the layers' parameters and buffers, so state-dict keys and the exported model are unchanged
            self._restore = [convert_batchnorm(self.G), convert_batchnorm(self.D)]
        # fallback_random: compiled code draws dropout masks and noise from torch's generator as eager code does,
        # so a compiled run makes the same random draws as an eager one and resumes from the same RNG state
        compiled = {"options": {"fallback_random": True}}
        self.G_fn: Callable[..., torch.Tensor] = torch.compile(self.G, **compiled) if options.compile else self.G
        self.D_fn: Callable[..., torch.Tensor] = torch.compile(self.D, **compiled) if options.compile else self.D
        self._D = _LossD(self.D, self.D_fn, self._d_input, compiled if options.compile else None)
        self.opt_G = _make_optimizer(recipe, self.G, recipe.g_lr, recipe.betas_of("g"))
        self.opt_D = _make_optimizer(recipe, self.D, recipe.d_lr, recipe.betas_of("d"))
        self.loss = loss_from_recipe(recipe)
        check_ada(recipe, self.loss)
        self.loss.running.to(self.device)  # what the loss's regularisers carry between steps (checkpointed)
        # what a step does with G and D (generation, paired translation, ...)
        self.objective: Objective = objective_from_recipe(recipe, self.loss)
        self.objective.check(recipe, dataset)
        self.objective.running.to(self.device)  # what the objective carries between steps (checkpointed)
        self._schedules = schedule_starts(recipe, self.loss)
        self.augment = Augment(recipe.augment, recipe.start_augment_p, self.device, adaptive=recipe.ada_target > 0)
        self._ada: AdaptiveAugment | None = None
        if recipe.ada_target > 0:
            self._ada = AdaptiveAugment(recipe.ada_target, recipe.ada_kimg, recipe.ada_interval, recipe.batch_size,
                                        recipe.ada_signal)
            self.hooks.append(self._ada)
            if recipe.ada_signal == "held-out" and recipe.ada_target >= 0.5:
                logger.warning("ada_target %g: the held-out signal rarely comes near it, so p will stay low; it wants "
                               "about 0.05 (0.6 is the paper's target for ada_signal=train; docs/training.md)",
                               recipe.ada_target)
        context = TrainingContext(recipe=recipe, device=self.device, augment=self.augment,
                                  world_size=world.world_size if world is not None else 1,
                                  sum_across=world.sum_on_cpu if world is not None else None)
        self._plugin = architecture_origin(model.architecture)  # who breaches the plugin contract, if one does
        self._loss_origin = loss_origin(self.loss)
        self._checking = True  # the first step checks what the plugins return (`ganzoo.contract`)
        plugin = self._plugin
        self._D.checker = lambda logits, n: check_discriminator_output(logits, n, plugin)
        self._hook_origins: dict[int, str] = {}  # id(hook) -> how errors name it
        for hook in self.hooks:
            self._hook(hook, "setup", context)
        # ADA's held-out signal: images of the data that training never sees (the same on every process)
        held = held_out_count(recipe, len(dataset))
        self.held_out: HeldOut | None = None
        positions = None
        if held:
            positions, held_positions = split_held_out(len(dataset), held, options.seed)
            self.held_out = HeldOut.from_dataset(dataset, held_positions, self.device, self.memory_format)
            self.run_info["held_out"] = held
        self.batches = _batch_source(dataset, recipe.batch_size, options, self.device, self.memory_format, rows,
                                     positions)
        self.step = 0
        self.elapsed = 0.0  # seconds of training before this process (from the checkpoint)
        self._t0 = time.perf_counter()  # reset when run() starts
        # fixed latents and condition for the sample grids (conditional models: one row per class; translation:
        # inputs of the data)
        grid_cond, self.grid_nrow = self.objective.grid_condition(dataset, options.grid_size, model.num_classes)
        n = len(grid_cond) if grid_cond is not None else options.grid_size
        self.grid_labels = grid_cond.to(self.device) if grid_cond is not None else None
        if self.grid_labels is not None and self.grid_labels.dim() == 4:
            self.grid_labels = self.grid_labels.contiguous(memory_format=self.memory_format)
        grid_gen = torch.Generator().manual_seed(options.seed + 1)
        self.grid_z = self.G.sample_latents(n, generator=grid_gen).to(self.device)
        self._stats: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._stop_requested = False  # Ctrl-C reached this process
        self.events: EventWriter | None = None  # TensorBoard events (rank 0, when tensorboard is installed)
        self._stop_agreed = False  # some process of a distributed run was interrupted: all stop after this step

    # ----------------------------------------------------------------------------------------------------------------
    # paths

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    @property
    def images_seen(self) -> int:
        return self.step * self.recipe.batch_size * self.recipe.d_steps

    # ----------------------------------------------------------------------------------------------------------------
    # one step

    def _d_input(self, images: torch.Tensor) -> torch.Tensor:
        """D's inputs, real and fake alike: augmented if the recipe asks, then instance noise decaying to zero."""
        if self.augment:
            images = self.augment(images)
        sigma0 = self.recipe.instance_noise
        if sigma0 <= 0:
            return images
        horizon = self.recipe.instance_noise_steps or self.recipe.steps
        sigma = sigma0 * max(0.0, 1.0 - self.step / horizon)
        if sigma <= 0:
            return images
        return images + sigma * draw_rows(images.shape[0], lambda m: torch.randn(
            m, *images.shape[1:], device=images.device, dtype=images.dtype))

    def _hook(self, hook: TrainingHook, method: str, *args: Any) -> Any:
        """`hook.method(*args)`; a plugin's hook that raises is named in a one-line `PluginContractError`."""
        if type(hook).__module__.split(".")[0] == "ganzoo":  # the trainer's own (ADA): its errors are ganzoo's
            return getattr(hook, method)(*args)
        return call_hook(hook, method, self._hook_origin(hook), *args)

    def _hook_origin(self, hook: TrainingHook) -> str:
        who = self._hook_origins.get(id(hook))
        if who is None:
            who = self._hook_origins[id(hook)] = hook_origin(hook, self.model.architecture)
        return who

    def _hook_state(self, hook: TrainingHook) -> dict[str, Any]:
        state = self._hook(hook, "state_dict")
        check_hook_state(state, self._hook_origin(hook))
        return state

    def check_sampler(self) -> None:
        """The plugin contract of sampling (`ganzoo.contract.check_sampling`) on the first grid latents."""
        labels = self.grid_labels[:4] if self.grid_labels is not None else None
        check_sampling(self.G, self.D, self.grid_z[:len(labels) if labels is not None else 4], labels, self._plugin,
                       generate=self.objective.generate)

    def _latents(self, n: int) -> torch.Tensor:
        return draw_rows(n, self.G.sample_latents).to(self.device, non_blocking=True)

    def scheduled_values(self, step: int | None = None) -> dict[str, float]:
        """The scheduled values (see `Recipe.schedules`) at generator step `step` (default: the current one)."""
        step = self.step if step is None else step
        return {target: schedule.value(start, step, self.recipe.steps)
                for target, (schedule, start) in self._schedules.items()}

    def _set_hyperparameters(self) -> None:
        """Learning rates, Adam's betas and loss weights for this step: pure functions of the step, so nothing extra
        goes into checkpoints."""
        if not self._schedules and self.recipe.lr_decay <= 0:
            return
        values = self.scheduled_values()
        decay = 1.0 / (1.0 + self.recipe.lr_decay * self.step)  # Keras' inverse-time decay, on top of a schedule
        for net, opt in (("g", self.opt_G), ("d", self.opt_D)):
            lr = values.get(f"{net}_lr", self.recipe.g_lr if net == "g" else self.recipe.d_lr) * decay
            for group in opt.param_groups:
                group["lr"] = lr * group.get("lr_mult", 1.0)
                if "betas" in group and (f"{net}_beta1" in values or f"{net}_beta2" in values):
                    b1, b2 = group["betas"]
                    group["betas"] = (values.get(f"{net}_beta1", b1), values.get(f"{net}_beta2", b2))
        for target, value in values.items():
            if target not in SCHEDULE_OPTIMIZER_TARGETS:
                setattr(self.loss, target, value)

    def _accumulate(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            value = value.detach().float()
            self._stats[key] = self._stats[key] + value if key in self._stats else value
            self._counts[key] = self._counts.get(key, 0) + 1  # a stat may appear on some steps only (lazy R1)

    def train_step(self) -> None:
        """One generator update preceded by `d_steps` discriminator updates."""
        if self.world is None:
            self._train_step()
            return
        with batch_shard(self.world.rank, self.world.world_size):
            self._train_step()

    @torch.no_grad()
    def _observe_held_out(self, real: torch.Tensor, labels: torch.Tensor | None, d_step: int) -> None:
        """ADA's held-out signal: D's logits on a chunk of held-back reals, from the D that just scored the step's
        training reals (before its update), through the same inputs (hooks' `process_real`, augmentation, noise).
        D's buffers are put back afterwards, so measuring changes nothing that training uses but the random state."""
        assert self._ada is not None and self.held_out is not None
        restore = buffers_kept(self.D)
        try:
            train_logits = self._D.take_watched()
            if train_logits is None:  # a loss that never called D on the real batch as it was given
                train_logits = self._D(real, labels)
            images, held_labels = self.held_out.chunk(d_step, self._ada.chunk_size)
            for hook in self.hooks:
                images = self._hook(hook, "process_real", images)
            held_logits = self._D(images, held_labels)
        finally:
            restore()
        self._ada.observe_held_out(train_logits, held_logits)

    def _average_gradients(self, module: nn.Module) -> None:
        """Distributed runs: average `module`'s gradients over processes (and agree on stopping) before its step."""
        if self.world is not None:
            votes = self.world.average_gradients(module.parameters(), flags=[float(self._stop_requested)])
            self._stop_agreed = self._stop_agreed or votes[0] > 0

    def _train_step(self) -> None:
        recipe = self.recipe
        for hook in self.hooks:
            self._hook(hook, "before_step", self.step, self.images_seen, self.G, self.D, self.model.ema)
        self._set_hyperparameters()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.options.amp)

        objective = self.objective
        trains_d = objective.trains_discriminator
        self.D.requires_grad_(trains_d)
        fake = labels = None
        d_stats: dict[str, torch.Tensor] = {}
        if self._checking:  # the loss's results, checked on the first step (the plugin contract)
            objective.checker = lambda result, phase: check_loss_output(result, self._loss_origin, phase)
        for i in range(recipe.d_steps):
            d_step = self.step * recipe.d_steps + i
            real, labels = self.batches.get(d_step)
            for hook in self.hooks:
                real = self._hook(hook, "process_real", real)
            # ADA's held-out signal: keep D's logits on these reals for the comparison after the loss
            score_held_out = self.held_out is not None and trains_d
            if score_held_out:
                self._D.watch = real
            z = self._latents(real.shape[0])
            last = i == recipe.d_steps - 1
            with autocast:
                # the last D step's fakes keep their graph and are reused for the G step
                with torch.set_grad_enabled(last):
                    fake = objective.generate(self.G_fn, z, labels)
                if self._checking:
                    check_generator_output(fake, tuple(real.shape), self._plugin)
                if not trains_d:  # an objective without D's phase (e.g. the L1-only translation baseline)
                    continue
                d_loss, d_stats = objective.d_phase(self._D, real, fake, labels, d_step)
            self.opt_D.zero_grad(set_to_none=True)
            d_loss.backward()
            if score_held_out:  # after the backward (whose graph holds D's buffers as they were), before the update
                with autocast:
                    self._observe_held_out(real, labels, d_step)
            self._average_gradients(self.D)
            self.opt_D.step()
            self.loss.after_d_step(self.D)
            for hook in self.hooks:
                self._hook(hook, "after_d_step", d_step, d_stats)
        self._accumulate(d_stats)

        self.D.requires_grad_(False)  # G's step needs no gradients for D's weights
        with autocast:
            # the adversarial term, the objective's own terms and G's lazy regularisers (through the eager G)
            g_loss, g_stats = objective.g_phase(self._D, self.G, real, fake, labels, self.step)
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self._average_gradients(self.G)
        self.opt_G.step()
        self._accumulate(g_stats)
        if self.world is not None:  # BatchNorm running statistics: the average over processes
            self.world.sync_buffers((self.G, self.D, self.loss.running, self.objective.running))

        self.step += 1
        self._checking = False
        self._D.checker = None
        objective.checker = None
        if self.model.ema is not None:
            beta = ema_beta(recipe.batch_size, self.images_seen, recipe.ema_kimg, recipe.ema_rampup)
            update_ema(self.model.ema, self.G, beta)

    # ----------------------------------------------------------------------------------------------------------------
    # state

    def state(self) -> Checkpoint:
        tensors: dict[str, torch.Tensor] = {}
        modules: dict[str, nn.Module | None] = {"G": self.G, "D": self.D, "EMA": self.model.ema,
                                                "loss": self.loss.running, "objective": self.objective.running}
        for prefix, module in modules.items():
            if module is not None:
                for key, value in module.state_dict().items():
                    tensors[f"{prefix}.{key}"] = value
        meta: dict[str, Any] = {
            "step": self.step,
            "planned_steps": self.recipe.steps,  # the length run-relative schedules follow (checked on resume)
            "images_seen": self.images_seen,
            "elapsed": self.elapsed + self._session_time(),
            "opt_G": flatten_optimizer("opt_G", self.opt_G.state_dict(), tensors),
            "opt_D": flatten_optimizer("opt_D", self.opt_D.state_dict(), tensors),
            "hooks": [self._hook_state(hook) for hook in self.hooks],
            "best": self.best,
            "last_eval": self.last_eval,
            "ganzoo_version": __version__,
        }
        # loss sums not logged yet, so that a resumed run logs the averages an uninterrupted one would
        meta["stat_counts"] = dict(self._counts)
        tensors.update({f"stats.{key}": value for key, value in self._stats.items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":  # the training device's generator (the same on every process of a run)
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return Checkpoint(tensors, meta)

    def load_state(self, ckpt: Checkpoint) -> None:
        from ganzoo.serialization import load_weights

        planned = ckpt.meta.get("planned_steps")  # absent in checkpoints written before it was kept
        following = self.recipe.run_relative()
        if planned is not None and int(planned) != self.recipe.steps and following:
            raise ConfigError(f"the checkpoint at step {ckpt.meta.get('step')} belongs to a run planned for "
                              f"{planned} steps, and {self.out / 'config.json'} now plans {self.recipe.steps}; "
                              f"{', '.join(following)} follow the planned length, so set steps back to {planned} "
                              "there")

        modules: dict[str, nn.Module | None] = {"G": self.G, "D": self.D, "EMA": self.model.ema}
        for prefix, module in modules.items():
            if module is not None:
                load_weights(module, ckpt.section(prefix), f"checkpoint section {prefix}")
        running = ckpt.section("loss")  # absent from checkpoints written before losses kept running values
        if running:
            load_weights(self.loss.running, running, "checkpoint section loss")
        carried = ckpt.section("objective")  # absent from checkpoints written before objectives carried state
        if carried or self.objective.running.state_dict():
            load_weights(self.objective.running, carried, "checkpoint section objective")
        self.opt_G.load_state_dict(unflatten_optimizer("opt_G", ckpt.meta["opt_G"], ckpt.tensors))
        self.opt_D.load_state_dict(unflatten_optimizer("opt_D", ckpt.meta["opt_D"], ckpt.tensors))
        for hook, state in zip(self.hooks, ckpt.meta.get("hooks", []), strict=False):
            self._hook(hook, "load_state_dict", state)
        self._counts = {key: int(n) for key, n in ckpt.meta.get("stat_counts", {}).items()}
        self._stats = {key: ckpt.tensors[f"stats.{key}"].to(self.device) for key in self._counts}
        torch.set_rng_state(ckpt.tensors["rng.cpu"])
        if self.device.type == "cuda":
            # "rng.cuda.0": checkpoints written before one state was kept for the training device only
            state = ckpt.tensors.get("rng.cuda", ckpt.tensors.get("rng.cuda.0"))
            if state is not None:
                torch.cuda.set_rng_state(state, self.device)
        self.step = int(ckpt.meta["step"])
        self.best = ckpt.meta.get("best")
        self.last_eval = ckpt.meta.get("last_eval")
        self.elapsed = float(ckpt.meta.get("elapsed", 0.0))

    def checkpoint_path(self) -> Path:
        """Where the checkpoint of the current step goes."""
        return self.checkpoint_dir / f"step-{self.step:07d}.safetensors"

    def save_checkpoint(self) -> Path:
        """Write a checkpoint (rank 0 of a distributed run; every process calls this at the same step)."""
        self._check_finite()
        path = self.checkpoint_path()

        def write() -> None:
            self.state().save(path)
            for _, old in find_checkpoints(self.checkpoint_dir)[:-self.options.keep_checkpoints]:
                old.unlink(missing_ok=True)
            if self.events is not None:  # events up to the checkpoint survive a kill; later ones are logged again
                self.events.flush()

        self._on_main(write)
        return path

    def _on_main(self, write: Callable[[], object]) -> None:
        """Run `write` in the process that writes the run folder; in a distributed run the others wait for it and
        raise when it failed, so that none waits for a rank 0 that has stopped."""
        if self.world is None:
            write()
            return

        def call() -> None:
            write()

        self.world.on_main(call)

    def release(self) -> None:
        """Give the modules back as they were built: BatchNorm layers that a distributed run made global become
        plain BatchNorm again (sharing the trained weights), so the model works without a process group. Closes the
        TensorBoard event file and a streamed dataset's workers."""
        for restore in self._restore:
            restore()
        self._restore = []
        if self.events is not None:
            self.events.close()
            self.events = None
        self.batches.close()  # a streamed dataset's worker processes

    # ----------------------------------------------------------------------------------------------------------------
    # outputs

    def _session_time(self) -> float:
        return time.perf_counter() - self._t0

    @torch.no_grad()
    def save_samples(self) -> Path:
        G = self.model.sampler
        was_training = G.training
        G.eval()
        try:
            images = torch.cat([self.objective.grid_picture(
                None if self.grid_labels is None else self.grid_labels[i:i + 256],
                self.objective.generate(G, self.grid_z[i:i + 256], None if self.grid_labels is None
                                        else self.grid_labels[i:i + 256])) for i in range(0, len(self.grid_z), 256)])
        finally:
            G.train(was_training)
        path = self.out / "samples" / f"step-{self.step:07d}.png"
        save_grid(images.float(), path, nrow=self.grid_nrow)
        if self.events is not None:
            from torchvision.utils import make_grid

            nrow = self.grid_nrow or max(1, math.ceil(math.sqrt(len(images))))
            self.events.grid("samples", make_grid(to_uint8(images), nrow=nrow, padding=2), self.step)
        return path

    def training_summary(self) -> dict[str, Any]:
        return {**self.run_info, "steps": self.step, "images_seen": self.images_seen,
                "batch_size": self.recipe.batch_size, "seed": self.options.seed,
                "wall_time_s": round(self.elapsed + self._session_time(), 1), "recipe": self.recipe.to_dict()}

    def export(self, name: str = "model") -> Path:
        """Write a model folder (`out/model`, or `out/best`), ready for `ganzoo sample` and `ganzoo push`."""
        from ganzoo.serialization import save_model_folder

        self.model.info["training"] = self.training_summary()
        self.model.info["run"] = str(self.out)
        if self.last_eval is not None:
            self.model.info["metrics"] = self.last_eval
        grids = sorted((self.out / "samples").glob("step-*.png"))
        if self.model.task != "generate" and grids:  # no samples from noise: the last grid of inputs and outputs
            (self.out / name).mkdir(parents=True, exist_ok=True)
            write_bytes(self.out / name / "samples.png", grids[-1].read_bytes())  # before config.json, written last
        return save_model_folder(self.model, self.out / name, training=self.model.info["training"])

    def evaluate(self) -> EvalResult:
        """Evaluate the sampling generator, log the result to metrics.jsonl, export `out/best` when it improves."""
        assert self.evaluator is not None
        result = self.evaluator(self.model)  # GANModel.sample puts the generator in eval mode
        self.last_eval = result.stored_records()
        self._append_metrics(result.log_line(self.step, kimg=round(self.images_seen / 1000, 3),
                                             time_s=round(self.elapsed + self._session_time(), 2)))
        metric = self.options.keep_best
        if metric is not None:
            # RunOptions.validate checked that the evaluation reports this value
            chosen = next(r for r in result.records() if r["name"] == metric)
            value, higher = float(chosen["value"]), bool(chosen["higher_is_better"])
            best = self.best["value"] if self.best is not None else None
            if best is None or (value > best if higher else value < best):
                self.best = {"metric": metric, "value": value, "step": self.step}
                self.export("best")
                logger.info("new best %s %.4g at step %d: exported %s", metric, value, self.step, self.out / "best")
        return result

    def _log(self, t_last: float, steps_since: int) -> dict[str, float]:
        means = {k: v / self._counts[k] for k, v in self._stats.items()}
        if self.world is not None:  # every process logs the same keys at the same steps
            means = self.world.average_stats(means)
        values = {k: v.item() for k, v in means.items()}
        for hook in self.hooks:
            values.update(self._hook(hook, "stats"))
        values.update(self.scheduled_values(self.step - 1))  # what the last step trained with
        now = time.perf_counter()
        record = {"step": self.step, "kimg": round(self.images_seen / 1000, 3),
                  "time_s": round(self.elapsed + self._session_time(), 2),
                  "img_per_s": round(steps_since * self.recipe.batch_size * self.recipe.d_steps / (now - t_last), 1),
                  **{k: float(f"{v:.7g}") for k, v in values.items()}}  # 7 significant digits: lr 1e-5 too
        self._on_main(lambda: self._append_metrics(record))
        self._stats.clear()
        self._counts.clear()
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise self._diverged(f"{bad[0]} is {values[bad[0]]}")
        return record

    def _append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.events is not None:
            self.events.scalars(record)

    def _open_events(self) -> None:
        """Start TensorBoard events for this session (rank 0): the plan as hyperparameters on a run's first session,
        and what an interrupted session logged after the step resumed from marked to be dropped by readers."""
        from ganzoo.trainer.events import open_event_writer

        self.events = open_event_writer(self.out, self.step)
        if self.events is not None and self.step == 0:
            plan = {"architecture": self.model.architecture, "preset": self.run_info.get("preset"),
                    "config": self.model.config.to_dict(), "recipe": self.recipe.to_dict(),
                    "options": self.options.to_dict()}
            self.events.hparams(plan)

    def _diverged(self, what: str) -> TrainingDiverged:
        last = find_checkpoints(self.checkpoint_dir)
        where = f"last good checkpoint: {last[-1][1]}" if last else "no checkpoint was written yet"
        error = TrainingDiverged(f"training diverged: {what} near step {self.step} ({where}); "
                                 "lower the learning rates or change the loss")
        return error if self.world is None else self.world.once(error)  # every process stops at the same step

    def _check_finite(self) -> None:
        """Raise `TrainingDiverged` when a loss since the last log line, or a weight or buffer, is NaN or infinite.

        Called before every checkpoint (one host sync), so no checkpoint is written once training has diverged
        and the newest checkpoint on disk is always a good one to name and to resume from. In a distributed run
        the processes vote, so that all of them stop together.
        """
        tensors = list(self._stats.values())
        tensors += [t for m in (self.G, self.D) for t in m.state_dict().values() if t.is_floating_point()]
        finite = not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
        if self.world is not None:
            finite = self.world.sum_on_cpu([float(not finite)])[0] == 0
        if finite:
            return
        bad = next((k for k, v in self._stats.items() if not torch.isfinite(v).all()), None)
        raise self._diverged(f"{bad} is {self._stats[bad].item()}" if bad else "a loss or weight is not finite")

    def _trim_metrics(self) -> None:
        """Create the run folder if needed; drop metric lines logged after the step training starts from (they are
        logged again), and a last line cut short by a process that died (or a disk that filled) while appending it."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= self.step:
                kept.append(line)
        write_text(path, "".join(line + "\n" for line in kept))

    # ----------------------------------------------------------------------------------------------------------------
    # the loop

    @contextlib.contextmanager
    def _graceful_interrupt(self) -> Iterator[None]:
        """First Ctrl-C (or SIGTERM, as schedulers and launchers send before killing): finish the step, save, stop.
        A second one: stop at once.

        A signal the process was told to ignore (SIG_IGN: a background job of a non-interactive shell, `nohup`,
        a CI runner) stays ignored, as the shell that started us asked. Whatever handlers were there before
        are put back afterwards.
        """
        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True

        previous: dict[int, Any] = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def run(self, progress: ProgressFn | None = None, resume_from: Checkpoint | None = None) -> GANModel:
        """Train until `recipe.steps`; returns the model (also exported to `out/model`)."""
        try:
            return self._run(progress, resume_from)
        finally:
            self.release()

    def _run(self, progress: ProgressFn | None, resume_from: Checkpoint | None) -> GANModel:
        self.check_sampler()  # before the seed and the checkpoint's RNG states are set: it changes neither
        torch.manual_seed(self.options.seed)
        if resume_from is not None:
            self.load_state(resume_from)
            logger.info("resumed from step %d", self.step)
        self._on_main(self._trim_metrics)  # also when a killed run is restarted before its first checkpoint
        self._on_main(self._open_events)
        total = self.recipe.steps
        self._t0 = time.perf_counter()
        t_last, step_last = self._t0, self.step
        if self.step == 0:
            self._on_main(self.save_samples)
        with self._graceful_interrupt():
            while self.step < total:
                self.train_step()
                record = None
                if self.step % self.options.log_every == 0 or self.step == total:
                    record = self._log(t_last, self.step - step_last)
                    t_last, step_last = time.perf_counter(), self.step
                if self.step % self.options.sample_every == 0:
                    self._on_main(self.save_samples)
                evaluate_now = self.evaluator is not None and self.options.eval_every > 0 and (
                    self.step % self.options.eval_every == 0 or self.step == total)
                if evaluate_now:
                    self._on_main(self.evaluate)
                saved = self.step % self.options.checkpoint_every == 0 and self.step < total
                if saved:
                    self.save_checkpoint()
                if progress is not None:
                    progress(self.step, total, record)
                stop = self._stop_requested if self.world is None else self._stop_agreed
                if stop and self.step < total:  # an interrupt during the last step lets the run finish
                    path = self.checkpoint_path() if saved else self.save_checkpoint()
                    self._on_main(self.export)
                    raise TrainingInterrupted(f"interrupted at step {self.step}; checkpoint saved to {path}",
                                              self.step, path)
        if self.step % self.options.sample_every != 0:
            self._on_main(self.save_samples)
        self.save_checkpoint()
        self._on_main(self.export)
        self.model.info.update(training=self.training_summary(), run=str(self.out))  # every process's copy
        return self.model

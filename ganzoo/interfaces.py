"""The contracts between ganzoo's core and its architecture plugins.

A plugin exposes one `Architecture`: a config dataclass (subclass of `ArchConfig`), builders for a
`Generator` and a `Discriminator`, a default `Recipe` and optional presets, hooks and pretrained entries.
Everything a plugin needs from ganzoo is importable from here, `ganzoo.layers` and `ganzoo.losses`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import torch
from torch import nn

from ganzoo.errors import ConfigError

if TYPE_CHECKING:
    from ganzoo.augment import Augment

__all__ = [
    "ArchConfig",
    "Architecture",
    "Discriminator",
    "Generator",
    "Preset",
    "PretrainedCfg",
    "Recipe",
    "Schedule",
    "TrainingContext",
    "TrainingHook",
    "Translator",
    "exposes_w",
]

C = TypeVar("C", bound="JsonConfig")


# ---------------------------------------------------------------------------------------------------------------------
# JSON-able, validated dataclasses
# ---------------------------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Check `value` against the annotation `tp`, converting JSON forms (lists for tuples, ints for floats)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(name, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{name}: {value!r} does not fit {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{name} must have {len(args)} items, got {len(value)}")
            return tuple(_coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        items = [_coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{name}: unsupported field type {_type_name(tp)}")


class JsonConfig:
    """Mixin for dataclasses of JSON-able fields: typed `from_dict`, `to_dict`, `replace` and validation.

    Subclasses override `validate()` to check ranges; it runs after every construction.
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` when a value is out of range. The base class accepts everything type-correct."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from a mapping (e.g. parsed JSON); unknown keys are an error naming them."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(cls.field_names())}"
            )
        return cls(**data)  # type: ignore[call-arg]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists)."""
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated); unknown names are an error."""
        return type(self).from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True)
class ArchConfig(JsonConfig):
    """Hyperparameters every architecture shares; plugins subclass it (as a frozen dataclass) to add their own."""

    img_size: int = 32
    channels: int = 1
    z_dim: int = 100
    num_classes: int = 0

    #: image sizes the architecture can make; empty means any size accepted by `validate`.
    supported_sizes: ClassVar[tuple[int, ...]] = ()
    #: the smallest z_dim: 0 for generators that take no latents (translators without a noise input)
    min_z_dim: ClassVar[int] = 1

    def validate(self) -> None:
        if self.supported_sizes and self.img_size not in self.supported_sizes:
            sizes = ", ".join(map(str, self.supported_sizes))
            raise ConfigError(f"img_size {self.img_size} is not supported by this architecture; use one of {sizes}")
        if self.img_size < 4:
            raise ConfigError(f"img_size must be at least 4, got {self.img_size}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if self.z_dim < self.min_z_dim:
            raise ConfigError(f"z_dim must be at least {self.min_z_dim}, got {self.z_dim}")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0, got {self.num_classes}")


# ---------------------------------------------------------------------------------------------------------------------
# Schedules: pure functions of the step
# ---------------------------------------------------------------------------------------------------------------------

#: what a schedule can change on the optimisers
SCHEDULE_OPTIMIZER_TARGETS = ("g_lr", "d_lr", "g_beta1", "g_beta2", "d_beta1", "d_beta2")
#: a key that schedules several values the same way
SCHEDULE_ALIASES = {"lr": ("g_lr", "d_lr"), "gamma": ("r1_gamma", "r2_gamma"), "beta1": ("g_beta1", "d_beta1"),
           "beta2": ("g_beta2", "d_beta2")}


@dataclass(frozen=True)
class Schedule(JsonConfig):
    """One value's course over training: optional linear warm-up, then cosine or linear to `to` (or constant).

    A recipe names what to schedule (`Recipe.schedules`), e.g. R3GAN's
    `{"lr": {"kind": "cosine", "to": 5e-5}, "gamma": {"kind": "cosine", "to": 0.005}, "beta2": {"to": 0.99}}`.
    Each schedule starts from the recipe's own value of what it schedules (`g_lr`, `r1_gamma`, `betas[1]`, ...),
    after an optional linear warm-up from zero, and moves to `to`, then stays there.

    How long it takes follows the run by default: `fraction` of the run's planned length (`Recipe.steps`; 1: the
    whole run), so one recipe anneals over a 1,000-step and over a 50,000-step run alike. `steps` > 0 fixes the
    length in generator steps instead, whatever the run's length. The warm-up is `warmup` steps, or
    `warmup_fraction` of the planned length. `hold_fraction` keeps the start value for that share of the planned
    length after the warm-up, then the value moves: pix2pix's "constant for the first half, then linear to zero" is
    `{"lr": {"kind": "linear", "to": 0, "hold_fraction": 0.5}}`. A value depends on the step and the planned length
    alone, so a resumed
    run continues exactly (the planned length is the run's plan, and a resume cannot change it while anything
    follows it: see `Recipe.run_relative`).
    """

    kind: Literal["cosine", "linear", "constant"] = "cosine"
    to: float | None = None  # the final value (cosine, linear); not used by constant
    steps: int = 0  # generator steps from the start of training to reaching `to`; 0: `fraction` of the run
    fraction: float = 1.0  # with steps 0: the share of the run's planned length over which `to` is reached
    warmup: int = 0  # generator steps of linear warm-up from 0 to the start value
    warmup_fraction: float = 0.0  # the warm-up as a share of the run's planned length (instead of `warmup`)
    hold_fraction: float = 0.0  # a share of the run's planned length that keeps the start value before moving

    def validate(self) -> None:
        if self.kind == "constant" and self.hold_fraction:
            raise ConfigError("a constant schedule keeps its value anyway: drop hold_fraction")
        if not 0 <= self.hold_fraction < 1:
            raise ConfigError(f"hold_fraction must lie in [0, 1) (pix2pix: 0.5), got {self.hold_fraction}")
        if self.kind == "constant" and self.to is not None:
            raise ConfigError("a constant schedule keeps the recipe's value: drop 'to', or use kind cosine or linear")
        if self.kind != "constant" and self.to is None:
            raise ConfigError(f"a {self.kind} schedule needs 'to', the value to reach")
        if self.to is not None and not math.isfinite(self.to):
            raise ConfigError(f"'to' must be a finite number, got {self.to}")
        if self.steps < 0 or self.warmup < 0:
            raise ConfigError(f"steps and warmup must be >= 0, got {self.steps} and {self.warmup}")
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"fraction must lie in (0, 1] (a share of the run's planned length), got {self.fraction}")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"warmup_fraction must lie in [0, 1), got {self.warmup_fraction}")
        if self.steps and self.fraction != 1:
            raise ConfigError(f"give the length as steps ({self.steps}: fixed) or as fraction ({self.fraction} of "
                              "the run), not both")
        if self.warmup and self.warmup_fraction:
            raise ConfigError("give the warm-up as warmup (steps) or as warmup_fraction (of the run), not both")
        if self.steps and self.warmup >= self.steps:
            raise ConfigError(f"warmup ({self.warmup}) must be shorter than steps ({self.steps})")
        if self.kind != "constant" and not self.steps and self.warmup_fraction >= self.fraction:
            raise ConfigError(f"warmup_fraction ({self.warmup_fraction}) must be below fraction ({self.fraction})")
        if self.hold_fraction and not self.steps and self.warmup_fraction + self.hold_fraction >= self.fraction:
            raise ConfigError(f"warm-up ({self.warmup_fraction}) and hold ({self.hold_fraction}) must end before "
                              f"fraction ({self.fraction}) of the run; shorten the hold")

    @property
    def relative(self) -> bool:
        """Whether the schedule's course depends on the run's planned length (a fraction of it)."""
        return (self.kind != "constant" and not self.steps) or self.warmup_fraction > 0 or self.hold_fraction > 0

    def horizon(self, planned_steps: int) -> float:
        """The step at which a run of `planned_steps` reaches `to`."""
        return float(self.steps) if self.steps else self.fraction * planned_steps

    def warmup_steps(self, planned_steps: int) -> float:
        """The length of the warm-up in a run of `planned_steps`."""
        return self.warmup_fraction * planned_steps if self.warmup_fraction else float(self.warmup)

    def hold_steps(self, planned_steps: int) -> float:
        """How long, after the warm-up, the start value is kept in a run of `planned_steps`."""
        return self.hold_fraction * planned_steps

    def value(self, start: float, step: int, total_steps: int) -> float:
        """The value at generator step `step` (0-based) of a run planned for `total_steps`, starting from `start`."""
        warmup = self.warmup_steps(total_steps)
        if warmup and step < warmup:
            return start * min(1.0, (step + 1) / warmup)
        if self.kind == "constant":
            return start
        assert self.to is not None
        moves = warmup + self.hold_steps(total_steps)  # where the value starts to move towards `to`
        span = max(1.0, self.horizon(total_steps) - moves)
        t = min(1.0, max(0.0, (step - moves) / span))
        if self.kind == "cosine":
            return self.to + (start - self.to) * 0.5 * (1.0 + math.cos(math.pi * t))
        return start + (self.to - start) * t


def parse_schedules(spec: Mapping[str, Any]) -> dict[str, Schedule]:
    """A recipe's `schedules` mapping as `Schedule`s, each checked."""
    parsed: dict[str, Schedule] = {}
    for key, value in spec.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"schedules: keys must be names of what is scheduled, got {key!r}")
        if not isinstance(value, Mapping):
            raise ConfigError(f"schedules.{key} must be a JSON object such as {{\"kind\": \"cosine\", \"to\": 0.1}}")
        try:
            parsed[key] = Schedule.from_dict(value)
        except ConfigError as exc:
            raise ConfigError(f"schedules.{key}: {exc}") from None
    return parsed


def expand_schedules(schedules: Mapping[str, Schedule]) -> dict[str, Schedule]:
    """One schedule per scheduled value: aliases ("lr", "gamma", "beta2", ...) become the values they stand for."""
    out: dict[str, Schedule] = {}
    origin: dict[str, str] = {}
    for key, schedule in schedules.items():
        for target in SCHEDULE_ALIASES.get(key, (key,)):
            if target in out:
                raise ConfigError(f"schedules: {target} is scheduled by both {origin[target]!r} and {key!r}; "
                                  "keep one")
            out[target] = schedule
            origin[target] = key
    return out


@dataclass(frozen=True)
class Recipe(JsonConfig):
    """How an architecture is trained by the shared trainer. Every field is JSON-able and overridable."""

    steps: int = 2000  # generator updates: the run's planned length, which run-relative schedules follow
    batch_size: int = 64
    # loss: a name from the loss zoo (ganzoo.losses) and its regularisers
    loss: str = "non-saturating"
    label_smoothing: float = 0.0  # one-sided: D's target for real images is 1 - label_smoothing
    label_noise: bool = False  # D's targets drawn as real ~ U(0.7, 1.2), fake ~ U(0.0, 0.3)
    gp_weight: float = 0.0  # gradient penalty (WGAN-GP lambda)
    r1_gamma: float = 0.0  # R1 penalty on real images
    r2_gamma: float = 0.0  # R2 penalty on generated images
    r1_interval: int = 1  # lazy regularisation: apply R1 and R2 every N D steps (scaled by N)
    clip_value: float = 0.0  # weight clipping of D after each step (original WGAN)
    drift: float = 0.0  # epsilon * D(x)^2 (progressive GAN)
    pl_weight: float = 0.0  # path-length regularisation of G (StyleGAN2: 2); needs a generator with a W space
    pl_interval: int = 4  # lazy path-length regularisation: every N G steps, scaled by N (StyleGAN2: 4)
    loss_options: dict[str, Any] = field(default_factory=dict)  # any other option of the loss (third-party losses)
    # what a step does with G and D (ganzoo.objectives): "generate" (latents -> images), "paired" (input -> target)
    objective: str = "generate"
    objective_options: dict[str, Any] = field(default_factory=dict)  # the objective's options (e.g. l1_weight)
    # optimisation
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam
    g_betas: tuple[float, float] | None = None  # Adam betas of G alone (None: betas)
    d_betas: tuple[float, float] | None = None  # Adam betas of D alone (None: betas)
    rho: float = 0.99  # RMSprop smoothing (Keras calls it rho, PyTorch alpha)
    eps: float = 1e-8
    momentum: float = 0.0  # SGD
    lr_decay: float = 0.0  # inverse-time decay lr / (1 + lr_decay * step), as Keras' `decay`
    schedules: dict[str, Any] = field(default_factory=dict)  # step-derived schedules (see `Schedule`)
    d_steps: int = 1  # D updates per G update ("for i from 1 to k: train D")
    # stabilisers
    ema_kimg: float = 0.0  # half-life of the generator EMA in thousands of images; 0 disables the EMA
    ema_rampup: float = 0.0  # if > 0, the half-life grows as ema_rampup * images seen until it reaches ema_kimg
    instance_noise: float = 0.0  # std of Gaussian noise on D's inputs at step 0, decayed linearly to 0
    instance_noise_steps: int = 0  # steps over which the instance noise decays; 0 means the whole run
    # augmentation of D's inputs, real and fake alike (ganzoo.augment)
    augment: str = ""  # policy, e.g. "color,translation,cutout" (DiffAugment) or "xflip,rotate90,translation,color"
    augment_p: float | None = None  # probability of each augmentation per image; None: 1, or 0 at the start of ADA
    ada_target: float = 0.0  # > 0: adaptive augmentation, p steers the overfitting signal to this (see ada_signal)
    ada_kimg: float = 500.0  # ADA's speed: thousands of images for p to go from 0 to 1
    ada_interval: int = 4  # ADA: D steps between adjustments of p
    # ADA's overfitting signal (ganzoo.trainer.ada): "held-out" ranks D's outputs on training reals against reals it
    # never trains on (any loss; wants a target near 0.05), "train" is the paper's r_t on training reals (losses with
    # a decision threshold only; target 0.6)
    ada_signal: Literal["held-out", "train"] = "held-out"
    ada_holdout: int = 0  # images held back for the held-out signal; 0: 10 % of the data, clamped to [8, 256]
    # distributed runs: BatchNorm statistics over the global batch rather than each process's rows
    sync_batchnorm: bool = False

    def validate(self) -> None:
        positive = {"steps": self.steps, "batch_size": self.batch_size, "d_steps": self.d_steps,
                    "r1_interval": self.r1_interval, "ada_interval": self.ada_interval,
                    "pl_interval": self.pl_interval}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        for name in ("g_lr", "d_lr", "ada_kimg"):
            value = getattr(self, name)
            if not value > 0 or value != value or value == float("inf"):
                raise ConfigError(f"{name} must be a positive number, got {value}")
        non_negative = ("label_smoothing", "gp_weight", "r1_gamma", "r2_gamma", "clip_value", "drift", "pl_weight",
                        "ema_kimg", "ema_rampup", "instance_noise", "instance_noise_steps", "lr_decay", "momentum",
                        "ada_target")
        for name in non_negative:
            value = getattr(self, name)
            if not value >= 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        if self.label_smoothing >= 1:
            raise ConfigError(f"label_smoothing must be below 1, got {self.label_smoothing}")
        for name in ("betas", "g_betas", "d_betas"):
            betas = getattr(self, name)
            if betas is not None and not all(0 <= b < 1 for b in betas):
                raise ConfigError(f"{name} must lie in [0, 1), got {list(betas)}")
        if not 0 <= self.rho < 1:
            raise ConfigError(f"rho must lie in [0, 1), got {self.rho}")
        if self.augment_p is not None and not 0 <= self.augment_p <= 1:
            raise ConfigError(f"augment_p must lie in [0, 1], got {self.augment_p}")
        if self.ada_target >= 1:
            raise ConfigError(f"ada_target must lie in (0, 1) (0.6 in the ADA paper), got {self.ada_target}")
        if self.ada_holdout < 0:
            raise ConfigError(f"ada_holdout must be 0 (automatic) or a number of images, got {self.ada_holdout}")
        if self.ada_holdout and not (self.ada_target > 0 and self.ada_signal == "held-out"):
            raise ConfigError(f"ada_holdout holds back images for ADA's held-out signal, which this recipe does not "
                              f"use (ada_target {self.ada_target:g}, ada_signal {self.ada_signal}); drop ada_holdout, "
                              "or set ada_target with ada_signal=held-out")
        # the augmentations' names are checked by the trainer (`check_training`): plugins may provide them
        if not self.augment.strip() and (self.ada_target > 0 or self.augment_p is not None):
            raise ConfigError("augment_p and ada_target need augmentations: set augment, e.g. "
                              "augment=xflip,rotate90,translation,color")
        scheduled = expand_schedules(parse_schedules(self.schedules))
        for key, schedule in parse_schedules(self.schedules).items():
            warmup = schedule.warmup_steps(self.steps)
            if schedule.kind != "constant" and warmup and warmup >= schedule.horizon(self.steps):
                raise ConfigError(f"schedules.{key}: its warm-up ({warmup:g} steps) is not shorter than its length "
                                  f"({schedule.horizon(self.steps):g} of the run's {self.steps} steps); shorten it")
            moves = warmup + schedule.hold_steps(self.steps)
            if schedule.hold_fraction and moves >= schedule.horizon(self.steps):
                raise ConfigError(f"schedules.{key}: its warm-up and hold ({moves:g} steps) end after it should reach "
                                  f"'to' (step {schedule.horizon(self.steps):g}); shorten hold_fraction")
        uses_betas = self.g_betas is not None or self.d_betas is not None or any("beta" in k for k in scheduled)
        if self.optimizer != "adam" and uses_betas:
            raise ConfigError(f"betas belong to Adam, and the optimizer is {self.optimizer}; drop them or use adam")

    def run_relative(self) -> list[str]:
        """What in this recipe follows the run's planned length (`steps`): schedules whose length or warm-up is a
        fraction of it, and instance noise decaying over the whole run. A resume cannot change `steps` while this is
        not empty: it would change the course of the steps already trained."""
        names = [f"schedules.{key}" for key, schedule in parse_schedules(self.schedules).items() if schedule.relative]
        if self.instance_noise > 0 and not self.instance_noise_steps:
            names.append("instance_noise")
        return names

    def betas_of(self, net: Literal["g", "d"]) -> tuple[float, float]:
        """Adam's betas for G ("g") or D ("d")."""
        own = self.g_betas if net == "g" else self.d_betas
        return own if own is not None else self.betas

    @property
    def start_augment_p(self) -> float:
        """The augmentation probability at step 0."""
        if self.augment_p is not None:
            return self.augment_p
        return 0.0 if self.ada_target > 0 else 1.0


# ---------------------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------------------


class Generator(nn.Module):
    """Maps latents (and labels, for conditional models) to images in [-1, 1] of shape `img_shape`."""

    z_dim: int
    img_shape: tuple[int, int, int]
    num_classes: int

    def __init__(self, z_dim: int, img_shape: tuple[int, int, int], num_classes: int = 0) -> None:
        super().__init__()
        self.z_dim = int(z_dim)
        self.img_shape = (int(img_shape[0]), int(img_shape[1]), int(img_shape[2]))
        self.num_classes = int(num_classes)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` latents drawn on the CPU from `generator` (so a seed gives the same latents on every device)."""
        return torch.randn(n, self.z_dim, generator=generator)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(z, labels=None)")

    # Optional: an intermediate latent space W (a mapping network z -> w and a synthesis network w -> image). A
    # generator that overrides both methods offers it; path-length regularisation and the `ppl-w` metric need it.

    def style_latents(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The intermediate latents the synthesis network takes for `z`, (N, w_dim) or one per layer
        (N, layers, w_dim), as `forward` makes them in the current mode (style mixing in training), without
        updating anything (no running averages)."""
        raise NotImplementedError(f"{type(self).__name__} has no intermediate latent space W")

    def synthesize(self, ws: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images for intermediate latents `ws` shaped as `style_latents` returns them: `forward(z)` is
        `synthesize(style_latents(z))` at truncation 1 (and no style mixing: eval mode)."""
        raise NotImplementedError(f"{type(self).__name__} has no intermediate latent space W")

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimiser's parameter groups: dicts with "params" and optionally "lr_mult", a factor on the recipe's
        learning rate (schedules and decay included), e.g. 0.01 for a mapping network. Default: one group of all."""
        return [{"params": list(self.parameters())}]


class Translator(Generator):
    """The generator of the image-to-image task: maps input images (and optional noise) to output images in [-1, 1].

    `in_channels` is the input's channel count, `img_shape` the output's (C, H, W) at the training size. A
    translator that is fully convolutional accepts any input whose sides are multiples of `size_multiple`; it
    says which sizes it takes through `check_input_size`. `z_dim` 0 means no noise input (pix2pix's noise is its
    dropout); otherwise `forward` gets latents of (N, z_dim) drawn by `sample_latents`, or None at inference.
    Class labels do not apply (`num_classes` is 0). A super-resolution translator (`Architecture.task` "upscale")
    sets `scale` > 1: its output's sides are `scale` times its input's, so it trains on inputs of `img_shape`'s sides
    divided by `scale`; `scale` 1 (the default) keeps the size.

    A two-way translator (`two_way` True, e.g. CycleGAN's pair of generators) translates domain A to domain B by
    default and B to A when `forward` is given `reverse=True`; a one-way translator takes no `reverse`.
    """

    in_channels: int
    size_multiple: int
    scale: int
    #: whether `forward(images, z, reverse=True)` translates the other way (B to A)
    two_way: bool = False

    def __init__(self, in_channels: int, img_shape: tuple[int, int, int], z_dim: int = 0,
                 size_multiple: int = 1, scale: int = 1) -> None:
        super().__init__(z_dim, img_shape, 0)
        self.in_channels = int(in_channels)
        self.size_multiple = int(size_multiple)
        self.scale = int(scale)

    def forward(self, images: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        raise NotImplementedError(f"{type(self).__name__} must implement forward(images, z=None)")

    def check_input_size(self, height: int, width: int) -> str | None:
        """Why an input of this size cannot be translated (a phrase naming the sizes that can), or None when it can.
        Default: both sides positive multiples of `size_multiple`."""
        m = self.size_multiple
        if height < m or width < m or height % m or width % m:
            return f"sides must be multiples of {m} (at least {m}), e.g. {self.img_shape[1]}x{self.img_shape[2]}"
        return None


def exposes_w(generator: nn.Module | type) -> bool:
    """Whether a generator (or generator class) offers an intermediate latent space: it overrides both
    `Generator.style_latents` and `Generator.synthesize`."""
    cls = generator if isinstance(generator, type) else type(generator)
    return all(callable(getattr(cls, name, None)) and getattr(cls, name) is not getattr(Generator, name)
               for name in ("style_latents", "synthesize"))


class Discriminator(nn.Module):
    """Maps images (and labels) to one real-valued logit per image, shape (N,)."""

    img_shape: tuple[int, int, int]
    num_classes: int

    def __init__(self, img_shape: tuple[int, int, int], num_classes: int = 0) -> None:
        super().__init__()
        self.img_shape = (int(img_shape[0]), int(img_shape[1]), int(img_shape[2]))
        self.num_classes = int(num_classes)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(images, labels=None)")

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimiser's parameter groups: dicts with "params" and optionally "lr_mult", a factor on the recipe's
        learning rate (schedules and decay included), e.g. 0.01 for a mapping network. Default: one group of all."""
        return [{"params": list(self.parameters())}]


@dataclass
class TrainingContext:
    """What the trainer offers its hooks, handed to `TrainingHook.setup` once before the first step.

    Attributes:
        recipe: the run's recipe.
        device: where training runs.
        augment: the augmentation service for D's inputs (`ganzoo.augment.Augment`); a hook may change its
            probability `p` (a tensor on the device), as adaptive augmentation does.
        world_size: processes in the run (1 unless distributed).
        sum_across: in a distributed run, sums a list of floats over all processes (a collective: every process
            must call it at the same step); None in a single process.
    """

    recipe: Recipe
    device: torch.device
    augment: Augment
    world_size: int = 1
    sum_across: Callable[[list[float]], list[float]] | None = None


class TrainingHook:
    """A general hook into the shared trainer, for training that changes over time or reacts to D's outputs.

    Hooks must derive their state from the step counter (or save it in `state_dict`) so that a resumed run
    continues exactly. Every method has a default that does nothing, so a hook overrides only what it needs.
    """

    def setup(self, context: TrainingContext) -> None:
        """Called once before training starts (and before a checkpoint's state is loaded into the hook)."""

    def before_step(self, step: int, images_seen: int, generator: nn.Module, discriminator: nn.Module,
                    ema: nn.Module | None) -> None:
        """Called before every training step (D and G phases)."""

    def process_real(self, images: torch.Tensor) -> torch.Tensor:
        """Transform a batch of real images before D sees it (e.g. to the current resolution)."""
        return images

    def after_d_step(self, d_step: int, stats: Mapping[str, torch.Tensor]) -> None:
        """Called after each D update with the loss's stats (detached tensors on the device: `d_real`, `d_fake`,
        `overfit_signal`, the penalties ...). `d_step` counts D updates from the start of training."""

    def stats(self) -> dict[str, float]:
        """Extra values logged with the losses."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state kept in checkpoints."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""


# ---------------------------------------------------------------------------------------------------------------------
# The architecture spec
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named set of config and recipe overrides, e.g. a configuration from a paper or a lecture."""

    summary: str
    config: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PretrainedCfg:
    """A catalogue entry: trained weights for an architecture, where they can be had and where they came from.

    The weights can be had from two places, each optional: a model folder shipped inside the plugin's own package
    (`files`, a folder relative to the package that holds the plugin's entry-point module) and a Hub repository
    pinned to a commit (`repo_id` at `revision`). `sha256` pins the files of both: they are the same bytes
    (`benchmarks/zoo.py --ship --push` writes and publishes one set). `ganzoo.load(name)` prefers the shipped copy,
    then huggingface_hub's cache, then the Hub.
    """

    name: str  # catalogue name, e.g. "dcgan-mnist"
    repo_id: str  # Hugging Face Hub repository
    revision: str | None = None  # pinned commit id; None while not on the Hub
    sha256: Mapping[str, str] = field(default_factory=dict)  # file name -> sha256 of that file
    dataset: str = ""
    resolution: int = 0
    license: str = ""
    preset: str = ""
    recipe: str = ""  # how to train it, as a command
    metrics: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    files: str = ""  # shipped model folder, relative to the plugin's package ("pretrained/NAME"); "" when none

    @property
    def shipped(self) -> bool:
        """The entry declares a model folder shipped in its plugin's package."""
        return bool(self.files)

    @property
    def on_hub(self) -> bool:
        """The entry is pinned to a commit of its Hub repository."""
        return self.revision is not None

    @property
    def published(self) -> bool:
        """Its weights can be had somewhere: shipped in the package, or pinned on the Hub."""
        return self.shipped or self.on_hub


@dataclass(frozen=True)
class Architecture:
    """Everything ganzoo needs to know about one architecture; a plugin's entry point points at one of these."""

    name: str
    summary: str
    paper: str
    config_cls: type[ArchConfig]
    build_generator: Callable[[Any], Generator]
    build_discriminator: Callable[[Any], Discriminator]
    recipe: Recipe = field(default_factory=Recipe)
    presets: Mapping[str, Preset] = field(default_factory=dict)
    pretrained: Sequence[PretrainedCfg] = ()
    make_hooks: Callable[[Any, Recipe], Sequence[TrainingHook]] | None = None
    #: checks a config and a recipe together, raising ConfigError (one line: the problem and the fix)
    validate: Callable[[Any, Recipe], None] | None = None
    conditional: bool = False  # True when the architecture needs labels (num_classes > 0)
    test_config: Mapping[str, Any] = field(default_factory=dict)  # a tiny config for fast tests (ganzoo.testing)
    #: what the generator does: "generate" (latents, and labels when conditional, to images: a `Generator`) or
    #: "translate" (images, and optional noise, to images: a `Translator`, trained on paired data) or "upscale"
    #: (low-resolution images to high-resolution ones: a `Translator` with `scale` > 1, trained on ``srN:`` data)
    task: Literal["generate", "translate", "upscale"] = "generate"

    def make_config(self, preset: str | None = None, **overrides: Any) -> ArchConfig:
        """The default config, with a preset's values and then `overrides` applied (all validated)."""
        base = dict(self._preset(preset).config) if preset else {}
        return self.config_cls.from_dict({**base, **overrides})

    def make_recipe(self, preset: str | None = None, **overrides: Any) -> Recipe:
        """The default recipe, with a preset's values and then `overrides` applied (all validated)."""
        base = self.recipe.to_dict()
        if preset:
            base.update(self._preset(preset).recipe)
        return Recipe.from_dict({**base, **overrides})

    def hooks(self, config: ArchConfig, recipe: Recipe) -> list[TrainingHook]:
        """The architecture's training hooks for this config and recipe."""
        return list(self.make_hooks(config, recipe)) if self.make_hooks else []

    def check(self, config: ArchConfig, recipe: Recipe) -> None:
        """Raise ConfigError when this config and recipe cannot be trained together (`validate`, if any)."""
        if self.validate is not None:
            self.validate(config, recipe)

    def _preset(self, preset: str) -> Preset:
        from ganzoo.errors import unknown_name

        if preset not in self.presets:
            raise unknown_name(f"preset of {self.name}", preset, self.presets)
        return self.presets[preset]

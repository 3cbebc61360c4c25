"""The loss zoo. A `GANLoss` owns the maths of both phases and its regularisers; the trainer only calls it.

Each loss maps D's logits to an adversarial term; the base class adds the regularisers any loss may use:
gradient penalty (Gulrajani et al. 2017), R1 (Mescheder et al. 2018) with lazy intervals, weight clipping
(Arjovsky et al. 2017) and the drift term (Karras et al. 2018). Stats are returned as detached tensors so the
trainer never has to synchronise with the device to log them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import ConfigError, unknown_name
from ganzoo.sharding import draw_rows

__all__ = [
    "GANLoss",
    "HingeLoss",
    "LeastSquaresLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "WassersteinLoss",
    "build_loss",
    "gradient_penalty",
    "list_losses",
    "r1_penalty",
    "register_loss",
]

Stats = dict[str, torch.Tensor]
DFn = Callable[..., torch.Tensor]


def _input_grad(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(D: DFn, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
                     target: float = 1.0) -> torch.Tensor:
    """E[(||grad D(x_hat)|| - target)^2] at random interpolates x_hat between real and fake images."""
    ones = [1] * (real.dim() - 1)
    eps = draw_rows(real.shape[0], lambda m: torch.rand(m, *ones, device=real.device, dtype=real.dtype))
    # under bf16 autocast G's fakes come out in bf16: interpolate in the real images' precision
    x_hat = torch.lerp(fake.detach().to(real.dtype), real.detach(), eps).requires_grad_(True)
    grad = _input_grad(D(x_hat, labels), x_hat)
    return (grad.norm(2, dim=1) - target).square().mean()


def r1_penalty(D: DFn, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """E[||grad D(x)||^2] at real images (multiply by gamma / 2 for the R1 term)."""
    x = real.detach().requires_grad_(True)
    grad = _input_grad(D(x, labels), x)
    return grad.square().sum(dim=1).mean()


class GANLoss:
    """Base class: adversarial terms from subclasses, regularisers here.

    Args:
        gp_weight: weight of the gradient penalty (lambda); 0 disables it.
        r1_gamma: R1 weight gamma (the term is gamma / 2 * E||grad||^2); 0 disables it.
        r1_interval: lazy regularisation, apply R1 every this many D steps, scaled by the interval.
        clip_value: clip every D parameter to [-c, c] after each D step; 0 disables it.
        drift: weight of E[D(x)^2] on real logits; 0 disables it.
    """

    name = ""

    def __init__(self, *, gp_weight: float = 0.0, r1_gamma: float = 0.0, r1_interval: int = 1,
                 clip_value: float = 0.0, drift: float = 0.0) -> None:
        self.gp_weight = float(gp_weight)
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = int(r1_interval)
        self.clip_value = float(clip_value)
        self.drift = float(drift)

    # subclasses define the adversarial terms on logits
    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        raise NotImplementedError

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_loss(self, D: DFn, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
               step: int = 0, penalty_D: DFn | None = None) -> tuple[torch.Tensor, Stats]:
        """D's loss on a real and a fake batch (fake is detached here), with its regularisers.

        `penalty_D` is the D the gradient penalty and R1 call (default `D`). They differentiate a gradient (double
        backward), which a `torch.compile`d module does not support, so the trainer passes the uncompiled D there.
        """
        fake = fake.detach()
        penalty_D = penalty_D or D
        real_logits = D(real, labels)
        fake_logits = D(fake, labels)
        loss, stats = self.d_adversarial(real_logits, fake_logits)
        stats["d_real"] = real_logits.detach().mean()
        stats["d_fake"] = fake_logits.detach().mean()
        if self.gp_weight > 0:
            gp = gradient_penalty(penalty_D, real, fake, labels)
            loss = loss + self.gp_weight * gp
            stats["gradient_penalty"] = gp.detach()
        if self.r1_gamma > 0 and step % self.r1_interval == 0:
            r1 = r1_penalty(penalty_D, real, labels)
            loss = loss + (self.r1_gamma / 2) * self.r1_interval * r1
            stats["r1_penalty"] = r1.detach()
        if self.drift > 0:
            loss = loss + self.drift * real_logits.square().mean()
        stats["d_loss"] = loss.detach()
        return loss, stats

    def g_loss(self, D: DFn, fake: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, Stats]:
        """G's loss on a fake batch (gradients flow through D into G)."""
        loss = self.g_adversarial(D(fake, labels))
        return loss, {"g_loss": loss.detach()}

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        """Applied after each D optimiser step: weight clipping when enabled."""
        if self.clip_value > 0:
            for p in D.parameters():
                p.clamp_(-self.clip_value, self.clip_value)


class _BCELoss(GANLoss):
    """Shared D side of the cross-entropy losses, with the seed lectures' target tricks."""

    def __init__(self, *, label_smoothing: float = 0.0, label_noise: bool = False, **regularisers: Any) -> None:
        super().__init__(**regularisers)
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.label_noise = bool(label_noise)

    def _targets(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        if self.label_noise:  # real ~ U(0.7, 1.2), fake ~ U(0.0, 0.3)
            low = 0.7 if real else 0.0
            width = 0.5 if real else 0.3
            noise = draw_rows(logits.shape[0], lambda m: torch.rand(m, *logits.shape[1:], device=logits.device,
                                                                   dtype=logits.dtype))
            return noise.mul_(width).add_(low)
        value = (1.0 - self.label_smoothing) if real else 0.0
        return torch.full_like(logits, value)

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        # -[log D(x) + log(1 - D(G(z)))], written on logits for numerical stability
        loss_real = F.binary_cross_entropy_with_logits(real_logits, self._targets(real_logits, True))
        loss_fake = F.binary_cross_entropy_with_logits(fake_logits, self._targets(fake_logits, False))
        return loss_real + loss_fake, {}


class MinimaxLoss(_BCELoss):
    """Goodfellow et al. 2014 as stated: G minimises log(1 - D(G(z))). Saturates early in training."""

    name = "minimax"

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # log(1 - sigmoid(l)) = -softplus(l)


class NonSaturatingLoss(_BCELoss):
    """Goodfellow et al. 2014's practical variant: G maximises log D(G(z))."""

    name = "non-saturating"

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()  # -log sigmoid(l)


class HingeLoss(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    name = "hinge"

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean(), {}

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class WassersteinLoss(GANLoss):
    """Wasserstein critic loss (Arjovsky et al. 2017); pair with gp_weight or clip_value."""

    name = "wasserstein"

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        estimate = real_logits.mean() - fake_logits.mean()
        return -estimate, {"wasserstein": estimate.detach()}

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresLoss(GANLoss):
    """Least-squares GAN (Mao et al. 2017) with targets a = 0 (fake), b = c = 1 (real)."""

    name = "least-squares"

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean()), {}

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (fake_logits - 1).square().mean()


_LOSSES: dict[str, type[GANLoss]] = {}


def register_loss(cls: type[GANLoss]) -> type[GANLoss]:
    """Add a loss class to the zoo under `cls.name` (a duplicate name is an error)."""
    if not cls.name:
        raise ConfigError(f"{cls.__name__} needs a non-empty `name` to be registered")
    if cls.name in _LOSSES and _LOSSES[cls.name] is not cls:
        raise ConfigError(f"loss {cls.name!r} is already registered by {_LOSSES[cls.name].__qualname__}")
    _LOSSES[cls.name] = cls
    return cls


for _cls in (MinimaxLoss, NonSaturatingLoss, HingeLoss, WassersteinLoss, LeastSquaresLoss):
    register_loss(_cls)


def _third_party_losses() -> dict[str, type[GANLoss]]:
    from ganzoo.registry import LOSS_GROUP, load_record, plugin_records

    found = {}
    for record in plugin_records(LOSS_GROUP):
        cls = load_record(record)
        if isinstance(cls, type) and issubclass(cls, GANLoss):
            found[record.name] = cls
    return found


def list_losses() -> list[str]:
    """Names of the built-in losses and of those registered under the `ganzoo.losses` entry point."""
    return sorted({**_third_party_losses(), **_LOSSES})


def build_loss(name: str, **options: Any) -> GANLoss:
    """Instantiate a loss by name; options a loss does not take are an error naming them."""
    cls = _LOSSES.get(name) or _third_party_losses().get(name)
    if cls is None:
        raise unknown_name("loss", name, list_losses())
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"loss {name!r} does not take these options: {exc}") from None


def loss_from_recipe(recipe: Any) -> GANLoss:
    """Build the recipe's loss, passing only the options that differ from their defaults."""
    options: dict[str, Any] = {}
    defaults = {"label_smoothing": 0.0, "label_noise": False, "gp_weight": 0.0, "r1_gamma": 0.0,
                "r1_interval": 1, "clip_value": 0.0, "drift": 0.0}
    for key, default in defaults.items():
        value = getattr(recipe, key)
        if value != default:
            options[key] = value
    return build_loss(recipe.loss, **options)

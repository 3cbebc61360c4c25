"""The loss zoo. A `GANLoss` owns the maths of both phases and its regularisers; the trainer only calls it.

Each loss maps D's logits to an adversarial term; the base class adds the regularisers any loss may use:
gradient penalty (Gulrajani et al. 2017), R1 and R2 (Mescheder et al. 2018) with lazy intervals, weight clipping
(Arjovsky et al. 2017), the drift term (Karras et al. 2018) and, on G's side, path-length regularisation (Karras et
al. 2020) for generators with an intermediate latent space. Stats are returned as detached tensors so the trainer
never has to synchronise with the device to log them. What a regulariser carries from step to step (the path
length's moving target) lives in the loss's `running` module of buffers, which the trainer checkpoints.

What each phase sees: D's phase gets a real and a fake batch; G's phase gets the fake batch and, for losses that
compare the two (relativistic losses set `uses_real_in_g`), the real batch of the same step. A loss's options are
its constructor's keyword arguments; a recipe passes the common ones as its own fields (`r1_gamma`, ...) and any
other through `loss_options`. An option the loss keeps as a float attribute of the same name can be scheduled
(`Recipe.schedules`).
"""

from __future__ import annotations

import inspect
import math
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
    "RelativisticAverageLoss",
    "RelativisticLoss",
    "WassersteinLoss",
    "build_loss",
    "gradient_penalty",
    "list_losses",
    "logits_and_input_grad",
    "loss_from_recipe",
    "path_lengths",
    "loss_options",
    "r1_penalty",
    "r2_penalty",
    "register_loss",
]

Stats = dict[str, torch.Tensor]
DFn = Callable[..., torch.Tensor]


def logits_and_input_grad(D: DFn, x: torch.Tensor, labels: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """D's logits at images `x` and the gradient of their sum with respect to `x`, flattened per image, from one
    forward pass.

    The gradient keeps its graph (a double backward), so a penalty built from it trains D, and the logits serve the
    adversarial term of the same step. `x` is the batch as the loss received it: whatever D does to its input first
    (the trainer's augmentation and instance noise) lies between `x` and the layers, and the gradient goes through
    it. A D that offers a faster way to compute both (the trainer's compiled D has a `logits_and_input_grad` method)
    is asked for it.
    """
    fast = getattr(D, "logits_and_input_grad", None)
    if fast is not None:
        return fast(x, labels)
    x = x.detach().requires_grad_(True)
    logits = D(x, labels)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return logits, grad.flatten(1)


def gradient_penalty(D: DFn, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
                     target: float = 1.0) -> torch.Tensor:
    """E[(||grad D(x_hat)|| - target)^2] at random interpolates x_hat between real and fake images."""
    ones = [1] * (real.dim() - 1)
    eps = draw_rows(real.shape[0], lambda m: torch.rand(m, *ones, device=real.device, dtype=real.dtype))
    # under bf16 autocast G's fakes come out in bf16: interpolate in the real images' precision
    x_hat = torch.lerp(fake.detach().to(real.dtype), real.detach(), eps)
    _, grad = logits_and_input_grad(D, x_hat, labels)
    return (grad.norm(2, dim=1) - target).square().mean()


def r1_penalty(D: DFn, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """E[||grad D(x)||^2] at real images (multiply by gamma / 2 for the R1 term), with a forward pass of its own.

    `GANLoss.d_loss` takes R1 and R2 from the forward pass that gives the adversarial logits instead (the same
    value, one pass fewer); this function is that computation on its own, for use outside a loss.
    """
    _, grad = logits_and_input_grad(D, real, labels)
    return _squared_norm(grad)


def r2_penalty(D: DFn, fake: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """E[||grad D(G(z))||^2] at generated images (multiply by gamma / 2 for the R2 term).

    The same zero-centred penalty as R1, on the other distribution; R3GAN (Huang et al. 2024) uses both.
    """
    return r1_penalty(D, fake, labels)


def path_lengths(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """||J_w^T y|| per sample (N,): how far G's image moves, in a random direction y, per unit step in w.

    w are G's intermediate latents for `z` (`Generator.style_latents`), the images `G.synthesize(w)`, and
    y ~ N(0, I) / sqrt(H * W) a random image of the same shape, so the length does not grow with the resolution
    (Karras et al. 2020, section 3.2). With one w per layer, the squared lengths are averaged over the layers. The
    result keeps its graph (a double backward), so a penalty built from it trains G.
    """
    ws = G.style_latents(z, labels)
    if not ws.requires_grad:  # G's weights do not need gradients: still measure the path length
        ws = ws.detach().requires_grad_(True)
    images = G.synthesize(ws, labels)
    shape = images.shape[1:]
    y = draw_rows(images.shape[0], lambda m: torch.randn(m, *shape, device=images.device, dtype=images.dtype))
    y = y / math.sqrt(shape[-2] * shape[-1])
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.float().square().sum(dim=-1).reshape(grad.shape[0], -1).mean(dim=1).sqrt()


def _squared_norm(grad: torch.Tensor) -> torch.Tensor:
    """E over the batch of ||grad||^2, for a gradient flattened per image."""
    return grad.square().sum(dim=1).mean()


class GANLoss:
    """Base class: adversarial terms from subclasses, regularisers here.

    Subclasses define `d_adversarial(real_logits, fake_logits)` and `g_adversarial(fake_logits)`; one that sets
    `uses_real_in_g = True` gets `g_adversarial(fake_logits, real_logits)` instead. Options of a subclass are
    keyword arguments of its `__init__` (passing the rest on to this one); keep each as an attribute of the same
    name so that a schedule can change it as training goes.

    Args:
        gp_weight: weight of the gradient penalty (lambda); 0 disables it.
        r1_gamma: R1 weight gamma (the term is gamma / 2 * E||grad D(real)||^2); 0 disables it.
        r2_gamma: R2 weight gamma (gamma / 2 * E||grad D(fake)||^2); 0 disables it.
        r1_interval: lazy regularisation, apply R1 and R2 every this many D steps, scaled by the interval.
        clip_value: clip every D parameter to [-c, c] after each D step; 0 disables it.
        drift: weight of E[D(x)^2] on real logits; 0 disables it.
        pl_weight: weight of the path-length penalty E[(||J_w^T y|| - a)^2] on G (StyleGAN2: 2); 0 disables it. G
            must expose its intermediate latents (`Generator.style_latents` and `synthesize`).
        pl_interval: lazy regularisation, apply it every this many G steps, scaled by the interval (StyleGAN2: 4).
        pl_decay: the moving target a follows the mean path length as an exponential moving average with this
            weight on each new mean (StyleGAN2: 0.01).
        pl_batch_shrink: the penalty's batch is G's batch divided by this (StyleGAN2: 2), from latents of its own.
    """

    name = ""
    #: G's phase needs D's logits on the real batch too (relativistic losses)
    uses_real_in_g = False
    #: D's fixed decision threshold on its logits, where the loss has one: D judges an image real when it scores it
    #: above (0 for the cross-entropy and hinge losses, 0.5 for least squares). None for a loss that does not change
    #: when D adds a constant to every output (relativistic, Wasserstein): D's offset is free there, and D's ranking
    #: of reals against fakes is used instead. It decides the overfitting signal ADA follows (`overfit_signal`).
    decision_threshold: float | None = None
    #: why adaptive augmentation is refused under this loss, where it is: a loss under which no overfitting signal
    #: was shown to make p rise on tiny data and stay low on ample data (benchmarks/ada-signal/RESULTS.md)
    ada_refusal: str | None = None

    def __init__(self, *, gp_weight: float = 0.0, r1_gamma: float = 0.0, r2_gamma: float = 0.0,
                 r1_interval: int = 1, clip_value: float = 0.0, drift: float = 0.0, pl_weight: float = 0.0,
                 pl_interval: int = 4, pl_decay: float = 0.01, pl_batch_shrink: int = 2) -> None:
        for option, value in {"gp_weight": gp_weight, "r1_gamma": r1_gamma, "r2_gamma": r2_gamma,
                              "clip_value": clip_value, "drift": drift, "pl_weight": pl_weight}.items():
            if not float(value) >= 0:
                raise ConfigError(f"{option} must be >= 0, got {value}")
        for option, count in {"r1_interval": r1_interval, "pl_interval": pl_interval,
                              "pl_batch_shrink": pl_batch_shrink}.items():
            if int(count) < 1:
                raise ConfigError(f"{option} must be at least 1, got {count}")
        if not 0 < float(pl_decay) <= 1:
            raise ConfigError(f"pl_decay must lie in (0, 1] (StyleGAN2: 0.01), got {pl_decay}")
        self.gp_weight = float(gp_weight)
        self.r1_gamma = float(r1_gamma)
        self.r2_gamma = float(r2_gamma)
        self.r1_interval = int(r1_interval)
        self.clip_value = float(clip_value)
        self.drift = float(drift)
        self.pl_weight = float(pl_weight)
        self.pl_interval = int(pl_interval)
        self.pl_decay = float(pl_decay)
        self.pl_batch_shrink = int(pl_batch_shrink)
        #: what the regularisers carry from step to step, as buffers: the trainer moves them to the training device,
        #: saves them in checkpoints (under "loss.") and averages them over the processes of a distributed run
        self.running = nn.Module()
        self.running.register_buffer("pl_mean", torch.zeros(()))  # the path-length target a

    # subclasses define the adversarial terms on logits
    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        raise NotImplementedError

    def g_adversarial(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def overfit_signal(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """How sure D is that the real images are real, in [-1, 1]: the overfitting heuristic r that adaptive
        augmentation steers its probability by (`ganzoo.trainer.ada`), for one batch.

        With a `decision_threshold` t it is E[sign(D(x) - t)] over the real batch, Karras et al. 2020's r_t. Without
        one it is E[sign(D(x_i) - D(G(z_j)))] over every pair of a real and a fake image of the batch (2 AUC - 1 of D
        as a classifier), the comparison relativistic losses make: unchanged when D adds a constant to every output
        (or scales them), 0 when D ranks reals and fakes at random, 1 when it ranks every real above every fake.
        Override it to report another heuristic, with 1 meaning D is sure of every real.
        """
        if self.decision_threshold is not None:
            return (real_logits - self.decision_threshold).sign().mean()
        return (real_logits.flatten()[:, None] - fake_logits.flatten()[None, :]).sign().mean()

    def d_loss(self, D: DFn, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
               step: int = 0, penalty_D: DFn | None = None) -> tuple[torch.Tensor, Stats]:
        """D's loss on a real and a fake batch (fake is detached here), with its regularisers.

        On a step where R1 (R2) is due, D runs once on the real (fake) batch: the adversarial logits and the penalty's
        input gradient come from that one forward pass (`logits_and_input_grad`). `penalty_D` is the D that the
        gradient penalty calls at its interpolates, a pass of its own (default `D`).
        """
        fake = fake.detach()
        penalty_D = penalty_D or D
        due = step % self.r1_interval == 0
        real_grad = fake_grad = None
        if due and self.r1_gamma > 0:
            real_logits, real_grad = logits_and_input_grad(D, real, labels)
        else:
            real_logits = D(real, labels)
        if due and self.r2_gamma > 0:
            fake_logits, fake_grad = logits_and_input_grad(D, fake, labels)
        else:
            fake_logits = D(fake, labels)
        loss, stats = self._checked("d_adversarial", self.d_adversarial(real_logits, fake_logits))
        stats["d_real"] = real_logits.detach().mean()
        stats["d_fake"] = fake_logits.detach().mean()
        # the overfitting heuristic adaptive augmentation follows (Karras et al. 2020), in this loss's terms
        stats["overfit_signal"] = self.overfit_signal(real_logits.detach().float(), fake_logits.detach().float())
        if self.gp_weight > 0:
            gp = gradient_penalty(penalty_D, real, fake, labels)
            loss = loss + self.gp_weight * gp
            stats["gradient_penalty"] = gp.detach()
        if real_grad is not None:
            r1 = _squared_norm(real_grad)
            loss = loss + (self.r1_gamma / 2) * self.r1_interval * r1
            stats["r1_penalty"] = r1.detach()
        if fake_grad is not None:
            r2 = _squared_norm(fake_grad)
            loss = loss + (self.r2_gamma / 2) * self.r1_interval * r2
            stats["r2_penalty"] = r2.detach()
        if self.drift > 0:
            loss = loss + self.drift * real_logits.square().mean()
        stats["d_loss"] = loss.detach()
        return loss, stats

    def g_loss(self, D: DFn, fake: torch.Tensor, labels: torch.Tensor | None = None, *,
               real: torch.Tensor | None = None, step: int = 0) -> tuple[torch.Tensor, Stats]:
        """G's loss on a fake batch (gradients flow through D into G).

        `real` is the step's real batch: the trainer always passes it; losses with `uses_real_in_g` need it.
        `step` counts generator updates.
        """
        fake_logits = D(fake, labels)
        if self.uses_real_in_g:
            if real is None:
                raise ConfigError(f"loss {self.name!r} compares fakes with reals: g_loss needs the real batch "
                                  "(call g_loss(D, fake, labels, real=real))")
            loss = self._checked("g_adversarial", self.g_adversarial(fake_logits, D(real.detach(), labels)))
        else:
            loss = self._checked("g_adversarial", self.g_adversarial(fake_logits))
        return loss, {"g_loss": loss.detach()}

    def g_regularizer(self, G: nn.Module, batch_size: int, labels: torch.Tensor | None = None,
                      step: int = 0) -> tuple[torch.Tensor | None, Stats]:
        """G's regularisers on the steps they are due: the term to add to G's loss (None when nothing is due) and
        its stats. `batch_size` is the rows of G's batch in this process; `step` counts generator updates.

        Path-length regularisation (Karras et al. 2020): on every `pl_interval`-th G step, the path lengths L of
        `batch_size // pl_batch_shrink` fresh latents (`path_lengths`), the target a <- a + pl_decay * (mean L - a),
        and the term pl_weight * pl_interval * E[(L - a)^2] (a not detached from this batch's mean, as in StyleGAN2).
        """
        if self.pl_weight <= 0 or step % self.pl_interval:
            return None, {}
        device = self.running.pl_mean.device
        n = max(1, batch_size // self.pl_batch_shrink)
        z = draw_rows(n, G.sample_latents).to(device)
        lengths = path_lengths(G, z, None if labels is None else labels[:n])
        target = self.running.pl_mean.lerp(lengths.mean(), self.pl_decay)
        self.running.pl_mean.copy_(target.detach())
        penalty = (lengths - target).square().mean()
        return penalty * (self.pl_weight * self.pl_interval), {"pl_penalty": penalty.detach(),
                                                                "pl_length": lengths.detach().mean()}

    def _checked(self, phase: str, result: Any) -> Any:
        """The first result of `d_adversarial` and of `g_adversarial`, checked against the plugin contract: a loss
        that breaks it is named in one line (`ganzoo.contract`). Types and shapes only: nothing waits on the device."""
        checked = self.__dict__.setdefault("_contract_checked", set())
        if phase not in checked:
            from ganzoo.contract import check_adversarial

            result = check_adversarial(result, self, phase)
            checked.add(phase)
        return result

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        """Applied after each D optimiser step: weight clipping when enabled."""
        if self.clip_value > 0:
            for p in D.parameters():
                p.clamp_(-self.clip_value, self.clip_value)


class _BCELoss(GANLoss):
    """Shared D side of the cross-entropy losses, with the seed lectures' target tricks."""

    decision_threshold = 0.0  # sigmoid(0) = 1/2

    def __init__(self, *, label_smoothing: float = 0.0, label_noise: bool = False, **regularisers: Any) -> None:
        super().__init__(**regularisers)
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        if label_noise and label_smoothing > 0:
            raise ConfigError("label_noise draws D's targets itself (real ~ U(0.7, 1.2), fake ~ U(0, 0.3)), which "
                              "would leave label_smoothing unused; set one of them")
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
    decision_threshold = 0.0  # halfway between the margins -1 and +1

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean(), {}

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class WassersteinLoss(GANLoss):
    """Wasserstein critic loss (Arjovsky et al. 2017); pair with gp_weight or clip_value."""

    name = "wasserstein"
    ada_refusal = ("no overfitting signal was shown to work under it: on 64 images its critic told its training images "
                   "from held-back ones no better than chance (held-out signal 0.00, where every other loss read "
                   "0.05-0.09), so p did not rise")

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        estimate = real_logits.mean() - fake_logits.mean()
        return -estimate, {"wasserstein": estimate.detach()}

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresLoss(GANLoss):
    """Least-squares GAN (Mao et al. 2017) with targets a = 0 (fake), b = c = 1 (real)."""

    name = "least-squares"
    decision_threshold = 0.5  # halfway between the targets 0 and 1

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean()), {}

    def g_adversarial(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (fake_logits - 1).square().mean()


class RelativisticLoss(GANLoss):
    """Relativistic pairing GAN, RpGAN (Jolicoeur-Martineau 2018; the loss of R3GAN, Huang et al. 2024).

    D learns that each real image is more real than the fake it is paired with: softplus(-(D(x) - D(G(z))));
    G the opposite. Pair with R1 and R2 (`r1_gamma`, `r2_gamma`), as R3GAN does.
    """

    name = "relativistic"
    uses_real_in_g = True

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        return F.softplus(fake_logits - real_logits).mean(), {}

    def g_adversarial(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        assert real_logits is not None
        return F.softplus(real_logits - fake_logits).mean()


class RelativisticAverageLoss(GANLoss):
    """Relativistic average GAN, RaGAN with the cross-entropy (RaSGAN; Jolicoeur-Martineau 2018).

    Each image is compared with the mean logit of the other kind in its batch: D wants D(x) - mean D(G(z)) high and
    D(G(z)) - mean D(x) low, G the reverse, so both batches carry G's gradient. In a distributed run the means are
    over each process's rows.
    """

    name = "relativistic-average"
    uses_real_in_g = True

    @staticmethod
    def _terms(winner: torch.Tensor, loser: torch.Tensor) -> torch.Tensor:
        # -log sigmoid(winner - mean loser) - log(1 - sigmoid(loser - mean winner))
        return F.softplus(loser.mean() - winner).mean() + F.softplus(loser - winner.mean()).mean()

    def d_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        return self._terms(real_logits, fake_logits), {}

    def g_adversarial(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        assert real_logits is not None
        return self._terms(fake_logits, real_logits)


_LOSSES: dict[str, type[GANLoss]] = {}


def register_loss(cls: type[GANLoss]) -> type[GANLoss]:
    """Add a loss class to the zoo under `cls.name` (a duplicate name is an error)."""
    if not cls.name:
        raise ConfigError(f"{cls.__name__} needs a non-empty `name` to be registered")
    if cls.name in _LOSSES and _LOSSES[cls.name] is not cls:
        raise ConfigError(f"loss {cls.name!r} is already registered by {_LOSSES[cls.name].__qualname__}")
    _LOSSES[cls.name] = cls
    return cls


for _cls in (MinimaxLoss, NonSaturatingLoss, HingeLoss, WassersteinLoss, LeastSquaresLoss, RelativisticLoss,
             RelativisticAverageLoss):
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


def _loss_class(name: str) -> type[GANLoss]:
    cls = _LOSSES.get(name) or _third_party_losses().get(name)
    if cls is None:
        raise unknown_name("loss", name, list_losses())
    return cls


def loss_options(name: str) -> dict[str, Any]:
    """The options a loss takes (keyword arguments of its constructor and of the classes it passes them on to),
    with their defaults."""
    options: dict[str, Any] = {}
    for klass in _loss_class(name).__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        forwards = False
        for param in list(inspect.signature(init).parameters.values())[1:]:
            if param.kind is param.VAR_KEYWORD:
                forwards = True
            elif param.kind is not param.VAR_POSITIONAL:
                options.setdefault(param.name, param.default)
        if not forwards:
            break
    return options


def build_loss(name: str, **options: Any) -> GANLoss:
    """Instantiate a loss by name; options a loss does not take are an error naming them and the ones it takes."""
    cls = _loss_class(name)
    known = loss_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"loss {name!r} does not take {', '.join(unknown)}; its options are "
                          f"{', '.join(sorted(known)) or 'none'}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"loss {name!r}: bad option value ({exc})") from None


#: recipe fields that are loss options, with the value that means "off" (only options that differ are passed on)
RECIPE_LOSS_FIELDS = {"label_smoothing": 0.0, "label_noise": False, "gp_weight": 0.0, "r1_gamma": 0.0,
                      "r2_gamma": 0.0, "r1_interval": 1, "clip_value": 0.0, "drift": 0.0, "pl_weight": 0.0,
                      "pl_interval": 4}


def loss_from_recipe(recipe: Any) -> GANLoss:
    """Build the recipe's loss: its loss-option fields that differ from their defaults, then `loss_options`."""
    options: dict[str, Any] = {}
    for key, default in RECIPE_LOSS_FIELDS.items():
        value = getattr(recipe, key)
        if value != default:
            options[key] = value
    extra = dict(getattr(recipe, "loss_options", {}) or {})
    clash = sorted(set(extra) & set(RECIPE_LOSS_FIELDS))
    if clash:
        raise ConfigError(f"loss_options sets {', '.join(clash)}, which is a recipe field; set it directly "
                          f"(--set {clash[0]}=...) instead")
    return build_loss(recipe.loss, **options, **extra)

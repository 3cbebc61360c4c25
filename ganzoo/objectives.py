"""Objectives: what one training step does with which networks, so that one trainer serves every task.

The trainer owns the mechanics of a step (batches, optimisers, EMA, schedules, checkpoints, DDP, logging); an
`Objective` owns its content: how G is called on a batch (`generate`), D's phase and G's phase. Each phase returns
(loss, stats) as a `GANLoss` does, and the objective asks the recipe's `GANLoss` for the adversarial maths, so a
loss, its regularisers and its schedules work under any objective.

Built in:

* ``generate``: the task of unconditional and class-conditional GANs. G maps latents (and labels) to images; the
  batch's condition is its labels. This is what the trainer always did.
* ``paired``: image-to-image translation on paired data (pix2pix). G maps the input image (the batch's condition)
  to an output, D judges (output, input) pairs, and G's loss adds ``l1_weight`` times the L1 distance to the
  target; ``adversarial=False`` trains G on the L1 term alone, without ever updating D.

What an objective carries from step to step (a history pool of generated images, say) lives in its `running`
module as buffers: the trainer moves it to the device, checkpoints it under "objective." and averages it over the
processes of a distributed run, as it does the loss's `running`. Third parties register objectives under the
``ganzoo.objectives`` entry point (docs/plugins.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganzoo.errors import ConfigError, PluginError, unknown_name
from ganzoo.images import class_rows
from ganzoo.losses import GANLoss

__all__ = ["GenerateObjective", "Objective", "PairedObjective", "build_objective", "first_inputs", "list_objectives",
           "objective_from_recipe", "register_objective"]

Stats = dict[str, torch.Tensor]
#: checks a loss's (loss, stats) result for a phase ("d_loss" or "g_loss") and returns it (`ganzoo.contract`)
Checker = Callable[[Any, str], tuple[torch.Tensor, Stats]]


class Objective:
    """Base class and the ``generate`` objective: G(z, labels) -> images, D(images, labels) -> logits.

    Subclasses set `name` and `task` (the `Architecture.task` they train) and override what differs. Options are
    keyword arguments of `__init__` (the recipe's `objective_options`).

    Args:
        loss: the recipe's adversarial loss, which owns the GAN maths and its regularisers.
    """

    name = "generate"
    task = "generate"
    #: the data it trains on: "images" (with labels), "pairs" (`ganzoo.pairs`) or "unpaired" (`ganzoo.unpaired`)
    data = "images"

    def __init__(self, loss: GANLoss) -> None:
        self.loss = loss
        #: buffers the objective carries between steps (checkpointed under "objective.")
        self.running = nn.Module()
        #: set by the trainer for its first step: checks what the loss returns (None afterwards)
        self.checker: Checker | None = None
        # whether the loss's g_loss takes the real batch and the step (losses written before they were passed on)
        g_params = inspect.signature(loss.g_loss).parameters.values()
        self._g_loss_keywords = any(p.name == "real" or p.kind is p.VAR_KEYWORD for p in g_params)

    @property
    def trains_discriminator(self) -> bool:
        """Whether D's phase runs: False leaves D as it was built (no D update at all)."""
        return True

    def check(self, recipe: Any, dataset: Any | None = None) -> None:
        """Raise ConfigError (one line: problem and fix) when this objective cannot train with `recipe` (and
        `dataset`, when given)."""
        if dataset is not None and getattr(dataset, "unpaired", False):
            from ganzoo.errors import GanzooUsageError

            raise GanzooUsageError(f"{dataset.name} is unpaired data (A~B) for image-to-image translation; train an "
                                   "architecture for it (cyclegan), or pass one domain's folder as --data")

    def generate(self, G: Callable[..., torch.Tensor], z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """G's images for a batch: latents `z` and the batch's condition `cond` (labels here)."""
        return G(z, cond)

    def _checked(self, result: Any, phase: str) -> tuple[torch.Tensor, Stats]:
        return self.checker(result, phase) if self.checker is not None else result

    def d_phase(self, D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                cond: torch.Tensor | None, step: int) -> tuple[torch.Tensor, Stats]:
        """D's loss on a real and a fake batch (the loss detaches the fakes). `step` counts D updates."""
        return self._checked(self.loss.d_loss(D, real, fake, cond, step=step), "d_loss")

    def g_phase(self, D: Callable[..., torch.Tensor], G: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                cond: torch.Tensor | None, step: int) -> tuple[torch.Tensor, Stats]:
        """G's loss on the fake batch (gradients through D into G), with G's lazy regularisers when due. `G` is the
        eager generator (for regularisers that call it again); `step` counts G updates."""
        if self._g_loss_keywords:  # the real batch of the last D step: relativistic losses compare with it
            result = self.loss.g_loss(D, fake, cond, real=real, step=step)
        else:
            result = self.loss.g_loss(D, fake, cond)
        g_loss, g_stats = self._checked(result, "g_loss")
        g_reg, reg_stats = self.loss.g_regularizer(G, fake.shape[0], cond, step=step)
        if g_reg is not None:
            g_loss = g_loss + g_reg
            g_stats = {**g_stats, **reg_stats}
        return g_loss, g_stats

    def grid_condition(self, dataset: Any, n: int, num_classes: int) -> tuple[torch.Tensor | None, int | None]:
        """The fixed condition of the training sample grids and the grid's images per row (None: square): one row
        per class for a conditional model."""
        if not num_classes:
            return None, None
        nrow = max(1, n // num_classes)
        return class_rows(num_classes, nrow), nrow

    def grid_picture(self, cond: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
        """What a sample grid shows for G's `images` made from `cond`: the images themselves."""
        return images


GenerateObjective = Objective


def first_inputs(dataset: Any, n: int) -> torch.Tensor:
    """The first inputs of image-to-image data (its `inputs`), at most half of a grid of `n` images and at least one,
    in [-1, 1]: what a grid of input, output pairs shows."""
    inputs = getattr(dataset, "inputs", None)
    assert inputs is not None
    return inputs[:max(1, min(n // 2, len(inputs)))].float().div(127.5).sub(1.0)


class PairedObjective(Objective):
    """Paired image-to-image translation (Isola et al. 2017): G(x) -> y, D(y, x) judges pairs, + l1_weight * |G(x) - y|.

    The batch's condition is the input image x, its real images the targets y. G is a `ganzoo.interfaces.Translator`
    called as G(x, z) (z of zero width when it takes no noise); D gets the input as its second argument and is
    expected to look at the pair (pix2pix concatenates them).

    Args:
        l1_weight: lambda on the mean absolute error between G(x) and y (pix2pix: 100); 0 trains the GAN alone.
        adversarial: False drops D altogether: G learns the L1 term alone and D is never updated (the "L1 only"
            baseline of the paper's table 1).
    """

    name = "paired"
    task = "translate"
    data = "pairs"

    def __init__(self, loss: GANLoss, *, l1_weight: float = 100.0, adversarial: bool = True) -> None:
        super().__init__(loss)
        if isinstance(l1_weight, bool) or not isinstance(l1_weight, (int, float)) or not l1_weight >= 0:
            raise ConfigError(f"objective paired: l1_weight must be a number >= 0 (pix2pix: 100), got {l1_weight!r}")
        if not isinstance(adversarial, bool):
            raise ConfigError(f"objective paired: adversarial must be true or false, got {adversarial!r}")
        if not adversarial and l1_weight == 0:
            raise ConfigError("objective paired: with adversarial=false and l1_weight=0 nothing trains G; set "
                              "l1_weight > 0 (e.g. 100) or adversarial=true")
        self.l1_weight = float(l1_weight)
        self.adversarial = adversarial

    @property
    def trains_discriminator(self) -> bool:
        return self.adversarial

    def check(self, recipe: Any, dataset: Any | None = None) -> None:
        if recipe.ada_target > 0:
            raise ConfigError("adaptive augmentation (ada_target) judges D on images without their inputs, which the "
                              "paired objective does not support; set ada_target=0")
        from ganzoo.errors import GanzooUsageError

        if dataset is not None and getattr(dataset, "unpaired", False):
            raise GanzooUsageError(f"{dataset.name} is unpaired data (A~B), and the paired objective learns from "
                                   "pairs; use paired data (--data 'IN>TARGET', ab:FOLDER) or an architecture for "
                                   "unpaired data such as cyclegan")
        if dataset is not None and getattr(dataset, "inputs", None) is None:
            raise GanzooUsageError(f"translation trains on pairs and {dataset.name} has none; use paired data, e.g. "
                                   "--data 'twemoji>openmoji', --data 'IN_FOLDER>TARGET_FOLDER' or --data ab:FOLDER "
                                   "(docs/data.md)")

    def generate(self, G: Callable[..., torch.Tensor], z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        assert cond is not None, "the paired objective needs the input images as the batch's condition"
        return G(cond, z if z.shape[-1] else None)

    def g_phase(self, D: Callable[..., torch.Tensor], G: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                cond: torch.Tensor | None, step: int) -> tuple[torch.Tensor, Stats]:
        l1 = (fake.float() - real.float()).abs().mean()
        stats: Stats = {"l1": l1.detach()}
        if self.adversarial:
            adversarial, adv_stats = super().g_phase(D, G, real, fake, cond, step)
            stats = {**adv_stats, "g_adversarial": adversarial.detach(), **stats}
            total = adversarial + self.l1_weight * l1 if self.l1_weight else adversarial
        else:
            total = self.l1_weight * l1
        stats["g_loss"] = total.detach()
        return total, stats

    def grid_condition(self, dataset: Any, n: int, num_classes: int) -> tuple[torch.Tensor | None, int | None]:
        """The first inputs of the data (up to half the grid), shown as input, output pairs, four pairs a row."""
        return first_inputs(dataset, n), 8

    def grid_picture(self, cond: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
        """Input and output side by side: input 0, output 0, input 1, output 1, ..."""
        assert cond is not None
        shown = cond.to(images.dtype)
        if shown.shape[1] != images.shape[1]:  # a gray input beside a colour output
            shown = shown.expand(-1, images.shape[1], -1, -1) if shown.shape[1] == 1 else shown.mean(1, True)
        return torch.stack([shown, images], dim=1).flatten(0, 1)


_OBJECTIVES: dict[str, type[Objective]] = {}
OBJECTIVE_GROUP = "ganzoo.objectives"


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Add an objective class under `cls.name` (a duplicate name is an error)."""
    if not cls.name:
        raise ConfigError(f"{cls.__name__} needs a non-empty `name` to be registered")
    if cls.name in _OBJECTIVES and _OBJECTIVES[cls.name] is not cls:
        raise ConfigError(f"objective {cls.name!r} is already registered by {_OBJECTIVES[cls.name].__qualname__}")
    _OBJECTIVES[cls.name] = cls
    return cls


register_objective(Objective)
register_objective(PairedObjective)


def _third_party() -> dict[str, type[Objective]]:
    """Objective classes other distributions register under `OBJECTIVE_GROUP`, discovered and imported once through
    the plugin registry (as third-party losses are); one that fails to import is an error naming it."""
    from ganzoo.registry import load_record, plugin_records

    found: dict[str, type[Objective]] = {}
    for record in plugin_records(OBJECTIVE_GROUP):
        if record.name in _OBJECTIVES:
            continue
        cls = load_record(record)
        if record.error is not None:  # a broken plugin is named, not a traceback
            raise PluginError(f"objective {record.name!r} ({record.value}) failed to import: {record.error}; fix or "
                              "uninstall the distribution that registers it")
        if isinstance(cls, type) and issubclass(cls, Objective):
            found[record.name] = cls
    return found


def list_objectives() -> list[str]:
    """The built-in objectives' names and those registered under the ``ganzoo.objectives`` entry point."""
    return sorted({**_OBJECTIVES, **_third_party()})


def _objective_class(name: str) -> type[Objective]:
    cls = _OBJECTIVES.get(name) or _third_party().get(name)
    if cls is None:
        raise unknown_name("objective", name, list_objectives())
    return cls


def build_objective(name: str, loss: GANLoss, **options: Any) -> Objective:
    """An objective by name around `loss`; options it does not take are an error naming the ones it takes."""
    cls = _objective_class(name)
    known = [p for p in list(inspect.signature(cls.__init__).parameters)[2:]]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"objective {name!r} does not take {', '.join(unknown)}; its options are "
                          f"{', '.join(known) or 'none'}")
    return cls(loss, **options)


def objective_from_recipe(recipe: Any, loss: GANLoss) -> Objective:
    """The recipe's objective (`Recipe.objective` with its `objective_options`) around the recipe's loss."""
    return build_objective(recipe.objective, loss, **dict(recipe.objective_options or {}))

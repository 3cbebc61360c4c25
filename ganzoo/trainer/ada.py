"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data", arXiv:2006.06676): the augmentation probability p follows how sure D is about the real images.

The overfitting heuristic r_t is the mean of the loss's `overfit_signal` over the last `ada_interval` D steps (on
augmented real images): E[sign(D(x))] as in the paper for losses with a fixed decision threshold, and how often D
ranks a real above a fake (a shift-invariant counterpart) for relativistic and Wasserstein losses
(`ganzoo.losses.GANLoss.overfit_signal`). Every interval p moves by sign(r_t - target) * (batch * interval) /
(ada_kimg * 1000), clamped to [0, 1], so p can travel from 0 to 1 in `ada_kimg` thousand images, as in the paper
(target 0.6, 500 kimg). All of it stays on the device, so no step waits for the host; p and the partial sums are
kept in checkpoints, so a resumed run continues with exactly the p an uninterrupted one has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ganzoo.errors import ConfigError
from ganzoo.interfaces import TrainingContext, TrainingHook

__all__ = ["AdaptiveAugment"]


class AdaptiveAugment(TrainingHook):
    """Adapts the trainer's augmentation probability from D's outputs on real images (the trainer adds this hook
    when a recipe sets `ada_target`)."""

    def __init__(self, target: float, kimg: float, interval: int, batch_size: int) -> None:
        if not 0 < target < 1:
            raise ConfigError(f"ada_target must lie in (0, 1), got {target}")
        self.target = float(target)
        self.interval = int(interval)
        self.step_size = batch_size * interval / (kimg * 1000)  # change of p per adjustment
        self._context: TrainingContext | None = None
        self._sum: torch.Tensor | None = None  # sum of r over the D steps since the last adjustment
        self._count = 0
        self._last_rt: torch.Tensor | None = None

    def setup(self, context: TrainingContext) -> None:
        self._context = context
        self._sum = torch.zeros((), device=context.device)

    @property
    def p(self) -> torch.Tensor:
        assert self._context is not None, "AdaptiveAugment.setup was not called"
        return self._context.augment.p

    def after_d_step(self, d_step: int, stats: Mapping[str, torch.Tensor]) -> None:
        assert self._context is not None and self._sum is not None, "AdaptiveAugment.setup was not called"
        if "overfit_signal" not in stats:
            raise ConfigError("adaptive augmentation needs the loss to report overfit_signal; a loss that overrides "
                              "d_loss must add self.overfit_signal(real_logits, fake_logits) to its stats, as "
                              "GANLoss.d_loss does")
        self._sum = self._sum + stats["overfit_signal"].float()
        self._count += 1
        if self._count < self.interval:
            return
        if self._context.sum_across is not None:  # a distributed run: the same r_t, hence the same p, everywhere
            total = self._context.sum_across([float(self._sum)])[0]
            rt = torch.tensor(total / (self._count * self._context.world_size), device=self._sum.device)
        else:
            rt = self._sum / self._count
        p = self._context.augment.p
        p.copy_((p + torch.sign(rt - self.target) * self.step_size).clamp(0.0, 1.0))
        self._last_rt = rt
        self._sum = torch.zeros_like(self._sum)
        self._count = 0

    def stats(self) -> dict[str, float]:
        out = {"augment_p": float(self.p)}
        if self._last_rt is not None:
            out["ada_rt"] = float(self._last_rt)
        return out

    def state_dict(self) -> dict[str, Any]:
        assert self._sum is not None
        return {"ada_p": float(self.p), "sum": float(self._sum), "count": self._count,
                "last_rt": None if self._last_rt is None else float(self._last_rt)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        assert self._sum is not None
        self.p.fill_(float(state["ada_p"]))
        self._sum = torch.tensor(float(state["sum"]), device=self._sum.device)
        self._count = int(state["count"])
        last = state.get("last_rt")
        self._last_rt = None if last is None else torch.tensor(float(last), device=self._sum.device)

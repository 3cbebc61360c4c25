"""Exponential moving average of the generator, with a half-life counted in images (as StyleGAN2-ADA does)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ema_beta", "update_ema"]


def ema_beta(batch_size: int, images_seen: int, ema_kimg: float, ema_rampup: float) -> float:
    """Per-update decay for a half-life of `ema_kimg` thousand images, optionally ramped up from the start."""
    half_life = ema_kimg * 1000.0
    if ema_rampup > 0:
        half_life = min(half_life, images_seen * ema_rampup)
    if half_life <= 0:
        return 0.0
    return 0.5 ** (batch_size / half_life)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema = beta * ema + (1 - beta) * model for parameters; buffers (e.g. BatchNorm statistics) are copied."""
    ema_params = list(ema.parameters())
    params = list(model.parameters())
    if ema_params:
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)

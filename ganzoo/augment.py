"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020, arXiv:2006.10738).

The same random transformations are applied to real and fake images before D sees them, and gradients flow
through them into G, so D cannot overfit a small dataset while G is not taught to produce augmented images.
A recipe turns it on with `augment="color,translation,cutout"` (any subset, in that order or another).
Random draws come from torch's global generator, so a seeded run is repeatable and resumes exactly; in a
distributed run each process keeps its rows of a draw for the global batch (`ganzoo.sharding.draw_rows`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganzoo.errors import ConfigError
from ganzoo.sharding import draw_rows

__all__ = ["AUGMENTATIONS", "augment", "parse_policy"]


def _rand(x: torch.Tensor) -> torch.Tensor:
    return draw_rows(x.shape[0], lambda m: torch.rand(m, 1, 1, 1, device=x.device, dtype=x.dtype))


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), per image."""
    x = x + (_rand(x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x) * 2) + mean  # a no-op for one channel, as it should be
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in each direction, filling with zeros."""
    n, _, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = draw_rows(n, lambda m: torch.randint(-max_y, max_y + 1, (m, 1, 1), device=x.device))
    shift_x = draw_rows(n, lambda m: torch.randint(-max_x, max_x + 1, (m, 1, 1), device=x.device))
    # source coordinates in a copy padded by one zero pixel on each side
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + shift_y).clamp(-1, h) + 1
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + shift_x).clamp(-1, w) + 1
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (N, H+2, W+2, C)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows.expand(n, h, w), cols.expand(n, h, w)].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of `ratio` times the image size at a random place in each image."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre_y = draw_rows(n, lambda m: torch.randint(0, h, (m, 1, 1), device=x.device))
    centre_x = draw_rows(n, lambda m: torch.randint(0, w, (m, 1, 1), device=x.device))
    top, left = centre_y - size_y // 2, centre_x - size_x // 2  # a size_y x size_x window around the centre
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def parse_policy(policy: str) -> list[str]:
    """Split 'color,translation' into names, rejecting unknown ones."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"unknown augmentation {unknown[0]!r}; use a comma-separated subset of "
                          f"{', '.join(AUGMENTATIONS)}")
    return names


def augment(x: torch.Tensor, policy: list[str]) -> torch.Tensor:
    """Apply the named augmentations in order."""
    for name in policy:
        x = AUGMENTATIONS[name](x)
    return x

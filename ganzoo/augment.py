"""Differentiable augmentation of D's inputs: DiffAugment (Zhao et al. 2020) and adaptive augmentation (ADA).

Random transformations are applied to real and fake images alike before D sees them, and gradients flow through
them into G, so D cannot overfit a small dataset while G is not taught to produce augmented images. A recipe names
the transformations (`augment="color,translation,cutout"`, any subset in any order) and the probability with
which each one is applied to each image (`augment_p`; 1 by default, which is DiffAugment). With
`ada_target > 0` the probability adapts during training (Karras et al. 2020; `ganzoo.trainer.ada`).

Every transformation takes a batch and returns one of the same shape, drawing its random values per image.
Random draws come from torch's global generator, so a seeded run is repeatable and resumes exactly; in a
distributed run each process keeps its rows of a draw for the global batch (`ganzoo.sharding.draw_rows`).
Third-party transformations join with `register_augmentation` or the `ganzoo.augmentations` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganzoo.errors import ConfigError
from ganzoo.sharding import draw_rows

__all__ = ["AUGMENTATIONS", "Augment", "augment", "list_augmentations", "parse_policy", "register_augmentation"]

Transform = Callable[[torch.Tensor], torch.Tensor]


def _rand(x: torch.Tensor) -> torch.Tensor:
    return draw_rows(x.shape[0], lambda m: torch.rand(m, 1, 1, 1, device=x.device, dtype=x.dtype))


def brightness(x: torch.Tensor) -> torch.Tensor:
    """Add a random brightness offset in [-0.5, 0.5) to each image."""
    return x + (_rand(x) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from its per-pixel grey by a random factor in [0, 2) (a no-op for one channel)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(x) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from its mean by a random factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x) + 0.5) + mean


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), per image (DiffAugment's colour)."""
    return contrast(saturation(brightness(x)))


def xflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = draw_rows(x.shape[0], lambda m: torch.randint(0, 2, (m, 1, 1, 1), device=x.device)).bool()
    return torch.where(flip, x.flip(3), x)


def rotate90(x: torch.Tensor) -> torch.Tensor:
    """Rotate each square image by a random multiple of 90 degrees (0, 90, 180 or 270)."""
    if x.shape[2] != x.shape[3]:
        raise ConfigError(f"rotate90 needs square images, got {x.shape[2]}x{x.shape[3]}; drop it from augment")
    turns = draw_rows(x.shape[0], lambda m: torch.randint(0, 4, (m, 1, 1, 1), device=x.device))
    out = x
    for k in (1, 2, 3):
        out = torch.where(turns == k, torch.rot90(x, k, dims=(2, 3)), out)
    return out


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


#: the built-in transformations and those registered with `register_augmentation`
AUGMENTATIONS: dict[str, Transform] = {
    "color": color,
    "brightness": brightness,
    "saturation": saturation,
    "contrast": contrast,
    "translation": translation,
    "cutout": cutout,
    "xflip": xflip,
    "rotate90": rotate90,
}

AUGMENTATION_GROUP = "ganzoo.augmentations"


def register_augmentation(name: str, transform: Transform) -> Transform:
    """Make `transform` (a batch in, a batch of the same shape out, differentiable, drawing its random values per
    image from torch's generator) available to recipes as `name`. A name taken by another transform is an error."""
    if not name or "," in name or name != name.strip():
        raise ConfigError(f"an augmentation name must be a non-empty word without commas, got {name!r}")
    if AUGMENTATIONS.get(name, transform) is not transform:
        raise ConfigError(f"augmentation {name!r} is already registered")
    AUGMENTATIONS[name] = transform
    return transform


def _third_party() -> dict[str, Transform]:
    from ganzoo.registry import load_record, plugin_records

    return {record.name: load_record(record) for record in plugin_records(AUGMENTATION_GROUP)
            if record.name not in AUGMENTATIONS}


def list_augmentations() -> list[str]:
    """Names of every augmentation: built-in, registered, and from the `ganzoo.augmentations` entry point."""
    return sorted({**AUGMENTATIONS, **_third_party()})


def _transform(name: str) -> Transform | None:
    if name in AUGMENTATIONS:
        return AUGMENTATIONS[name]
    found = _third_party().get(name)
    if found is not None and not callable(found):
        raise ConfigError(f"the {AUGMENTATION_GROUP} entry point {name!r} is not a function of a batch")
    return found


def parse_policy(policy: str) -> list[str]:
    """Split 'color,translation' into names, rejecting unknown ones."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    for name in names:
        if _transform(name) is None:
            raise ConfigError(f"unknown augmentation {name!r}; use a comma-separated subset of "
                              f"{', '.join(list_augmentations())}")
    return names


def augment(x: torch.Tensor, policy: list[str]) -> torch.Tensor:
    """Apply the named augmentations in order, each to every image."""
    for name in policy:
        transform = _transform(name)
        assert transform is not None, name
        x = transform(x)
    return x


class Augment:
    """The trainer's augmentation service: a policy applied to D's inputs, each transformation to each image with
    probability `p`.

    `p` is a 0-dim tensor on the training device, so a hook can adapt it (`ganzoo.trainer.ada`) without the host
    waiting for the device. With `adaptive=False` and p = 1 every image is transformed, with exactly the random
    draws of plain `augment` (DiffAugment); otherwise one uniform draw per image and transformation decides.
    """

    def __init__(self, policy: str | list[str], p: float = 1.0, device: torch.device | str = "cpu",
                 adaptive: bool = False) -> None:
        self.names = parse_policy(policy) if isinstance(policy, str) else list(policy)
        self._transforms = [_transform(name) for name in self.names]
        self.p = torch.tensor(float(p), device=device)
        self.adaptive = adaptive
        self._always = not adaptive and float(p) >= 1.0

    def __bool__(self) -> bool:
        return bool(self.names)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._always:
            return augment(x, self.names)
        n, device = x.shape[0], x.device
        for transform in self._transforms:
            assert transform is not None
            chosen = draw_rows(n, lambda m: torch.rand(m, 1, 1, 1, device=device)) < self.p
            x = torch.where(chosen, transform(x), x)
        return x

"""Image grids: tensors in [-1, 1] to PNG files (written atomically)."""

from __future__ import annotations

import io
import math
import os

import torch

from ganzoo._io import write_bytes

__all__ = ["grid_png_bytes", "save_grid", "to_uint8"]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) floats in [-1, 1] to uint8 in [0, 255] on the CPU."""
    return images.detach().float().cpu().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def grid_png_bytes(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> bytes:
    """Encode a batch of images in [-1, 1] as one PNG grid with `nrow` images per row (square by default)."""
    from PIL import Image
    from torchvision.utils import make_grid

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(to_uint8(images), nrow=nrow, padding=padding, pad_value=0)
    array = grid[0].numpy() if images.shape[1] == 1 else grid.permute(1, 2, 0).numpy()  # grayscale stays 1 channel
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int | None = None) -> None:
    """Write `images` (in [-1, 1]) as a PNG grid at `path`, atomically."""
    write_bytes(path, grid_png_bytes(images, nrow=nrow))

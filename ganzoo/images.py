"""Image grids: tensors in [-1, 1] to PNG files (written atomically)."""

from __future__ import annotations

import io
import math
import os

import torch

from ganzoo._io import write_bytes

__all__ = ["class_rows", "gif_from_files", "grid_png_bytes", "save_gif", "save_grid", "to_uint8"]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) floats in [-1, 1] to uint8 in [0, 255] on the CPU."""
    return images.detach().float().cpu().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def class_rows(num_classes: int, per_row: int) -> torch.Tensor:
    """Labels for a grid with one row per class: 0 repeated `per_row` times, then 1, and so on."""
    return torch.arange(num_classes).repeat_interleave(per_row)


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


def save_gif(frames: list[torch.Tensor], path: str | os.PathLike[str], duration_ms: int = 80, nrow: int | None = None,
             loop: bool = True) -> None:
    """Write an animated GIF, atomically. Each frame is a batch of images in [-1, 1] laid out as a grid."""
    from PIL import Image

    if not frames:
        raise ValueError("a GIF needs at least one frame")
    pictures = [Image.open(io.BytesIO(grid_png_bytes(frame, nrow=nrow))).convert("RGB") for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms,
                     loop=0 if loop else 1, optimize=False)
    write_bytes(path, buffer.getvalue())


def gif_from_files(paths: list[os.PathLike[str] | str], path: str | os.PathLike[str], duration_ms: int = 200,
                   hold_last_ms: int = 1500) -> None:
    """Join image files (e.g. a run's sample grids) into an animated GIF, holding the last frame a little longer."""
    from PIL import Image

    if not paths:
        raise ValueError("a GIF needs at least one frame")
    pictures = []
    for source in paths:
        with Image.open(source) as picture:
            pictures.append(picture.convert("RGB"))
    durations = [duration_ms] * (len(pictures) - 1) + [max(duration_ms, hold_last_ms)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    write_bytes(path, buffer.getvalue())

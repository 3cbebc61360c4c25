"""Image grids and animations: tensors in [-1, 1] to image files (written atomically).

The format follows the file's suffix: grids as PNG (lossless, the default), JPEG, WebP (lossless), BMP or TIFF;
animations as GIF or animated WebP. Any other suffix is a `GanzooUsageError` raised before anything is computed
(`image_format`), never a file whose bytes disagree with its name.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Literal

import torch

from ganzoo._io import write_bytes
from ganzoo.errors import GanzooUsageError

__all__ = ["ANIMATION_FORMATS", "GRID_FORMATS", "class_rows", "gif_from_files", "grid_png_bytes", "image_format",
           "save_gif", "save_grid", "to_uint8"]

#: file suffix -> Pillow format name, for still images (grids) and for animations
GRID_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                ".tiff": "TIFF"}
ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"PNG": {"optimize": True}, "JPEG": {"quality": 95},
                                            "WEBP": {"lossless": True}, "TIFF": {"compression": "tiff_deflate"}}


def image_format(path: str | os.PathLike[str], kind: Literal["grid", "animation"] = "grid") -> str:
    """The Pillow format that `path`'s suffix asks for (case-insensitive); a `GanzooUsageError` naming the suffixes
    that can be written when it is none of them, or when this Pillow was built without it."""
    from PIL import features

    formats = GRID_FORMATS if kind == "grid" else ANIMATION_FORMATS
    usable = {suffix: fmt for suffix, fmt in formats.items() if fmt != "WEBP" or features.check("webp")}
    suffix = Path(path).suffix.lower()
    if suffix not in usable:
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        thing = "an image grid" if kind == "grid" else "an animation"
        raise GanzooUsageError(f"cannot write {thing} to {path} ({what}); name the file with one of "
                               f"{', '.join(usable)}")
    return usable[suffix]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) floats in [-1, 1] to uint8 in [0, 255] on the CPU."""
    return images.detach().float().cpu().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def class_rows(num_classes: int, per_row: int) -> torch.Tensor:
    """Labels for a grid with one row per class: 0 repeated `per_row` times, then 1, and so on."""
    return torch.arange(num_classes).repeat_interleave(per_row)


def _grid_picture(images: torch.Tensor, nrow: int | None, padding: int) -> Any:
    """A batch of images in [-1, 1] as one PIL image, `nrow` per row (square by default); grayscale stays 1 channel."""
    from PIL import Image
    from torchvision.utils import make_grid

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(to_uint8(images), nrow=nrow, padding=padding, pad_value=0)
    array = grid[0].numpy() if images.shape[1] == 1 else grid.permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def grid_png_bytes(images: torch.Tensor, nrow: int | None = None, padding: int = 2, fmt: str = "PNG") -> bytes:
    """Encode a batch of images in [-1, 1] as one grid with `nrow` images per row (square by default), as PNG or
    another Pillow format name from `GRID_FORMATS`."""
    buffer = io.BytesIO()
    _grid_picture(images, nrow, padding).save(buffer, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
    return buffer.getvalue()


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int | None = None) -> None:
    """Write `images` (in [-1, 1]) as a grid at `path`, atomically, in the format its suffix names (`GRID_FORMATS`)."""
    write_bytes(path, grid_png_bytes(images, nrow=nrow, fmt=image_format(path)))


def _write_animation(pictures: list[Any], path: str | os.PathLike[str], **options: Any) -> None:
    fmt = image_format(path, "animation")
    if fmt == "WEBP":
        options = {**options, "lossless": True}
    else:
        options.setdefault("optimize", False)
    buffer = io.BytesIO()
    pictures[0].save(buffer, format=fmt, save_all=True, append_images=pictures[1:], **options)
    write_bytes(path, buffer.getvalue())


def save_gif(frames: list[torch.Tensor], path: str | os.PathLike[str], duration_ms: int = 80, nrow: int | None = None,
             loop: bool = True) -> None:
    """Write an animation (GIF, or WebP by suffix), atomically. Each frame is a batch of images in [-1, 1] laid out
    as a grid."""
    image_format(path, "animation")
    if not frames:
        raise ValueError("an animation needs at least one frame")
    pictures = [_grid_picture(frame, nrow, 2).convert("RGB") for frame in frames]
    _write_animation(pictures, path, duration=duration_ms, loop=0 if loop else 1)


def gif_from_files(paths: list[os.PathLike[str] | str], path: str | os.PathLike[str], duration_ms: int = 200,
                   hold_last_ms: int = 1500) -> None:
    """Join image files (e.g. a run's sample grids) into an animation (GIF, or WebP by suffix), holding the last
    frame a little longer."""
    from PIL import Image

    image_format(path, "animation")
    if not paths:
        raise ValueError("an animation needs at least one frame")
    pictures = []
    for source in paths:
        with Image.open(source) as picture:
            pictures.append(picture.convert("RGB"))
    durations = [duration_ms] * (len(pictures) - 1) + [max(duration_ms, hold_last_ms)]
    _write_animation(pictures, path, duration=durations, loop=0)

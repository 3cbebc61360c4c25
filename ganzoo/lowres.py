"""Low- and high-resolution pairs for super-resolution, made from any image set when it is loaded.

A data spec ``srN:SPEC`` (``sr2:``, ``sr4:``, ``sr8:``; ``sr:`` is ``sr4:``) loads SPEC, any in-memory data spec
(an image folder, ``mnist-5k``, an emoji set such as ``twemoji``, a torchvision set), at the training size as usual:
those are the high-resolution targets. Each target's low-resolution input is `downscale`d by the factor N: bicubic
interpolation with antialiasing, computed in floating point on [-1, 1] and rounded to 8 bits, as a low-resolution
image saved to a file would be. Nothing is written to disk; the pairs are the same on every load, so a resumed run
sees the same inputs. `ganzoo.data.load_dataset` wraps them as an `ImageDataset` whose `images` are the targets and
whose `inputs` the smaller inputs.
"""

from __future__ import annotations

import os
import re

import torch
import torch.nn.functional as F

from ganzoo.errors import GanzooUsageError

__all__ = ["DEFAULT_FACTOR", "FACTORS", "downscale", "is_lowres", "parse_lowres"]

DEFAULT_FACTOR = 4
FACTORS = (2, 4, 8)
_PREFIX = re.compile(r"^sr(\d*):", re.IGNORECASE)


def is_lowres(spec: str | os.PathLike[str]) -> bool:
    """Whether a data spec names super-resolution pairs (``srN:SPEC``)."""
    return _PREFIX.match(os.fspath(spec).strip()) is not None


def parse_lowres(spec: str | os.PathLike[str]) -> tuple[int, str]:
    """(factor, inner spec) of ``srN:SPEC``; one-line errors for a factor ganzoo does not make or an empty SPEC."""
    text = os.fspath(spec).strip()
    match = _PREFIX.match(text)
    if match is None:
        raise GanzooUsageError(f"{text!r} is not super-resolution data; write srN:SPEC, e.g. sr4:twemoji")
    factor = int(match.group(1)) if match.group(1) else DEFAULT_FACTOR
    if factor not in FACTORS:
        raise GanzooUsageError(f"{text}: the downscaling factor must be one of {', '.join(map(str, FACTORS))} "
                               f"(sr2:, sr4:, sr8:), got {factor}")
    inner = text[match.end():].strip()
    if not inner:
        raise GanzooUsageError(f"{text}: name the images after the prefix, e.g. sr{factor}:twemoji or "
                               f"sr{factor}:path/to/folder")
    if is_lowres(inner):
        raise GanzooUsageError(f"{text}: one srN: prefix is enough; write sr{factor}:{_PREFIX.sub('', inner)}")
    return factor, inner


def check_size(img_size: int, factor: int, what: str) -> None:
    """Refuse a training size that the factor does not divide (one line: the problem and the fix)."""
    if img_size % factor or img_size < factor:
        fits = sorted({max(factor, img_size - img_size % factor), img_size - img_size % factor + factor} - {0})
        raise GanzooUsageError(f"{what}: the high-resolution size {img_size} px is not divisible by the factor "
                               f"{factor}; choose an --img-size such as {' or '.join(map(str, fits))}")


def downscale(images: torch.Tensor, factor: int) -> torch.Tensor:
    """High-resolution images (uint8, or float in [-1, 1]), (N, C, H, W), to their low-resolution inputs: bicubic
    with antialiasing to (H / factor, W / factor), computed in float32 on [-1, 1]. uint8 in gives uint8 out (rounded
    to the nearest level and clamped), float in gives float in [-1, 1] (clamped, not rounded)."""
    if images.dim() != 4 or images.shape[2] % factor or images.shape[3] % factor:
        raise GanzooUsageError(f"downscale takes (N, C, H, W) images whose sides are divisible by {factor}, got "
                               f"shape {tuple(images.shape)}")
    x = images.float().div(127.5).sub(1.0) if images.dtype == torch.uint8 else images.float()
    small = F.interpolate(x, size=(images.shape[2] // factor, images.shape[3] // factor), mode="bicubic",
                          antialias=True, align_corners=False).clamp_(-1.0, 1.0)
    if images.dtype == torch.uint8:
        return small.add_(1.0).mul_(127.5).round_().to(torch.uint8)
    return small

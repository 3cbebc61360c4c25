"""Unpaired data for image-to-image translation: two sets of images, domain A and domain B, with no correspondence.

A spec names the two sides around a tilde, A first (what CycleGAN's forward direction translates from):

* ``FOLDER~FOLDER``: two folders of images (scanned recursively, as any image folder is); the two need not hold the
  same number of images, and their names mean nothing.
* ``SET~SET``: two emoji sets (``twemoji~openmoji``), their train part only, so the held-out emoji stay unseen.

The separator is the first ``~`` after a side's first character, so a side may start with ``~`` for the home
folder (``~/photos~~/paintings``); a side cannot hold a ``~`` of its own, and a spec that is an existing folder is
that folder, not two sides. Each side is composited over the background, converted to the channel count and
fitted to the square size as every data path does (`ganzoo.data`). Side A is then put in a fixed shuffled order of
its own, so that row i of A and row i of B are unrelated even where both sides list the same names (two emoji sets
in code-point order); training draws the two sides in independent orders as well (`ganzoo.trainer`).
`ganzoo.data.load_dataset` makes them an `ImageDataset` with `unpaired` set, whose `images` are domain B and whose
`inputs` are domain A.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ganzoo._imagefiles import (
    SKIP_HINT,
    UndecodableImage,
    _decode_bytes,
    _extensions_text,
    _fit,
    _folder_native_channels,
    _quiet_torchvision_io,
    _read_file,
    _read_mode,
    _rgb_hex,
    _scan_folder,
)
from ganzoo.errors import GanzooUsageError

__all__ = ["UNPAIRED_SEPARATOR", "Unpaired", "is_unpaired", "load_unpaired", "unpaired_native_channels"]

logger = logging.getLogger(__name__)

UNPAIRED_SEPARATOR = "~"
_SIDE_A_ORDER_SEED = 1  # the fixed shuffle of side A (see the module docstring)
_EXAMPLE = "e.g. 'twemoji~openmoji' or 'photos~paintings' (two folders)"


def _split_at(text: str) -> int:
    """Where the separator is: the first '~' that does not start a side, or -1."""
    return text.find(UNPAIRED_SEPARATOR, 1)


def is_unpaired(spec: str | os.PathLike[str]) -> bool:
    """Whether a data spec names unpaired data (``A~B``; see the module docstring)."""
    from ganzoo.pairs import is_paired

    text = os.fspath(spec).strip()
    if _split_at(text) < 0 or is_paired(text) or text.startswith(("stream:", "zip:", "hf:", "folder:")):
        return False
    return not Path(text).expanduser().is_dir()


def _sides(text: str) -> tuple[str, str]:
    cut = _split_at(text)
    first, second = text[:cut].strip(), text[cut + 1:].strip()
    if not first or not second or _split_at(second) >= 0:
        raise GanzooUsageError(f"unpaired data {text!r} must name two sides, domain A first: A~B, {_EXAMPLE}; a side "
                               "cannot hold a '~' of its own (rename or link the folder)")
    return first, second


def _folder(text: str, side: str) -> Path:
    folder = Path(text).expanduser().absolute()
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise GanzooUsageError(f"side {side} of the unpaired data, {folder}, {what}; pass a folder of images (or an "
                               "emoji set name on both sides)")
    return folder


def _files(folder: Path, side: str) -> list[Path]:
    files = _scan_folder(folder)
    if not files:
        raise GanzooUsageError(f"side {side} of the unpaired data, {folder}, contains no images "
                               f"({_extensions_text()}); put the domain's images there")
    return files


def unpaired_native_channels(spec: str | os.PathLike[str]) -> int:
    """The channel count (1 or 3) both sides share, from each side's first image (3 for emoji); sides that differ
    (gray beside colour) are an error asking for a channel count."""
    from ganzoo.emoji import EMOJI_SETS

    text = os.fspath(spec).strip()
    counts = []
    for name, side in zip(_sides(text), "AB", strict=True):
        if name.lower() in EMOJI_SETS:
            counts.append(3)
        else:
            counts.append(_folder_native_channels(_files(_folder(name, side), side)) or 3)
    if counts[0] != counts[1]:
        gray = "A" if counts[0] == 1 else "B"
        raise GanzooUsageError(f"side {gray} of {text!r} is gray and the other side colour; choose one channel count "
                               "for both: --channels 3 (gray repeated to RGB) or --channels 1")
    return counts[0]


def _read_side(folder: Path, side: str, img_size: int, channels: int, on_bad_image: str,
               background: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
    files = _files(folder, side)
    images, skipped = [], 0
    with _quiet_torchvision_io():
        for path in files:
            try:
                image = _decode_bytes(_read_file(path), _read_mode(channels), channels, path, background)
            except UndecodableImage as exc:
                if on_bad_image == "fail":
                    raise exc.with_hint(SKIP_HINT) from exc
                skipped += 1
                continue
            images.append(_fit(image, img_size))
    if not images:
        raise GanzooUsageError(f"none of the {len(files)} images of side {side}, {folder}, could be decoded; fix or "
                               "replace them")
    return torch.stack(images).contiguous(), skipped


@dataclass
class Unpaired:
    """Two unrelated sets of images (uint8, N x C x S x S, the two N may differ)."""

    a: torch.Tensor  # domain A, in its fixed shuffled order
    b: torch.Tensor  # domain B
    skipped: int  # images left out because they failed to decode (on_bad_image "skip")
    split: str  # "train" for emoji sets (their train part), "all" for folders


def load_unpaired(spec: str | os.PathLike[str], *, img_size: int, channels: int | None, on_bad_image: str,
                  background: tuple[int, int, int]) -> Unpaired:
    """Unpaired data (see the module docstring); `ganzoo.data.load_dataset` wraps it as an `ImageDataset`."""
    from ganzoo.emoji import EMOJI_SETS, EmojiSource, read_all

    text = os.fspath(spec).strip()
    first, second = _sides(text)
    channels = channels or unpaired_native_channels(text)
    emoji = [side.lower() in EMOJI_SETS for side in (first, second)]
    if any(emoji) and not all(emoji):
        raise GanzooUsageError(f"unpaired data {text!r} mixes an emoji set with a folder; name two emoji sets "
                               f"({', '.join(EMOJI_SETS)}) or two folders")
    if all(emoji):
        if first.lower() == second.lower():
            raise GanzooUsageError(f"unpaired data {text!r} names {first} twice; translate between two different "
                                   "emoji sets")
        sides = [read_all(EmojiSource(name.lower(), split="train", img_size=img_size), img_size, channels,
                          _rgb_hex(background)) for name in (first, second)]
        skipped, split = 0, "train"
    else:
        read = [_read_side(_folder(name, side), side, img_size, channels, on_bad_image, background)
                for name, side in ((first, "A"), (second, "B"))]
        sides, skipped, split = [images for images, _ in read], sum(n for _, n in read), "all"
    order = torch.randperm(len(sides[0]), generator=torch.Generator().manual_seed(_SIDE_A_ORDER_SEED))
    logger.info("loaded %d images of side A and %d of side B from %s", len(sides[0]), len(sides[1]), text)
    return Unpaired(a=sides[0][order].contiguous(), b=sides[1], skipped=skipped, split=split)

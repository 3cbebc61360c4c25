"""Paired image data for image-to-image translation: an input image and its target, aligned.

Three spellings of a paired data spec (`is_paired`), the input named first:

* ``IN_FOLDER>TARGET_FOLDER``: two folders of images matched by file name (the path below each folder without the
  extension, so ``in/cat.jpg`` pairs with ``target/cat.png``); every image needs its partner.
* ``ab:FOLDER`` or ``ba:FOLDER``: one folder of side-by-side images as pix2pix distributes its datasets, each image
  the input and the target next to each other. ``ab:`` takes the left half as the input, ``ba:`` the right half.
* ``SET>SET``: two emoji sets (``twemoji>openmoji``), the same emoji in two styles paired by code point
  (`ganzoo.emoji.paired_emoji`); their train part, so the test emoji stay unseen.

Each side is composited over the background (transparency), converted to the channel count and fitted to the
square size as every data path does (`ganzoo.data`). The two images of a pair must have the same size before
fitting, so that fitting crops both alike. `ganzoo.data.load_dataset` makes them an `ImageDataset` whose `images`
are the targets and whose `inputs` are the inputs, row by row.
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

__all__ = ["PAIR_SEPARATOR", "SIDE_BY_SIDE", "Pairs", "is_paired", "load_pairs", "paired_native_channels"]

logger = logging.getLogger(__name__)

PAIR_SEPARATOR = ">"
#: side-by-side prefixes and which half is the input
SIDE_BY_SIDE = {"ab:": "left", "ba:": "right"}
_FIX_NAMES = "give every input a target of the same file name (extensions may differ), or remove the odd ones"


def is_paired(spec: str | os.PathLike[str]) -> bool:
    """Whether a data spec names paired data (``IN>TARGET``, ``ab:FOLDER``, ``ba:FOLDER``)."""
    text = os.fspath(spec).strip()
    return PAIR_SEPARATOR in text or text.startswith(tuple(SIDE_BY_SIDE))


def _sides(spec: str) -> tuple[str, str]:
    first, _, second = spec.partition(PAIR_SEPARATOR)
    first, second = first.strip(), second.strip()
    if not first or not second or PAIR_SEPARATOR in second:
        raise GanzooUsageError(f"paired data {spec!r} must name two sides, input first: IN>TARGET, e.g. "
                               "'twemoji>openmoji' or 'photos>drawings' (two folders matched by file name)")
    return first, second


def _folder(text: str, role: str) -> Path:
    folder = Path(text).expanduser().absolute()
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise GanzooUsageError(f"the {role} folder {folder} {what}; pass a folder of images (or an emoji set name "
                               "on both sides)")
    return folder


def paired_native_channels(spec: str | os.PathLike[str]) -> int:
    """The targets' channel count (1 or 3) of paired data, from its first image (3 for emoji)."""
    from ganzoo.emoji import EMOJI_SETS

    text = os.fspath(spec).strip()
    for prefix in SIDE_BY_SIDE:
        if text.startswith(prefix):
            folder = _folder(text[len(prefix):], "side-by-side")
            return _folder_native_channels(_scan_folder(folder)) or 3
    target = _sides(text)[1]
    if target.lower() in EMOJI_SETS:
        return 3
    return _folder_native_channels(_scan_folder(_folder(target, "target"))) or 3


def _by_name(folder: Path, role: str) -> dict[str, Path]:
    files = _scan_folder(folder)
    if not files:
        raise GanzooUsageError(f"the {role} folder {folder} contains no images ({_extensions_text()})")
    named: dict[str, Path] = {}
    for path in files:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in named:
            raise GanzooUsageError(f"the {role} folder {folder} holds two images named {key} ({named[key].name} and "
                                   f"{path.name}); keep one, so that each name pairs with one target")
        named[key] = path
    return named


def _decode(path: Path, channels: int, background: tuple[int, int, int]) -> torch.Tensor:
    return _decode_bytes(_read_file(path), _read_mode(channels), channels, path, background)


def _stack(pairs: list[tuple[torch.Tensor, torch.Tensor]], img_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.stack([_fit(a, img_size) for a, _ in pairs]).contiguous()
    targets = torch.stack([_fit(b, img_size) for _, b in pairs]).contiguous()
    return inputs, targets


def _two_folders(first: str, second: str, img_size: int, channels: int, on_bad_image: str,
                 background: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    a_dir, b_dir = _folder(first, "input"), _folder(second, "target")
    a, b = _by_name(a_dir, "input"), _by_name(b_dir, "target")
    shared = sorted(a.keys() & b.keys())
    if not shared:
        raise GanzooUsageError(f"no image of {a_dir} has a partner of the same name in {b_dir} (e.g. "
                               f"{next(iter(a))} vs {next(iter(b))}); {_FIX_NAMES}")
    for extra, side, other in ((sorted(a.keys() - b.keys()), a_dir, b_dir), (sorted(b.keys() - a.keys()), b_dir,
                                                                              a_dir)):
        if extra:
            raise GanzooUsageError(f"{len(extra)} image(s) of {side} have no partner of the same name in {other} "
                                   f"(first: {extra[0]}); {_FIX_NAMES}")
    pairs, skipped = [], 0
    with _quiet_torchvision_io():
        for key in shared:
            try:
                x, y = _decode(a[key], channels, background), _decode(b[key], channels, background)
            except UndecodableImage as exc:
                if on_bad_image == "fail":
                    raise exc.with_hint(SKIP_HINT) from exc
                skipped += 1
                continue
            if x.shape[1:] != y.shape[1:]:
                raise GanzooUsageError(f"pair {key}: the input is {x.shape[2]}x{x.shape[1]} px and the target "
                                       f"{y.shape[2]}x{y.shape[1]}; a pair's two images must be the same size "
                                       "(resize one of them)")
            pairs.append((x, y))
    if not pairs:
        raise GanzooUsageError(f"none of the {len(shared)} pairs in {a_dir} and {b_dir} could be decoded")
    inputs, targets = _stack(pairs, img_size)
    return inputs, targets, skipped


def _side_by_side(text: str, input_half: str, img_size: int, channels: int, on_bad_image: str,
                  background: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    folder = _folder(text, "side-by-side")
    files = _scan_folder(folder)
    if not files:
        raise GanzooUsageError(f"the side-by-side folder {folder} contains no images ({_extensions_text()})")
    pairs, skipped = [], 0
    with _quiet_torchvision_io():
        for path in files:
            try:
                image = _decode(path, channels, background)
            except UndecodableImage as exc:
                if on_bad_image == "fail":
                    raise exc.with_hint(SKIP_HINT) from exc
                skipped += 1
                continue
            width = image.shape[2]
            if width % 2:
                raise GanzooUsageError(f"{path} is {width} px wide: a side-by-side pair needs an even width, the two "
                                       "images of the pair next to each other at the same size")
            left, right = image[:, :, :width // 2], image[:, :, width // 2:]
            pairs.append((left, right) if input_half == "left" else (right, left))
    if not pairs:
        raise GanzooUsageError(f"none of the {len(files)} images in {folder} could be decoded")
    inputs, targets = _stack(pairs, img_size)
    return inputs, targets, skipped


@dataclass
class Pairs:
    """Paired images, row by row: `inputs[i]` translates to `targets[i]` (uint8, N x C x S x S)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    skipped: int  # pairs left out because an image failed to decode (on_bad_image "skip")
    split: str  # "train" for emoji pairs (their train part), "all" for folders


def load_pairs(spec: str | os.PathLike[str], *, img_size: int, channels: int | None, on_bad_image: str,
               background: tuple[int, int, int]) -> Pairs:
    """Paired data (see the module docstring); `ganzoo.data.load_dataset` wraps it as an `ImageDataset`."""
    from ganzoo.emoji import EMOJI_SETS, paired_emoji

    text = os.fspath(spec).strip()
    channels = channels or paired_native_channels(text)
    split = "all"
    for prefix, half in SIDE_BY_SIDE.items():
        if text.startswith(prefix):
            inputs, targets, skipped = _side_by_side(text[len(prefix):], half, img_size, channels, on_bad_image,
                                                     background)
            break
    else:
        first, second = _sides(text)
        emoji = [side.lower() in EMOJI_SETS for side in (first, second)]
        if all(emoji):
            pairs = paired_emoji(first.lower(), second.lower(), split="train", img_size=img_size, channels=channels,
                                 background=_rgb_hex(background))
            inputs, targets, skipped, split = pairs.first, pairs.second, 0, "train"
        elif any(emoji):
            raise GanzooUsageError(f"paired data {text!r} mixes an emoji set with a folder; pair two emoji sets "
                                   f"({', '.join(EMOJI_SETS)}) or two folders")
        else:
            inputs, targets, skipped = _two_folders(first, second, img_size, channels, on_bad_image, background)
    logger.info("loaded %d pairs from %s", len(targets), text)
    return Pairs(inputs=inputs, targets=targets, skipped=skipped, split=split)

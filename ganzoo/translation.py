"""Image files through a translation model: what `ganzoo translate MODEL IN... -o OUT` does (and `ganzoo upscale`
with a super-resolution model, whose outputs are its scale times the inputs' size).

Inputs are image files and folders (scanned recursively, hidden files skipped). Every input gives one PNG in the
output folder named after it: ``photo.jpg`` becomes ``OUT/photo.png``; a folder's images keep their paths below it
(``IN/a/b.jpg`` becomes ``OUT/a/b.png``). Images are read as training reads them (transparency composited over the
background, then converted to the model's channels) at their own size, which the model must accept, or fitted
to one size first as training fits its data (`size`). Everything is
checked, and every input decoded, before the first file is written; each file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganzoo._imagefiles import (
    DEFAULT_BACKGROUND,
    IMAGE_EXTENSIONS,
    _decode_bytes,
    _extensions_text,
    _fit,
    _quiet_torchvision_io,
    _read_file,
    _read_mode,
    _scan_folder,
    parse_background,
)
from ganzoo._paths import first_overlap
from ganzoo.errors import GanzooUsageError

if TYPE_CHECKING:
    import torch

__all__ = ["plan_outputs", "read_input", "translate_files", "upscale_files"]


def plan_outputs(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 what: str = "translate") -> list[tuple[Path, Path]]:
    """(input file, output file) for every image the inputs name; refuses outputs that overlap inputs, two inputs
    that would write one output, and inputs that are not images. `what` ("translate" or "upscale") names the
    command in the messages."""
    out = Path(out)
    if not inputs:
        raise GanzooUsageError(f"name at least one image file or folder to {what}")
    if out.exists() and not out.is_dir():
        raise GanzooUsageError(f"-o {out} is a file; give a folder for the {what}d images")
    clash = first_overlap([out], inputs)
    if clash is not None:
        raise GanzooUsageError(f"-o {out} overlaps the input {clash[1]}; the outputs must lie apart from the inputs: "
                               "choose another -o")
    plan: list[tuple[Path, Path]] = []
    for given in map(Path, inputs):
        if given.is_dir():
            files = _scan_folder(given)
            if not files:
                raise GanzooUsageError(f"the folder {given} contains no images ({_extensions_text()})")
            plan += [(f, out / f.relative_to(given).with_suffix(".png")) for f in files]
        elif given.is_file():
            if given.suffix.lower() not in IMAGE_EXTENSIONS:
                raise GanzooUsageError(f"{given} is not an image file ({_extensions_text()})")
            plan.append((given, out / given.with_suffix(".png").name))
        else:
            raise GanzooUsageError(f"{given} does not exist; name image files or folders")
    seen: dict[Path, Path] = {}
    for source, target in plan:
        if target in seen:
            raise GanzooUsageError(f"{seen[target]} and {source} would both be written to {target}; rename one, or "
                                   f"{what} them into separate folders")
        seen[target] = source
    return plan


def translate_files(gan: Any, inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                    background: str = DEFAULT_BACKGROUND, seed: int | None = 0, size: int | None = None,
                    reverse: bool = False) -> list[Path]:
    """Translate image files and folders with `gan` (a translation `GANModel`) into the folder `out` (see the module
    docstring); returns the files written. `size` fits every input to size x size first, as training fits its data
    (shorter side resized, then centre-cropped); None keeps each input's own size. `reverse` translates B to A
    with a two-way model (CycleGAN); a one-way model refuses it before anything is read."""
    if gan.task == "translate" and reverse and not getattr(gan.sampler, "two_way", False):
        raise GanzooUsageError(f"{gan.architecture} translates one way only (input to output) and has no reverse "
                               "direction; drop --reverse")
    return _convert_files("translate", gan, inputs, out, background=background, seed=seed, size=size, reverse=reverse)


def upscale_files(gan: Any, inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                  background: str = DEFAULT_BACKGROUND, size: int | None = None) -> list[Path]:
    """Upscale image files and folders with `gan` (a super-resolution `GANModel`, task "upscale") into the folder
    `out`, as `translate_files` translates them: one PNG per input, `gan`'s scale times its size (`size` fits the
    inputs to size x size first)."""
    return _convert_files("upscale", gan, inputs, out, background=background, seed=0, size=size)


def read_input(gan: Any, source: Path, *, background: str = DEFAULT_BACKGROUND, size: int | None = None,
               fix: str = "") -> torch.Tensor:
    """One image file as the input of `gan` (a translation or super-resolution model), uint8 (C, H, W): decoded as
    training decodes images (transparency composited over `background`, the model's input channels), fitted to
    size x size when `size` is given (shorter side resized, centre-cropped). An input the model cannot take is
    refused in one line, ending with `fix` (default: the CLI's --size advice)."""
    channels = gan.sampler.in_channels
    with _quiet_torchvision_io():
        image = _decode_bytes(_read_file(source), _read_mode(channels), channels, source, parse_background(background))
    if size is not None:
        image = _fit(image, size)
    why = gan.sampler.check_input_size(int(image.shape[1]), int(image.shape[2]))
    if why is not None:
        fix = fix or ("choose another --size" if size is not None else "resize it, or fit every input with --size")
        raise GanzooUsageError(f"{source} is {image.shape[2]}x{image.shape[1]} px, which {gan.architecture} "
                               f"cannot {gan.task}: {why}; {fix}")
    return image


_USE_INSTEAD = {"generate": "`ganzoo sample`", "translate": "`ganzoo translate`", "upscale": "`ganzoo upscale`"}


def _convert_files(what: str, gan: Any, inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                   background: str, seed: int | None, size: int | None, reverse: bool = False) -> list[Path]:
    """`translate_files` (`what` "translate") and `upscale_files` ("upscale")."""
    from ganzoo._io import write_bytes
    from ganzoo.images import grid_png_bytes

    if gan.task != what:
        does = "generates images from noise" if gan.task == "generate" else f"{gan.task}s images"
        raise GanzooUsageError(f"{gan.architecture} {does} and does not {what}; use {_USE_INSTEAD[gan.task]}")
    plan = plan_outputs(inputs, out, what)
    decoded = [read_input(gan, source, background=background, size=size) for source, _ in plan]
    written = []
    for (_, target), image in zip(plan, decoded, strict=True):
        x = image.unsqueeze(0).float().div(127.5).sub(1.0)
        result = gan.translate(x, seed=seed, reverse=reverse) if what == "translate" else gan.upscale(x)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target, grid_png_bytes(result.cpu(), nrow=1, padding=0))
        written.append(target)
    return written

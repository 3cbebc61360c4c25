"""Image files: finding them in folders, decoding them, and fitting them to a square size and channel count.

The pieces `ganzoo.data` (whole datasets in memory) and `ganzoo.streaming` (datasets read image by image) share, so
that both paths turn the same file into the same tensor. torchvision is imported lazily: its import takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torchvision.io import ImageReadMode

logger = logging.getLogger("ganzoo.data")  # messages about files read for a dataset, as before this module existed

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
_GRAY_PIL_MODES = ("1", "L", "LA", "La", "I", "F")  # plus the "I;16*" family
_RESIZE_CHUNK = 4096
_TV_IO_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"


def _extensions_text() -> str:
    return "accepted extensions: " + " ".join(IMAGE_EXTENSIONS) + ", any case"


def _fit(images: torch.Tensor, img_size: int) -> torch.Tensor:
    """Resize (shorter side -> img_size, antialiased) and centre-crop to img_size x img_size.

    Accepts (C, H, W) or (N, C, H, W) uint8; large batches are resized in chunks to bound memory.
    torchvision's transforms are imported only when needed: the import takes seconds.
    """
    height, width = images.shape[-2:]
    if (height, width) == (img_size, img_size):
        return images
    from torchvision.transforms.v2 import functional as F

    if min(height, width) != img_size:
        if images.ndim == 4 and images.shape[0] > _RESIZE_CHUNK:
            parts = [
                F.resize(images[i : i + _RESIZE_CHUNK], [img_size], antialias=True)
                for i in range(0, images.shape[0], _RESIZE_CHUNK)
            ]
            images = torch.cat(parts)
        else:
            images = F.resize(images, [img_size], antialias=True)
    if tuple(images.shape[-2:]) != (img_size, img_size):
        images = F.center_crop(images, [img_size, img_size])
    return images


def _to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert (…, C, H, W) uint8 images to `channels` (1 or 3), dropping any alpha channel."""
    have = images.shape[-3]
    if have in (2, 4):  # gray+alpha / RGB+alpha
        images = images[..., : have - 1, :, :]
        have -= 1
    if have == channels:
        return images
    if channels == 3:
        return images.expand(*images.shape[:-3], 3, *images.shape[-2:])
    from torchvision.transforms.v2 import functional as F

    return F.rgb_to_grayscale(images, num_output_channels=1)


def _short_reason(exc: BaseException, limit: int = 200) -> str:
    """One line describing `exc`: its type and collapsed message, truncated."""
    text = " ".join(str(exc).split())
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        text = f"{text} (pip install {exc.name})"
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scan_folder(folder: Path) -> list[Path]:
    """All image files below `folder`, recursively, sorted; hidden files and folders are ignored."""
    return [folder / name for name in _scan_folder_names(folder)]


def _scan_folder_names(folder: Path) -> list[str]:
    """`_scan_folder`'s files as paths relative to `folder` (plain strings: a streamed folder keeps one per image).

    Sorted as tuples of path parts would sort: comparing strings whose separators became NUL, which sorts below
    every other character, gives the same order without a tuple per file."""
    root = str(folder)
    found: list[str] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        relative = os.path.relpath(dirpath, root)
        prefix = "" if relative == "." else relative + os.sep
        for filename in filenames:
            if filename.startswith(".") or not filename.lower().endswith(IMAGE_EXTENSIONS):
                continue
            found.append(prefix + filename)
    found.sort(key=lambda name: name.replace(os.sep, "\0"))
    return found


def _class_layout(folder: Path, files: list[Path]) -> tuple[list[str], list[int]] | None:
    """(class names, label per file) when every image sits below one of >= 2 sub-folders, else None."""
    tops: list[str] = []
    for path in files:
        parts = path.relative_to(folder).parts
        if len(parts) < 2:
            return None
        tops.append(parts[0])
    class_names = sorted(set(tops))
    if len(class_names) < 2:
        return None
    index = {class_name: i for i, class_name in enumerate(class_names)}
    return class_names, [index[top] for top in tops]


def _class_layout_names(names: list[str]) -> tuple[list[str], list[int]] | None:
    """`_class_layout` for paths relative to the folder (`_scan_folder_names`)."""
    tops: list[str] = []
    for name in names:
        top, sep, _ = name.partition(os.sep)
        if not sep:
            return None
        tops.append(top)
    class_names = sorted(set(tops))
    if len(class_names) < 2:
        return None
    index = {class_name: i for i, class_name in enumerate(class_names)}
    return class_names, [index[top] for top in tops]


def _folder_native_channels(files: list[Path]) -> int | None:
    """1 when the first readable image is grayscale (read from its header only), 3 otherwise, None if none is."""
    from PIL import Image

    for path in files:
        try:
            with Image.open(path) as image:
                mode = image.mode
        except Exception:  # an unreadable file: look at the next one
            logger.debug("cannot read the header of %s", path, exc_info=True)
            continue
        return 1 if mode in _GRAY_PIL_MODES or mode.startswith("I;16") else 3
    return None


@contextlib.contextmanager
def _quiet_torchvision_io() -> Iterator[None]:
    """Silence torchvision 0.29's per-call deprecation warning for its image decoders."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TV_IO_DEPRECATION, category=DeprecationWarning)
        yield


def _decode_one(path: Path, mode: ImageReadMode | None, channels: int) -> torch.Tensor:
    """Decode one file to uint8 (channels, H, W); torchvision first, PIL for what it cannot read (e.g. BMP)."""
    return _decode_bytes(path.read_bytes(), mode, channels, path)


def _decode_bytes(data: bytes, mode: ImageReadMode | None, channels: int, path: object = "image") -> torch.Tensor:
    """Decode an encoded image (`path` names it in debug logs) as `_decode_one` decodes a file."""
    image: torch.Tensor | None = None
    if mode is not None and data:
        from torchvision.io import ImageReadMode, decode_image

        # torchvision ignores GRAY for WebP (with a warning) and GIF; decode those as RGB and convert below.
        if channels == 1 and (data[:4] == b"GIF8" or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
            mode = ImageReadMode.RGB
        try:
            image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
        except RuntimeError:  # unsupported format or corrupt: PIL gets a go below
            logger.debug("torchvision cannot decode %s; trying PIL", path)
    if image is None:
        # PIL reads what torchvision cannot (BMP); for a truly corrupt file its message is the clearer one.
        image = _decode_pil(data, channels)
    if image.ndim == 4:  # an animated GIF: keep the first frame
        image = image[0]
    if image.dtype != torch.uint8:  # 16-bit PNG
        from torchvision.transforms.v2 import functional as F

        image = F.to_dtype(image, torch.uint8, scale=True)
    return _to_channels(image, channels)


def _decode_pil(data: bytes, channels: int) -> torch.Tensor:
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    try:
        opened = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:  # its message would name a BytesIO object
        raise ValueError("not a recognised image format" if data else "empty file") from None
    with opened as image:
        converted = image.convert("L" if channels == 1 else "RGB")
    return F.pil_to_tensor(converted)


def _read_mode(channels: int) -> ImageReadMode | None:
    try:
        from torchvision.io import ImageReadMode, decode_image  # noqa: F401 - both must exist
    except ImportError:  # a torchvision without its (deprecated) image decoders: PIL does it all
        return None
    return ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB

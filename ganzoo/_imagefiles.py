"""Image files: finding them in folders, decoding them, and fitting them to a square size and channel count.

The pieces `ganzoo.data` (whole datasets in memory) and `ganzoo.streaming` (datasets read image by image) share, so
that both paths turn the same file into the same tensor. torchvision is imported lazily: its import takes seconds.

Transparency is composited, never dropped: an image that stores alpha (RGBA, LA, a palette or gray/RGB image with a
transparent colour, 16-bit with alpha, ...) is composited over a background colour (`parse_background`) as it is
decoded, before it is converted or resized, so the colours hidden under transparent pixels never reach training.

Reading and decoding fail apart: a file that cannot be read (a permission, disk or vanished-file error) raises a
plain `DataError`; bytes that do not decode raise `UndecodableImage`, the one failure `on_bad_image="skip"` skips.
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

from ganzoo.errors import ConfigError, DataError, GanzooUsageError

if TYPE_CHECKING:
    from torchvision.io import ImageReadMode

logger = logging.getLogger("ganzoo.data")  # messages about files read for a dataset, as before this module existed

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
_GRAY_PIL_MODES = ("1", "L", "LA", "La", "I", "F")  # plus the "I;16*" family
_RESIZE_CHUNK = 4096
_TV_IO_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ALPHA_PIL_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
#: what transparent pixels are composited over unless the user says otherwise (see docs/data.md for why white)
DEFAULT_BACKGROUND = "#ffffff"
Background = tuple[int, int, int]


class UndecodableImage(DataError):
    """An image whose bytes were read but do not decode (unknown format, truncated or corrupt data, a decompression
    bomb): the only failure that ``on_bad_image="skip"`` may skip. A file that cannot be read is a plain
    `DataError`. `name` is the image and `reason` the decoder's complaint, in one line."""

    def __init__(self, name: object, reason: str, hint: str = "") -> None:
        super().__init__(f"cannot decode image {name} ({reason})" + (f"; {hint}" if hint else ""))
        self.name = name
        self.reason = reason

    def with_hint(self, hint: str) -> UndecodableImage:
        """The same failure, its message ending with what to do about it."""
        return UndecodableImage(self.name, self.reason, hint)


#: what to do about an image that fails to decode while `on_bad_image` is "fail"
SKIP_HINT = "fix or delete it, or pass --on-bad-image skip to leave out images that fail to decode"


#: Pillow modes that hold one channel (a grey image, with or without alpha)
PIL_GRAY = ("1", "L", "LA", "La", "I", "F")


class Source:
    """Encoded images by position (0 .. len - 1) with optional integer labels, cheap to copy into worker processes.

    `entry(i)` names an image (a file name, a zip member, a dataset row) for messages and `ganzoo data prepare`.
    """

    name: str
    entries: list[str]  # the names of the images; sources of a known length without names override entry()
    labels: list[int] | None = None
    class_names: list[str] | None = None
    #: the licence and attribution the data carries (``license``, ``attribution``, ``url``, ``note``), where known:
    #: an emoji set's, or what ``ganzoo data prepare`` recorded in a zip made from one
    terms: dict[str, str] | None = None

    def __len__(self) -> int:
        """Number of images."""
        return len(self.entries)

    def entry(self, i: int) -> str:
        """The name of image `i`."""
        return self.entries[i]

    def read_bytes(self, i: int) -> bytes:
        """The encoded image at position `i`."""
        raise NotImplementedError

    def native_channels(self) -> int:
        """1 when the first readable image is grayscale, else 3 (read from its header)."""
        from PIL import Image

        for i in range(min(len(self), 64)):
            try:
                with Image.open(io.BytesIO(self.read_bytes(i))) as image:
                    mode = image.mode
            except Exception:  # unreadable: look at the next one
                logger.debug("cannot read the header of %s", self.entry(i), exc_info=True)
                continue
            return 1 if mode in PIL_GRAY or mode.startswith("I;16") else 3
        raise GanzooUsageError(f"{self.name} has no readable images among its first {min(len(self), 64)}")


def parse_background(value: object) -> Background:
    """The (r, g, b) of a background colour: a colour name (the CSS names: white, black, gray, ...; any case) or
    ``#rrggbb`` (``#rgb`` too). Anything else is a one-line `ConfigError`."""
    from PIL import ImageColor

    text = value.strip().lower() if isinstance(value, str) else ""
    is_hex = text.startswith("#") and len(text) in (4, 7) and all(c in "0123456789abcdef" for c in text[1:])
    if is_hex or text in ImageColor.colormap:
        red, green, blue = ImageColor.getrgb(text)[:3]
        return red, green, blue
    raise ConfigError(f"background {value!r} is not a colour; give a colour name (white, black, gray, ...) or "
                      f"#rrggbb, e.g. --background '#808080'")


def background_hex(value: object) -> str:
    """`value` checked by `parse_background` and written as ``#rrggbb`` (lower case): how runs record it."""
    return _rgb_hex(parse_background(value))


def _rgb_hex(rgb: Background) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


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
    """Convert (…, C, H, W) uint8 images (C is 1 or 3: alpha was composited when they were decoded) to `channels`
    (1 or 3): gray is repeated, RGB reduced to ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B) rounded to the nearest
    level, in 16-bit fixed point whose weights sum to exactly 1, so that white stays 255 and any gray its own level."""
    have = images.shape[-3]
    if have not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {have}")
    if have == channels:
        return images
    if channels == 3:
        return images.expand(*images.shape[:-3], 3, *images.shape[-2:])
    red, green, blue = images.to(torch.int32).unbind(-3)
    luma = (red * 19595 + green * 38470 + blue * 7471 + 32768) >> 16
    return luma.unsqueeze(-3).to(torch.uint8)


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
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unreadable_folder, followlinks=True):
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


def _unreadable_folder(exc: OSError) -> None:
    """os.walk's error handler: a folder that cannot be listed would silently drop its images; stop instead."""
    reason = f"{type(exc).__name__}: {exc.strerror}" if exc.strerror else _short_reason(exc, 120)
    raise DataError(f"cannot read the folder {exc.filename} ({reason}); check its permissions and the disk")


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


def _read_file(path: Path) -> bytes:
    """The bytes of an image file; a one-line `DataError` (never skipped) when they cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _read_error(path, exc) from None


def _read_error(name: object, exc: BaseException) -> DataError:
    """The error for an image that could not be read (as opposed to decoded): it stops training even under
    ``--on-bad-image skip``, which skips only what fails to decode."""
    strerror = getattr(exc, "strerror", None)  # an OSError's text without the file name, which the line has
    reason = f"{type(exc).__name__}: {strerror}" if strerror else _short_reason(exc, 120)
    return DataError(f"cannot read image {name} ({reason}); check that it exists and is readable and that the disk "
                     "is sound (--on-bad-image skip skips only images that fail to decode)")


def _decode_bytes(data: bytes, mode: ImageReadMode | None, channels: int, path: object = "image",
                  background: Background = (255, 255, 255)) -> torch.Tensor:
    """Decode an encoded image to uint8 (channels, H, W); `path` names it in messages.

    torchvision first, PIL for what it cannot read (e.g. BMP). An image with transparency is composited over
    `background` first (`_composite`), then converted. Any failure is an `UndecodableImage`: the bytes are in memory
    already, so whatever goes wrong is in them."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            _check_png_pixels(data)
        if _has_alpha(data):
            image = _composite(_decode_alpha(data, mode is not None), background)
        else:
            image = _decode_opaque(data, mode, channels, path)
        return _to_channels(image, channels)
    except Exception as exc:
        raise UndecodableImage(path, _short_reason(exc, 120)) from exc


def _decode_opaque(data: bytes, mode: ImageReadMode | None, channels: int, path: object) -> torch.Tensor:
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
    return _first_frame_uint8(image)


def _first_frame_uint8(image: torch.Tensor) -> torch.Tensor:
    if image.ndim == 4:  # an animated GIF: keep the first frame
        image = image[0]
    if image.dtype != torch.uint8:  # 16-bit PNG: the high byte, as torchvision's to_dtype scales
        from torchvision.transforms.v2 import functional as F

        image = F.to_dtype(image, torch.uint8, scale=True)
    return image


def _png_header(data: bytes) -> tuple[int, bool]:
    """(colour type, has a tRNS chunk) of a PNG: chunks are walked up to the first image data."""
    color_type = data[25] if len(data) > 25 else -1
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        if kind == b"tRNS":
            return color_type, True
        if kind in (b"IDAT", b"IEND"):
            break
        position += 12 + length
    return color_type, False


def _check_png_pixels(data: bytes) -> None:
    """Refuse a PNG whose header declares more pixels than PIL would decode (twice `PIL.Image.MAX_IMAGE_PIXELS`, a
    decompression bomb): torchvision, which decodes PNGs here, has no such limit of its own."""
    from PIL import Image

    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > 2 * limit:
        raise Image.DecompressionBombError(f"{width} x {height} pixels, over twice PIL's MAX_IMAGE_PIXELS "
                                           f"({limit}): a decompression bomb?")


def _has_alpha(data: bytes) -> bool:
    """Whether an encoded image stores transparency: an alpha channel, or a transparent palette index or colour.

    PNGs are answered from their header bytes and JPEGs (which have no alpha) at once; other formats from PIL's
    reading of their header. Undecodable data answers False (the decoder then says what is wrong)."""
    if data.startswith(_PNG_SIGNATURE):
        color_type, transparent = _png_header(data)
        return color_type in (4, 6) or transparent  # gray + alpha, RGB + alpha; or a tRNS chunk
    if data.startswith(b"\xff\xd8"):
        return False
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.mode in _ALPHA_PIL_MODES or "transparency" in image.info
    except Exception:  # not an image PIL knows: the decoder reports it
        return False


def _decode_alpha(data: bytes, torchvision_io: bool) -> torch.Tensor:
    """An image with transparency as uint8 (C + 1, H, W), C = 1 (gray) or 3, alpha last.

    PNGs with an alpha channel or a transparent palette and WebPs go through torchvision (16-bit PNGs keep their
    precision until the final scaling); the rest (GIF, a gray or RGB PNG with a transparent colour, BMP) through PIL,
    which applies a transparent colour or palette index as alpha."""
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    color_type = _png_header(data)[0] if data.startswith(_PNG_SIGNATURE) else -1
    if torchvision_io and (color_type in (3, 4, 6) or webp):
        from torchvision.io import ImageReadMode, decode_image

        mode = ImageReadMode.GRAY_ALPHA if color_type == 4 else ImageReadMode.RGB_ALPHA
        try:
            return _first_frame_uint8(decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode))
        except RuntimeError:
            logger.debug("torchvision cannot decode this image with its alpha; trying PIL")
    return _decode_alpha_pil(data)


def _decode_alpha_pil(data: bytes) -> torch.Tensor:
    import numpy as np
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    with Image.open(io.BytesIO(data)) as image:
        if image.mode.startswith("I") and "transparency" in image.info:
            # 16-bit gray with a transparent value: PIL's conversion to LA would clip, so mask the raw samples
            values = torch.from_numpy(np.asarray(image).astype(np.int64))
            alpha = (values != int(image.info["transparency"])).to(torch.uint8) * 255
            gray = (values.clamp(0, 65535) >> 8).to(torch.uint8)
            return torch.stack([gray, alpha])
        gray = image.mode in _GRAY_PIL_MODES or image.mode.startswith("I;16")
        converted = image.convert("LA" if gray else "RGBA")
    return F.pil_to_tensor(converted)


def _composite(image: torch.Tensor, background: Background) -> torch.Tensor:
    """Composite uint8 (C + 1, H, W) with straight alpha last over an opaque `background`: out = a * colour +
    (1 - a) * background, a = alpha / 255, rounded to the nearest integer (the premultiplied `over` operator, in the
    image's own stored values, as viewers and browsers show it). Gray stays gray over a gray background; else RGB."""
    colour, alpha = image[:-1].float(), image[-1:].float()
    under = torch.tensor(background, dtype=torch.float32).view(3, 1, 1)
    if colour.shape[0] == 1:
        if background[0] == background[1] == background[2]:
            under = under[:1]
        else:
            colour = colour.expand(3, -1, -1).clone()
    # exact in float32: the sums are integers below 2**24, and x / 255 is never within 0.0019 of a half while the
    # division's error stays under 1e-5, so the rounding equals the integer (x + 127) // 255
    return colour.mul_(alpha).add_(under * (255 - alpha)).div_(255).round_().to(torch.uint8)


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

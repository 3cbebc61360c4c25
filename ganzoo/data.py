"""Datasets as in-memory uint8 image tensors.

Four kinds of source are understood by `load_dataset`:

* ``mnist-5k``: 5,000 real MNIST digits embedded in the package (no network; see ``_data/MNIST-5K.md``);
* ``stacked-mnist``: StackedMNIST built from mnist-5k, three digits drawn independently, one per colour channel
  (1,000 modes; 50,000 train and 25,600 test images, always the same; see `STACKED_MNIST_SIZES`);
* three emoji sets in colour, ``twemoji``, ``openmoji`` and ``noto-emoji`` (`EMOJI`; ``NAME+tones`` with skin-tone
  variants), from pip-installable packages and a Debian font, labelled by Unicode emoji group (see `ganzoo.emoji`);
* torchvision datasets (``mnist``, ``fashion-mnist``, ``cifar10``, ``celeba``), downloaded on first use
  into `cache_dir`;
* a folder of images, optionally with one sub-folder per class;
* the streamed sources of `ganzoo.streaming` (``stream:FOLDER``, StyleGAN-style zips, ``hf:NAME``), read whole;
* paired data for image-to-image translation (`ganzoo.pairs`): ``IN>TARGET`` (two folders matched by file name,
  or two emoji sets), ``ab:FOLDER`` and ``ba:FOLDER`` (side-by-side pairs);
* unpaired data for image-to-image translation (`ganzoo.unpaired`): ``A~B`` (two folders or two emoji sets, no
  correspondence between them).

`open_dataset`, what training uses, leaves the streamed sources on disk instead: they are decoded image by image
as batches are drawn (`ganzoo.streaming.StreamingDataset`).

Splits (`SPLITS`): named datasets have a fixed train/test split. mnist-5k's is ganzoo's own: the last
`MNIST_5K_TEST_PER_CLASS` (100) images of every class, in the file's own order, are the test part (1,000 images),
the first 400 of every class the train part (4,000); the `digits` extractor's classifier trains on the train part
only, so the test part holds images it never saw. stacked-mnist's train part stacks mnist-5k's train digits and its
test part its test digits. The emoji sets share one split by emoji (`ganzoo.emoji.emoji_split`: about a fifth of the
emoji are the test part, the same ones in every set). The torchvision datasets use their official splits. Image
folders have no split (only "all"). Training uses all of mnist-5k, stacked-mnist's and the emoji sets' train part
and the torchvision training sets (`split=None`); evaluation compares with the test part by default
(`ganzoo.metrics`).

Every image is resized so that its shorter side equals ``img_size`` and then centre-cropped to a square,
and converted to the requested channel count; an image with transparency is first composited over `background`
(default white; see `ganzoo._imagefiles`). torchvision is imported lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import io
import logging
import os
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganzoo._imagefiles import (
    DEFAULT_BACKGROUND,
    IMAGE_EXTENSIONS,
    SKIP_HINT,
    UndecodableImage,
    _class_layout,
    _decode_bytes,
    _extensions_text,
    _fit,
    _folder_native_channels,
    _quiet_torchvision_io,
    _read_file,
    _read_mode,
    _rgb_hex,
    _scan_folder,
    _short_reason,
    _to_channels,
    parse_background,
)
from ganzoo.emoji import EMOJI_SETS
from ganzoo.errors import ConfigError, DataError, GanzooUsageError, unknown_name

if TYPE_CHECKING:

    from ganzoo.streaming import StreamingDataset

__all__ = [
    "BUILTIN",
    "DEFAULT_BACKGROUND",
    "EMOJI",
    "IMAGE_EXTENSIONS",
    "MNIST_5K_TEST_PER_CLASS",
    "SPLITS",
    "STACKED_MNIST_SIZES",
    "TORCHVISION",
    "ImageDataset",
    "cache_dir",
    "dataset_names",
    "eval_split",
    "has_splits",
    "load_emoji",
    "load_dataset",
    "mnist_5k_test_mask",
    "native_channels",
    "open_dataset",
    "select_split",
]

logger = logging.getLogger(__name__)

BUILTIN = ("mnist-5k", "stacked-mnist")
TORCHVISION = ("mnist", "fashion-mnist", "cifar10", "celeba")
#: the emoji sets (`ganzoo.emoji`, the ``ganzoo[emoji]`` extra); each also as ``NAME+tones``, with skin-tone variants
EMOJI = EMOJI_SETS
_TONES = "+tones"
SPLITS = ("train", "test", "all")
MNIST_5K_TEST_PER_CLASS = 100  # the last 100 images of every class are mnist-5k's test part
#: images in each part of stacked-mnist: 50,000 train (150 MiB at 32 px) and 25,600 test, the sample count of the
#: mode-coverage protocol (VEEGAN, PacGAN), so that real stacks are measured as generated ones are
STACKED_MNIST_SIZES = {"train": 50_000, "test": 25_600}
_STACKED_MNIST_SEEDS = {"train": 1, "test": 2}  # random.Random seeds: the same draws on every machine and Python

_NATIVE_CHANNELS = {"mnist-5k": 1, "stacked-mnist": 3, "mnist": 1, "fashion-mnist": 1, "cifar10": 3, "celeba": 3,
                    **{name + tones: 3 for name in EMOJI for tones in ("", _TONES)}}
# Where each torchvision dataset keeps its files below the download root (named in error messages).
_TV_SUBDIR = {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw", "cifar10": "", "celeba": "celeba"}
_FOLDER_PREFIX = "folder:"


@dataclass
class ImageDataset:
    """A whole dataset in memory: uint8 images (N, C, H, W) with optional int64 class labels.

    `split` says which part of the source the images are: "train", "test" or "all" (see `SPLITS`). Paired data for
    image-to-image translation (`ganzoo.pairs`) also has `inputs`: the input image of each of `images`, its target.
    Unpaired data (`ganzoo.unpaired`) has `inputs` too, domain A beside `images`, domain B, with `unpaired` set: the
    two are unrelated, may differ in length, and training draws them in independent orders.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int
    name: str
    class_names: list[str] | None = None
    skipped: int = 0
    split: str = "all"
    inputs: torch.Tensor | None = None
    unpaired: bool = False

    def __len__(self) -> int:
        """Number of images."""
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        """Channel count of the images (1 or 3)."""
        return int(self.images.shape[1])


def dataset_names() -> list[str]:
    """Every accepted dataset name (builtin first, then the emoji sets, then torchvision); any other spec must be a
    folder path. An emoji set's name is also accepted as ``NAME+tones`` (with its skin-tone variants)."""
    return [*BUILTIN, *EMOJI, *TORCHVISION]


def cache_dir() -> Path:
    """Where torchvision datasets are downloaded: ``$GANZOO_HOME/datasets``, else the XDG cache, else ``~/.cache``."""
    home = os.environ.get("GANZOO_HOME")
    if home:
        return Path(home).expanduser() / "datasets"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "ganzoo" / "datasets"
    return Path.home() / ".cache" / "ganzoo" / "datasets"


def has_splits(spec: str) -> bool:
    """Whether a dataset spec has a train/test split: the named datasets do, image folders do not."""
    return _dataset_name(spec) is not None


def eval_split(spec: str, split: str | None = None) -> str:
    """The split evaluation compares with: `split` when given (checked), else "test" where the data has one and
    "all" for an image folder."""
    if split is None:
        return "test" if has_splits(spec) else "all"
    _check_split(spec, split)
    return split


def _check_split(spec: str, split: str) -> None:
    if split not in SPLITS:
        raise GanzooUsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split != "all" and not has_splits(spec):
        raise GanzooUsageError(f"the image folder {spec} has no {split} split; use split 'all' (--split all), or "
                               "make separate folders for the parts")


def mnist_5k_test_mask(labels: torch.Tensor, per_class: int = MNIST_5K_TEST_PER_CLASS) -> torch.Tensor:
    """True for mnist-5k's test part: the last `per_class` images of every class, in dataset order."""
    test = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique().tolist():
        test[(labels == c).nonzero().flatten()[-per_class:]] = True
    return test


def select_split(dataset: ImageDataset, split: str) -> ImageDataset:
    """The `split` part of a loaded dataset: itself when it is that split already; the train or test part of the
    whole of mnist-5k or of stacked-mnist. Anything else is a usage error saying to load that split
    (`load_dataset(..., split=)`)."""
    if split not in SPLITS:
        raise GanzooUsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if dataset.split == split:
        return dataset
    if dataset.name == "stacked-mnist" and dataset.split == "all" and len(dataset) == sum(STACKED_MNIST_SIZES.values()):
        part = slice(0, STACKED_MNIST_SIZES["train"]) if split == "train" else slice(STACKED_MNIST_SIZES["train"], None)
        return dataclasses.replace(dataset, images=dataset.images[part].contiguous(),
                                   labels=None if dataset.labels is None else dataset.labels[part], split=split)
    whole_mnist_5k = dataset.name == "mnist-5k" and dataset.split == "all" and len(dataset) == 5000
    if not whole_mnist_5k or dataset.labels is None:
        raise GanzooUsageError(f"{dataset.name} was loaded as its {dataset.split!r} split, not {split!r}; load it "
                               f"with load_dataset(..., split={split!r})")
    test = mnist_5k_test_mask(dataset.labels)
    keep = test if split == "test" else ~test
    return ImageDataset(images=dataset.images[keep].contiguous(), labels=dataset.labels[keep],
                        num_classes=dataset.num_classes, name=dataset.name, class_names=dataset.class_names,
                        skipped=dataset.skipped, split=split)


def native_channels(spec: str) -> int:
    """Channel count (1 or 3) of a named dataset or image folder, without loading all of it.

    For a folder this is 1 when the first image found is grayscale (PIL mode L or LA) and 3 otherwise.
    """
    from ganzoo.lowres import is_lowres, parse_lowres
    from ganzoo.pairs import is_paired, paired_native_channels
    from ganzoo.unpaired import is_unpaired, unpaired_native_channels

    if is_lowres(spec):
        return native_channels(parse_lowres(spec)[1])
    if is_paired(spec):
        return paired_native_channels(spec)
    if is_unpaired(spec):
        return unpaired_native_channels(spec)
    name = _dataset_name(spec)
    if name is not None:
        return _NATIVE_CHANNELS[name]
    if _is_streamed(spec):
        from ganzoo.streaming import open_source

        return open_source(spec).native_channels()
    folder = _folder_path(spec)
    channels = _folder_native_channels(_scan_folder(folder))
    if channels is None:
        raise GanzooUsageError(f"data folder {folder} has no readable images ({_extensions_text()})")
    return channels


def load_dataset(
    spec: str,
    *,
    img_size: int,
    channels: int | None = None,
    root: str | os.PathLike[str] | None = None,
    on_bad_image: str = "fail",
    download: bool = True,
    split: str | None = None,
    background: str = DEFAULT_BACKGROUND,
) -> ImageDataset:
    """Load a dataset by name or image-folder path as uint8 tensors of shape (N, C, img_size, img_size).

    `split` ("train", "test" or "all"; see the module's docstring) picks a part; None loads what training uses:
    all of mnist-5k, the train part of stacked-mnist and of an emoji set, the training set of a torchvision dataset,
    a whole image folder.

    `channels` None keeps the native channel count; 1 or 3 converts (gray is repeated to RGB, RGB is
    reduced with ITU-R 601 luma). `root` overrides the download folder of torchvision datasets.
    `on_bad_image` ("fail" or "skip") decides what a file that fails to decode does; a file that cannot be read
    (permissions, the disk, a vanished file) is always an error. `background` (a colour name or ``#rrggbb``) is
    what transparent pixels of image files are composited over. `download` False never touches the network.

    A spec that is an existing directory, contains a path separator, starts with "." or "~" (or with
    "folder:") is an image folder, scanned recursively in sorted order for the `IMAGE_EXTENSIONS`
    (hidden files and folders ignored). When every image lies below one of at least two top-level
    sub-folders, each sub-folder is a class (labels follow the sorted sub-folder names); otherwise the
    dataset is unlabelled. Dataset names take precedence over same-named directories ("./mnist" forces
    the folder).
    """
    rgb = _check_arguments(img_size, channels, on_bad_image, background)
    from ganzoo.lowres import is_lowres
    from ganzoo.pairs import is_paired, load_pairs

    if is_lowres(spec):  # srN:SPEC: high-resolution targets and their downscaled inputs (super-resolution)
        return _load_lowres(spec, img_size=img_size, channels=channels, root=root, on_bad_image=on_bad_image,
                            download=download, split=split, background=background)
    if is_paired(spec):  # input > target pairs for image-to-image translation
        if split not in (None, "train", "all"):
            raise GanzooUsageError(f"paired data has no {split} split here; load it with split=None")
        pairs = load_pairs(spec, img_size=img_size, channels=channels, on_bad_image=on_bad_image, background=rgb)
        return ImageDataset(images=pairs.targets, labels=None, num_classes=0, name=os.fspath(spec).strip(),
                            skipped=pairs.skipped, split=pairs.split, inputs=pairs.inputs)
    from ganzoo.unpaired import is_unpaired, load_unpaired

    if is_unpaired(spec):  # two unrelated domains, A~B, for unpaired translation
        if split not in (None, "train", "all"):
            raise GanzooUsageError(f"unpaired data has no {split} split here; load it with split=None")
        sides = load_unpaired(spec, img_size=img_size, channels=channels, on_bad_image=on_bad_image, background=rgb)
        return ImageDataset(images=sides.b, labels=None, num_classes=0, name=os.fspath(spec).strip(),
                            skipped=sides.skipped, split=sides.split, inputs=sides.a, unpaired=True)
    name = _dataset_name(spec)
    if split is not None:
        _check_split(os.fspath(spec), split)
    if name == "mnist-5k":
        whole = _load_mnist_5k(img_size, channels)
        return whole if split is None else select_split(whole, split)
    if name == "stacked-mnist":
        if channels == 1:
            raise GanzooUsageError("stacked-mnist has 3 channels, one digit in each (its 1,000 modes); load it with "
                                   "channels=3 or None (train with --channels 3, the default for this data)")
        parts = ["train", "test"] if split == "all" else [split or "train"]
        loaded = [_load_stacked_mnist(img_size, part) for part in parts]
        return loaded[0] if len(loaded) == 1 else _concatenate(loaded, "all")
    if name is not None and name.removesuffix(_TONES) in EMOJI:

        return load_emoji(name, img_size=img_size, channels=channels, split=split, background=_rgb_hex(rgb))
    if name is not None:
        target = Path(root).expanduser() if root is not None else cache_dir() / name
        parts = [split] if split in ("train", "test") else ["train", "test"] if split == "all" else ["train"]
        loaded = [
            _load_torchvision(
                name, target, img_size=img_size, channels=channels, download=download, on_bad_image=on_bad_image,
                split=part, background=rgb,
            )
            for part in parts
        ]
        return loaded[0] if len(loaded) == 1 else _concatenate(loaded, "all")
    if _is_streamed(spec):
        return _load_streamed(spec, img_size=img_size, channels=channels, on_bad_image=on_bad_image, background=rgb)
    return _load_folder(_folder_path(spec), img_size=img_size, channels=channels, on_bad_image=on_bad_image,
                        background=rgb)


def _load_lowres(spec: str, *, img_size: int, channels: int | None, root: str | os.PathLike[str] | None,
                 on_bad_image: str, download: bool, split: str | None, background: str) -> ImageDataset:
    """``srN:SPEC`` (`ganzoo.lowres`): SPEC loaded at `img_size` as the targets, their bicubic downscaling by N as
    the inputs."""
    from ganzoo.lowres import check_size, downscale, parse_lowres
    from ganzoo.pairs import is_paired

    factor, inner = parse_lowres(spec)
    text = os.fspath(spec).strip()
    check_size(img_size, factor, text)
    if is_paired(inner) or _is_streamed(inner):
        raise GanzooUsageError(f"{text}: super-resolution pairs are made from one in-memory image set; name a "
                               "folder or a dataset after the prefix (not pairs, stream:, zip: or hf:)")
    high = load_dataset(inner, img_size=img_size, channels=channels, root=root, on_bad_image=on_bad_image,
                        download=download, split=split, background=background)
    # the inputs are the condition; class labels are not used by super-resolution
    return dataclasses.replace(high, name=text, labels=None, num_classes=0, class_names=None,
                               inputs=downscale(high.images, factor).contiguous())


def open_dataset(
    spec: str, *, img_size: int, channels: int | None = None, on_bad_image: str = "fail",
    background: str = DEFAULT_BACKGROUND, workers: int | None = None,
) -> ImageDataset | StreamingDataset:
    """What training reads: a `StreamingDataset` (decoded image by image as batches are drawn) for a streamed spec
    (``stream:FOLDER``, ``zip:FILE`` or a .zip path, ``hf:NAME``; see `ganzoo.streaming`), else `load_dataset`'s
    in-memory dataset. `workers` is how many processes check a streamed source for images that fail to decode
    when `on_bad_image` is "skip" (None: `ganzoo.streaming.default_workers`)."""
    from ganzoo.lowres import is_lowres
    from ganzoo.pairs import is_paired

    text = os.fspath(spec).strip()
    if is_lowres(text):  # held in memory; load_dataset refuses a streamed SPEC after the prefix
        return load_dataset(spec, img_size=img_size, channels=channels, on_bad_image=on_bad_image,
                            background=background)
    if is_paired(text) and text.startswith(("stream:", "zip:", "hf:")):
        raise GanzooUsageError(f"{text}: paired data is held in memory and cannot be streamed; drop the prefix "
                               "(--data 'IN>TARGET', ab:FOLDER or ba:FOLDER)")
    from ganzoo.unpaired import is_unpaired

    if not _is_streamed(spec) or is_paired(text) or is_unpaired(text):
        return load_dataset(spec, img_size=img_size, channels=channels, on_bad_image=on_bad_image,
                            background=background)
    _check_arguments(img_size, channels, on_bad_image, background)
    from ganzoo.streaming import open_streaming

    return open_streaming(spec, img_size=img_size, channels=channels, on_bad_image=on_bad_image,
                          background=background, workers=workers)


def _check_arguments(img_size: int, channels: int | None, on_bad_image: str,
                     background: str) -> tuple[int, int, int]:
    """Check the loading arguments; returns the background as (r, g, b)."""
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
        raise ConfigError(f"img_size must be a positive integer, got {img_size!r}; use e.g. 32 or 64")
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ConfigError(f"channels must be 1, 3 or None (keep the dataset's own), got {channels!r}")
    if on_bad_image not in ("fail", "skip"):
        raise ConfigError(f"on_bad_image must be 'fail' or 'skip', got {on_bad_image!r}")
    return parse_background(background)


def _is_streamed(spec: str | os.PathLike[str]) -> bool:
    from ganzoo.streaming import is_streamed

    return is_streamed(spec)


def _load_streamed(spec: str | os.PathLike[str], *, img_size: int, channels: int | None = None,
                   on_bad_image: str = "fail", background: tuple[int, int, int] = (255, 255, 255)) -> ImageDataset:
    """A streamed spec read whole into memory, as `load_dataset` would read an image folder (images that fail to
    decode are skipped or fail as `on_bad_image` says; one that cannot be read always fails)."""
    text = os.fspath(spec)
    from ganzoo.emoji import parse_emoji_spec

    if parse_emoji_spec(text) is not None:  # stream:NAME[#SPLIT], read whole
        return load_emoji(text, img_size=img_size, channels=channels, background=_rgb_hex(background))
    if text.startswith("stream:"):
        return _load_folder(_folder_path(text[len("stream:"):]), img_size=img_size, channels=channels,
                            on_bad_image=on_bad_image, background=background)
    from ganzoo.streaming import open_streaming

    # "fail": read once here, skipping as we go, rather than have open_streaming check every image first
    dataset = open_streaming(spec, img_size=img_size, channels=channels, on_bad_image="fail",
                             background=_rgb_hex(background))
    out = torch.empty((len(dataset), dataset.channels, img_size, img_size), dtype=torch.uint8)
    keep: list[int] = []
    for i in range(len(dataset)):
        try:
            out[len(keep)] = dataset.read(i)
        except UndecodableImage as exc:
            if on_bad_image == "fail":
                raise exc.with_hint(SKIP_HINT) from exc
            continue
        keep.append(i)
    skipped = len(dataset) - len(keep)
    if skipped:
        logger.warning("skipped %d image(s) that failed to decode, of %d in %s", skipped, len(dataset),
                       dataset.name)
    labels = dataset.labels[keep] if dataset.labels is not None else None
    return ImageDataset(images=out[:len(keep)].clone() if skipped else out, labels=labels,
                              num_classes=dataset.num_classes, name=dataset.name, class_names=dataset.class_names,
                              skipped=skipped)


def _concatenate(parts: list[ImageDataset], split: str) -> ImageDataset:
    """One dataset of the parts' images (and labels), in order."""
    part_labels = [p.labels for p in parts if p.labels is not None]
    labels = torch.cat(part_labels) if len(part_labels) == len(parts) else None
    first = parts[0]
    return ImageDataset(images=torch.cat([p.images for p in parts]), labels=labels, num_classes=first.num_classes,
                        name=first.name, class_names=first.class_names, skipped=sum(p.skipped for p in parts),
                        split=split)


# --------------------------------------------------------------------------------------------- names


def _dataset_name(spec: str | os.PathLike[str]) -> str | None:
    """The canonical dataset name for `spec`, or None when `spec` is a folder path."""
    text = os.fspath(spec)
    lowered = text.strip().lower()
    if lowered in _NATIVE_CHANNELS:
        return lowered
    if _looks_like_path(text) or _is_streamed(text):
        return None
    raise unknown_name("dataset", text, dataset_names(), hint="or pass an image folder path")


def _looks_like_path(text: str) -> bool:
    if text.startswith(_FOLDER_PREFIX) or text.startswith((".", "~")):
        return True
    if os.sep in text or (os.altsep is not None and os.altsep in text):
        return True
    return bool(text) and os.path.isdir(text)


def _folder_path(spec: str | os.PathLike[str]) -> Path:
    """Resolve a folder spec to an absolute path, checking that it is an existing directory."""
    text = os.fspath(spec)
    if text.startswith(_FOLDER_PREFIX):
        text = text[len(_FOLDER_PREFIX) :]
    folder = Path(text).expanduser().absolute()
    if not folder.exists():
        hub_like = text.count("/") == 1 and not text.startswith((".", "/"))
        hub = f" (a Hugging Face dataset: hf:{text})" if hub_like else ""
        raise GanzooUsageError(
            f"data folder {folder} does not exist; check the path or use a dataset name ({', '.join(dataset_names())})"
            + hub
        )
    if not folder.is_dir():
        raise GanzooUsageError(f"data path {folder} is a file, not a folder; pass the folder that holds the images")
    return folder


# ------------------------------------------------------------------------------------------ geometry


def _finish(images: torch.Tensor, img_size: int, channels: int) -> torch.Tensor:
    """Channel-convert and fit a whole (N, C, H, W) batch, doing the cheap side of each step first."""
    if channels < images.shape[1]:
        images = _to_channels(images, channels)
    images = _fit(images, img_size)
    if channels > images.shape[1]:
        images = _to_channels(images, channels)
    return images.contiguous()


# ------------------------------------------------------------------------------------------ mnist-5k


@functools.lru_cache(maxsize=1)
def _mnist_5k_raw() -> tuple[torch.Tensor, torch.Tensor]:
    """Decode the embedded file once per process: images uint8 (5000, 1, 28, 28), labels int64 (5000,)."""
    from safetensors.torch import load

    resource = resources.files("ganzoo") / "_data" / "mnist_5k.safetensors.gz"
    try:
        tensors = load(gzip.decompress(resource.read_bytes()))
        images, labels = tensors["images"], tensors["labels"].to(torch.int64)
    except Exception as exc:
        raise DataError(
            f"the embedded dataset {resource} is missing or corrupt ({_short_reason(exc)}); reinstall ganzoo"
        ) from exc
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (1, 28, 28) or labels.shape != images.shape[:1]:
        raise DataError(f"the embedded dataset {resource} has an unexpected layout; reinstall ganzoo")
    return images, labels


def _load_mnist_5k(img_size: int, channels: int | None) -> ImageDataset:
    raw_images, raw_labels = _mnist_5k_raw()
    images = _finish(raw_images, img_size, channels or 1)
    if images.data_ptr() == raw_images.data_ptr():  # never hand out the cached tensor itself
        images = images.clone()
    return ImageDataset(
        images=images,
        labels=raw_labels.clone(),
        num_classes=10,
        name="mnist-5k",
        class_names=[str(i) for i in range(10)],
    )


# ------------------------------------------------------------------------------------- stacked-mnist


@functools.lru_cache(maxsize=2)
def _stacked_mnist_draws(split: str) -> torch.Tensor:
    """(n, 3) indices into mnist-5k's `split` part: the digit of each stack's red, green and blue channel.

    Drawn independently and uniformly with `random.Random(seed).random()`, whose sequence for an integer seed Python
    guarantees across versions and platforms, so every machine builds the same images."""
    pool = len(_mnist_5k_raw()[1]) - 10 * MNIST_5K_TEST_PER_CLASS if split == "train" else 10 * MNIST_5K_TEST_PER_CLASS
    draw = random.Random(_STACKED_MNIST_SEEDS[split]).random
    flat = [int(draw() * pool) for _ in range(3 * STACKED_MNIST_SIZES[split])]
    return torch.tensor(flat, dtype=torch.int64).view(-1, 3)


def _load_stacked_mnist(img_size: int, split: str) -> ImageDataset:
    """StackedMNIST: each image three mnist-5k digits of `split`, one per colour channel (R, G, B), label
    100 * red + 10 * green + blue (1,000 classes: the modes of the mode-coverage benchmark)."""
    raw_images, raw_labels = _mnist_5k_raw()
    test = mnist_5k_test_mask(raw_labels)
    keep = test if split == "test" else ~test
    digits = _fit(raw_images[keep], img_size)[:, 0]  # (pool, S, S): resized once, before stacking
    labels = raw_labels[keep]
    draws = _stacked_mnist_draws(split)
    images = digits[draws]  # (n, 3, S, S): the drawn digit in each channel
    stack_labels = (draws.new_tensor([100, 10, 1]) * labels[draws]).sum(1)
    return ImageDataset(images=images.contiguous(), labels=stack_labels, num_classes=1000, name="stacked-mnist",
                        class_names=[f"{i:03d}" for i in range(1000)], split=split)


# --------------------------------------------------------------------------------------- torchvision


def _open_torchvision(name: str, target: Path, download: bool, split: str = "train") -> Any:
    """Construct the torchvision dataset object ("train" or "test" split), turning any failure into a one-line
    DataError."""
    from torchvision import datasets

    where = target / _TV_SUBDIR[name] if _TV_SUBDIR[name] else target
    fallback = "or train on the embedded 'mnist-5k'"
    logger.info("loading %s from %s%s", name, target, " (downloading what is missing)" if download else "")
    captured = io.StringIO()  # torchvision print()s download chatter; keep it out of our stdout
    try:
        with contextlib.redirect_stdout(captured):
            train = split == "train"
            if name == "mnist":
                dataset = datasets.MNIST(str(target), train=train, download=download)
            elif name == "fashion-mnist":
                dataset = datasets.FashionMNIST(str(target), train=train, download=download)
            elif name == "cifar10":
                dataset = datasets.CIFAR10(str(target), train=train, download=download)
            else:
                dataset = datasets.CelebA(str(target), split=split, target_type=[], download=download)
    except Exception as exc:
        if download:
            message = (
                f"could not download {name} into {target} (offline?): {_short_reason(exc)}; "
                f"copy the files into {where} yourself {fallback}"
            )
        else:
            message = (
                f"{name} is not in {target} and downloading is off: {_short_reason(exc)}; "
                f"copy the files into {where} yourself, allow downloading, {fallback}"
            )
        raise DataError(message) from exc
    finally:
        if captured.getvalue().strip():
            logger.debug("torchvision said: %s", " | ".join(captured.getvalue().split("\n")))
    return dataset


def _load_torchvision(
    name: str, target: Path, *, img_size: int, channels: int | None, download: bool, on_bad_image: str,
    split: str = "train", background: tuple[int, int, int] = (255, 255, 255),
) -> ImageDataset:
    dataset = _open_torchvision(name, target, download, split)
    if name == "celeba":  # ~160k JPEG files: decode them directly rather than through PIL via __getitem__
        folder = Path(dataset.root) / dataset.base_folder / "img_align_celeba"
        files = [folder / filename for filename in dataset.filename]
        images, bad = _decode_files(files, img_size=img_size, channels=channels or 3, on_bad_image=on_bad_image,
                                    background=background)
        return ImageDataset(images=images, labels=None, num_classes=0, name=name, skipped=len(bad), split=split)
    data = dataset.data
    raw = data if isinstance(data, torch.Tensor) else torch.as_tensor(data)
    if raw.ndim == 3:  # MNIST-style (N, H, W)
        raw = raw.unsqueeze(1)
    else:  # CIFAR-style numpy (N, H, W, C)
        raw = raw.permute(0, 3, 1, 2)
    images = _finish(raw.to(torch.uint8), img_size, channels or _NATIVE_CHANNELS[name])
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64).reshape(-1)
    class_names = [str(i) for i in range(10)] if name == "mnist" else [str(c) for c in dataset.classes]
    return ImageDataset(
        images=images, labels=labels, num_classes=len(class_names), name=name, class_names=class_names, split=split
    )


# -------------------------------------------------------------------------------------- image folder


def _decode_files(
    files: list[Path], *, img_size: int, channels: int, on_bad_image: str,
    background: tuple[int, int, int] = (255, 255, 255),
) -> tuple[torch.Tensor, list[int]]:
    """Read, decode and fit every file; returns the stacked images and the indices of the files skipped (those
    that fail to decode, under "skip"). A file that cannot be read stops it, whatever `on_bad_image` says."""
    mode = _read_mode(channels)
    out = torch.empty((len(files), channels, img_size, img_size), dtype=torch.uint8)
    bad: list[int] = []
    first_bad = ""
    with _quiet_torchvision_io():
        for i, path in enumerate(files):
            data = _read_file(path)
            try:
                image = _decode_bytes(data, mode, channels, path, background)
            except UndecodableImage as exc:
                if on_bad_image == "fail":
                    raise exc.with_hint(SKIP_HINT) from exc
                logger.debug("skipping undecodable image %s: %s", path, exc.reason)
                if not bad:
                    first_bad = f"{path}: {exc.reason}"
                bad.append(i)
                continue
            out[i - len(bad)] = _fit(image, img_size)
    if bad:
        logger.warning("skipped %d unreadable image(s) of %d that failed to decode (first: %s)", len(bad), len(files),
                       first_bad)
    if bad:
        out = out[: len(files) - len(bad)].clone()
    return out, bad


def _load_folder(folder: Path, *, img_size: int, channels: int | None, on_bad_image: str,
                 background: tuple[int, int, int] = (255, 255, 255)) -> ImageDataset:
    files = _scan_folder(folder)
    if not files:
        raise GanzooUsageError(f"data folder {folder} contains no images ({_extensions_text()})")
    if channels is None:
        # nothing readable: any value will do, decoding below then fails or skips file by file
        channels = _folder_native_channels(files) or 3
    layout = _class_layout(folder, files)
    logger.info("loading %d images from %s%s", len(files), folder, f" ({len(layout[0])} classes)" if layout else "")
    images, bad = _decode_files(files, img_size=img_size, channels=channels, on_bad_image=on_bad_image,
                                background=background)
    if len(images) == 0:
        raise GanzooUsageError(
            f"data folder {folder} has no readable images (all {len(files)} failed to decode; {_extensions_text()})"
        )
    labels = None
    class_names = None
    if layout is not None:
        bad_set = set(bad)
        class_names = layout[0]
        labels = torch.tensor([label for i, label in enumerate(layout[1]) if i not in bad_set], dtype=torch.int64)
    return ImageDataset(
        images=images,
        labels=labels,
        num_classes=len(class_names) if class_names else 0,
        name=f"{_FOLDER_PREFIX}{folder}",
        class_names=class_names,
        skipped=len(bad),
    )


def load_emoji(spec: str, *, img_size: int, channels: int | None = None, split: str | None = None,
               background: str = DEFAULT_BACKGROUND) -> ImageDataset:
    """An emoji set (``SET`` or ``SET+tones``) as an in-memory `ImageDataset` labelled by Unicode group; `split` None
    is the train part (what training uses). `load_dataset` calls this for the emoji names."""
    from ganzoo.emoji import EMOJI_GROUPS, EmojiSource, parse_emoji_spec, read_all

    parsed = parse_emoji_spec(spec)
    if parsed is None:
        raise GanzooUsageError(f"{spec} is not an emoji set; choose one of {', '.join(EMOJI_SETS)}")
    name, tones, spec_split = parsed
    part = split or spec_split or "train"
    source = EmojiSource(name, split=part, tones=tones, img_size=img_size)
    logger.info("loading %d emoji of %s (%s part)", len(source), source.name, part)
    images = read_all(source, img_size, channels or 3, background)
    return ImageDataset(images=images, labels=torch.tensor(source.labels, dtype=torch.int64),
                        num_classes=len(EMOJI_GROUPS), name=source.name, class_names=list(EMOJI_GROUPS), split=part)

"""Datasets read image by image: streamed image folders, StyleGAN-style zips and Hugging Face datasets.

`ganzoo.data.load_dataset` holds a whole dataset in memory as one tensor (it reads these sources whole too, and
`ganzoo.data.open_dataset` opens them for streaming). The sources here are read one image at a time instead, so
memory does not grow with the dataset. A data spec names one:

* ``stream:FOLDER``: an image folder (the same files, classes and order as the in-memory folder);
* ``stream:SET[+tones][#SPLIT]``: an emoji set (`ganzoo.emoji`; its name wins over a folder of that name), its train
  part unless ``#test`` or ``#all`` says otherwise;
* ``zip:FILE`` or any path ending in ``.zip``: a zip in StyleGAN's dataset format: images (sorted by name) with
  optional labels in ``dataset.json`` (``{"labels": [["00000/img00000000.png", 3], ...]}``), as written by
  ``ganzoo data prepare`` and by StyleGAN's ``dataset_tool.py``;
* ``hf:NAME``: a Hugging Face dataset through the ``datasets`` package (``pip install 'ganzoo[hf]'``): a Hub id,
  read from its cache when ``HF_DATASETS_OFFLINE=1``, a local image folder (its ``imagefolder`` builder) or a
  parquet file or folder of parquet files. ``hf:NAME#SPLIT`` picks a split (default ``train``, else the first).
  The first ``Image`` column holds the images and the first ``ClassLabel`` column, if any, the labels.

Training on such a spec goes through `StreamBatches`: a torch DataLoader whose worker processes decode the images
of the batches ahead. Batch ``k`` holds the images at positions ``[k * B, (k + 1) * B)`` of the permutation of its
epoch, and that permutation depends only on the seed and the epoch (`epoch_order`, shared with the in-memory
batches), so the data order is a pure function of seed and step: a resumed run and every process of a
distributed run see exactly the images an uninterrupted single-process run would, and a streamed image folder
gives bit for bit the batches of the same folder held in memory.

Bad images: with ``on_bad_image="fail"`` (the default) an image that fails to decode stops training, with one line
naming it, when its batch is drawn. With ``"skip"``, `open_streaming` first decodes every image once (in worker
processes) and leaves out those that fail, as the in-memory path does: positions, labels and batches then refer
to the readable images only, and `StreamingDataset.skipped` counts the others. An image that cannot be *read*
(permissions, the disk, a vanished file) is never skipped: it stops training with one line naming it and the cause.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import logging
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganzoo import _imagefiles as _files
from ganzoo._imagefiles import DEFAULT_BACKGROUND, SKIP_HINT, Source, UndecodableImage
from ganzoo.errors import DataError, GanzooUsageError

__all__ = [
    "STREAM_PREFIXES",
    "PrepareSummary",
    "Source",
    "StreamBatches",
    "StreamingDataset",
    "default_workers",
    "epoch_order",
    "is_streamed",
    "open_source",
    "open_streaming",
    "prepare_zip",
]

logger = logging.getLogger(__name__)

STREAM_PREFIXES = ("stream:", "zip:", "hf:")
_LABELS_FILE = "dataset.json"
_HF_HINT = "pip install 'ganzoo[hf]' (or: pip install datasets)"
_PIL_GRAY = ("1", "L", "LA", "La", "I", "F")


def is_streamed(spec: str | os.PathLike[str]) -> bool:
    """Whether `spec` names a source read image by image: a ``stream:``, ``zip:`` or ``hf:`` spec, or a .zip path."""
    text = os.fspath(spec)
    return text.startswith(STREAM_PREFIXES) or text.lower().endswith(".zip")


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order in which epoch `epoch` visits `n` images: a permutation that depends only on (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


def default_workers() -> int:
    """Decoding worker processes when not given: half the CPU cores this process may use, 1 to 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // 2))


# ---------------------------------------------------------------------------------------------------------------------
# sources: encoded images by position, with labels
# ---------------------------------------------------------------------------------------------------------------------


class FolderSource(Source):
    """An image folder, scanned as the in-memory folder is: sorted, recursive, one class per top sub-folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = f"stream:{folder}"
        self.entries = _files._scan_folder_names(folder)  # relative: the shortest strings that name the files
        if not self.entries:
            raise GanzooUsageError(f"data folder {folder} contains no images ({_files._extensions_text()})")
        layout = _files._class_layout_names(self.entries)
        if layout is not None:
            self.class_names, self.labels = layout

    def entry(self, i: int) -> str:
        """The path of image `i`."""
        return os.path.join(self.folder, self.entries[i])

    def read_bytes(self, i: int) -> bytes:
        return Path(self.entry(i)).read_bytes()  # as the in-memory folder reads it


class ZipSource(Source):
    """A zip of images in StyleGAN's dataset format; each process opens its own handle on first read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"zip:{path}"
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                meta = json.loads(archive.read(_LABELS_FILE)) if _LABELS_FILE in names else None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise DataError(f"cannot read the zip {path} ({_files._short_reason(exc)}); is it a zip of images?") \
                from None
        self.entries = sorted(n for n in names if _is_image_name(n))
        if not self.entries:
            raise GanzooUsageError(f"the zip {path} holds no images ({_files._extensions_text()})")
        self._read_labels(meta)
        recorded = meta.get("ganzoo") if isinstance(meta, dict) else None
        terms = recorded.get("data_terms") if isinstance(recorded, dict) else None
        if isinstance(terms, dict) and isinstance(terms.get("license"), str):
            self.terms = {str(k): str(v) for k, v in terms.items()}

    def _read_labels(self, meta: Any) -> None:
        where = f"{self.path}:{_LABELS_FILE}"
        if meta is None or not isinstance(meta, dict) or meta.get("labels") is None:
            return
        try:
            given = {str(name): label for name, label in meta["labels"]}
        except (TypeError, ValueError):
            raise DataError(f"{where}: 'labels' must be a list of [file name, label] pairs") from None
        missing = [name for name in self.entries if name not in given]
        if missing:
            raise DataError(f"{where} has no label for {missing[0]} ({len(missing)} images unlabelled)")
        labels = [given[name] for name in self.entries]
        bad = next((x for x in labels if isinstance(x, bool) or not isinstance(x, int) or x < 0), None)
        if bad is not None:
            raise DataError(f"{where}: labels must be class numbers (integers >= 0), found {bad!r}")
        names = meta.get("class_names")
        count = max(labels) + 1
        if isinstance(names, list) and len(names) >= count:
            self.class_names = [str(n) for n in names]
        else:
            self.class_names = [str(i) for i in range(count)]
        self.labels = labels

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():  # a worker process: its own handle and file offset
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def read_bytes(self, i: int) -> bytes:
        return self._archive().read(self.entries[i])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_zip": None, "_pid": -1}


class TarSource(Source):
    """A tar archive of images (plain or compressed), for `ganzoo data prepare` only: read in archive order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        try:
            self._tar = tarfile.open(path)
            members = [m for m in self._tar.getmembers() if m.isfile() and _is_image_name(m.name)]
        except (tarfile.TarError, OSError) as exc:
            raise DataError(f"cannot read the archive {path} ({_files._short_reason(exc)})") from None
        self._members = members
        self.entries = [m.name for m in members]

    def read_bytes(self, i: int) -> bytes:
        handle = self._tar.extractfile(self._members[i])
        if handle is None:
            raise ValueError("not a regular file")
        return handle.read()


class HFSource(Source):
    """A Hugging Face `datasets.Dataset` (memory-mapped Arrow): its first Image column, by row."""

    def __init__(self, spec: str) -> None:
        try:
            import datasets
        except ImportError:
            raise DataError(f"reading {spec} needs the Hugging Face datasets package: {_HF_HINT}") from None
        target, _, split = spec[len("hf:"):].partition("#")
        self.name = spec
        dataset = _hf_load(datasets, target, split or None, spec)
        image_cols = [k for k, f in dataset.features.items() if isinstance(f, datasets.Image)]
        if not image_cols:
            raise DataError(f"{spec} has no image column (its columns: {', '.join(dataset.features)})")
        self.column = image_cols[0]
        label_cols = [k for k, f in dataset.features.items() if isinstance(f, datasets.ClassLabel)]
        if label_cols:
            feature = dataset.features[label_cols[0]]
            labels = [int(x) for x in dataset.data.column(label_cols[0]).to_pylist()]
            if labels and min(labels) < 0:  # -1: rows without a label (often a test split): train unconditionally
                logger.info("%s: some rows have no class label; its labels are not used", spec)
            else:
                self.labels, self.class_names = labels, [str(n) for n in feature.names]
        # undecoded: the file's own bytes go through the same decoder as an image folder's files
        self.dataset = dataset.select_columns([self.column]).cast_column(self.column, datasets.Image(decode=False))
        self.entries = []
        self._rows = len(dataset)

    def __len__(self) -> int:
        """Number of rows."""
        return self._rows

    def entry(self, i: int) -> str:
        """Row `i`, named for messages."""
        return f"{self.name} row {i}"

    def read_bytes(self, i: int) -> bytes:
        cell = self.dataset[i][self.column]
        if cell and cell.get("bytes"):
            return bytes(cell["bytes"])
        if cell and cell.get("path"):
            with open(cell["path"], "rb") as fh:
                return fh.read()
        return b""  # a row without an image: it fails to decode, as an empty file does


def _hf_load(datasets: Any, target: str, split: str | None, spec: str) -> Any:
    """Load `target` (a local folder, a parquet file or folder, or a Hub id) as a map-style dataset of `split`."""
    path = Path(target).expanduser()
    kwargs: dict[str, Any]
    if path.is_file() and path.suffix == ".parquet":
        kwargs = {"path": "parquet", "data_files": {"train": str(path.absolute())}}
    elif path.is_dir():
        parquet = sorted(str(p) for p in path.rglob("*.parquet"))
        kwargs = {"path": "parquet", "data_files": {"train": parquet}} if parquet else \
            {"path": "imagefolder", "data_dir": str(path.absolute())}
    elif not target or path.exists():
        raise GanzooUsageError(f"{spec}: give a Hub dataset id, a local image folder or a parquet file")
    else:
        kwargs = {"path": target}
    offline = os.environ.get("HF_DATASETS_OFFLINE", "") not in ("", "0")
    try:
        loaded = datasets.load_dataset(**kwargs)
    except Exception as exc:
        where = "" if "data_files" in kwargs or "data_dir" in kwargs else (
            "; offline (HF_DATASETS_OFFLINE=1) it must be in the datasets cache" if offline else
            "; check the id, the network, or set HF_DATASETS_OFFLINE=1 to read the cache")
        raise DataError(f"cannot load the Hugging Face dataset {target} ({_files._short_reason(exc)}){where}") \
            from None
    splits = sorted(loaded)
    chosen = split or ("train" if "train" in loaded else splits[0])
    if chosen not in loaded:
        raise GanzooUsageError(f"{spec} has no split {chosen!r}; it has {', '.join(splits)}")
    return loaded[chosen]


def _is_image_name(name: str) -> bool:
    parts = name.split("/")
    return not name.endswith("/") and not any(p.startswith(".") for p in parts) and \
        name.lower().endswith(_files.IMAGE_EXTENSIONS) and not parts[0] == "__MACOSX"


def _existing_folder(text: str) -> Path:
    folder = Path(text).expanduser().absolute()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise GanzooUsageError(f"data folder {folder} {what}; check the path")
    return folder


def open_source(spec: str | os.PathLike[str], img_size: int = 72) -> Source:
    """The `Source` a streamed spec names (see the module docstring); a usage error for anything else. `img_size` is
    the size an emoji set drawn from a font is rendered at."""
    text = os.fspath(spec)
    if text.startswith("hf:"):
        return HFSource(text)
    emoji = _emoji_source(text, img_size)
    if emoji is not None:
        return emoji
    if text.startswith("stream:"):
        return FolderSource(_existing_folder(text[len("stream:"):]))
    path = Path(text[len("zip:"):] if text.startswith("zip:") else text).expanduser().absolute()
    if not path.is_file():
        raise GanzooUsageError(f"data zip {path} does not exist; check the path")
    return ZipSource(path)


# ---------------------------------------------------------------------------------------------------------------------
# the dataset and its batches
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class StreamingDataset:
    """A dataset read image by image: decoded, composited over `background` where it has transparency,
    channel-converted and fitted to `img_size` as `load_dataset` does.

    It has the metadata of an `ImageDataset` (labels, classes, name, split, skipped) but no image tensor. `positions`
    maps its images to the source's (None: one to one); `open_streaming` sets it when images that fail to decode are
    left out, and `labels` then holds the labels of the images kept, so image `i` and label `i` always belong
    together.
    """

    source: Source
    img_size: int
    channels: int
    labels: torch.Tensor | None
    num_classes: int
    name: str
    class_names: list[str] | None = None
    on_bad_image: str = "fail"
    skipped: int = 0
    split: str = "all"
    background: _files.Background = (255, 255, 255)
    positions: torch.Tensor | None = None

    def __len__(self) -> int:
        """Number of images."""
        return len(self.source) if self.positions is None else len(self.positions)

    def subset(self, indices: torch.Tensor) -> StreamingDataset:
        """The images at `indices` of this dataset (in that order), with their labels: image `j` of the subset is
        image `indices[j]` here."""
        base = self.positions if self.positions is not None else torch.arange(len(self.source))
        return dataclasses.replace(self, positions=base[indices],
                                   labels=self.labels[indices] if self.labels is not None else None)

    def read(self, i: int) -> torch.Tensor:
        """Image `i` as uint8 (channels, img_size, img_size). An image that fails to decode raises a one-line
        `UndecodableImage`, one that cannot be read a one-line `DataError`."""
        k = i if self.positions is None else int(self.positions[i])
        try:
            image = self.decode(k)
        except UndecodableImage as exc:
            if self.on_bad_image == "skip":  # it decoded when the dataset was opened
                raise exc.with_hint("it decoded when training started, so it changed since; restore it, or start "
                                    "the run again") from exc
            raise exc.with_hint(SKIP_HINT) from exc
        return _files._fit(image, self.img_size)

    def decode(self, k: int) -> torch.Tensor:
        """The source's image `k`, decoded and composited, not yet fitted: (channels, H, W) uint8."""
        name = self.source.entry(k)
        try:
            data = self.source.read_bytes(k)
        except Exception as exc:  # whatever stops the bytes arriving is a read error, never skipped
            raise _files._read_error(name, exc) from None
        with _files._quiet_torchvision_io():
            return _files._decode_bytes(data, _files._read_mode(self.channels), self.channels, name, self.background)


def open_streaming(spec: str | os.PathLike[str], *, img_size: int, channels: int | None = None,
                   on_bad_image: str = "fail", background: str = DEFAULT_BACKGROUND,
                   workers: int | None = None) -> StreamingDataset:
    """Open a streamed spec (see the module docstring). With ``on_bad_image="skip"`` every image is decoded once,
    by `workers` processes (None: `default_workers`), and those that fail to decode are left out; otherwise
    nothing is decoded here."""
    rgb = _files.parse_background(background)
    source = open_source(spec, img_size)
    channels = channels or source.native_channels()
    labels = torch.tensor(source.labels, dtype=torch.int64) if source.labels is not None else None
    logger.info("streaming %d images from %s%s", len(source), source.name,
                f" ({len(source.class_names or [])} classes)" if labels is not None else "")
    dataset = StreamingDataset(source=source, img_size=img_size, channels=channels, labels=labels,
                               num_classes=len(source.class_names or []) if labels is not None else 0,
                               name=source.name, class_names=source.class_names, on_bad_image=on_bad_image,
                               background=rgb, split=getattr(source, "split", "all"))
    if on_bad_image == "skip":
        bad = _undecodable(dataset, default_workers() if workers is None else workers)
        if len(bad) == len(source):
            raise GanzooUsageError(f"{source.name} has no readable images (all {len(source)} failed to decode; "
                                   f"first: {source.entry(bad[0][0])}: {bad[0][1]})")
        if bad:
            logger.warning("skipped %d unreadable image(s) of %d that failed to decode (first: %s: %s)", len(bad),
                           len(source), source.entry(bad[0][0]), bad[0][1])
            keep = torch.ones(len(source), dtype=torch.bool)
            keep[[k for k, _ in bad]] = False
            dataset.positions = keep.nonzero().flatten()
            dataset.labels = labels[keep] if labels is not None else None
            dataset.skipped = len(bad)
    return dataset


class _Checker(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Item `c` decodes chunk `c` of a source: ([(position, reason) of each image that fails to decode], None), or
    ([], message) when one cannot be read (sent back as text, as `_BatchReader` does)."""

    CHUNK = 64

    def __init__(self, dataset: StreamingDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return -(-len(self.dataset.source) // self.CHUNK)

    def __getitem__(self, c: int) -> tuple[list[tuple[int, str]], str | None]:
        bad: list[tuple[int, str]] = []
        for k in range(c * self.CHUNK, min(len(self.dataset.source), (c + 1) * self.CHUNK)):
            try:
                self.dataset.decode(k)
            except UndecodableImage as exc:
                bad.append((k, exc.reason))
            except DataError as exc:
                return [], str(exc)
        return bad, None


def _undecodable(dataset: StreamingDataset, workers: int) -> list[tuple[int, str]]:
    """(position, reason) of every image of the source that fails to decode, in order. Small sources are checked
    in this process; a read error stops the check with its one-line `DataError`."""
    checker = _Checker(dataset)
    workers = min(workers, len(checker) // 16)  # under about a thousand images a worker costs more than it saves
    logger.info("checking the %d images of %s for ones that fail to decode (--on-bad-image skip)%s",
                len(dataset.source), dataset.name, f", in {workers} processes" if workers else "")
    loader = torch.utils.data.DataLoader(checker, batch_size=None, num_workers=workers, collate_fn=_as_is,
                                         generator=torch.Generator())  # its own: the training RNG stays untouched
    bad: list[tuple[int, str]] = []
    for found, error in loader:
        if error is not None:
            raise DataError(error)
        bad.extend(found)
    return bad


class _BatchReader(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """What a worker process holds: item `k` is batch `k` (this process's rows of it), decoded."""

    def __init__(self, dataset: StreamingDataset, batch_size: int, seed: int, rows: slice) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.per_epoch = len(dataset) // batch_size
        self.seed = seed
        self.rows = rows
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.int64)

    def indices(self, k: int) -> torch.Tensor:
        """Positions of the images of batch `k` that this process holds."""
        epoch, offset = divmod(k, self.per_epoch)
        if epoch != self._epoch:
            self._order = epoch_order(len(self.dataset), self.seed, epoch)
            self._epoch = epoch
        return self._order[offset * self.batch_size:(offset + 1) * self.batch_size][self.rows]

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None, str | None]:
        idx = self.indices(k)
        size, channels = self.dataset.img_size, self.dataset.channels
        images = torch.empty((len(idx), channels, size, size), dtype=torch.uint8)
        try:
            for row, i in enumerate(idx.tolist()):
                images[row] = self.dataset.read(i)
        except DataError as exc:  # sent back as text: an exception would arrive wrapped in a worker traceback
            return images, None, str(exc)
        labels = self.dataset.labels[idx] if self.dataset.labels is not None else None
        return images, labels, None


def _as_is(item: Any) -> Any:
    return item


class StreamBatches:
    """Batches of a `StreamingDataset`, decoded ahead by `workers` processes of a torch DataLoader.

    `get(index)` has the meaning of the in-memory batches' `get`: `index` counts batches from the start of training,
    the permutation of each epoch comes from `epoch_order`, and a distributed process keeps its `rows`. Batches are
    requested in order; asking for another index (a resumed run) restarts the workers from there.
    """

    def __init__(self, dataset: StreamingDataset, batch_size: int, seed: int, device: torch.device,
                 memory_format: torch.memory_format, rows: slice = slice(None), workers: int | None = None) -> None:
        if len(dataset) < batch_size:
            raise GanzooUsageError(f"the dataset has {len(dataset)} images, fewer than the batch size {batch_size}; "
                                   "lower --batch-size")
        self.reader = _BatchReader(dataset, batch_size, seed, rows)
        self.device = device
        self.memory_format = memory_format
        self.workers = default_workers() if workers is None else workers
        self._iterator: Iterator[Any] | None = None
        self._next = -1

    def _start(self, index: int) -> None:
        self.close()
        loader = torch.utils.data.DataLoader(
            self.reader, batch_size=None, sampler=itertools.count(index), num_workers=self.workers,
            collate_fn=_as_is, pin_memory=self.device.type == "cuda",
            generator=torch.Generator(),  # its own: the loader's seed draw must not touch the training RNG
            prefetch_factor=4 if self.workers else None)
        self._iterator = iter(loader)
        self._next = index

    def get(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Batch `index` on the device: images in [-1, 1] (float32) and labels (int64) or None."""
        if self._iterator is None or index != self._next:
            self._start(index)
        assert self._iterator is not None
        images, labels, error = next(self._iterator)
        self._next = index + 1
        if error is not None:
            self.close()
            raise DataError(error)
        x = images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        x = x.contiguous(memory_format=self.memory_format)
        return x, (labels.to(self.device, non_blocking=True) if labels is not None else None)

    def close(self) -> None:
        """Stop the worker processes (started again by the next `get`)."""
        iterator, self._iterator = self._iterator, None
        shutdown = getattr(iterator, "_shutdown_workers", None)  # also done when the iterator is collected
        if shutdown is not None:
            shutdown()
        self._next = -1


# ---------------------------------------------------------------------------------------------------------------------
# ganzoo data prepare
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class PrepareSummary:
    """What `prepare_zip` wrote and what it skipped (entry name and reason)."""

    out: Path
    images: int
    size: int
    channels: int
    class_names: list[str] | None
    skipped: list[tuple[str, str]]


def _emoji_source(spec: str, img_size: int) -> Source | None:
    """The emoji set a spec names (``[stream:]SET[+tones][#SPLIT]``, train part by default), else None."""
    from ganzoo.emoji import EmojiSource, parse_emoji_spec

    parsed = parse_emoji_spec(spec)
    if parsed is None:
        return None
    name, tones, split = parsed
    return EmojiSource(name, split=split or "train", tones=tones, img_size=img_size)


def _prepare_source(src: str, size: int) -> Source:
    text = os.fspath(src)
    if text.startswith("hf:"):
        return HFSource(text)
    emoji = _emoji_source(text, size)
    if emoji is not None:
        return emoji
    path = Path(text[len("zip:"):] if text.startswith("zip:") else text).expanduser().absolute()
    if path.is_dir():
        source = FolderSource(path)
        source.name = str(path)
        return source
    if not path.exists():
        raise GanzooUsageError(f"{path} does not exist; give an image folder, a .zip or .tar archive, or hf:NAME")
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    if tarfile.is_tarfile(path):
        return TarSource(path)
    raise GanzooUsageError(f"{path} is neither a folder nor a zip or tar archive of images")


def _folder_labels(source: Source) -> tuple[list[str], list[int]]:
    """Class names and labels from the sources' top-level folders (a dataset's own labels for hf:, the Unicode
    groups for an emoji set)."""
    if not isinstance(source, (FolderSource, ZipSource, TarSource)):
        if source.labels is None or source.class_names is None:
            raise GanzooUsageError(f"{source.name} has no class label column; drop --labels")
        return source.class_names, source.labels
    separator = os.sep if isinstance(source, FolderSource) else "/"
    parts = [e.split(separator) for e in source.entries]
    tops = [p[0] for p in parts if len(p) >= 2]
    names = sorted(set(tops))
    if len(tops) != len(parts) or len(names) < 2:
        raise GanzooUsageError(f"{source.name} has no class sub-folders: --labels from-folders needs every image "
                               "in one of at least two top-level folders")
    index = {n: i for i, n in enumerate(names)}
    return names, [index[p[0]] for p in parts]


def _pad_fit(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so that the longer side is `size` (antialiased), then pad the shorter one with black, centred."""
    from torchvision.transforms.v2 import functional as F

    height, width = image.shape[-2:]
    if max(height, width) != size:
        scale = size / max(height, width)
        image = F.resize(image, [max(1, round(height * scale)), max(1, round(width * scale))], antialias=True)
    height, width = image.shape[-2:]
    top, left = (size - height) // 2, (size - width) // 2
    out = torch.zeros((image.shape[0], size, size), dtype=torch.uint8)
    out[:, top:top + height, left:left + width] = image
    return out


def _encode_png(image: torch.Tensor) -> bytes:
    """PNG bytes without compression (as StyleGAN's dataset tool writes them: the fastest to decode)."""
    from PIL import Image

    array = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array, mode="L" if array.shape[2] == 1 else "RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="png", compress_level=0)
    return buffer.getvalue()


def prepare_zip(src: str, out: str | os.PathLike[str], *, size: int, labels: str = "none", fit: str = "crop",
                channels: int | None = None, background: str = DEFAULT_BACKGROUND,
                progress: Callable[[int, int], None] | None = None) -> PrepareSummary:
    """Write `src` (an image folder, a zip or tar archive of images, ``hf:NAME`` or an emoji set:
    ``SET[+tones][#SPLIT]``, its train part by default, drawn from its font at `size` where it has one) to `out` as
    a StyleGAN-style zip: square `size` px PNGs (``fit`` "crop": shorter side to `size`, centre-cropped, as training
    fits images; "pad": longer side to `size`, padded with black), labels in ``dataset.json`` with
    ``labels="from-folders"`` (the top-level folders, a Hugging Face dataset's class label column, or an emoji set's
    Unicode groups). Images with transparency are composited over `background` (a colour name or ``#rrggbb``;
    recorded in ``dataset.json``) before they are resized. Files that fail to decode are skipped and listed in the
    summary; one that cannot be read stops it with a `DataError`. The zip is written to a temporary file and
    renamed, so `out` is never half-written.

    `progress(done, total)` is called after every image.
    """
    from ganzoo._io import atomic_path

    if fit not in ("crop", "pad"):
        raise GanzooUsageError(f"fit must be 'crop' or 'pad', got {fit!r}")
    if labels not in ("none", "from-folders"):
        raise GanzooUsageError(f"labels must be 'none' or 'from-folders', got {labels!r}")
    if size < 1:
        raise GanzooUsageError(f"size must be a positive number of pixels, got {size}")
    rgb = _files.parse_background(background)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise GanzooUsageError(f"the output {out} must be a .zip file")
    from ganzoo._paths import inside, local_data_paths
    from ganzoo.emoji import parse_emoji_spec

    # the zip would replace its source, or be written among the images read (an emoji set reads no path)
    for read in [] if parse_emoji_spec(src) else local_data_paths(src):
        if inside(out, read):
            raise GanzooUsageError(f"the output {out} {'is' if inside(read, out) else 'lies inside'} the source "
                                   f"{read}; write the zip outside what it is made from")
    source = _prepare_source(src, size)
    class_names, all_labels = _folder_labels(source) if labels == "from-folders" else (None, None)
    channels = channels or source.native_channels()
    reader = StreamingDataset(source=source, img_size=size, channels=channels, labels=None, num_classes=0,
                              name=source.name, background=rgb)
    written: list[tuple[str, int | None]] = []
    skipped: list[tuple[str, str]] = []
    total = len(source)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(total):
            try:
                image = reader.decode(i)  # a read error (a plain DataError) stops here, the zip never renamed
            except UndecodableImage as exc:
                skipped.append((source.entry(i), exc.reason))
            else:
                image = _files._fit(image, size) if fit == "crop" else _pad_fit(image, size)
                name = f"{len(written) // 1000:05d}/img{len(written):08d}.png"
                archive.writestr(name, _encode_png(image.contiguous()))
                written.append((name, all_labels[i] if all_labels is not None else None))
            if progress is not None:
                progress(i + 1, total)
        if not written:
            raise GanzooUsageError(f"{source.name} has no readable images (all {total} failed to decode)")
        meta: dict[str, Any] = {"labels": [[n, lab] for n, lab in written] if class_names is not None else None}
        if class_names is not None:
            meta["class_names"] = class_names
        meta["ganzoo"] = {"source": str(src), "size": size, "fit": fit, "channels": channels,
                          "background": _files._rgb_hex(rgb), "skipped": len(skipped)}
        terms = getattr(source, "terms", None)  # the licence and attribution of data that carries them (emoji)
        if terms is not None:
            meta["ganzoo"]["data_terms"] = dict(terms)
        archive.writestr(_LABELS_FILE, json.dumps(meta))
    if skipped:
        logger.info("skipped %d file(s) of %d that failed to decode (first: %s: %s)", len(skipped), total,
                    *skipped[0])
    return PrepareSummary(out=out, images=len(written), size=size, channels=channels, class_names=class_names,
                          skipped=skipped)

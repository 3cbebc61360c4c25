"""Tests for ganzoo.data: the embedded mnist-5k set, image folders and (offline) torchvision datasets."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import data
from ganzoo.data import ImageDataset, cache_dir, dataset_names, load_dataset, native_channels
from ganzoo.errors import ConfigError, DataError, GanzooUsageError, UnknownNameError


def _solid(size: tuple[int, int], color: tuple[int, int, int]) -> Image.Image:
    """An RGB image of `size` (width, height) filled with `color`."""
    return Image.new("RGB", size, color)


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


# ------------------------------------------------------------------------------------------ mnist-5k


def test_mnist_5k_native() -> None:
    ds = load_dataset("mnist-5k", img_size=28)
    assert isinstance(ds, ImageDataset)
    assert ds.images.shape == (5000, 1, 28, 28)
    assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
    assert len(ds) == 5000 and ds.channels == 1
    assert ds.labels is not None and ds.labels.dtype == torch.int64 and ds.labels.shape == (5000,)
    assert torch.bincount(ds.labels, minlength=10).tolist() == [500] * 10
    assert ds.num_classes == 10 and ds.class_names == [str(i) for i in range(10)]
    assert ds.name == "mnist-5k" and ds.skipped == 0
    assert int(ds.images.min()) == 0 and int(ds.images.max()) == 255
    # every digit has ink, and the border of an MNIST digit is background
    assert bool((ds.images.flatten(1).amax(1) > 100).all())
    assert float(ds.images[:, :, 0, :].float().mean()) < 1.0


@pytest.mark.parametrize("size", [32, 64])
def test_mnist_5k_resized(size: int) -> None:
    ds = load_dataset("mnist-5k", img_size=size)
    assert ds.images.shape == (5000, 1, size, size)
    assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
    native = load_dataset("mnist-5k", img_size=28).images.float().mean()
    assert abs(float(ds.images.float().mean()) - float(native)) < 3.0  # resizing keeps the brightness


def test_mnist_5k_to_rgb_and_independent_copies() -> None:
    ds = load_dataset("mnist-5k", img_size=32, channels=3)
    assert ds.images.shape == (5000, 3, 32, 32) and ds.channels == 3 and ds.images.is_contiguous()
    assert torch.equal(ds.images[:, 0], ds.images[:, 1]) and torch.equal(ds.images[:, 0], ds.images[:, 2])
    gray = load_dataset("mnist-5k", img_size=28)
    gray.images.zero_()
    gray.labels.zero_()
    again = load_dataset("mnist-5k", img_size=28)  # the in-process cache must not have been touched
    assert int(again.images.max()) == 255 and torch.bincount(again.labels).tolist() == [500] * 10


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"img_size": 32, "channels": 2}, ConfigError),
        ({"img_size": 32, "channels": 4}, ConfigError),
        ({"img_size": 0}, ConfigError),
        ({"img_size": 32, "on_bad_image": "ignore"}, ConfigError),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_dataset("mnist-5k", **kwargs)


# -------------------------------------------------------------------------------------- image folder


def test_folder_with_classes(tmp_path: Path) -> None:
    for name, color in [("dogs", (0, 0, 255)), ("cats", (255, 0, 0))]:
        (tmp_path / name).mkdir()
        for i in range(3):
            _solid((40 + i, 30), color).save(tmp_path / name / f"{i}.png")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / ".hidden.png").write_bytes(b"junk")  # hidden files are ignored
    ds = load_dataset(str(tmp_path), img_size=16)
    assert ds.images.shape == (6, 3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.class_names == ["cats", "dogs"] and ds.num_classes == 2
    assert ds.labels is not None and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.name == f"folder:{tmp_path.absolute()}"
    assert ds.images[:3, 0].min() == 255 and ds.images[:3, 2].max() == 0  # cats are red
    assert ds.images[3:, 2].min() == 255 and ds.images[3:, 0].max() == 0  # dogs are blue
    gray = load_dataset(str(tmp_path), img_size=8, channels=1)
    assert gray.images.shape == (6, 1, 8, 8)
    assert abs(int(gray.images[0, 0, 0, 0]) - 76) <= 1  # ITU-R 601 luma of pure red
    assert native_channels(str(tmp_path)) == 3


def test_unlabelled_folders(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        _noise((20, 20), i).save(flat / f"img{i}.PNG")  # upper-case extension
    ds = load_dataset(str(flat), img_size=20)
    assert len(ds) == 3 and ds.labels is None and ds.num_classes == 0 and ds.class_names is None

    one_sub = tmp_path / "one"  # a single sub-folder is not a class layout
    (one_sub / "img_align").mkdir(parents=True)
    _noise((20, 20), 0).save(one_sub / "img_align" / "a.png")
    _noise((20, 20), 1).save(one_sub / "img_align" / "b.png")
    assert load_dataset(str(one_sub), img_size=20).labels is None

    mixed = tmp_path / "mixed"  # images at the root as well as in sub-folders: unlabelled, all found
    for sub in ("x", "y"):
        (mixed / sub).mkdir(parents=True)
        _noise((20, 20), 2).save(mixed / sub / "a.png")
    _noise((20, 20), 3).save(mixed / "root.png")
    ds = load_dataset(f"folder:{mixed}", img_size=20)
    assert len(ds) == 3 and ds.labels is None


def test_mixed_sizes_modes_and_formats(tmp_path: Path) -> None:
    base = _noise((50, 30), 7)
    base.convert("L").save(tmp_path / "a_gray.png")
    base.convert("RGBA").save(tmp_path / "b_rgba.png")
    base.convert("P").save(tmp_path / "c_palette.png")
    base.save(tmp_path / "d_rgb.jpg")
    base.resize((17, 40)).convert("LA").save(tmp_path / "e_la.png")
    base.save(tmp_path / "f_rgb.bmp")
    base.save(tmp_path / "g_rgb.webp")
    base.convert("P").save(tmp_path / "h_anim.gif", save_all=True, append_images=[_noise((50, 30), 8).convert("P")])
    base.convert("I;16").save(tmp_path / "i_16bit.png")
    assert native_channels(str(tmp_path)) == 1  # the first file is grayscale
    ds = load_dataset(str(tmp_path), img_size=24)
    assert ds.images.shape == (9, 1, 24, 24) and ds.labels is None
    rgb = load_dataset(str(tmp_path), img_size=24, channels=3)
    assert rgb.images.shape == (9, 3, 24, 24) and rgb.images.is_contiguous()


def test_resize_then_centre_crop(tmp_path: Path) -> None:
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # only the middle third is white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    ds = load_dataset(str(tmp_path), img_size=10)
    assert ds.images.shape == (1, 3, 10, 10)
    # the centre crop keeps only the white middle (its outermost columns slightly blended by the antialiasing)
    assert int(ds.images[..., 1:-1].min()) == 255 and int(ds.images.min()) > 128


def test_corrupt_image_fail_and_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        _noise((12, 12), 1).save(tmp_path / cls / "good.png")
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_dataset(str(tmp_path), img_size=12)
    message = str(info.value)
    assert "broken.png" in message and "--on-bad-image skip" in message and "\n" not in message

    with caplog.at_level(logging.WARNING, logger="ganzoo.data"):
        ds = load_dataset(str(tmp_path), img_size=12, on_bad_image="skip")
    assert ds.skipped == 2 and len(ds) == 2
    assert ds.labels is not None and ds.labels.tolist() == [0, 1] and ds.class_names == ["a", "b"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2" in warnings[0].getMessage()


def test_only_corrupt_images_when_skipping(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(GanzooUsageError, match="no readable images"):
        load_dataset(str(tmp_path), img_size=8, on_bad_image="skip")


def test_empty_missing_and_file_paths(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(GanzooUsageError, match=r"no images.*\.png"):
        load_dataset(str(tmp_path), img_size=8)
    with pytest.raises(GanzooUsageError, match="does not exist"):
        load_dataset(str(tmp_path / "nope"), img_size=8)
    with pytest.raises(GanzooUsageError, match="does not exist"):
        native_channels(str(tmp_path / "nope"))
    with pytest.raises(GanzooUsageError, match="not a folder"):
        load_dataset(str(tmp_path / "notes.txt"), img_size=8)


# ----------------------------------------------------------------------------------- names and misc


def test_unknown_name_suggests() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_dataset("mnist5k", img_size=32)
    assert "mnist-5k" in str(info.value) and isinstance(info.value, GanzooUsageError)
    with pytest.raises(UnknownNameError):
        native_channels("cifar-100")


def test_names_and_native_channels() -> None:
    assert dataset_names() == ["mnist-5k", "stacked-mnist", "twemoji", "openmoji", "noto-emoji", "mnist",
                               "fashion-mnist", "cifar10", "celeba"]
    expected = {"mnist-5k": 1, "stacked-mnist": 3, "twemoji": 3, "openmoji": 3, "noto-emoji": 3, "mnist": 1,
                "fashion-mnist": 1, "cifar10": 3, "celeba": 3}
    assert {name: native_channels(name) for name in dataset_names()} == expected
    assert native_channels("MNIST-5K") == 1


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GANZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "home" / "datasets"
    monkeypatch.delenv("GANZOO_HOME")
    assert cache_dir() == tmp_path / "xdg" / "ganzoo" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "ganzoo" / "datasets"


# --------------------------------------------------------------------------------------- torchvision


@pytest.mark.parametrize("exc", [urllib.error.URLError("no route"), RuntimeError("Error downloading x.gz")])
def test_torchvision_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: Exception) -> None:
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    monkeypatch.setenv("GANZOO_HOME", str(tmp_path))
    with pytest.raises(DataError) as info:
        load_dataset("mnist", img_size=32)
    message = str(info.value)
    assert message.startswith("could not download mnist into ") and str(tmp_path) in message
    assert "mnist-5k" in message and "\n" not in message


def test_torchvision_download_off_and_missing(tmp_path: Path) -> None:
    # the real torchvision class, with download=False: never touches the network
    with pytest.raises(DataError, match="downloading is off") as info:
        load_dataset("cifar10", img_size=32, root=tmp_path, download=False)
    assert "mnist-5k" in str(info.value)


def test_torchvision_arrays(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torchvision.datasets

    calls: list[tuple] = []

    class FakeMNIST:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            self.data = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
            self.targets = torch.tensor([0, 1, 2, 3, 4, 5, 6])

    class FakeCIFAR10:
        classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

        def __init__(self, root: str, train: bool, download: bool) -> None:
            self.data = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
            self.targets = [9, 8, 7, 6, 5]

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    ds = load_dataset("mnist", img_size=32, root=tmp_path)
    assert calls == [(str(tmp_path), True, True)]
    assert ds.images.shape == (7, 1, 32, 32) and ds.num_classes == 10 and ds.labels.tolist() == list(range(7))
    cifar = load_dataset("cifar10", img_size=32)
    assert cifar.images.shape == (5, 3, 32, 32) and cifar.images.is_contiguous()
    assert cifar.labels.dtype == torch.int64 and cifar.labels.tolist() == [9, 8, 7, 6, 5]
    assert cifar.class_names[0] == "airplane" and cifar.num_classes == 10
    gray = load_dataset("cifar10", img_size=16, channels=1)
    assert gray.images.shape == (5, 1, 16, 16)


def test_celeba_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torchvision.datasets

    images = tmp_path / "celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    for i in range(3):
        _noise((178, 218), i).save(images / f"{i:06d}.jpg")

    class FakeCelebA:
        base_folder = "celeba"

        def __init__(self, root: str, split: str, target_type: list, download: bool) -> None:
            assert split == "train" and target_type == []
            self.root = root
            self.filename = [f"{i:06d}.jpg" for i in range(3)]

    monkeypatch.setattr(torchvision.datasets, "CelebA", FakeCelebA)
    ds = load_dataset("celeba", img_size=64, root=tmp_path)
    assert ds.images.shape == (3, 3, 64, 64) and ds.labels is None and ds.num_classes == 0 and ds.name == "celeba"


def test_module_imports_torchvision_lazily() -> None:
    code = "import sys, ganzoo.data; sys.exit('torchvision' in sys.modules or 'PIL' in sys.modules)"
    root = Path(data.__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0


def test_all_corrupt_fail_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png"):
        load_dataset(str(tmp_path), img_size=8)
    with pytest.raises(GanzooUsageError, match="no readable images"):
        native_channels(str(tmp_path))


# ------------------------------------------------------------------------------------------------ splits


def test_mnist_5k_split_is_the_last_100_of_every_class() -> None:
    whole = load_dataset("mnist-5k", img_size=28)
    train = load_dataset("mnist-5k", img_size=28, split="train")
    test = load_dataset("mnist-5k", img_size=28, split="test")
    assert (whole.split, train.split, test.split) == ("all", "train", "test")
    assert len(train) == 4000 and len(test) == 1000
    assert torch.bincount(test.labels, minlength=10).tolist() == [100] * 10
    for c in range(10):  # in the file's own order: rows 500c..500c+399 train, the last 100 of the class test
        assert torch.equal(train.images[train.labels == c], whole.images[500 * c:500 * c + 400])
        assert torch.equal(test.images[test.labels == c], whole.images[500 * c + 400:500 * (c + 1)])
    assert torch.equal(load_dataset("mnist-5k", img_size=28, split="all").images, whole.images)
    assert torch.equal(data.select_split(whole, "test").images, test.images)
    assert load_dataset("mnist-5k", img_size=32, split="test").images.shape == (1000, 1, 32, 32)


def test_split_errors(tmp_path: Path) -> None:
    with pytest.raises(GanzooUsageError, match="unknown split 'valid'; choose one of train, test, all"):
        load_dataset("mnist-5k", img_size=28, split="valid")
    _solid((8, 8), (1, 2, 3)).save(tmp_path / "a.png")
    with pytest.raises(GanzooUsageError, match="has no train split"):
        load_dataset(str(tmp_path), img_size=8, split="train")
    test = load_dataset("mnist-5k", img_size=28, split="test")
    with pytest.raises(GanzooUsageError, match="loaded as its 'test' split"):
        data.select_split(test, "train")


def test_torchvision_splits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torchvision.datasets

    class FakeFashion:
        classes = [f"kind {i}" for i in range(10)]

        def __init__(self, root: str, train: bool, download: bool) -> None:
            n = 6 if train else 3
            self.data = torch.full((n, 28, 28), 10 if train else 200, dtype=torch.uint8)
            self.targets = torch.arange(n) + (0 if train else 5)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashion)
    default = load_dataset("fashion-mnist", img_size=28, root=tmp_path)
    train = load_dataset("fashion-mnist", img_size=28, root=tmp_path, split="train")
    test = load_dataset("fashion-mnist", img_size=28, root=tmp_path, split="test")
    both = load_dataset("fashion-mnist", img_size=28, root=tmp_path, split="all")
    assert (len(default), default.split, len(train), len(test), test.split) == (6, "train", 6, 3, "test")
    assert int(test.images.min()) == 200 and test.labels.tolist() == [5, 6, 7]
    assert len(both) == 9 and both.split == "all" and both.labels.tolist() == [0, 1, 2, 3, 4, 5, 5, 6, 7]
    assert torch.equal(both.images[6:], test.images)

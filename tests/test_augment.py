"""DiffAugment (ganzoo.augment): shapes, gradients, each transformation's maths, policy parsing, training."""

from __future__ import annotations

import pytest
import torch

from ganzoo.augment import AUGMENTATIONS, augment, color, cutout, parse_policy, translation
from ganzoo.errors import ConfigError
from ganzoo.testing import tiny_train

ALL = ["color", "translation", "cutout"]


def images(n=4, channels=3, size=16, seed=0):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def fixed_randint(value):
    """A stand-in for torch.randint that returns `value` everywhere (same shape, dtype and device)."""

    def randint(*args, size=None, device=None, **kwargs):
        shape = size if size is not None else args[-1]
        return torch.full(shape, value, dtype=torch.long, device=device)

    return randint


@pytest.mark.parametrize("policy", [[name] for name in ALL] + [ALL])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_are_preserved(policy, channels):
    x = images(channels=channels, size=12)
    out = augment(x, policy)
    assert out.shape == x.shape and out.dtype == x.dtype


def test_gradients_flow_to_the_input():
    x = images().requires_grad_(True)
    augment(x, ALL).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_seeded_augmentation_is_repeatable():
    x = images()
    torch.manual_seed(5)
    a = augment(x, ALL)
    torch.manual_seed(5)
    assert torch.equal(a, augment(x, ALL))


def test_translation_by_zero_is_the_identity(monkeypatch):
    x = images()
    monkeypatch.setattr(torch, "randint", fixed_randint(0))
    assert torch.equal(translation(x), x)


def test_translation_shifts_and_fills_with_zeros(monkeypatch):
    x = images()
    monkeypatch.setattr(torch, "randint", fixed_randint(1))  # every image moves up and left by one pixel
    out = translation(x)
    assert torch.equal(out[:, :, :-1, :-1], x[:, :, 1:, 1:])
    assert out[:, :, -1, :].abs().sum() == 0 and out[:, :, :, -1].abs().sum() == 0


def test_translation_stays_within_its_ratio():
    x = torch.ones(256, 1, 16, 16)
    out = translation(x, ratio=0.125)  # at most 2 pixels: at least 14 x 14 pixels of each image survive
    assert (out.flatten(1).sum(dim=1) >= 14 * 14).all()
    assert (out == 0).any()


def test_cutout_zeroes_one_rectangle_of_about_ratio_squared_of_the_image():
    torch.manual_seed(0)
    out = cutout(torch.ones(512, 1, 16, 16), ratio=0.5)
    zeroed = out == 0
    rows, cols = zeroed.any(dim=3).sum(dim=(1, 2)), zeroed.any(dim=2).sum(dim=(1, 2))
    assert torch.equal(zeroed.sum(dim=(1, 2, 3)), rows * cols)  # one axis-aligned rectangle per image
    assert rows.max() <= 8 and cols.max() <= 8
    # a square of ratio^2 = 1/4 of the image, clipped where it crosses the border
    fraction = zeroed.float().mean().item()
    assert 0.5 * 0.25 < fraction <= 0.25


def test_cutout_away_from_the_border_zeroes_exactly_ratio_squared(monkeypatch):
    monkeypatch.setattr(torch, "randint", fixed_randint(8))  # centre of a 16 x 16 image
    out = cutout(torch.ones(2, 1, 16, 16), ratio=0.5)
    assert (out == 0).sum(dim=(1, 2, 3)).tolist() == [64, 64]


def test_color_has_no_saturation_step_on_a_single_channel():
    x = images(channels=1)
    torch.manual_seed(3)
    out = color(x)
    torch.manual_seed(3)
    brightness, _saturation, contrast = (torch.rand(4, 1, 1, 1) for _ in range(3))
    expected = x + (brightness - 0.5)
    mean = expected.mean(dim=(1, 2, 3), keepdim=True)
    expected = (expected - mean) * (contrast + 0.5) + mean
    assert torch.allclose(out, expected, atol=1e-6)


def test_color_keeps_grey_images_grey():
    grey = images(channels=1).expand(-1, 3, -1, -1)
    out = color(grey)
    assert torch.allclose(out, out[:, :1].expand_as(out), atol=1e-6)


def test_policies_parse_in_any_order_and_reject_unknown_names():
    assert parse_policy("cutout, color") == ["cutout", "color"]
    assert parse_policy("") == []
    assert set(AUGMENTATIONS) == set(ALL) | {"brightness", "saturation", "contrast", "xflip", "rotate90"}
    with pytest.raises(ConfigError, match="unknown augmentation 'zoom'.*brightness, color, contrast, cutout"):
        parse_policy("color,zoom")

def test_an_unknown_augmentation_stops_training_before_a_run_folder_exists(tmp_path):
    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        tiny_train("dcgan", tmp_path / "run", steps=1, recipe={"augment": "flip"})
    assert not (tmp_path / "run").exists()


def test_a_recipe_with_augmentation_trains(tmp_path):
    gan = tiny_train("dcgan", tmp_path / "run", steps=2, recipe={"augment": "color,translation,cutout"})
    assert gan.info["training"]["recipe"]["augment"] == "color,translation,cutout"
    assert torch.isfinite(gan.sample(2, seed=0)).all()

"""Progressive GAN: the growth schedule, fade-in continuity, exact resume mid-fade, final-size outputs."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ganzoo_progan import GrowthSchedule, growth_at

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from ganzoo.registry import get_architecture
from ganzoo.testing import assert_same_state, tiny_config, tiny_train

# 16x16 final size: levels 0 (4x4), 1 (8x8), 2 (16x16). With batch 8: 4x4 for steps 0-1, 8x8 fades in over
# steps 2-4 and is stable for steps 5-6, 16x16 fades in over steps 7-9.
GROW = {"img_size": 16, "phase_kimg": 0.016, "fade_kimg": 0.024}


def test_schedule_is_a_pure_function_of_images_seen():
    assert growth_at(0, 3, 10, 20) == (0, 1.0)
    assert growth_at(9_999, 3, 10, 20) == (0, 1.0)
    assert growth_at(10_000, 3, 10, 20) == (1, 0.0)
    assert growth_at(15_000, 3, 10, 20) == (1, 0.25)
    assert growth_at(30_000, 3, 10, 20) == (1, 1.0)
    assert growth_at(40_000, 3, 10, 20) == (2, 0.0)
    assert growth_at(80_000, 3, 10, 20) == (3, 0.5)
    assert growth_at(10**9, 3, 10, 20) == (3, 1.0)
    assert growth_at(10_000, 3, 10, 0) == (1, 1.0)  # no fade-in: switch at once


def test_grows_through_two_phases_with_final_size_outputs(tmp_path):
    run = tmp_path / "grow"
    gan = tiny_train("progan", run, steps=10, config=GROW, log_every=1)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    # the record of step s describes the step that ran with (s - 1) * 8 images seen
    assert [r["resolution"] for r in records] == [4, 4, 8, 8, 8, 8, 8, 16, 16, 16]
    assert [round(r["alpha"], 4) for r in records] == [1, 1, 0, 0.3333, 0.6667, 1, 1, 0, 0.3333, 0.6667]
    assert all(math.isfinite(r["gradient_penalty"]) for r in records)
    for module in (gan.generator, gan.discriminator, gan.ema):
        assert int(module.level) == 2 and float(module.alpha) == pytest.approx(2 / 3)
    assert gan.sample(3, seed=0).shape == (3, 1, 16, 16)
    assert gan.discriminator(torch.zeros(3, 1, 16, 16)).shape == (3,)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_fade_in_starts_where_the_previous_level_ended(level):
    gan = ganzoo.create("progan", seed=0, img_size=32, z_dim=8, fmap_base=64, fmap_max=16)
    G, D = gan.generator.eval(), gan.discriminator.eval()
    z = torch.randn(4, 8)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    G.set_growth(level - 1, 1.0)
    D.set_growth(level - 1, 1.0)
    before, score_before = G(z), D(x)
    G.set_growth(level, 0.0)
    D.set_growth(level, 0.0)
    after, score_after = G(z), D(x)
    assert after.shape == before.shape == (4, 1, 32, 32)
    assert torch.allclose(after, before, atol=1e-6)
    assert torch.allclose(score_after, score_before, atol=1e-5)
    # the previous level's output upsampled: flat blocks of (32 / resolution)^2 pixels
    block = 32 // (4 << (level - 1))
    assert torch.equal(after, after[..., ::block, ::block].repeat_interleave(block, -1).repeat_interleave(block, -2))
    G.set_growth(level, 0.5)
    assert not torch.allclose(G(z), before)


def test_reals_are_brought_to_the_current_resolution_and_blended_during_fade_in():
    hook = GrowthSchedule(get_architecture("progan").make_config(**GROW))
    images = torch.rand(2, 1, 16, 16)
    hook.level, hook.alpha = 0, 1.0
    low = hook.process_real(images)
    assert low.shape == images.shape
    assert torch.allclose(low[..., :4, :4], images[..., :4, :4].mean(dim=(-1, -2), keepdim=True).expand(2, 1, 4, 4))
    hook.level, hook.alpha = 2, 1.0
    assert torch.equal(hook.process_real(images), images)
    hook.level, hook.alpha = 2, 0.0
    pooled = torch.nn.functional.avg_pool2d(images, 2)
    assert torch.allclose(hook.process_real(images), pooled.repeat_interleave(2, -1).repeat_interleave(2, -2))
    hook.level, hook.alpha = 2, 0.25
    blended = hook.process_real(images)
    expected = torch.lerp(pooled.repeat_interleave(2, -1).repeat_interleave(2, -2), images, 0.25)
    assert torch.allclose(blended, expected, atol=1e-6)


def test_resume_in_the_middle_of_a_fade_in_is_exact(tmp_path):
    whole = tiny_train("progan", tmp_path / "whole", steps=9, config=GROW)
    tiny_train("progan", tmp_path / "split", steps=4, config=GROW)  # its last step: 8x8 one third faded in
    mid = ganzoo.load(tmp_path / "split")
    assert int(mid.generator.level) == 1 and 0 < float(mid.generator.alpha) < 1
    resumed = ganzoo.train(out=tmp_path / "split", steps=9, resume=True)
    for name in ("generator", "discriminator", "ema"):
        assert_same_state(getattr(whole, name), getattr(resumed, name))


def test_sampling_mid_training_gives_final_size_images_and_reloads_exactly(tmp_path):
    trained = tiny_train("progan", tmp_path / "run", steps=4, config=GROW)
    assert trained.generator.resolution == 8 and 0 < trained.generator._alpha < 1
    images = trained.sample(5, seed=1)
    assert images.shape == (5, 1, 16, 16)
    loaded = ganzoo.load(tmp_path / "run")
    assert loaded.sampler.resolution == 8
    assert torch.equal(loaded.sample(5, seed=1), images)


def test_fresh_model_is_fully_grown():
    gan = ganzoo.create("progan", **tiny_config("progan"))
    assert gan.generator.resolution == gan.config.img_size and gan.generator._alpha == 1.0
    assert gan.sample(2, seed=0).shape == (2, 1, 8, 8)


def test_discriminator_takes_final_or_current_size_and_rejects_others():
    gan = ganzoo.create("progan", seed=0, **{**tiny_config("progan"), **GROW})
    D = gan.discriminator.eval()
    D.set_growth(1, 1.0)
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(D(x.repeat_interleave(2, -1).repeat_interleave(2, -2)), D(x), atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 8"):
        D(torch.rand(2, 1, 12, 12))


@pytest.mark.parametrize("size", [4, 24, 48])
def test_img_size_must_be_a_power_of_two_of_at_least_8(size):
    with pytest.raises(ConfigError, match="power of two"):
        ganzoo.create("progan", img_size=size)


def test_equalised_layers_scale_weights_at_runtime():
    torch.manual_seed(0)
    conv = EqualizedConv2d(8, 4, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.15)  # stored ~ N(0, 1)
    x = torch.randn(2, 8, 5, 5)
    expected = torch.nn.functional.conv2d(x, conv.weight * math.sqrt(2 / (8 * 9)), conv.bias, padding=1)
    assert torch.allclose(conv(x), expected)
    linear = EqualizedLinear(16, 3, gain=1.0, lr_mul=0.1)
    y = torch.randn(4, 16)
    expected = torch.nn.functional.linear(y, linear.weight * 0.1 / 4, linear.bias * 0.1)
    assert torch.allclose(linear(y), expected)


def test_pixel_norm_and_minibatch_stddev():
    x = torch.randn(3, 5, 2, 2) * 7
    assert torch.allclose(PixelNorm()(x).square().mean(dim=1), torch.ones(3, 2, 2), atol=1e-5)
    batch = torch.zeros(4, 2, 3, 3)
    batch[1] = 2.0  # one group of 4: per feature and position the std is sqrt(0.75) (values 0, 2, 0, 0)
    out = MinibatchStdDev(group_size=4)(batch)
    assert out.shape == (4, 3, 3, 3)
    assert torch.allclose(out[:, 2], torch.full((4, 3, 3), math.sqrt(0.75)), atol=1e-4)
    assert MinibatchStdDev(group_size=4)(torch.randn(6, 2, 3, 3)).shape == (6, 3, 3, 3)  # groups of 3

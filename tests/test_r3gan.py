"""r3gan: shapes, no normalisation anywhere, fix-up initialisation, the low-pass resampler, config errors, recipe.

The plugin test kit (build, train, save, reload; exact resume; fast paths) runs on r3gan from
tests/test_architectures.py, which covers every registered architecture.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ganzoo_r3gan import InvertedBottleneck, LowPassResample, binomial_filter
from ganzoo_r3gan.networks import LRELU_GAIN, resample_reference
from torch import nn
from torch.nn.utils import parametrize

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.registry import get_architecture


def _tiny(size: int = 32, **overrides):
    stages = int(math.log2(size)) - 1
    cfg = {"img_size": size, "z_dim": 8, "widths": [16] * (stages - 1) + [8], "blocks": [1] * stages,
           "group_size": 4}
    return {**cfg, **overrides}


def _blocks(module: nn.Module) -> list[InvertedBottleneck]:
    return [m for m in module.modules() if isinstance(m, InvertedBottleneck)]


@pytest.mark.parametrize("size", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    gan = ganzoo.create("r3gan", channels=channels, **_tiny(size))
    images = gan.generator.train()(torch.randn(3, 8))
    assert images.shape == (3, channels, size, size)
    assert gan.discriminator(images).shape == (3,)
    gan.generator.eval()
    assert gan.generator(torch.randn(3, 8) * 100).abs().max() <= 1  # eval mode clamps the linear output


def test_the_default_network_has_one_stage_per_resolution():
    gan = ganzoo.create("r3gan", seed=0)
    cfg = gan.config
    assert (cfg.img_size, cfg.channels) == (32, 1)
    assert len(gan.generator.stages) == len(gan.discriminator.stages) == 4  # 4, 8, 16, 32
    assert len(_blocks(gan.generator)) == len(_blocks(gan.discriminator)) == sum(cfg.blocks)
    grouped = [b.spatial for b in _blocks(gan.generator)]
    assert [c.groups for c in grouped] == [w * cfg.expansion // cfg.group_size for w in cfg.widths]
    assert all(c.kernel_size == (3, 3) for c in grouped)


def test_no_normalisation_layers():
    gan = ganzoo.create("r3gan", seed=0)
    allowed = (nn.Conv2d, nn.Linear, nn.Sequential, nn.Identity, LowPassResample, InvertedBottleneck)
    for net in (gan.generator, gan.discriminator):
        kinds = {type(m).__name__ for m in net.modules() if m is not net and not isinstance(m, allowed)}
        assert kinds == {"BiasedLeakyReLU"}, kinds
        assert not any(parametrize.is_parametrized(m) for m in net.modules())  # no spectral or weight norm
        assert not any("running" in name for name, _ in net.named_buffers())  # no batch statistics


def test_fixup_makes_every_residual_block_the_identity_at_initialisation():
    torch.manual_seed(0)
    gan = ganzoo.create("r3gan", **_tiny(blocks=[2, 1, 1, 2]))
    for block in _blocks(gan.generator) + _blocks(gan.discriminator):
        assert torch.count_nonzero(block.project.weight) == 0
        x = torch.randn(2, block.expand.in_channels, 8, 8)
        assert torch.equal(block(x), x)
        assert block.expand.weight.abs().sum() > 0 and block.spatial.weight.abs().sum() > 0  # the rest is not zero


def test_fixup_scales_branch_convolutions_by_depth():
    # std of the expand and grouped convs: He's gain for leaky ReLU / sqrt(fan_in), times L^(-1/4) for L blocks
    torch.manual_seed(0)
    for blocks in ([1, 1, 1, 1], [4, 4, 4, 4]):
        gan = ganzoo.create("r3gan", widths=[64] * 4, blocks=blocks, group_size=16)
        depth = sum(blocks) ** (-1 / 4)
        for block in _blocks(gan.generator):
            for conv in (block.expand, block.spatial):
                expected = LRELU_GAIN * depth / math.sqrt(conv.weight[0].numel())
                assert conv.weight.std().item() == pytest.approx(expected, rel=0.05)


def test_binomial_filter():
    assert torch.allclose(binomial_filter(4), torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8)
    assert torch.allclose(binomial_filter(2), torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("taps", [2, 4, 6, 8])
@pytest.mark.parametrize("direction", ["up", "down"])
def test_the_resampler_keeps_a_constant_image_constant(direction, taps):
    x = torch.full((2, 3, 8, 8), 0.7)
    y = LowPassResample(direction, taps)(x)
    assert y.shape == ((2, 3, 16, 16) if direction == "up" else (2, 3, 4, 4))
    assert torch.allclose(y, torch.full_like(y, 0.7), atol=1e-6)


@pytest.mark.parametrize("taps", [2, 4, 6, 8])
def test_downsampling_removes_a_checkerboard_that_plain_striding_keeps(taps):
    i = torch.arange(16)
    checker = ((i[:, None] + i[None, :]) % 2 * 2 - 1).float().expand(1, 2, 16, 16)
    assert checker[..., ::2, ::2].abs().min() == 1  # subsampling alone aliases it to a constant
    assert LowPassResample("down", taps)(checker).abs().max() < 1e-6


def test_downsampling_attenuates_high_frequencies_more_than_low_ones():
    x = torch.arange(32.0)
    down = LowPassResample("down", 4)
    gains = []
    for period in (16.0, 3.0):  # a slow and a fast cosine along the width
        wave = torch.cos(2 * math.pi * x / period).expand(1, 1, 32, 32)
        gains.append(down(wave)[..., 4:-4].std().item() / wave.std().item())
    assert gains[0] > 0.9 and gains[1] < 0.3, gains


def test_upsampling_interpolates_with_the_binomial_kernel():
    impulse = torch.zeros(1, 1, 8, 8)
    impulse[..., 4, 4] = 1
    y = LowPassResample("up", 4)(impulse)[0, 0]
    k = binomial_filter(4)
    assert torch.allclose(y[7:11, 7:11], 4 * torch.outer(k, k))  # centred between output pixels 8 and 9
    assert y.sum().item() == pytest.approx(4.0)
    # with 4 taps this is bilinear interpolation with aligned pixel centres (borders are reflected, not clamped)
    x = torch.randn(2, 3, 8, 8)
    bilinear = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(LowPassResample("up", 4)(x)[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1], atol=1e-6)


@pytest.mark.parametrize("taps", [2, 4, 6, 8])
@pytest.mark.parametrize("direction", ["up", "down"])
def test_the_depthwise_convolution_computes_the_slice_sums(direction, taps):
    """The resampler (one depthwise convolution) against its reference (sums of shifted slices, one axis at a time):
    the same values, first and second derivatives (R1 differentiates D's resamplers twice), in either layout."""
    resample = LowPassResample(direction, taps).double()
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(taps))
    ours, reference = resample(x), resample_reference(x, direction, taps)
    assert ours.shape == reference.shape == ((2, 3, 16, 24) if direction == "up" else (2, 3, 4, 6))
    assert torch.allclose(ours, reference, rtol=0, atol=1e-12)
    assert torch.allclose(resample(x.to(memory_format=torch.channels_last)), reference, rtol=0, atol=1e-12)
    weight = torch.randn_like(reference)
    grads = []
    for fn in (resample, lambda t: resample_reference(t, direction, taps)):
        t = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((fn(t) * weight).square().sum(), t, create_graph=True)
        (gg,) = torch.autograd.grad(g.square().sum(), t)
        grads.append((g.detach(), gg))
    for ours_grad, reference_grad in zip(*grads, strict=True):
        assert torch.allclose(ours_grad, reference_grad, rtol=1e-10, atol=1e-10)
    # in float32, as training runs, within float rounding
    assert torch.allclose(LowPassResample(direction, taps)(x.float()), reference.float(), rtol=0, atol=1e-5)


def test_the_filter_is_not_part_of_the_weights(tmp_path):
    """The kernel is a non-persistent buffer: no key in a state dict, so saved weights load strictly into a fresh
    model, and they draw what the slice sums drew."""
    resample = LowPassResample("up", 4)
    assert not resample.state_dict() and resample.to(torch.float64).kernel.dtype == torch.float64
    config = {"img_size": 16, "z_dim": 8, "widths": [8, 8, 8], "blocks": [1, 1, 1], "group_size": 4}
    torch.manual_seed(0)
    model = ganzoo.create("r3gan", **config)
    for param in model.generator.parameters():  # fix-up starts the branches at zero: give them something to draw
        param.data.add_(0.05 * torch.randn_like(param))
    saved = ganzoo.load(str(model.save_pretrained(tmp_path / "r3gan", samples=False)))  # strict: no extra key
    assert not any("kernel" in key for key in saved.generator.state_dict())
    images = saved.sample(8, seed=0)
    assert torch.equal(images, model.eval().sample(8, seed=0))
    for module in saved.generator.modules():
        if isinstance(module, LowPassResample):
            module.forward = lambda x, m=module: resample_reference(x, m.direction, m.taps)
    assert torch.allclose(saved.sample(8, seed=0), images, rtol=0, atol=1e-5)


def test_the_networks_resample_through_the_filter():
    gan = ganzoo.create("r3gan", **_tiny(filter_taps=6))
    for net, direction in ((gan.generator, "up"), (gan.discriminator, "down")):
        resamplers = [m for m in net.modules() if isinstance(m, LowPassResample)]
        assert len(resamplers) == 3 and {(r.direction, r.taps) for r in resamplers} == {(direction, 6)}
    assert not any(isinstance(m, (nn.ConvTranspose2d, nn.AvgPool2d, nn.Upsample)) for m in gan.generator.modules())


@pytest.mark.parametrize(("overrides", "message"), [
    ({"img_size": 64}, "widths has 4 entries but img_size 64 has 5 stages.*give 5 widths"),
    ({"blocks": [1, 1, 1]}, "blocks has 3 entries but img_size 32 has 4 stages"),
    ({"group_size": 24}, "group_size 24 must divide every block's hidden width"),
    ({"filter_taps": 3}, "filter_taps must be 2, 4, 6 or 8"),
    ({"num_classes": 10}, "num_classes must be 0"),
    ({"img_size": 28}, "img_size 28 is not supported"),
])
def test_bad_configs_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        ganzoo.create("r3gan", **overrides)
    assert "\n" not in str(info.value)


def test_presets():
    arch = get_architecture("r3gan")
    colour = ganzoo.create("r3gan", preset="cifar10")
    assert colour.sample(2, seed=0).shape == (2, 3, 32, 32)
    assert arch.make_recipe("cifar10").batch_size == 64


def test_recipe_is_the_papers():
    recipe = get_architecture("r3gan").recipe
    assert recipe.loss == "relativistic"
    assert recipe.r1_gamma == recipe.r2_gamma > 0  # one gamma for R1 and R2
    assert recipe.optimizer == "adam" and recipe.g_lr == recipe.d_lr == 2e-4 and recipe.betas == (0.0, 0.9)
    horizon = {"kind": "cosine"}  # over the whole run, whatever its length
    assert recipe.schedules["lr"] == {**horizon, "to": 5e-5}
    assert recipe.schedules["gamma"] == {**horizon, "to": pytest.approx(recipe.r1_gamma / 10)}
    assert recipe.schedules["beta2"] == {**horizon, "to": 0.99}
    assert recipe.ema_kimg > 0


def test_the_schedules_end_where_the_papers_do():
    from ganzoo.losses import loss_from_recipe
    from ganzoo.trainer.loop import schedule_starts

    recipe = get_architecture("r3gan").recipe
    n = recipe.steps
    starts = schedule_starts(recipe, loss_from_recipe(recipe))  # the trainer's own check and start values
    at = {step: {k: s.value(start, step, n) for k, (s, start) in starts.items()} for step in (0, n // 2, n, 2 * n)}
    gamma = recipe.r1_gamma
    assert at[0] == pytest.approx({"g_lr": 2e-4, "d_lr": 2e-4, "r1_gamma": gamma, "r2_gamma": gamma,
                                   "g_beta2": 0.9, "d_beta2": 0.9})
    assert at[n // 2]["g_lr"] == pytest.approx((2e-4 + 5e-5) / 2)  # cosine: half-way at half-time
    end = {"g_lr": 5e-5, "d_lr": 5e-5, "r1_gamma": gamma / 10, "r2_gamma": gamma / 10, "g_beta2": 0.99,
           "d_beta2": 0.99}
    assert at[n] == pytest.approx(end)
    # the schedules follow the run: the cifar10 preset's 50,000 steps anneal over all 50,000, not the first 1,000
    preset = get_architecture("r3gan").make_recipe("cifar10")
    long = preset.steps
    assert long == 50000 and preset.schedules == recipe.schedules
    preset_starts = schedule_starts(preset, loss_from_recipe(preset))
    for fraction in (0.02, 0.5, 0.9):
        short = {k: s.value(start, round(fraction * n), n) for k, (s, start) in starts.items()}
        longer = {k: s.value(start, round(fraction * long), long) for k, (s, start) in preset_starts.items()}
        assert longer == pytest.approx(short, rel=1e-12)
    assert {k: s.value(start, n, long) for k, (s, start) in preset_starts.items()}["g_lr"] > 1.99e-4
    assert {k: s.value(start, long, long) for k, (s, start) in preset_starts.items()} == pytest.approx(end)


def test_training_applies_r1_and_r2(tmp_path):
    import json

    from ganzoo.testing import tiny_train

    tiny_train("r3gan", tmp_path / "run", steps=2, log_every=1)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    logged = json.loads(lines[-1])
    assert logged["r1_penalty"] > 0 and logged["r2_penalty"] > 0

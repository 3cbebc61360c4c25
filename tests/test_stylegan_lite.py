"""StyleGAN-lite: truncation, style mixing, the w average, noise, modulated convolution, config checks."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.errors import ConfigError, GanzooUsageError
from ganzoo.layers import ModulatedConv2d, NoiseInput
from ganzoo.testing import tiny_config, tiny_train

ARCH = "stylegan-lite"


def make(**overrides):
    """A tiny untrained model whose w average sits away from zero, so truncation has something to pull to."""
    gan = ganzoo.create(ARCH, seed=0, **tiny_config(ARCH, **overrides))
    G = gan.generator.eval()
    with torch.no_grad():
        G.w_avg.copy_(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(1)))
        for module in G.modules():  # noise strengths start at 0; make noise matter for the tests
            if isinstance(module, NoiseInput):
                module.strength.fill_(0.5)
    return gan, G


def latents(n, dim, seed):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_tiny_config_trains_and_samples(tmp_path):
    gan = tiny_train(ARCH, tmp_path / "run", steps=2)
    images = gan.sample(5, seed=0, truncation=0.7)
    assert images.shape == (5, *gan.img_shape)
    assert torch.isfinite(images).all() and images.abs().max() <= 1
    assert torch.equal(images, gan.sample(5, seed=0, truncation=0.7))
    assert not torch.equal(images, gan.sample(5, seed=0))


@pytest.mark.parametrize("size", [8, 16, 32])
def test_shapes_and_number_of_style_layers(size):
    gan = ganzoo.create(ARCH, img_size=size, channels=3, z_dim=8, w_dim=8, g_width=4, g_max_width=8, d_width=4,
                        d_max_width=8)
    G = gan.generator
    assert G.num_style_layers == 2 * int(math.log2(size)) - 2
    images = gan.sample(3, seed=0)
    assert images.shape == (3, 3, size, size)
    for n in (3, 6, 8):  # minibatch std copes with batches its group size does not divide
        assert gan.discriminator(torch.randn(n, 3, size, size)).shape == (n,)


def test_truncation_zero_gives_the_average_image_for_every_latent():
    _, G = make()
    with torch.no_grad():
        images = G(latents(6, G.z_dim, 0), truncation=0.0)
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-6)
    assert images.std() > 0  # an image, not a blank


def test_truncation_moves_outputs_towards_the_average():
    _, G = make()
    z = latents(16, G.z_dim, 0)
    with torch.no_grad():
        average = G(z[:1], truncation=0.0)
        distances = [(G(z, truncation=psi) - average).flatten(1).norm(dim=1).mean().item()
                     for psi in (1.0, 0.75, 0.5, 0.25, 0.0)]
    assert all(a > b for a, b in zip(distances, distances[1:], strict=False)), distances
    assert distances[-1] < 1e-5


def test_style_mix_endpoints_are_the_two_sources():
    _, G = make()
    z_a, z_b = latents(4, G.z_dim, 0), latents(4, G.z_dim, 1)
    with torch.no_grad():
        image_a, image_b = G(z_a), G(z_b)
        assert torch.allclose(G.style_mix(z_a, z_b, 0), image_b, atol=1e-6)
        assert torch.allclose(G.style_mix(z_a, z_b, G.num_style_layers), image_a, atol=1e-6)
        middle = G.style_mix(z_a, z_b, G.num_style_layers // 2)
        assert not torch.allclose(middle, image_a) and not torch.allclose(middle, image_b)
        truncated = G.style_mix(z_a, z_b, 0, truncation=0.5)
        assert torch.allclose(truncated, G(z_b, truncation=0.5), atol=1e-6)


@pytest.mark.parametrize("crossover", [-1, 99, 1.5, True])
def test_style_mix_rejects_bad_crossovers(crossover):
    _, G = make()
    z = latents(2, G.z_dim, 0)
    with pytest.raises(GanzooUsageError, match="crossover must be an integer from 0 to"):
        G.style_mix(z, z, crossover)


def test_w_avg_moves_only_in_training_mode():
    _, G = make()
    z = latents(8, G.z_dim, 0)
    before = G.w_avg.clone()
    with torch.no_grad():
        G.eval()
        G(z)
        G.style_mix(z, z, 1)
        assert torch.equal(G.w_avg, before)
        G.train()
        G(z)
    assert not torch.equal(G.w_avg, before)
    expected = torch.lerp(G.mapping(z).mean(dim=0), before, G.w_avg_beta)
    assert torch.allclose(G.w_avg, expected, atol=1e-6)


def test_style_mixing_regularisation_runs_in_training_mode(monkeypatch):
    _, G = make(mixing_prob=1.0)
    G.train()
    calls = []
    mapping = G.mapping.forward

    def counting(z):
        calls.append(z.shape)
        return mapping(z)

    monkeypatch.setattr(G.mapping, "forward", counting)
    images = G(latents(8, G.z_dim, 0))
    assert len(calls) == 2  # the latents and a second set to cross over to
    assert images.shape == (8, *G.img_shape)
    images.square().mean().backward()
    assert all(p.grad is not None for p in G.mapping.parameters())


def test_noise_is_random_in_training_and_fixed_in_eval():
    _, G = make(mixing_prob=0.0)
    z = latents(3, G.z_dim, 0)
    with torch.no_grad():
        assert torch.equal(G(z), G(z))
        G.train()
        assert not torch.allclose(G(z), G(z))
    _, quiet = make(noise=False)
    assert not any(isinstance(m, NoiseInput) for m in quiet.modules())


def test_modulated_conv_equals_modulating_each_samples_weights():
    torch.manual_seed(0)
    for demodulate in (True, False):
        conv = ModulatedConv2d(5, 7, 3, w_dim=6, demodulate=demodulate)
        x, w = torch.randn(4, 5, 8, 8), torch.randn(4, 6)
        styles = conv.style(w)
        expected = []
        for i in range(4):  # the paper's formulation: w'_ijk = s_i w_ijk, w''_ijk = w'_ijk / sqrt(sum w'^2)
            weight = conv.weight * conv.weight_gain * styles[i].view(1, -1, 1, 1)
            if demodulate:
                weight = weight / weight.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
            expected.append(F.conv2d(x[i:i + 1], weight, padding=1))
        assert torch.allclose(conv(x, w), torch.cat(expected), atol=1e-5)


def test_demodulation_keeps_unit_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=16)
    y = conv(torch.randn(8, 64, 16, 16), 3 * torch.randn(8, 16))[:, :, 1:-1, 1:-1]  # inside the zero padding
    assert 0.8 < y.std().item() < 1.2


def test_config_checks_and_json_round_trip():
    arch = ganzoo.registry.get_architecture(ARCH)
    cfg = arch.make_config(mapping_layers=3, mixing_prob=0.5)
    assert arch.config_cls.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="img_size 28 is not supported.*32"):
        arch.make_config(img_size=28)
    with pytest.raises(ConfigError, match="unconditional"):
        arch.make_config(num_classes=10)
    with pytest.raises(ConfigError, match="mixing_prob"):
        arch.make_config(mixing_prob=1.5)
    with pytest.raises(ConfigError, match="mbstd_group"):
        arch.make_config(mbstd_group=1)


def test_recipe_is_the_stylegan2_one():
    recipe = ganzoo.registry.get_architecture(ARCH).make_recipe()
    assert recipe.loss == "non-saturating" and recipe.r1_gamma > 0 and recipe.r1_interval == 16
    assert recipe.betas == (0.0, 0.99) and recipe.ema_kimg > 0
    assert math.isclose(recipe.d_lr, recipe.g_lr * 16 / 17)  # lazy R1's learning-rate correction


def test_filter_taps_resample_through_the_fir_filter_and_add_no_weights():
    """filter_taps swaps G's bilinear upsampling and D's average pooling for the binomial FIR filter: the same weights
    (the filter is a fixed buffer outside the state dict), other images and logits; 2 taps is average pooling, so
    D's logits come back exactly."""
    from ganzoo.layers import LowPassResample

    base = ganzoo.create(ARCH, seed=0, **tiny_config(ARCH, img_size=16))
    fir = ganzoo.create(ARCH, seed=0, **tiny_config(ARCH, img_size=16, filter_taps=4))
    assert base.generator.state_dict().keys() == fir.generator.state_dict().keys()
    fir.generator.load_state_dict(base.generator.state_dict(), strict=True)
    fir.discriminator.load_state_dict(base.discriminator.state_dict(), strict=True)
    ups = [m for m in fir.generator.modules() if isinstance(m, LowPassResample)]
    downs = [m for m in fir.discriminator.modules() if isinstance(m, LowPassResample)]
    assert len(ups) == 2 * 2 and {(m.direction, m.taps) for m in ups} == {("up", 4)}  # 2 blocks: conv and skip
    assert len(downs) == 2 and {(m.direction, m.taps) for m in downs} == {("down", 4)}
    assert not any(isinstance(m, LowPassResample) for net in (base.generator, base.discriminator)
                   for m in net.modules())
    assert not torch.allclose(base.sample(4, seed=0), fir.sample(4, seed=0), atol=1e-4)
    x = torch.randn(4, 1, 16, 16)
    assert not torch.allclose(base.discriminator(x), fir.discriminator(x), atol=1e-4)
    box = ganzoo.create(ARCH, seed=0, **tiny_config(ARCH, img_size=16, filter_taps=2))
    box.discriminator.load_state_dict(base.discriminator.state_dict(), strict=True)
    assert torch.allclose(base.discriminator(x), box.discriminator(x), atol=1e-5)
    with pytest.raises(ConfigError, match="filter_taps must be 0 .* or 2, 4, 6 or 8"):
        ganzoo.create(ARCH, **tiny_config(ARCH, filter_taps=3))

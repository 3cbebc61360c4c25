"""sngan: the paper's ResNets, spectral normalisation that really bounds D's layers, its state saved and restored.

The plugin test kit (build, train, save, reload; exact resume; fast paths) runs on sngan from
tests/test_architectures.py, which covers every registered architecture.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.registry import get_architecture

TINY = {"z_dim": 8, "g_width": 8, "d_width": 8}


def _sn_layers(D: nn.Module) -> list[nn.Module]:
    return [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _largest_singular_value(weight: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2).item()


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    gan = ganzoo.create("sngan", img_size=size, channels=channels, **TINY)
    z = torch.randn(3, 8)
    images = gan.generator.train()(z)
    assert images.shape == (3, channels, size, size)
    assert images.abs().max() <= 1  # tanh output
    assert gan.discriminator(images).shape == (3,)


def test_the_paper_blocks_at_32x32():
    gan = ganzoo.create("sngan", img_size=32, **TINY)
    # G: 4x4 -> three up-blocks -> 32x32
    assert len(gan.generator.blocks) == 3
    # D: the optimized block and one down-block (32 -> 16 -> 8), then two blocks at 8x8 without a learned shortcut
    blocks = list(gan.discriminator.blocks)
    assert [b.down for b in blocks] == [True, True, False, False]
    assert [b.shortcut is None for b in blocks] == [False, False, True, True]


def test_every_d_layer_is_spectrally_normalised_and_d_has_no_normalisation_layers():
    gan = ganzoo.create("sngan", **TINY)
    layers = _sn_layers(gan.discriminator)
    assert len(layers) == 2 * 4 + 2 + 1  # two convs per block, two shortcuts, the linear output
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    # torch's power-iteration spectral norm everywhere but on the first shortcut (from the image's channels: exact)
    kinds = [type(m.parametrizations.weight[0]).__name__ for m in layers]
    first_shortcut = layers.index(gan.discriminator.blocks[0].shortcut)
    assert kinds[first_shortcut] == "ExactSpectralNorm"
    assert kinds[:first_shortcut] + kinds[first_shortcut + 1:] == ["_SpectralNorm"] * (len(layers) - 1)
    norms = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
    assert not any(isinstance(m, norms) for m in gan.discriminator.modules())
    # G is the paper's: BatchNorm, and no spectral norm
    assert any(isinstance(m, nn.BatchNorm2d) for m in gan.generator.modules())
    assert not any(parametrize.is_parametrized(m) for m in gan.generator.modules())


def test_spectral_norm_bounds_every_layer_near_one_after_a_few_power_iterations():
    torch.manual_seed(0)
    D = ganzoo.create("sngan", **TINY).discriminator.train()
    layers = _sn_layers(D)
    # new raw weights 5x larger than Glorot's: the stored singular vectors no longer fit them
    with torch.no_grad():
        for m in layers:
            original = m.parametrizations.weight.original
            original.copy_(torch.randn_like(original) * 5 * original.std())
    assert min(_largest_singular_value(m.parametrizations.weight.original) for m in layers) > 2
    stale = [_largest_singular_value(m.weight) for m in layers]
    images = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward pass runs one power iteration per layer
            D(images)
    D.eval()  # eval: the weight is the original divided by the estimate from the stored vectors
    sigmas = [_largest_singular_value(m.weight) for m in layers]
    # power iteration underestimates sigma, so the normalised norm approaches 1 from above
    assert all(1 - 1e-4 <= s <= 1.05 for s in sigmas), sigmas
    assert max(abs(s - 1) for s in stale) > max(abs(s - 1) for s in sigmas)


def test_power_iteration_state_round_trips_bit_identically(tmp_path):
    torch.manual_seed(1)
    gan = ganzoo.create("sngan", img_size=16, **TINY)
    D = gan.discriminator.train()
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        for _ in range(3):
            D(images)  # moves u and v away from their initial values
    again = ganzoo.load(gan.save_pretrained(tmp_path / "model", samples=False))
    state, loaded = D.state_dict(), again.discriminator.state_dict()
    uv = [k for k in state if k.endswith(("._u", "._v"))]
    assert len(uv) == 2 * (len(_sn_layers(D)) - 1)  # all but the exactly normalised first shortcut
    for key in state:
        assert torch.equal(state[key], loaded[key]), key
    # a training-mode pass runs one more power iteration from the restored vectors: the same logits, bit for bit
    D2 = again.discriminator.train()
    with torch.no_grad():
        assert torch.equal(D(images), D2(images))
    assert torch.equal(D.state_dict()[uv[0]], D2.state_dict()[uv[0]])


def test_recipes_are_the_papers_settings():
    arch = get_architecture("sngan")
    recipe = arch.recipe  # the default: the paper's setting C (table 1), one D step per G step
    assert recipe.loss == "hinge"
    assert recipe.optimizer == "adam" and recipe.g_lr == recipe.d_lr == 2e-4
    assert recipe.betas == (0.5, 0.999)
    assert recipe.d_steps == 1
    cifar = arch.make_recipe("cifar10")  # the paper's ResNet CIFAR-10 setting
    assert (cifar.loss, cifar.g_lr, cifar.d_lr, tuple(cifar.betas), cifar.d_steps) == ("hinge", 2e-4, 2e-4,
                                                                                      (0.0, 0.9), 5)
    assert cifar.steps == 50000


def test_cifar10_preset_has_the_papers_widths():
    arch = get_architecture("sngan")
    cfg = arch.make_config("cifar10")
    assert (cfg.img_size, cfg.channels, cfg.z_dim, cfg.g_width, cfg.d_width) == (32, 3, 128, 256, 128)
    gan = ganzoo.create("sngan", preset="cifar10")
    assert gan.sample(2, seed=0).shape == (2, 3, 32, 32)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"num_classes": 10}, "sngan is unconditional; num_classes must be 0"),
    ({"img_size": 28}, "img_size 28 is not supported.*16, 32, 64"),
    ({"d_width": 0}, "d_width must be at least 1"),
    ({"power_iterations": 0}, "power_iterations must be at least 1"),
])
def test_bad_configs_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        ganzoo.create("sngan", **overrides)
    assert "\n" not in str(info.value)

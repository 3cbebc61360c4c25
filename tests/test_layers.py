"""The DCGAN-style stacks of ganzoo.layers: channel plans, layer order and names, biases, norms, spectral norm and
label channels, and that dcgan, wgan and cgan are built from them (their names and shapes are what the shipped
weights pin); the binomial FIR resampler that r3gan and stylegan-lite share."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.layers import (
    conv_plan,
    downsampling_blocks,
    downsampling_stack,
    stack_widths,
    upsampling_blocks,
    upsampling_stack,
)


def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


@pytest.mark.parametrize(("size", "plan", "widths"), [(8, (4, 1), [8]), (28, (7, 2), [16, 8]),
                                                      (32, (4, 3), [32, 16, 8]), (64, (4, 4), [64, 32, 16, 8])])
def test_stack_widths_double_towards_the_coarsest_resolution(size, plan, widths):
    assert conv_plan(size) == plan
    assert stack_widths(8, size) == widths


def test_downsampling_stack_is_dcgans_discriminator():
    net = downsampling_stack(3, 8, 32, nn.BatchNorm2d, bias=False)
    assert [type(m).__name__ for m in net] == ["Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
                                               "Conv2d", "BatchNorm2d", "LeakyReLU", "Conv2d"]
    assert _shapes(net) == {
        "0.weight": (8, 3, 4, 4),
        "2.weight": (16, 8, 4, 4), "3.weight": (16,), "3.bias": (16,), "3.running_mean": (16,),
        "3.running_var": (16,), "3.num_batches_tracked": (),
        "5.weight": (32, 16, 4, 4), "6.weight": (32,), "6.bias": (32,), "6.running_mean": (32,),
        "6.running_var": (32,), "6.num_batches_tracked": (),
        "8.weight": (1, 32, 4, 4),  # base x base to one logit
    }
    assert all(m.stride == (2, 2) and m.padding == (1, 1) for m in list(net)[:-1] if isinstance(m, nn.Conv2d))
    assert net(torch.randn(5, 3, 32, 32)).shape == (5, 1, 1, 1)


def test_downsampling_biases_and_identity_norms_keep_their_places():
    """WGAN's critic: biases on the first and last convolutions, inside only without a norm; an Identity norm still
    takes its index, so the names of the layers after it do not move."""
    net = downsampling_stack(1, 4, 28, lambda c: nn.Identity(), hidden_bias=False)
    assert list(_shapes(net)) == ["0.weight", "0.bias", "2.weight", "5.weight", "5.bias"]
    assert isinstance(net[3], nn.Identity) and _shapes(net)["5.weight"] == (1, 8, 7, 7)
    assert list(_shapes(downsampling_stack(1, 4, 28))) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
                                                           "4.bias"]  # no norm: nothing between conv and activation


def test_downsampling_blocks_take_label_channels_and_spectral_norm():
    blocks = downsampling_blocks(1, 4, 32, nn.BatchNorm2d, extra_channels={0: 3, 2: 3})
    convs = [block[0] for block in blocks]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(4, 4), (4, 8), (11, 16)]
    assert [len(block) for block in blocks] == [2, 3, 3]  # no norm in the first block
    sn = downsampling_blocks(1, 4, 28, None, spectral_norm=True)
    assert [len(block) for block in sn] == [2, 2]
    assert all(hasattr(block[0], "parametrizations") for block in sn)
    assert "0.0.parametrizations.weight.original" in sn.state_dict()
    with torch.no_grad():  # spectral norm: the largest singular value of the (reshaped) weight is about 1
        for _ in range(30):  # one power iteration per call in training mode
            nn.Sequential(*sn)(torch.randn(2, 1, 28, 28))
        sn.eval()
        weight = sn[1][0].weight.flatten(1)
        assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_upsampling_blocks_and_stack_agree():
    norms, ups = upsampling_blocks(8, 3, 32, nn.BatchNorm2d, out_bias=True)
    assert [n.num_features for n in norms] == [32, 16, 8]
    assert [(u.in_channels, u.out_channels, u.bias is not None) for u in ups] == [(32, 16, False), (16, 8, False),
                                                                                 (8, 3, True)]
    stack = upsampling_stack(10, 8, 3, 32, bn_momentum=0.2)
    assert [type(m).__name__ for m in stack] == ["ConvTranspose2d"] + ["BatchNorm2d", "ReLU", "ConvTranspose2d"] * 3 \
        + ["Tanh"]
    assert stack[1].momentum == 0.2 and stack[0].weight.shape == (10, 32, 4, 4) and stack[-2].bias is None
    # the stack runs the blocks: x -> ups[i](relu(norms[i](x))) after the projection, then tanh
    stack.eval()
    z = torch.randn(4, 10, 1, 1)
    with torch.no_grad():
        x = stack[0](z)
        for i in range(3):
            x = stack[3 * i + 3](torch.relu(stack[3 * i + 1](x)))
        assert torch.equal(torch.tanh(x), stack(z))
    assert stack(z).shape == (4, 3, 32, 32)


@pytest.mark.parametrize(("arch", "config", "stack"), [
    ("dcgan", {"img_size": 64, "channels": 3, "d_width": 4, "g_width": 4},
     lambda: downsampling_stack(3, 4, 64, lambda c: nn.BatchNorm2d(c), bias=False)),
    ("wgan", {"img_size": 32, "d_width": 4, "g_width": 4},
     lambda: downsampling_stack(1, 4, 32, lambda c: nn.GroupNorm(1, c), hidden_bias=False)),
])
def test_dcgan_and_wgan_discriminators_are_the_shared_stack(arch, config, stack):
    D = ganzoo.create(arch, seed=0, **config).discriminator
    assert _shapes(D) == {f"net.{key}": shape for key, shape in _shapes(stack()).items()}


def test_cgan_is_built_from_the_shared_blocks():
    gan = ganzoo.create("cgan", seed=0, num_classes=10, img_size=32, g_width=4, d_width=4, embed_dim=2)
    G, D = gan.generator, gan.discriminator
    norms, ups = upsampling_blocks(4, 1, 32, nn.BatchNorm2d, out_bias=True)
    assert [u.weight.shape for u in G.ups] == [u.weight.shape for u in ups]
    assert [n.bn.norm.num_features for n in G.norms] == [n.num_features for n in norms]
    assert G.project.weight.shape == (16 * 4 * 4, 100 + 2)
    blocks = downsampling_blocks(1, 4, 32, nn.BatchNorm2d, extra_channels={0: 2, 2: 2})
    assert _shapes(D.blocks) == _shapes(blocks)
    assert D.psi.weight.shape == (1, 16 * 4 * 4)


# ---------------------------------------------------------------------------------------------------------------------
# binomial FIR resampling, shared by r3gan and stylegan-lite
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
@pytest.mark.parametrize("taps", [2, 4, 6, 8])
@pytest.mark.parametrize("direction", ["up", "down"])
def test_the_fir_resampler_computes_its_reference_with_either_border(direction, taps, padding):
    from ganzoo.layers import LowPassResample, resample_reference

    x = torch.randn(2, 3, 8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(taps))
    ours = LowPassResample(direction, taps, padding).double()(x)
    reference = resample_reference(x, direction, taps, padding)
    assert ours.shape == reference.shape == ((2, 3, 16, 24) if direction == "up" else (2, 3, 4, 6))
    assert torch.allclose(ours, reference, rtol=0, atol=1e-12)
    other = resample_reference(x, direction, taps, "zeros" if padding == "reflect" else "reflect")
    if taps > 2:  # the filter reads beyond the border: the two paddings must give different values
        assert not torch.allclose(ours, other, atol=1e-3)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_zero_padding_darkens_the_border_of_a_constant_and_reflection_does_not(direction):
    from ganzoo.layers import LowPassResample

    x = torch.ones(1, 1, 8, 8)
    reflected, zeroed = LowPassResample(direction, 6, "reflect")(x), LowPassResample(direction, 6, "zeros")(x)
    assert torch.allclose(reflected, torch.ones_like(reflected), atol=1e-6)
    assert zeroed[..., 0, 0].item() < 0.9 and torch.allclose(zeroed[..., 4:-4, 4:-4], torch.ones(1), atol=1e-6)


def test_two_taps_are_average_pooling_down_and_nearest_neighbour_up():
    from ganzoo.layers import LowPassResample

    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(LowPassResample("down", 2)(x), F.avg_pool2d(x, 2), atol=1e-6)
    assert torch.allclose(LowPassResample("up", 2)(x), F.interpolate(x, scale_factor=2, mode="nearest"), atol=1e-6)


def test_r3gan_resamples_with_the_shared_layer():
    import ganzoo_r3gan
    from ganzoo_r3gan import networks

    from ganzoo import layers

    assert ganzoo_r3gan.LowPassResample is layers.LowPassResample
    assert networks.resample_reference is layers.resample_reference
    assert ganzoo_r3gan.binomial_filter is layers.binomial_filter

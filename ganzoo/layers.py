"""Building blocks shared by architecture plugins.

- DCGAN-style stacks (Radford et al. 2015): `conv_plan` and `stack_widths` plan the resolutions and channels;
  `upsampling_stack` / `upsampling_blocks` are a generator body, `downsampling_stack` / `downsampling_blocks` a
  strided-convolution discriminator body; `normal_init_` and `xavier_init_` initialise them.
- StyleGAN2: `ModulatedConv2d`, `NoiseInput`.
- Binomial FIR resampling (StyleGAN2's [1, 3, 3, 1] filters; R3GAN's resamplers): `LowPassResample`,
  `binomial_filter`, and `resample_reference`, the same maths written as sums of shifted slices.
- Progressive GAN: `EqualizedLinear`, `EqualizedConv2d`, `PixelNorm`, `pixel_norm`, `MinibatchStdDev`.

The builders make plain `nn.Module`s with fixed names and a fixed construction order, so the state-dict keys, shapes
and (seeded) initial weights of a plugin that uses them stay what they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ganzoo.sharding import draw_rows

__all__ = ["conv_plan", "downsampling_blocks", "downsampling_stack", "normal_init_", "stack_widths",
           "upsampling_blocks", "upsampling_stack", "xavier_init_"]

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def normal_init_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN initialisation (Radford et al. 2015): weights ~ N(0, std), norm scales ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def conv_plan(img_size: int) -> tuple[int, int]:
    """(base resolution, number of 2x steps) of a DCGAN-style stack: 28 = 7 * 2^2, the others 4 * 2^n."""
    base = 7 if img_size == 28 else 4
    return base, int(math.log2(img_size // base))


def stack_widths(width: int, img_size: int) -> list[int]:
    """Channels at each resolution of a DCGAN-style stack, coarsest first: `width * 2^(steps-1)`, ..., `width`, one
    per 2x step of `conv_plan(img_size)`. A generator runs through them in this order, a discriminator in reverse."""
    _, steps = conv_plan(img_size)
    return [width * 2 ** (steps - 1 - i) for i in range(steps)]


def upsampling_blocks(width: int, channels: int, img_size: int, norm: Callable[[int], nn.Module], *,
                      out_bias: bool = False) -> tuple[nn.ModuleList, nn.ModuleList]:
    """DCGAN's generator body after the projection to base x base, as two aligned lists `(norms, ups)`.

    Step i runs `x = ups[i](relu(norms[i](x)))`: `norms[i] = norm(c)` normalises the `c = stack_widths(width,
    img_size)[i]` channels there, and `ups[i]`, a 4x4 stride-2 transposed convolution without bias, doubles the
    size and halves the channels; the last one maps to `channels` (with a bias when `out_bias`) and is followed by
    tanh. Kept apart so that a norm can take more inputs than `x` (class-conditional BatchNorm takes the labels);
    `upsampling_stack` puts them in one `nn.Sequential`. All norms are built before the convolutions.
    """
    widths = stack_widths(width, img_size)
    outs = [*widths[1:], channels]
    norms = nn.ModuleList(norm(c) for c in widths)
    ups = nn.ModuleList(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=out_bias and i == len(widths) - 1)
                        for i, (c_in, c_out) in enumerate(zip(widths, outs, strict=True)))
    return norms, ups


def upsampling_stack(z_dim: int, width: int, channels: int, img_size: int, bn_momentum: float = 0.1,
                     out_bias: bool = False) -> nn.Sequential:
    """DCGAN's generator body (Radford et al. 2015): project (N, z_dim, 1, 1) to base x base, then transposed
    convolutions with BatchNorm and ReLU doubling the size, halving the channels from `width * 2^(ups-1)`
    down to `width`, and a last transposed convolution to `channels` with tanh.

    The layers, in order: the projection, (BatchNorm, ReLU, transposed convolution) per step as in
    `upsampling_blocks`, tanh."""
    base, _ = conv_plan(img_size)
    project = nn.ConvTranspose2d(z_dim, stack_widths(width, img_size)[0], base, 1, 0, bias=False)
    norms, ups = upsampling_blocks(width, channels, img_size, lambda c: nn.BatchNorm2d(c, momentum=bn_momentum),
                                   out_bias=out_bias)
    layers: list[nn.Module] = [project]
    for norm, up in zip(norms, ups, strict=True):
        layers += [norm, nn.ReLU(True), up]
    return nn.Sequential(*layers, nn.Tanh())


def downsampling_blocks(channels: int, width: int, img_size: int, norm: Callable[[int], nn.Module] | None = None, *,
                        bias: bool = True, hidden_bias: bool | None = None,
                        extra_channels: Mapping[int, int] | None = None, spectral_norm: bool = False) -> nn.ModuleList:
    """DCGAN's discriminator body (Radford et al. 2015) as one `nn.Sequential` per halving of the resolution.

    Block i is a 4x4 stride-2 convolution to `width * 2^i` channels, then `norm(channels)` (every block but the
    first, and none when `norm` is None), then LeakyReLU(0.2); the last block leaves `stack_widths(width,
    img_size)[0]` channels at base x base (`conv_plan`). Separate blocks let a conditional discriminator feed
    more inputs between them.

    Args:
        channels: channels of the input images.
        width: output channels of the first block, doubled by each further block.
        img_size: input resolution (a size `conv_plan` knows).
        norm: makes the normalisation of a block's output from its channel count, e.g. `nn.BatchNorm2d`.
        bias: whether the first convolution has a bias.
        hidden_bias: whether the other convolutions have one (default: as `bias`; a bias before a norm that
            subtracts the mean is redundant).
        extra_channels: block index -> channels concatenated to that block's input (a conditional D's label maps).
        spectral_norm: spectrally normalise every convolution (Miyato et al. 2018), as each is built.
    """
    extra = dict(extra_channels or {})
    hidden_bias = bias if hidden_bias is None else hidden_bias
    blocks = nn.ModuleList()
    c_in = channels
    for i, c_out in enumerate(reversed(stack_widths(width, img_size))):
        conv = nn.Conv2d(c_in + extra.get(i, 0), c_out, 4, 2, 1, bias=bias if i == 0 else hidden_bias)
        layers = [_spectral_norm(conv) if spectral_norm else conv]
        if i > 0 and norm is not None:
            layers.append(norm(c_out))
        layers.append(nn.LeakyReLU(0.2, True))
        blocks.append(nn.Sequential(*layers))
        c_in = c_out
    return blocks


def downsampling_stack(channels: int, width: int, img_size: int, norm: Callable[[int], nn.Module] | None = None, *,
                       bias: bool = True, hidden_bias: bool | None = None) -> nn.Sequential:
    """DCGAN's discriminator (Radford et al. 2015): the layers of `downsampling_blocks` in one `nn.Sequential`,
    then a base x base convolution to one logit per image (with a bias when `bias`); its output is (N, 1, 1, 1).

    The same stack is DCGAN's discriminator (BatchNorm, no biases) and WGAN's critic (layer norm or none)."""
    base, _ = conv_plan(img_size)
    blocks = downsampling_blocks(channels, width, img_size, norm, bias=bias, hidden_bias=hidden_bias)
    layers = [layer for block in blocks for layer in block]
    return nn.Sequential(*layers, nn.Conv2d(stack_widths(width, img_size)[0], 1, base, 1, 0, bias=bias))


def xavier_init_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases (the Keras default initialisation)."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


# ---------------------------------------------------------------------------------------------------------------------
# Binomial FIR resampling (StyleGAN2, Karras et al. 2020; R3GAN, Huang et al. 2024)
# ---------------------------------------------------------------------------------------------------------------------

__all__ += ["LowPassResample", "binomial_filter", "resample_reference"]

Padding = Literal["reflect", "zeros"]


def binomial_filter(taps: int) -> torch.Tensor:
    """The normalised binomial low-pass filter of length `taps`: row `taps - 1` of Pascal's triangle over its sum.

    4 taps give [1, 3, 3, 1] / 8 (the filter StyleGAN2 and R3GAN use); 2 taps a box filter.
    """
    coeffs = torch.tensor([math.comb(taps - 1, k) for k in range(taps)], dtype=torch.float32)
    return coeffs / coeffs.sum()


def _along(dim: int, sl: slice) -> tuple[slice, ...]:
    """An index that slices dimension `dim` (-1 or -2) of a 4-D tensor."""
    return (slice(None),) * (4 + dim) + (sl,)


def _resample_pad(direction: str, taps: int) -> int:
    """Pixels of border per side that the resampler adds before it filters."""
    half = taps // 2
    # down: output pixel i is centred between input pixels 2i and 2i + 1, so it takes taps 2i - (half - 1) ...
    # 2i + half; up: output pixel n filters the zero-stuffed input u (u[2i] = x[i]) with taps n - half ...
    # n + half - 1, which reach half / 2 input pixels beyond the border, rounded up
    return half - 1 if direction == "down" else (half + 1) // 2


def _check_resample(direction: str, taps: int, padding: str) -> None:
    if taps < 2 or taps % 2:
        raise ValueError(f"taps must be even and at least 2, got {taps}")
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    if padding not in ("reflect", "zeros"):
        raise ValueError(f"padding must be 'reflect' or 'zeros', got {padding!r}")


def _pad_border(x: torch.Tensor, pad: int, padding: Padding) -> torch.Tensor:
    return F.pad(x, (pad,) * 4, mode="reflect" if padding == "reflect" else "constant") if pad else x


def resample_reference(x: torch.Tensor, direction: Literal["up", "down"], taps: int = 4,
                       padding: Padding = "reflect") -> torch.Tensor:
    """What `LowPassResample(direction, taps, padding)` computes, written out as sums of shifted slices, one axis at a
    time.

    The plain-PyTorch statement of the resampler's maths, kept beside the fast version (one depthwise convolution)
    so that the two can be compared (tests/test_r3gan.py, tests/test_layers.py, benchmarks/penalty_speed.py).
    """
    _check_resample(direction, taps, padding)
    # binomial_filter(taps)'s values as Python numbers (exact dyadic fractions), so torch.compile traces this as
    # it traced the module it replaced, without a tensor read back
    weights = [math.comb(taps - 1, k) / 2 ** (taps - 1) for k in range(taps)]
    half = taps // 2
    pad = _resample_pad(direction, taps)
    x = _pad_border(x, pad, padding)

    def down(x: torch.Tensor, dim: int) -> torch.Tensor:
        size = (x.shape[dim] - 2 * pad) // 2
        return sum(w * x[_along(dim, slice(k, k + 2 * size - 1, 2))] for k, w in enumerate(weights))

    # up: even outputs take the taps of even offset from -half, odd outputs the others (the two polyphases)
    phases = [[(2 * w, (k - half + parity) // 2) for k, w in enumerate(weights) if (k - half) % 2 == parity]
              for parity in (0, 1)]

    def up(x: torch.Tensor, dim: int) -> torch.Tensor:
        size = x.shape[dim] - 2 * pad
        y = torch.stack([sum(w * x[_along(dim, slice(pad + d, pad + d + size))] for w, d in phase)
                         for phase in phases], dim=dim)  # (..., size, 2) or (..., size, 2, W): interleave them
        return y.flatten(dim - 1, dim) if dim == -1 else y.flatten(-3, -2)

    resample = down if direction == "down" else up
    return resample(resample(x, -1), -2)


class LowPassResample(nn.Module):
    """2x up- or downsampling through a fixed separable binomial low-pass filter (an even number of taps).

    Downsampling filters, then keeps every second pixel, so frequencies the half-size grid cannot hold are removed
    rather than folded back (a checkerboard becomes zero, not a constant). Upsampling puts the pixels on a grid of
    twice the size with zeros between them and filters (gain 2 per axis), which interpolates: with 4 taps it is
    bilinear interpolation with pixel centres aligned. With 2 taps downsampling is 2x2 average pooling and
    upsampling is nearest-neighbour.

    Borders: `padding="reflect"` (default) mirrors the image, so a constant image stays constant; `"zeros"` pads with
    zeros as StyleGAN2's upfirdn2d does, which pulls the outermost pixels towards 0.

    Each direction is one depthwise convolution over the padded image with the filter's outer product as its
    kernel: a strided `conv2d` down, a strided `conv_transpose2d` up (the transposed convolution is the zero-stuffing
    and the filtering in one). The kernel is a non-persistent buffer: it follows the module's device and dtype and
    stays out of the state dict, so adding a resampler to a network adds no weights. `resample_reference` is the same
    maths as sums of shifted slices.
    """

    def __init__(self, direction: Literal["up", "down"], taps: int = 4, padding: Padding = "reflect") -> None:
        super().__init__()
        _check_resample(direction, taps, padding)
        self.direction = direction
        self.taps = taps
        self.padding = padding
        self.pad = _resample_pad(direction, taps)
        k = binomial_filter(taps) * (2 if direction == "up" else 1)
        self.register_buffer("kernel", torch.outer(k, k)[None, None], persistent=False)  # (1, 1, taps, taps)
        # up: the transposed convolution of the padded image is 2 * (taps // 2 - 1 + 2 * pad) pixels too large;
        # its `padding` crops half of that from each side
        self.crop = taps // 2 - 1 + 2 * self.pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pad_border(x, self.pad, self.padding)
        channels = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(channels, 1, self.taps, self.taps)
        if self.direction == "down":
            return F.conv2d(x, kernel, stride=2, groups=channels)
        return F.conv_transpose2d(x, kernel, stride=2, padding=self.crop, groups=channels)

    def extra_repr(self) -> str:
        return f"{self.direction}, taps={self.taps}" + (", padding=zeros" if self.padding == "zeros" else "")


# ---------------------------------------------------------------------------------------------------------------------
# Modulated convolution (StyleGAN2, Karras et al. 2020, arXiv:1912.04958)
# ---------------------------------------------------------------------------------------------------------------------

__all__ += ["ModulatedConv2d", "NoiseInput"]


class ModulatedConv2d(nn.Module):
    """A convolution whose input channels are scaled per sample by a style computed from a latent `w`.

    The style is an affine map of `w` (bias initialised to 1). With `demodulate`, each output channel is divided
    by the norm its modulated weights would give a unit-variance input, which replaces AdaIN's instance
    normalisation. Weights use the equalised learning rate (stored ~ N(0, 1), scaled at run time). Modulating
    the activations and demodulating the outputs is the same maths as modulating the weights per sample, but
    runs as one ordinary batched convolution. `up=True` upsamples the input 2x before the convolution: bilinearly,
    or with `filter_taps` > 0 through the binomial FIR filter of that length (`LowPassResample`, reflected borders).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool = True, up: bool = False, filter_taps: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine_weight = nn.Parameter(torch.randn(in_channels, w_dim))
        self.affine_bias = nn.Parameter(torch.ones(in_channels))
        self.affine_gain = 1.0 / math.sqrt(w_dim)
        self.demodulate = demodulate
        self.up = up
        self.padding = kernel_size // 2
        # no weights: the FIR kernel is a non-persistent buffer, so the state dict is the same either way
        self.upsample = LowPassResample("up", filter_taps) if up and filter_taps else None

    def style(self, w: torch.Tensor) -> torch.Tensor:
        """The per-sample, per-input-channel scales (N, in_channels) for latents `w` (N, w_dim)."""
        return F.linear(w, self.affine_weight * self.affine_gain, self.affine_bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.style(w)
        weight = self.weight * self.weight_gain
        if self.upsample is not None:
            x = self.upsample(x)
        elif self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.conv2d(x * styles[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:  # 1 / ||w'|| per sample and output channel, where w' = weight * style
            demod = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)
            x = x * demod[:, :, None, None]
        return x


class NoiseInput(nn.Module):
    """Adds single-channel Gaussian noise scaled by a learned per-channel strength (initialised to 0).

    In training mode the noise is fresh for every call; in eval mode a fixed noise map (a buffer drawn at
    construction and saved with the weights) is used, so sampling depends only on the latents.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("fixed_noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = draw_rows(x.shape[0], lambda m: torch.randn(m, 1, *x.shape[2:], device=x.device, dtype=x.dtype))
        else:
            noise = self.fixed_noise.to(x.dtype)
        return x + noise * self.strength.view(1, -1, 1, 1)


# ---------------------------------------------------------------------------------------------------------------------
# Progressive GAN blocks (Karras et al. 2018, arXiv:1710.10196): equalised learning rate, pixel norm, minibatch
# standard deviation. Also the building blocks of StyleGAN-like generators.
# ---------------------------------------------------------------------------------------------------------------------

__all__ += ["EqualizedConv2d", "EqualizedLinear", "MinibatchStdDev", "PixelNorm", "pixel_norm"]

# math, torch and F are imported above (the modulated-convolution section)
_HE_GAIN = math.sqrt(2.0)


class EqualizedLinear(nn.Module):
    """A linear layer with an equalised learning rate.

    Weights are stored as N(0, 1 / lr_mul^2) samples and multiplied at every call by He's constant
    `gain / sqrt(fan_in)` (times `lr_mul`), so every weight sees the same effective learning rate under Adam
    whatever its fan-in. `lr_mul` < 1 slows the layer down (StyleGAN's mapping network uses 0.01).

    Args:
        in_features, out_features: sizes, as `nn.Linear`.
        bias: add a learned bias (initialised to `bias_init`).
        gain: sqrt(2) before a (leaky) ReLU, 1 before a linear output.
        lr_mul: learning-rate multiplier of this layer.
        bias_init: initial value of the bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = _HE_GAIN,
                 lr_mul: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.scale = gain / math.sqrt(in_features) * lr_mul
        self.lr_mul = float(lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, lr_mul={self.lr_mul}"


class EqualizedConv2d(nn.Module):
    """A 2-D convolution with an equalised learning rate (weights N(0, 1) scaled at runtime by He's constant).

    Args:
        in_channels, out_channels, kernel_size, stride: as `nn.Conv2d` (square kernels).
        padding: default `kernel_size // 2` ("same" for odd kernels).
        bias: add a learned bias (initialised to zero).
        gain: sqrt(2) before a (leaky) ReLU, 1 before a linear output (e.g. a to-RGB layer).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bias: bool = True, gain: float = _HE_GAIN) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.padding = kernel_size // 2 if padding is None else int(padding)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector (dim 1) to unit root mean square."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """Pixelwise feature normalisation (Karras et al. 2018, section 4.2); also normalises latents (N, z_dim)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, self.eps)


class MinibatchStdDev(nn.Module):
    """Appends the minibatch standard deviation as extra feature maps (Karras et al. 2018, section 3).

    The batch is split into groups of `group_size` (the largest divisor of the batch size not above it);
    within each group the standard deviation of every feature at every position is taken, averaged over
    features and positions (per block of `channels // num_channels` features), and appended as `num_channels`
    constant maps. Output: (N, C + num_channels, H, W).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = int(group_size)
        self.num_channels = int(num_channels)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        while n % group:
            group -= 1
        f = self.num_channels
        y = x.reshape(group, -1, f, c // f, h, w)  # sample i is in group slot i // (n // group)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(self.eps).sqrt()  # (n / group, f, c / f, h, w)
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(group, 1, h, w)  # (n, f, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"

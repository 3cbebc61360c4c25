"""Building blocks shared by architecture plugins."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.sharding import draw_rows

__all__ = [
    "conv_plan",
    "upsampling_stack","normal_init_", "xavier_init_"]

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


def upsampling_stack(z_dim: int, width: int, channels: int, img_size: int, bn_momentum: float = 0.1,
                     out_bias: bool = False) -> nn.Sequential:
    """DCGAN's generator body (Radford et al. 2015): project (N, z_dim, 1, 1) to base x base, then transposed
    convolutions with BatchNorm and ReLU doubling the size, halving the channels from `width * 2^(ups-1)`
    down to `width`, and a last transposed convolution to `channels` with tanh."""
    base, ups = conv_plan(img_size)
    width = width * 2 ** (ups - 1)
    layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, width, base, 1, 0, bias=False),
                               nn.BatchNorm2d(width, momentum=bn_momentum), nn.ReLU(True)]
    for _ in range(ups - 1):
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(width // 2, momentum=bn_momentum), nn.ReLU(True)]
        width //= 2
    layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=out_bias), nn.Tanh()]
    return nn.Sequential(*layers)


def xavier_init_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases (the Keras default initialisation)."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


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
    runs as one ordinary batched convolution. `up=True` upsamples the input 2x (bilinear) before the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine_weight = nn.Parameter(torch.randn(in_channels, w_dim))
        self.affine_bias = nn.Parameter(torch.ones(in_channels))
        self.affine_gain = 1.0 / math.sqrt(w_dim)
        self.demodulate = demodulate
        self.up = up
        self.padding = kernel_size // 2

    def style(self, w: torch.Tensor) -> torch.Tensor:
        """The per-sample, per-input-channel scales (N, in_channels) for latents `w` (N, w_dim)."""
        return F.linear(w, self.affine_weight * self.affine_gain, self.affine_bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.style(w)
        weight = self.weight * self.weight_gain
        if self.up:
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

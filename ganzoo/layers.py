"""Building blocks shared by architecture plugins."""

from __future__ import annotations

from torch import nn

__all__ = ["normal_init_", "xavier_init_"]

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

import math  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

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
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.fixed_noise.to(x.dtype)
        return x + noise * self.strength.view(1, -1, 1, 1)

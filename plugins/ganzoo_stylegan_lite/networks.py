"""StyleGAN-lite's modules: mapping and synthesis networks, the generator, the residual discriminator."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import GanzooUsageError
from ganzoo.interfaces import Discriminator, Generator
from ganzoo.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    LowPassResample,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInput,
    pixel_norm,
)
from ganzoo.sharding import draw_rows

if TYPE_CHECKING:
    from . import StyleGANLiteConfig

__all__ = ["MappingNetwork", "StyleGANLiteDiscriminator", "StyleGANLiteGenerator", "SynthesisNetwork"]

# The He gain sqrt(2) is applied after each leaky ReLU (StyleGAN2's convention), so the equalised layers from
# ganzoo.layers are built with gain=1.
_GAIN = math.sqrt(2.0)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * _GAIN


def _upsampler(taps: int) -> LowPassResample | None:
    """2x upsampling of the toRGB skip image: the binomial FIR filter with `taps` taps, or None for bilinear (0)."""
    return LowPassResample("up", taps) if taps else None


def _widths(img_size: int, width: int, max_width: int) -> dict[int, int]:
    """Channels at each resolution 4, 8, ..., img_size: `width` at img_size, doubling per halving, capped."""
    return {4 * 2**i: min(width * img_size // (4 * 2**i), max_width) for i in range(int(math.log2(img_size // 4)) + 1)}


# ---------------------------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """z -> w: normalise z to unit second moment, then fully connected layers with leaky ReLU."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, gain=1.0, lr_mul=lr_mul)  # the gain is in _lrelu
                                    for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for layer in self.layers:
            x = _lrelu(layer(x))
        return x


class _StyleLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling), noise, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool,
                 noise: bool, filter_taps: int = 0) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up, filter_taps=filter_taps)
        self.noise = NoiseInput(out_channels, resolution) if noise else None
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        if self.noise is not None:
            x = self.noise(x)
        return _lrelu(x + self.bias.view(1, -1, 1, 1))


class _ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation or activation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1)


class _SynthesisBlock(nn.Module):
    """One resolution doubling: two style layers (the first upsamples) and a toRGB added to the upsampled image."""

    num_ws = 2  # w's consumed before the next block; the toRGB shares its w with the next block's first layer

    def __init__(self, in_channels: int, out_channels: int, img_channels: int, w_dim: int, resolution: int,
                 noise: bool, filter_taps: int = 0) -> None:
        super().__init__()
        self.conv0 = _StyleLayer(in_channels, out_channels, w_dim, resolution, up=True, noise=noise,
                                 filter_taps=filter_taps)
        self.conv1 = _StyleLayer(out_channels, out_channels, w_dim, resolution, up=False, noise=noise)
        self.to_rgb = _ToRGB(out_channels, img_channels, w_dim)
        self.upsample = _upsampler(filter_taps)

    def forward(self, x: torch.Tensor, img: torch.Tensor, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(self.conv0(x, ws[:, 0]), ws[:, 1])
        if self.upsample is not None:
            img = self.upsample(img)
        else:
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
        return x, img + self.to_rgb(x, ws[:, 2])


class SynthesisNetwork(nn.Module):
    """Per-layer w's (N, num_ws, w_dim) -> images: a learned constant 4x4 input, style layers, toRGB skips.

    Layer order of the w's: the 4x4 layer, its toRGB (shared with the 8x8 upsampling layer), the 8x8 layer,
    its toRGB (shared with the 16x16 upsampling layer), and so on: 2 * log2(img_size) - 2 in all.
    """

    def __init__(self, cfg: StyleGANLiteConfig) -> None:
        super().__init__()
        widths = _widths(cfg.img_size, cfg.g_width, cfg.g_max_width)
        self.const = nn.Parameter(torch.randn(widths[4], 4, 4))
        self.input_layer = _StyleLayer(widths[4], widths[4], cfg.w_dim, 4, up=False, noise=cfg.noise)
        self.input_rgb = _ToRGB(widths[4], cfg.channels, cfg.w_dim)
        resolutions = sorted(widths)[1:]
        self.blocks = nn.ModuleList(
            _SynthesisBlock(widths[res // 2], widths[res], cfg.channels, cfg.w_dim, res, cfg.noise, cfg.filter_taps)
            for res in resolutions
        )
        self.num_ws = 2 + _SynthesisBlock.num_ws * len(self.blocks)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.input_layer(x, ws[:, 0])
        img = self.input_rgb(x, ws[:, 1])
        for i, block in enumerate(self.blocks):
            start = 1 + _SynthesisBlock.num_ws * i
            x, img = block(x, img, ws[:, start:start + 3])
        return img


class StyleGANLiteGenerator(Generator):
    """z -> mapping -> w (one per style layer, mixed during training, truncated on request) -> synthesis.

    In training mode each call updates the moving average `w_avg` of w and, with probability `mixing_prob`
    per sample, switches to the w of a second random latent at a random crossover layer. In eval mode the
    noise inputs are fixed and outputs are clamped to [-1, 1]; training outputs are left unclamped (D sees
    them as they are, as in StyleGAN2).
    """

    def __init__(self, cfg: StyleGANLiteConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        self.w_dim = cfg.w_dim
        self.mixing_prob = cfg.mixing_prob
        self.w_avg_beta = cfg.w_avg_beta
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.mapping_lr_mul)
        self.synthesis = SynthesisNetwork(cfg)
        self.num_style_layers: int = self.synthesis.num_ws
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def _broadcast(self, w: torch.Tensor) -> torch.Tensor:
        return w.unsqueeze(1).expand(-1, self.num_style_layers, -1)

    def _truncate(self, ws: torch.Tensor, truncation: float) -> torch.Tensor:
        return ws if truncation == 1 else torch.lerp(self.w_avg.to(ws.dtype), ws, float(truncation))

    def _synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        images = self.synthesis(ws)
        return images if self.training else images.clamp(-1, 1)

    def _mix(self, z: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """Training mode: style mixing regularisation, per sample with probability `mixing_prob`."""
        if not (self.training and self.mixing_prob > 0 and self.num_style_layers > 1):
            return ws
        n = z.shape[0]
        w2 = self._broadcast(self.mapping(draw_rows(n, lambda m: torch.randn(m, *z.shape[1:], device=z.device,
                                                                             dtype=z.dtype))))
        crossover = draw_rows(n, lambda m: torch.randint(1, self.num_style_layers, (m,), device=z.device))
        mixed = draw_rows(n, lambda m: torch.rand(m, device=z.device)) < self.mixing_prob
        crossover = torch.where(mixed, crossover, self.num_style_layers)
        layer = torch.arange(self.num_style_layers, device=z.device)
        return torch.where((layer.unsqueeze(0) < crossover.unsqueeze(1)).unsqueeze(2), ws, w2)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
        """Images for latents `z`; `truncation` < 1 pulls every w towards `w_avg` (0 gives the average image)."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(torch.lerp(w.detach().mean(dim=0).to(self.w_avg.dtype), self.w_avg,
                                            self.w_avg_beta))
        ws = self._mix(z, self._broadcast(w))
        return self._synthesize(self._truncate(ws, truncation))

    def style_latents(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The per-layer w's (N, num_style_layers, w_dim) for `z`, style-mixed in training mode as `forward` mixes
        them; `w_avg` does not move. Path-length regularisation differentiates with respect to these."""
        return self._mix(z, self._broadcast(self.mapping(z)))

    def synthesize(self, ws: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images for per-layer w's (N, num_style_layers, w_dim); clamped to [-1, 1] in eval mode, as `forward`."""
        return self._synthesize(ws)

    def style_mix(self, z_a: torch.Tensor, z_b: torch.Tensor, crossover: int,
                  truncation: float = 1.0) -> torch.Tensor:
        """Images whose style layers before `crossover` take w from `z_a` and the rest from `z_b`.

        Crossover 0 gives z_b's images, `num_style_layers` gives z_a's. Early layers (coarse resolutions) set
        pose and shape, late ones fine detail. Does not update `w_avg`.
        """
        if isinstance(crossover, bool) or not isinstance(crossover, int) or not 0 <= crossover <= self.num_style_layers:
            raise GanzooUsageError(f"crossover must be an integer from 0 to {self.num_style_layers}, got {crossover!r}")
        if z_a.shape != z_b.shape:
            raise GanzooUsageError(f"z_a and z_b must have the same shape, got {tuple(z_a.shape)} and "
                                   f"{tuple(z_b.shape)}")
        ws_a = self._broadcast(self.mapping(z_a))
        ws_b = self._broadcast(self.mapping(z_b))
        ws = torch.cat([ws_a[:, :crossover], ws_b[:, crossover:]], dim=1)
        return self._synthesize(self._truncate(ws, truncation))


# ---------------------------------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------------------------------


class _DBlock(nn.Module):
    """Residual block: 3x3 conv, 2x downsampling, 3x3 conv; skip = downsampling + 1x1 conv; sum scaled by 1/sqrt(2).

    The downsampling is 2x2 average pooling, or with `filter_taps` > 0 the binomial FIR low-pass filter of that
    length (`LowPassResample`; 2 taps is average pooling again)."""

    def __init__(self, in_channels: int, out_channels: int, filter_taps: int = 0) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, gain=1.0)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, gain=1.0)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, gain=1.0)
        self.downsample = LowPassResample("down", filter_taps) if filter_taps else None

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) if self.downsample is not None else F.avg_pool2d(x, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(self._down(x))
        x = _lrelu(self.conv0(x))
        x = _lrelu(self.conv1(self._down(x)))
        return (x + skip) * math.sqrt(0.5)


class StyleGANLiteDiscriminator(Discriminator):
    """fromRGB, residual blocks halving the resolution down to 4x4, then minibatch std, conv and two dense layers."""

    def __init__(self, cfg: StyleGANLiteConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        widths = _widths(cfg.img_size, cfg.d_width, cfg.d_max_width)
        self.from_rgb = EqualizedConv2d(cfg.channels, widths[cfg.img_size], 1, gain=1.0)
        resolutions = sorted(widths, reverse=True)[:-1]
        self.blocks = nn.Sequential(*(_DBlock(widths[res], widths[res // 2], cfg.filter_taps) for res in resolutions))
        extra = cfg.mbstd_channels if cfg.mbstd_group else 0
        self.mbstd = MinibatchStdDev(cfg.mbstd_group, cfg.mbstd_channels) if cfg.mbstd_group else nn.Identity()
        self.conv = EqualizedConv2d(widths[4] + extra, widths[4], 3, gain=1.0)
        self.fc = EqualizedLinear(widths[4] * 16, widths[4], gain=1.0)
        self.out = EqualizedLinear(widths[4], 1, gain=1.0)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(_lrelu(self.from_rgb(images)))
        x = _lrelu(self.conv(self.mbstd(x)))
        x = _lrelu(self.fc(x.flatten(1)))
        return self.out(x).flatten()

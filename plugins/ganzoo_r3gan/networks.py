"""R3GAN's modules: the inverted-bottleneck residual block, the generator and discriminator.

Both networks are a linear trunk of residual blocks: the only nonlinearities (leaky ReLU with a learned bias) sit
inside the blocks' residual branches, and no layer normalises anything. Stability comes from the fix-up
initialisation instead: each branch's last convolution starts at zero (every block is the identity at
initialisation) and the other convolutions of a branch are scaled down by L^(-1/(2m-2)), where L is the number of
residual blocks in the network and m = 3 the number of convolutions per branch (Huang et al. 2024, section 3.2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.interfaces import Discriminator, Generator
from ganzoo.layers import LowPassResample, binomial_filter, resample_reference  # shared FIR resampler, re-exported

if TYPE_CHECKING:
    from . import R3GANConfig

__all__ = ["BiasedLeakyReLU", "InvertedBottleneck", "LowPassResample", "R3GANDiscriminator", "R3GANGenerator",
           "binomial_filter", "resample_reference"]

_SLOPE = 0.2
# He's gain for leaky ReLU: keeps the second moment of activations through a layer followed by it
LRELU_GAIN = math.sqrt(2.0 / (1.0 + _SLOPE**2))
BRANCH_CONVS = 3  # m: convolutions in a residual branch (expand, grouped, project)


def _he_init(layer: nn.Conv2d | nn.Linear, gain: float) -> nn.Conv2d | nn.Linear:
    """Weights ~ N(0, (gain / sqrt(fan_in))^2), zero bias; gain 0 gives a zero layer."""
    fan_in = layer.weight[0].numel()  # in_channels / groups * kernel area
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class BiasedLeakyReLU(nn.Module):
    """Leaky ReLU (slope 0.2) after adding a learned per-channel bias (initialised to 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), _SLOPE)


class InvertedBottleneck(nn.Module):
    """x + project(act(grouped 3x3(act(expand(x))))): 1x1 to `expansion` x the channels, a grouped 3x3 with
    `group_size` channels per group, 1x1 back. `project` starts at zero; `expand` and the grouped conv get He's
    gain times `depth_scale` (L^(-1/(2m-2)) for L blocks in the network)."""

    def __init__(self, channels: int, expansion: int, group_size: int, depth_scale: float) -> None:
        super().__init__()
        hidden = channels * expansion
        gain = LRELU_GAIN * depth_scale
        self.expand = _he_init(nn.Conv2d(channels, hidden, 1, bias=False), gain)
        self.act0 = BiasedLeakyReLU(hidden)
        self.spatial = _he_init(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden // group_size, bias=False),
                                gain)
        self.act1 = BiasedLeakyReLU(hidden)
        self.project = _he_init(nn.Conv2d(hidden, channels, 1, bias=False), 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.act1(self.spatial(self.act0(self.expand(x)))))


def _stage_blocks(cfg: R3GANConfig, stage: int, depth_scale: float) -> list[nn.Module]:
    return [InvertedBottleneck(cfg.widths[stage], cfg.expansion, cfg.group_size, depth_scale)
            for _ in range(cfg.blocks[stage])]


def depth_scale(cfg: R3GANConfig) -> float:
    """Fix-up's factor L^(-1/(2m-2)) for a network of L = sum(blocks) residual blocks of m = 3 convolutions."""
    return sum(cfg.blocks) ** (-1.0 / (2 * BRANCH_CONVS - 2))


class R3GANGenerator(Generator):
    """z -> a learned 4x4 basis scaled per channel by a linear map of z -> stages of residual blocks, each after a
    1x1 width change and a low-pass 2x upsampling -> 1x1 conv to the image.

    The output is linear (no tanh), as in R3GAN: in training D sees it as it is; in eval mode it is clamped to
    [-1, 1].
    """

    def __init__(self, cfg: R3GANConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        scale = depth_scale(cfg)
        self.basis = nn.Parameter(torch.randn(cfg.widths[0], 4, 4))
        self.basis_weights = _he_init(nn.Linear(cfg.z_dim, cfg.widths[0], bias=False), 1.0)
        stages: list[nn.Module] = [nn.Sequential(*_stage_blocks(cfg, 0, scale))]
        for i in range(1, len(cfg.widths)):
            change = (_he_init(nn.Conv2d(cfg.widths[i - 1], cfg.widths[i], 1, bias=False), 1.0)
                      if cfg.widths[i] != cfg.widths[i - 1] else nn.Identity())
            stages.append(nn.Sequential(change, LowPassResample("up", cfg.filter_taps),
                                        *_stage_blocks(cfg, i, scale)))
        self.stages = nn.Sequential(*stages)
        self.to_image = _he_init(nn.Conv2d(cfg.widths[-1], cfg.channels, 1, bias=False), 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.basis.unsqueeze(0) * self.basis_weights(z)[:, :, None, None]
        images = self.to_image(self.stages(x))
        return images if self.training else images.clamp(-1, 1)


class R3GANDiscriminator(Discriminator):
    """1x1 conv from the image -> stages of residual blocks, each followed by a low-pass 2x downsampling and a 1x1
    width change -> at 4x4, a learned basis (a depthwise 4x4 conv, one weighted sum per channel) and a linear
    layer to the logit. The stages mirror the generator's (the same `widths` and `blocks`, from high to low)."""

    def __init__(self, cfg: R3GANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        scale = depth_scale(cfg)
        last = len(cfg.widths) - 1
        self.from_image = _he_init(nn.Conv2d(cfg.channels, cfg.widths[last], 1, bias=False), 1.0)
        stages: list[nn.Module] = []
        for i in range(last, 0, -1):
            change = (_he_init(nn.Conv2d(cfg.widths[i], cfg.widths[i - 1], 1, bias=False), 1.0)
                      if cfg.widths[i] != cfg.widths[i - 1] else nn.Identity())
            stages.append(nn.Sequential(*_stage_blocks(cfg, i, scale), LowPassResample("down", cfg.filter_taps),
                                        change))
        stages.append(nn.Sequential(*_stage_blocks(cfg, 0, scale)))
        self.stages = nn.Sequential(*stages)
        self.basis = _he_init(nn.Conv2d(cfg.widths[0], cfg.widths[0], 4, groups=cfg.widths[0], bias=False), 1.0)
        self.out = _he_init(nn.Linear(cfg.widths[0], 1, bias=False), 1.0)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.basis(self.stages(self.from_image(images)))
        return self.out(x.flatten(1)).flatten()

"""SNGAN: Miyato, Kataoka, Koyama & Yoshida, "Spectral Normalization for Generative Adversarial Networks",
ICLR 2018 (arXiv:1802.05957).

Every weight of the discriminator is divided by an estimate of its largest singular value, kept up to date by one
step of power iteration per forward pass in training, so each layer is (about) 1-Lipschitz and D as a whole is
Lipschitz-bounded without a gradient penalty. The networks are the paper's ResNets for CIFAR-10: a generator of
pre-activation residual up-blocks (BatchNorm, ReLU, nearest 2x upsampling, 3x3 convolutions, a 1x1 shortcut), and
a discriminator of residual down-blocks (ReLU, 3x3 convolutions, 2x average pooling) with spectral normalisation on
every convolution and linear layer and no normalisation layers, ending in ReLU, a sum over positions and a linear
layer. Training: hinge loss, Adam (2e-4, betas (0.5, 0.999)), one D step per G step (the paper's setting C);
the preset `cifar10` has the paper's ResNet setting, betas (0, 0.9) and five D steps per G step (n_dis).

Reduced here: fewer channels (the paper: 256 in G, 128 in D; preset `cifar10` restores them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo.errors import ConfigError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, Preset, PretrainedCfg, Recipe

__all__ = ["ExactSpectralNorm", "SNGANConfig", "SNGANDiscriminator", "SNGANGenerator", "architecture"]


@dataclass(frozen=True)
class SNGANConfig(ArchConfig):
    """SNGAN hyperparameters. Both networks keep one width at every resolution, as the paper's ResNets do."""

    img_size: int = 32
    z_dim: int = 128  # the paper's
    g_width: int = 32  # channels of every residual block in G (the paper: 256; 32 keeps a CPU step short)
    d_width: int = 32  # channels of every residual block in D (the paper: 128)
    power_iterations: int = 1  # power-iteration steps per D forward in training (the paper: 1)

    supported_sizes = (16, 32, 64)

    def validate(self) -> None:
        super().validate()
        if self.num_classes:
            raise ConfigError(f"sngan is unconditional; num_classes must be 0, got {self.num_classes} "
                              "(cgan has the projection discriminator)")
        for name in ("g_width", "d_width", "power_iterations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")


def _glorot(module: nn.Module, gain: float) -> nn.Module:
    """Glorot-uniform weights with `gain` and zero bias (the initialisation of the paper's Chainer code)."""
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


_RELU_GAIN = math.sqrt(2.0)


class ExactSpectralNorm(nn.Module):
    """A weight divided by its largest singular value, computed exactly (a parametrisation, as spectral_norm's).

    For D's first shortcut, a 1x1 convolution from the image's 1 or 3 channels: its matrix has that many columns,
    so an exact SVD costs nothing. (Power iteration on such short vectors also trips torch.compile: the compiled
    backward finds the in-place-updated vector `v` modified, with torch 2.14 for vectors of up to 4 entries.)
    """

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / torch.linalg.matrix_norm(weight.flatten(1), ord=2)


# ---------------------------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------------------------


class _UpBlock(nn.Module):
    """BN, ReLU, 2x nearest upsampling, 3x3 conv, BN, ReLU, 3x3 conv; shortcut: 2x upsampling and a 1x1 conv.

    The shortcut's 1x1 conv runs before the upsampling: a pointwise map commutes with copying pixels, so the result
    is the paper's at a quarter of the cost.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(in_channels)
        self.conv0 = _glorot(nn.Conv2d(in_channels, out_channels, 3, padding=1), _RELU_GAIN)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv1 = _glorot(nn.Conv2d(out_channels, out_channels, 3, padding=1), _RELU_GAIN)
        self.shortcut = _glorot(nn.Conv2d(in_channels, out_channels, 1), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn0(x)), scale_factor=2, mode="nearest")
        h = self.conv1(F.relu(self.bn1(self.conv0(h))))
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class SNGANGenerator(Generator):
    """z -> linear to a 4x4 map -> residual up-blocks to img_size -> BN, ReLU, 3x3 conv, tanh."""

    def __init__(self, cfg: SNGANConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        self.width = cfg.g_width
        self.project = _glorot(nn.Linear(cfg.z_dim, 4 * 4 * cfg.g_width), 1.0)
        self.blocks = nn.Sequential(*(_UpBlock(cfg.g_width, cfg.g_width)
                                      for _ in range(int(math.log2(cfg.img_size // 4)))))
        self.bn = nn.BatchNorm2d(cfg.g_width)
        self.to_image = _glorot(nn.Conv2d(cfg.g_width, cfg.channels, 3, padding=1), 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(self.project(z).view(-1, self.width, 4, 4))
        return torch.tanh(self.to_image(F.relu(self.bn(x))))


# ---------------------------------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------------------------------


class _DownBlock(nn.Module):
    """ReLU, 3x3 conv, ReLU, 3x3 conv, optional 2x average pooling; shortcut: 1x1 conv and the same pooling.

    The first block (`first=True`, the paper's "optimized block") sees the image itself: no ReLU before its first
    convolution, and its shortcut pools before the 1x1 conv. Convolutions are spectrally normalised by the
    discriminator after construction.
    """

    def __init__(self, in_channels: int, out_channels: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down = down
        self.first = first
        self.conv0 = _glorot(nn.Conv2d(in_channels, out_channels, 3, padding=1), _RELU_GAIN)
        self.conv1 = _glorot(nn.Conv2d(out_channels, out_channels, 3, padding=1), _RELU_GAIN)
        learned = down or in_channels != out_channels
        self.shortcut = _glorot(nn.Conv2d(in_channels, out_channels, 1), 1.0) if learned else None

    def _skip(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            return x
        if self.first:
            return self.shortcut(F.avg_pool2d(x, 2))
        x = self.shortcut(x)
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv0(x if self.first else F.relu(x))
        h = self.conv1(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        return h + self._skip(x)


class SNGANDiscriminator(Discriminator):
    """Residual down-blocks to 8x8, two more blocks at 8x8, ReLU, sum over positions, linear to one logit.

    At 32x32 this is the paper's CIFAR-10 discriminator (optimized block, one down-block, two plain blocks). Every
    convolution and linear layer is spectrally normalised (`torch.nn.utils.parametrizations.spectral_norm`): in
    training each forward pass runs `power_iterations` steps of power iteration and stores the singular vectors
    in the buffers `_u` and `_v`, which are saved with the weights, so a reloaded D computes the same normalised
    weights. The first block's shortcut, whose matrix has only the image's 1 or 3 columns, is normalised exactly
    (`ExactSpectralNorm`).
    """

    def __init__(self, cfg: SNGANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        width = cfg.d_width
        downs = int(math.log2(cfg.img_size // 8))
        blocks = [_DownBlock(cfg.channels, width, down=True, first=True)]
        blocks += [_DownBlock(width, width, down=True) for _ in range(downs - 1)]
        blocks += [_DownBlock(width, width, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.out = _glorot(nn.Linear(width, 1), 1.0)
        first_shortcut = blocks[0].shortcut
        for module in list(self.modules()):
            if module is first_shortcut:
                parametrize.register_parametrization(module, "weight", ExactSpectralNorm())
            elif isinstance(module, (nn.Conv2d, nn.Linear)):
                spectral_norm(module, n_power_iterations=cfg.power_iterations)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = F.relu(self.blocks(images)).sum(dim=(2, 3))
        return self.out(x).flatten()


def build_generator(cfg: SNGANConfig) -> SNGANGenerator:
    """The ResNet generator for `cfg`."""
    return SNGANGenerator(cfg)


def build_discriminator(cfg: SNGANConfig) -> SNGANDiscriminator:
    """The spectrally normalised ResNet discriminator for `cfg`."""
    return SNGANDiscriminator(cfg)


# The default is the paper's setting C (Miyato et al. 2018, table 1: Adam 2e-4, betas (0.5, 0.999), one D step per G
# step), under which its spectrally normalised networks trained as well as under the others: one D step costs a
# fifth of n_dis = 5's, so a CPU budget buys five times the generator updates. The paper's ResNet/CIFAR-10 setting
# (n_dis 5, betas (0, 0.9)) is the cifar10 preset's. See docs/architectures/sngan.md for the measurements.
_RECIPE = Recipe(steps=3000, batch_size=64, loss="hinge", optimizer="adam", g_lr=2e-4, d_lr=2e-4,
                 betas=(0.5, 0.999), d_steps=1, ema_kimg=10.0, ema_rampup=0.05)


architecture = Architecture(
    name="sngan",
    summary="Spectral normalisation in a ResNet discriminator, hinge loss",
    paper="Miyato et al. 2018, arXiv:1802.05957",
    config_cls=SNGANConfig,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    recipe=_RECIPE,
    presets={
        "cifar10": Preset(
            summary="the paper's ResNet CIFAR-10 setting: 32x32 colour, G 256 and D 128 channels, 50k G steps, "
                    "n_dis 5 with Adam (2e-4, betas (0, 0.9))",
            config={"img_size": 32, "channels": 3, "z_dim": 128, "g_width": 256, "d_width": 128},
            recipe={"steps": 50000, "batch_size": 64, "d_steps": 5, "betas": [0.0, 0.9]},
        ),
    },
    test_config={"img_size": 16, "z_dim": 8, "g_width": 8, "d_width": 8},
    pretrained=(
        PretrainedCfg(name="sngan-mnist-5k", repo_id="ganzoo/sngan-mnist-5k", dataset="mnist-5k", resolution=32,
                      license="cc-by-sa-3.0",
                      recipe="ganzoo train --arch sngan --data mnist-5k --steps 6000",
                      summary="the default recipe (the paper's setting C) run for 6,000 steps on the embedded digits",
                      files="pretrained/sngan-mnist-5k",
                      sha256={
                          'config.json': '745a8b79589d1ec37d8f476c9d7db04480b952c15ca29317410802f800a67598',
                          'generator.safetensors': '40f5fa993862a485dcf3fa3f4862c7494c1ead98345c92b32de159ec959610f9',
                          'discriminator.safetensors':
                              '561a182cdcbb4477f8a32ff81db0cd4f6885b4422ee7041884f8a0ddce741201',
                      },
                      metrics={
                          'fid': 2.1011,
                          'kid': 0.0206,
                          'kid_std': 0.0031,
                          'is': 7.9005,
                          'is_std': 0.223,
                          'precision': 0.484,
                          'recall': 0.844,
                      }),
    ),
)

"""pix2pix: Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017
(arXiv:1611.07004).

A conditional GAN whose condition is an image. G is a U-Net: an encoder of 4x4 stride-2 convolutions (LeakyReLU 0.2,
BatchNorm from the second layer on, none at the bottleneck) down to 1x1, and a decoder of 4x4 stride-2 transposed
convolutions (ReLU, BatchNorm, dropout 0.5 in the first three decoder layers) whose every layer also receives the
encoder's feature map of the same size (the skip connections), ending in tanh. Widths double from `g_width` up to
8x `g_width` (the paper's 64 ... 512). D is a PatchGAN: the input and the output (real target or G's) concatenated
along the channels, `d_layers` 4x4 stride-2 convolutions, one of stride 1 and a last one to one channel, so that
every logit judges one patch (70x70 pixels with the paper's three layers at 256 px); the loss averages over the
patches. The paper's noise is dropout (no latent input, `z_dim` 0); here dropout is on in training and off when
translating (`GANModel.translate` runs G in eval mode), so a translation is deterministic.

Recipe (the paper's): the non-saturating GAN loss plus lambda * L1(G(x), y) with lambda = 100 (the ``paired``
objective), Adam with learning rate 2e-4 and betas (0.5, 0.999) for both networks, the learning rate constant for
the first half of the run and then linearly decayed to zero. The paper halves D's loss; Adam's steps do not change
when a loss is scaled, so that is left out. The batch is 16 rather than the paper's 1 to 10, to keep a CPU busy.
Presets: ``l1-only`` (G trained on L1 alone, D never updated: the paper's "L1" row of table 1) and ``gan-only``
(lambda = 0: the paper's "cGAN" row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ganzoo.errors import ConfigError, GanzooUsageError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Preset, Recipe, Translator

__all__ = ["PatchDiscriminator", "Pix2PixConfig", "UNetGenerator", "architecture"]


@dataclass(frozen=True)
class Pix2PixConfig(ArchConfig):
    """pix2pix hyperparameters. `channels` is both the input's and the output's channel count."""

    img_size: int = 64
    channels: int = 3
    z_dim: int = 0  # no latent input: the noise is dropout
    g_width: int = 64  # channels of G's first encoder layer; doubled per layer up to 8x
    d_width: int = 64  # channels of D's first layer; doubled per layer up to 8x
    depth: int = 0  # encoder layers of G (each halves the size); 0: down to 1x1, log2(img_size)
    d_layers: int = 3  # stride-2 layers of the PatchGAN (3: 70x70 patches at 256 px)
    dropout: float = 0.5  # in G's first three decoder layers, in training
    norm: Literal["batch", "instance"] = "batch"

    min_z_dim = 0

    def validate(self) -> None:
        super().validate()
        if self.z_dim != 0:
            raise ConfigError(f"pix2pix takes no latents (its noise is dropout); set z_dim=0, got {self.z_dim}")
        for name in ("g_width", "d_width", "d_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.depth < 0:
            raise ConfigError(f"depth must be 0 (down to 1x1) or a number of layers, got {self.depth}")
        if self.depth == 0 and self.img_size & (self.img_size - 1):
            raise ConfigError(f"img_size {self.img_size} is not a power of two, which a U-Net down to 1x1 needs; "
                              "use 16, 32, 64, 128 or 256, or set depth")
        if self.depth and (self.depth < 2 or self.img_size % 2 ** self.depth):
            raise ConfigError(f"depth {self.depth} needs an img_size divisible by {2 ** self.depth} and depth >= 2, "
                              f"got img_size {self.img_size}")

    @property
    def levels(self) -> int:
        """G's encoder layers."""
        return self.depth or int(math.log2(self.img_size))


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.InstanceNorm2d(channels, affine=True)


class LayoutFreeDropout(nn.Module):
    """Dropout whose mask is drawn in the standard (contiguous) layout whatever the input's memory format, so that a
    channels_last run drops the same units as the default one (nn.Dropout fills its mask in memory order), and from
    uniform draws, so that a compiled run does too."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        # uniform draws compared with p, not bernoulli_: compiled code (fallback_random) draws the same uniforms
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


class UNetGenerator(Translator):
    """U-Net with skip connections (see the module docstring): images (N, C, H, W) -> images (N, C, H, W)."""

    def __init__(self, cfg: Pix2PixConfig) -> None:
        levels = cfg.levels
        super().__init__(cfg.channels, (cfg.channels, cfg.img_size, cfg.img_size), z_dim=0,
                         size_multiple=2 ** levels)
        widths = [cfg.g_width * min(2 ** i, 8) for i in range(levels)]
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cfg.channels if i == 0 else widths[i - 1], width, 4, 2, 1, bias=i == 0))
            if 0 < i < levels - 1:  # no norm on the first layer, nor at the 1x1 bottleneck
                layers.append(_norm(cfg.norm, width))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for j, i in enumerate(reversed(range(1, levels))):  # from the bottleneck up, each to widths[i - 1]
            in_width = widths[i] if i == levels - 1 else 2 * widths[i]
            layers = [nn.ReLU(), nn.ConvTranspose2d(in_width, widths[i - 1], 4, 2, 1, bias=False),
                      _norm(cfg.norm, widths[i - 1])]
            if j < 3 and cfg.dropout > 0:  # the paper's CD512 x3
                layers.append(LayoutFreeDropout(cfg.dropout))
            self.up.append(nn.Sequential(*layers))
        last_in = 2 * widths[0] if levels > 1 else widths[0]
        self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(last_in, cfg.channels, 4, 2, 1), nn.Tanh())
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)  # the paper's N(0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise GanzooUsageError(f"pix2pix translates (N, {self.in_channels}, H, W) images, got shape "
                                   f"{tuple(images.shape)}")
        skips = []
        x = images
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the decoder directly
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return self.out(x)


class PatchDiscriminator(Discriminator):
    """PatchGAN conditioned on the input: (output, input) pairs -> one logit per patch, shape (N, P)."""

    def __init__(self, cfg: Pix2PixConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        layers: list[nn.Module] = [nn.Conv2d(2 * cfg.channels, cfg.d_width, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = cfg.d_width
        for n in range(1, cfg.d_layers + 1):
            stride = 2 if n < cfg.d_layers else 1
            nxt = cfg.d_width * min(2 ** n, 8)
            layers += [nn.Conv2d(width, nxt, 4, stride, 1, bias=False), _norm(cfg.norm, nxt), nn.LeakyReLU(0.2)]
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None or labels.shape != images.shape:
            got = "none" if labels is None else f"shape {tuple(labels.shape)}"
            raise GanzooUsageError(f"the pix2pix discriminator judges an output against its input: pass the input "
                                   f"images (shape {tuple(images.shape)}) as the second argument, got {got}")
        patches = self.net(torch.cat([labels, images], dim=1)).flatten(1)
        return patches.flatten() if patches.shape[1] == 1 else patches  # one patch: one logit per image, (N,)


def _check(cfg: Pix2PixConfig, recipe: Recipe) -> None:
    smallest = 3 * 2 ** cfg.d_layers  # the last two stride-1 convolutions need a 3x3 map
    if cfg.img_size < smallest:
        raise ConfigError(f"a PatchGAN of {cfg.d_layers} stride-2 layers needs img_size >= {smallest}, got "
                          f"{cfg.img_size}; lower d_layers")


architecture = Architecture(
    name="pix2pix",
    summary="Paired image-to-image translation: U-Net G with skips, PatchGAN D on (output, input), GAN + 100 L1",
    paper="Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks (arXiv:1611.07004)",
    config_cls=Pix2PixConfig,
    build_generator=UNetGenerator,
    build_discriminator=PatchDiscriminator,
    recipe=Recipe(
        steps=4000, batch_size=16, loss="non-saturating", g_lr=2e-4, d_lr=2e-4, betas=(0.5, 0.999),
        objective="paired", objective_options={"l1_weight": 100.0},
        schedules={"lr": {"kind": "linear", "to": 0.0, "hold_fraction": 0.5}},
    ),
    presets={
        "l1-only": Preset("G on the L1 term alone, D never updated: the baseline of the paper's table 1",
                          recipe={"objective_options": {"l1_weight": 100.0, "adversarial": False}}),
        "gan-only": Preset("the conditional GAN alone, lambda = 0 (the paper's cGAN row)",
                           recipe={"objective_options": {"l1_weight": 0.0}}),
    },
    validate=_check,
    task="translate",
    test_config={"img_size": 16, "g_width": 4, "d_width": 4, "d_layers": 2},
)

"""R3GAN, reduced for small images: Huang, Gokaslan, Kuleshov & Tompkin, "The GAN is dead; long live the GAN! A
Modern GAN Baseline", NeurIPS 2024 (arXiv:2501.05441).

The paper's point is that a GAN needs no tricks once its loss is well behaved: a relativistic pairing loss
(RpGAN) with both zero-centred gradient penalties (R1 on real images, R2 on fakes) converges locally, and with
that loss a plain modern ConvNet trains stably. The networks here follow its design: residual stages of
inverted-bottleneck blocks (1x1 expand, grouped 3x3, 1x1 project) with leaky ReLU, no normalisation layers, fix-up
initialisation, fixed binomial low-pass filters for every 2x resampling, a learned 4x4 basis at G's input and D's
output. What is reduced: the widths (the paper: 768 channels at CIFAR-10), the number of blocks, and the length of
training; no class conditioning, no mixed precision or fused kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ganzoo.errors import ConfigError
from ganzoo.interfaces import ArchConfig, Architecture, Preset, PretrainedCfg, Recipe

from .networks import (
    BiasedLeakyReLU,
    InvertedBottleneck,
    LowPassResample,
    R3GANDiscriminator,
    R3GANGenerator,
    binomial_filter,
)

__all__ = ["BiasedLeakyReLU", "InvertedBottleneck", "LowPassResample", "R3GANConfig", "R3GANDiscriminator",
           "R3GANGenerator", "architecture", "binomial_filter"]


@dataclass(frozen=True)
class R3GANConfig(ArchConfig):
    """R3GAN hyperparameters. `widths` and `blocks` have one entry per stage, from 4x4 up to `img_size`
    (4, 8, 16, 32 at 32x32); G runs through them upwards, D downwards."""

    img_size: int = 32
    z_dim: int = 64  # the paper's noise dimension
    widths: tuple[int, ...] = (64, 64, 64, 32)  # channels per stage; the 32x32 stage is narrower: it costs 4x more
    blocks: tuple[int, ...] = (1, 1, 1, 1)  # residual blocks per stage (the paper at CIFAR-10: 2 per stage)
    group_size: int = 16  # channels per group of the grouped 3x3 conv (the paper: 16); cardinality = hidden / 16
    expansion: int = 2  # hidden channels of a block = expansion x its channels (the paper: 2)
    filter_taps: int = 4  # binomial low-pass filter length for 2x resampling: 4 is [1, 3, 3, 1] / 8

    supported_sizes = (8, 16, 32, 64)

    def validate(self) -> None:
        super().validate()
        if self.num_classes:
            raise ConfigError(f"r3gan here is unconditional; num_classes must be 0, got {self.num_classes}")
        stages = int(math.log2(self.img_size)) - 1
        if len(self.widths) != stages:
            raise ConfigError(f"widths has {len(self.widths)} entries but img_size {self.img_size} has {stages} "
                              f"stages (4x4 to {self.img_size}x{self.img_size}); give {stages} widths")
        if len(self.blocks) != stages:
            raise ConfigError(f"blocks has {len(self.blocks)} entries but img_size {self.img_size} has {stages} "
                              f"stages (4x4 to {self.img_size}x{self.img_size}); give {stages} block counts")
        for name in ("group_size", "expansion"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if min(self.widths) < 1 or min(self.blocks) < 1:
            raise ConfigError(f"widths and blocks must be at least 1, got {list(self.widths)} and {list(self.blocks)}")
        for width in self.widths:
            if width * self.expansion % self.group_size:
                raise ConfigError(f"group_size {self.group_size} must divide every block's hidden width (width x "
                                  f"expansion), but {width} x {self.expansion} = {width * self.expansion} is not a "
                                  "multiple; change group_size or the widths")
        if self.filter_taps not in (2, 4, 6, 8):
            raise ConfigError(f"filter_taps must be 2, 4, 6 or 8 (an even binomial filter), got {self.filter_taps}")


def build_generator(cfg: R3GANConfig) -> R3GANGenerator:
    """The residual generator for `cfg`."""
    return R3GANGenerator(cfg)


def build_discriminator(cfg: R3GANConfig) -> R3GANDiscriminator:
    """The residual discriminator for `cfg`."""
    return R3GANDiscriminator(cfg)


# The paper's recipe (its CIFAR-10 setting): RpGAN with R1 and R2 of one gamma, Adam betas (0, 0.9) with beta2
# going to 0.99, and cosine schedules: the learning rate from 2e-4 to 5e-5, gamma to a tenth. The schedules span the
# whole run, whatever its length: the default 1,000 steps and the cifar10 preset's 50,000 alike. The run's planned
# length is fixed when it starts, so a resume continues exactly; a resume asking for another length is refused
# (see docs/training.md).
_GAMMA = 0.05


def _cosine(to: float) -> dict[str, object]:
    return {"kind": "cosine", "to": to}


_RECIPE = Recipe(steps=1000, batch_size=64, loss="relativistic", r1_gamma=_GAMMA, r2_gamma=_GAMMA,
                 optimizer="adam", g_lr=2e-4, d_lr=2e-4, betas=(0.0, 0.9), ema_kimg=2.0, ema_rampup=0.05,
                 schedules={"lr": _cosine(5e-5), "gamma": _cosine(_GAMMA / 10), "beta2": _cosine(0.99)})


architecture = Architecture(
    name="r3gan",
    summary="Modern GAN baseline: normalisation-free grouped-conv ResNets, fix-up init, low-pass resampling",
    paper="Huang et al. 2024, arXiv:2501.05441",
    config_cls=R3GANConfig,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    recipe=_RECIPE,
    presets={
        "cifar10": Preset(
            summary="32x32 colour images, wider stages with two blocks each (a reduced version of the paper's "
                    "CIFAR-10 network: 768 channels there)",
            config={"img_size": 32, "channels": 3, "widths": [256, 256, 256, 256], "blocks": [2, 2, 2, 2]},
            recipe={"steps": 50000, "batch_size": 64},
        ),
    },
    test_config={"img_size": 8, "z_dim": 8, "widths": [8, 8], "blocks": [1, 1], "group_size": 4},
    pretrained=(
        # Not shipped: no recipe tried reached digits within the zoo's CPU budget (docs/architectures/r3gan.md, "Why
        # there is no r3gan-mnist-5k"); the weights of the 1,000-step default (digits FD 43.4) were withdrawn.
        PretrainedCfg(name="r3gan-mnist-5k", repo_id="ganzoo/r3gan-mnist-5k", dataset="mnist-5k", resolution=32,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch r3gan --data mnist-5k",
                      summary="not published: the default recipe draws blobs, not digits, within the CPU budget the "
                              "other digit entries had (docs/architectures/r3gan.md)"),
    ),
)

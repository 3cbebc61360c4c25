"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks", ICLR 2016 (arXiv:1511.06434).

Strided convolutions in D and fractionally-strided (transposed) convolutions in G, BatchNorm in both (not on
G's output or D's input), ReLU and tanh in G, LeakyReLU(0.2) in D, weights ~ N(0, 0.02), Adam(2e-4, beta1 0.5).

The `keras-mnist` preset reproduces the lecture's Keras MNIST DCGAN: Dense(100 -> 7*7*256), BatchNorm
(momentum 0.9), dropout 0.4, UpSampling2D with 5x5 transposed convolutions and a sigmoid output in G
(2,368,705 trainable parameters); a four-layer 5x5 convolutional D with dropout; RMSprop, batch 256.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, Preset, PretrainedCfg, Recipe
from ganzoo.layers import downsampling_stack, normal_init_, upsampling_stack, xavier_init_

__all__ = ["DCGANConfig", "DCGANDiscriminator", "DCGANGenerator", "KerasDiscriminator", "KerasGenerator",
           "architecture"]


@dataclass(frozen=True)
class DCGANConfig(ArchConfig):
    """DCGAN hyperparameters. Widths follow the paper's pattern: G halves its channels at each upsampling."""

    img_size: int = 32
    z_dim: int = 100
    g_width: int = 64  # ngf: channels of G's last hidden layer (the paper's 128 at 64x64; 64 is the common choice)
    d_width: int = 64  # ndf: channels of D's first layer
    variant: Literal["radford", "keras-mnist"] = "radford"
    dropout: float = 0.4  # keras-mnist only
    bn_momentum: float = 0.1  # PyTorch convention (Keras' momentum 0.9 is 0.1 here)

    supported_sizes = (28, 32, 64, 128)

    def validate(self) -> None:
        super().validate()
        if self.g_width < 1 or self.d_width < 1:
            raise ConfigError("g_width and d_width must be positive")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.variant == "keras-mnist" and self.img_size != 28:
            raise ConfigError("the keras-mnist variant makes 28x28 images; set img_size 28")


class DCGANGenerator(Generator):
    """z (N, z_dim) -> project to base x base -> transposed convolutions doubling the size -> tanh."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        self.net = upsampling_stack(cfg.z_dim, cfg.g_width, cfg.channels, cfg.img_size, cfg.bn_momentum)
        normal_init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(Discriminator):
    """Strided convolutions halving the size down to base x base, then one convolution to a logit."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        self.net = downsampling_stack(cfg.channels, cfg.d_width, cfg.img_size,
                                      lambda c: nn.BatchNorm2d(c, momentum=cfg.bn_momentum), bias=False)
        normal_init_(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images).flatten()


class KerasGenerator(Generator):
    """The lecture's Keras generator. Its sigmoid output in [0, 1] is mapped to ganzoo's [-1, 1]."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, 28, 28))
        depth, dim = 256, 7
        bn = {"momentum": cfg.bn_momentum, "eps": 1e-3}  # Keras' BatchNormalization epsilon
        self.project = nn.Sequential(nn.Linear(cfg.z_dim, dim * dim * depth), nn.BatchNorm1d(dim * dim * depth, **bn),
                                     nn.ReLU(True))
        self.shape = (depth, dim, dim)
        self.net = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ConvTranspose2d(depth, depth // 2, 5, 1, 2), nn.BatchNorm2d(depth // 2, **bn), nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ConvTranspose2d(depth // 2, depth // 4, 5, 1, 2), nn.BatchNorm2d(depth // 4, **bn), nn.ReLU(True),
            nn.ConvTranspose2d(depth // 4, depth // 8, 5, 1, 2), nn.BatchNorm2d(depth // 8, **bn), nn.ReLU(True),
            nn.ConvTranspose2d(depth // 8, cfg.channels, 5, 1, 2), nn.Sigmoid(),
        )
        xavier_init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.project(z).view(-1, *self.shape)
        return self.net(x) * 2 - 1


class KerasDiscriminator(Discriminator):
    """The lecture's Keras discriminator; returns the logit (its sigmoid is folded into the loss)."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__((cfg.channels, 28, 28))
        depth = 64
        layers: list[nn.Module] = []
        in_ch = cfg.channels
        for mult, stride in ((1, 2), (2, 2), (4, 2), (8, 1)):
            layers += [nn.Conv2d(in_ch, depth * mult, 5, stride, 2), nn.LeakyReLU(0.2, True), nn.Dropout(cfg.dropout)]
            in_ch = depth * mult
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(in_ch * 4 * 4, 1))
        xavier_init_(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images).flatten()


def build_generator(cfg: DCGANConfig) -> Generator:
    return KerasGenerator(cfg) if cfg.variant == "keras-mnist" else DCGANGenerator(cfg)


def build_discriminator(cfg: DCGANConfig) -> Discriminator:
    return KerasDiscriminator(cfg) if cfg.variant == "keras-mnist" else DCGANDiscriminator(cfg)


architecture = Architecture(
    name="dcgan",
    summary="Deep convolutional GAN: strided convolutions, BatchNorm, ReLU/LeakyReLU",
    paper="Radford, Metz & Chintala 2015, arXiv:1511.06434",
    config_cls=DCGANConfig,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    recipe=Recipe(steps=1500, batch_size=64, loss="non-saturating", optimizer="adam", g_lr=2e-4, d_lr=2e-4,
                  betas=(0.5, 0.999), ema_kimg=2.0, ema_rampup=0.05),
    test_config={"img_size": 28, "g_width": 8, "d_width": 8, "z_dim": 16},
    pretrained=(
        PretrainedCfg(name="dcgan-mnist-5k", repo_id="ganzoo/dcgan-mnist-5k", dataset="mnist-5k", resolution=32,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch dcgan --data mnist-5k --steps 6000",
                      summary="the default recipe for 6,000 steps on the embedded digits (digits FD 2.69 at 3,000 "
                              "steps, 1.82 at 6,000)",
                      files='pretrained/dcgan-mnist-5k',
                      sha256={
                          'config.json': '6929c2b4fc538964f087a28c7f8df172715f6ef224dcbd1bf82ded9d5ad379bb',
                          'generator.safetensors': '8c474ddd1d2f8b95e0ca0e00efa223f7ead34df6eb740a42c008971002f96a0a',
                          'discriminator.safetensors':
                              '674e70b495ca57a62dee2207b7b645ae25ff0e6c662bd39d51e4286c6a6a408a',
                      },
                      metrics={
                          'fid': 1.8183,
                          'kid': 0.0234,
                          'kid_std': 0.0033,
                          'is': 7.7938,
                          'is_std': 0.2276,
                          'precision': 0.522,
                          'recall': 0.846,
                      }),
        PretrainedCfg(name="dcgan-mnist", repo_id="ganzoo/dcgan-mnist", dataset="mnist", resolution=32,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch dcgan --data mnist --steps 10000",
                      summary="all 60,000 MNIST training digits"),
        PretrainedCfg(name="dcgan-celeba", repo_id="ganzoo/dcgan-celeba", dataset="celeba", resolution=64,
                      license="other", summary="CelebA faces at 64x64 (CelebA is for non-commercial research)",
                      recipe="ganzoo train --arch dcgan --data celeba --img-size 64 --channels 3 --steps 30000"),
    ),
    presets={
        "keras-mnist": Preset(
            summary="the lecture's Keras MNIST DCGAN (28x28, upsampling G with dropout, RMSprop, batch 256)",
            config={"img_size": 28, "channels": 1, "variant": "keras-mnist", "bn_momentum": 0.1, "dropout": 0.4},
            recipe={"optimizer": "rmsprop", "d_lr": 2e-4, "g_lr": 1e-4, "rho": 0.9, "eps": 1e-7,
                    "lr_decay": 6e-8, "batch_size": 256, "steps": 2000, "ema_kimg": 0.0, "ema_rampup": 0.0},
        ),
    },
)

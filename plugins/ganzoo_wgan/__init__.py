"""WGAN: Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017 (arXiv:1701.07875), and WGAN-GP:
Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, "Improved Training of Wasserstein GANs", NeurIPS 2017
(arXiv:1704.00028).

The discriminator becomes a critic: a DCGAN-like convolutional network without a sigmoid whose output is a
score, not a probability. The critic maximises E[D(x)] - E[D(G(z))], an estimate of the Wasserstein-1 distance
when D is 1-Lipschitz; the generator maximises E[D(G(z))]. Two ways of keeping the critic Lipschitz:

- `clip` (the 2017 WGAN paper): clip every critic weight to [-0.01, 0.01] after each critic step, RMSprop with
  lr 5e-5, five critic steps per generator step. The paper's critic is a DCGAN discriminator with BatchNorm.
- `gp` (WGAN-GP, the default): a penalty lambda * E[(||grad D(x_hat)|| - 1)^2] at random interpolates x_hat
  of real and fake images, lambda 10, Adam lr 1e-4 with betas (0, 0.9), five critic steps. The penalty is taken
  per sample, which BatchNorm in the critic breaks (it mixes the samples of a batch), so the critic uses layer
  normalisation (or none); a gradient penalty with `critic_norm="batch"` is a ConfigError.

The generator is DCGAN's: a projection of z to a small feature map, transposed convolutions doubling the size
with BatchNorm and ReLU, and a tanh output. The loss logs the critic's Wasserstein estimate as `wasserstein`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import (
    ArchConfig,
    Architecture,
    Discriminator,
    Generator,
    Preset,
    PretrainedCfg,
    Recipe,
)
from ganzoo.layers import downsampling_stack, normal_init_, upsampling_stack

__all__ = ["WGANConfig", "WGANCritic", "WGANGenerator", "architecture"]


@dataclass(frozen=True)
class WGANConfig(ArchConfig):
    """WGAN hyperparameters: DCGAN-like widths and the critic's normalisation."""

    img_size: int = 28  # MNIST's own size: 7 -> 14 -> 28, one upsampling fewer than 32 and so cheaper on a CPU
    z_dim: int = 64
    g_width: int = 32  # channels of G's last hidden layer; doubled at each lower resolution
    d_width: int = 32  # channels of the critic's first layer; doubled at each lower resolution
    critic_norm: Literal["batch", "layer", "none"] = "layer"  # "layer" is what WGAN-GP recommends

    supported_sizes = (8, 16, 28, 32, 64, 128)

    def validate(self) -> None:
        super().validate()
        if self.g_width < 1 or self.d_width < 1:
            raise ConfigError("g_width and d_width must be positive")


def _critic_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # layer norm over (C, H, W) of each sample, with a per-channel scale and shift
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class WGANGenerator(Generator):
    """z (N, z_dim) -> base x base feature map -> transposed convolutions doubling the size -> tanh."""

    def __init__(self, cfg: WGANConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        self.net = upsampling_stack(cfg.z_dim, cfg.g_width, cfg.channels, cfg.img_size, out_bias=True)
        normal_init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class WGANCritic(Discriminator):
    """Strided convolutions halving the size down to base x base, then a convolution to one unbounded score."""

    def __init__(self, cfg: WGANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        # a bias before a norm that subtracts the mean does nothing, so only an unnormalised critic has them inside
        self.net = downsampling_stack(cfg.channels, cfg.d_width, cfg.img_size,
                                      lambda c: _critic_norm(cfg.critic_norm, c), hidden_bias=cfg.critic_norm == "none")
        normal_init_(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images).flatten()


def build_generator(cfg: WGANConfig) -> Generator:
    """A freshly initialised WGAN generator for `cfg`."""
    return WGANGenerator(cfg)


def build_discriminator(cfg: WGANConfig) -> Discriminator:
    """A freshly initialised WGAN critic for `cfg`."""
    return WGANCritic(cfg)


def check_config(cfg: WGANConfig, recipe: Recipe) -> None:
    """Reject a config and recipe that do not fit together: a gradient penalty (GP, R1 or R2) is a per-sample
    gradient, and BatchNorm in the critic couples the samples of a batch."""
    if cfg.critic_norm == "batch" and (recipe.gp_weight > 0 or recipe.r1_gamma > 0 or recipe.r2_gamma > 0):
        raise ConfigError("critic_norm 'batch' cannot be combined with a gradient penalty (gp_weight, r1_gamma or "
                          "r2_gamma > 0); use critic_norm 'layer' or 'none'")


_CLIP = {"loss": "wasserstein", "gp_weight": 0.0, "clip_value": 0.01, "optimizer": "rmsprop", "g_lr": 5e-5,
         "d_lr": 5e-5, "d_steps": 5}
_GP = {"loss": "wasserstein", "gp_weight": 10.0, "clip_value": 0.0, "optimizer": "adam", "g_lr": 1e-4, "d_lr": 1e-4,
       "betas": (0.0, 0.9), "d_steps": 5}

architecture = Architecture(
    name="wgan",
    summary="Wasserstein GAN: an unbounded critic kept Lipschitz by a gradient penalty (default) or weight clipping",
    paper="Arjovsky et al. 2017, arXiv:1701.07875; Gulrajani et al. 2017, arXiv:1704.00028",
    config_cls=WGANConfig,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    recipe=Recipe(steps=2000, batch_size=64, ema_kimg=10.0, ema_rampup=0.05, **_GP),
    presets={
        "gp": Preset(
            summary="WGAN-GP (Gulrajani et al.): gradient penalty 10, Adam 1e-4 betas (0, 0.9), 5 critic steps, "
                    "layer-normalised critic",
            config={"critic_norm": "layer"},
            recipe=_GP,
        ),
        "clip": Preset(
            summary="the original WGAN (Arjovsky et al.): weight clipping 0.01, RMSprop 5e-5, 5 critic steps, "
                    "BatchNorm critic",
            config={"critic_norm": "batch"},
            recipe=_CLIP,
        ),
    },
    validate=check_config,
    pretrained=(
        PretrainedCfg(name="wgan-mnist-5k", repo_id="ganzoo/wgan-mnist-5k", dataset="mnist-5k", resolution=28,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch wgan --data mnist-5k --steps 7000",
                      summary="the default WGAN-GP recipe run for 7,000 steps on the embedded digits",
                      files='pretrained/wgan-mnist-5k',
                      sha256={
                          'config.json': '35f006a86308c8996c456494ee79c1419ac82f73682afa823ba23e468fe88cc0',
                          'generator.safetensors': 'd34741c03a5947c56f5837ca5372d6f2ba2198800c55d8c23aa227936d571acb',
                          'discriminator.safetensors':
                              '41765eee8b46299f724d98c599343c305985fece0f76de82af93adda7c44df02',
                      },
                      metrics={
                          'fid': 2.7206,
                          'kid': 0.0461,
                          'kid_std': 0.0045,
                          'is': 7.6594,
                          'is_std': 0.1823,
                          'precision': 0.469,
                          'recall': 0.9,
                      }),
    ),
    test_config={"img_size": 28, "g_width": 8, "d_width": 8, "z_dim": 16},
)

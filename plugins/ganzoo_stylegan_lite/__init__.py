"""StyleGAN-lite: a reduced StyleGAN2 for small images.

Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR 2019
(arXiv:1812.04948), and Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020
(arXiv:1912.04958).

What is kept: a mapping network z -> w; a learned constant 4x4 input; modulated 3x3 convolutions with weight
demodulation; per-layer noise inputs with learned per-channel strengths; bias and leaky ReLU; the toRGB skip
generator; style mixing regularisation; the truncation trick around a moving average of w; a residual
discriminator with minibatch standard deviation; equalised learning rates everywhere. What is reduced: few
channels, a shallow mapping network, bilinear resampling and average pooling by default, no fp16 clamping.
StyleGAN2's binomial FIR resampling (config `filter_taps`, [1, 3, 3, 1] at 4 taps, `ganzoo.layers.LowPassResample`)
and its lazy path-length regularisation (recipe `pl_weight`, `pl_interval`; the loss's `g_regularizer`, through
the generator's `style_latents` / `synthesize`) are options, off by default so the shipped weights stay what they
are. Training (non-saturating loss, lazy R1, EMA, Adam betas (0, 0.99)) is the shared trainer's, configured by the
recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ganzoo.errors import ConfigError
from ganzoo.interfaces import ArchConfig, Architecture, PretrainedCfg, Recipe

from .networks import StyleGANLiteDiscriminator, StyleGANLiteGenerator

__all__ = ["StyleGANLiteConfig", "StyleGANLiteDiscriminator", "StyleGANLiteGenerator", "architecture"]


@dataclass(frozen=True)
class StyleGANLiteConfig(ArchConfig):
    """StyleGAN-lite hyperparameters. Channel widths double at each halving of the resolution, up to a cap."""

    img_size: int = 32
    z_dim: int = 64  # the paper's 512; MNIST needs far less
    w_dim: int = 64  # width of the intermediate latent space W
    mapping_layers: int = 2  # the paper's 8; a short CPU run barely moves a deep mapping at lr_mul 0.01
    mapping_lr_mul: float = 0.01  # the paper's learning-rate multiplier for the mapping network
    g_width: int = 16  # G's channels at the output resolution
    g_max_width: int = 64  # cap on G's channels at low resolutions
    d_width: int = 16  # D's channels at the input resolution
    d_max_width: int = 64
    noise: bool = True  # per-layer noise inputs
    # style mixing regularisation: probability of a second w with a random crossover (the paper: 0.9; on a short
    # CPU run 0.9 cost diversity on mnist-5k, 0.5 did not)
    mixing_prob: float = 0.5
    w_avg_beta: float = 0.995  # moving average of w for truncation (StyleGAN2: 0.998; runs here are short)
    mbstd_group: int = 4  # minibatch standard deviation group size; 0 disables it
    mbstd_channels: int = 1
    # 2x resampling: 0 is the lite default (bilinear upsampling in G, 2x2 average pooling in D); 2, 4, 6 or 8 use
    # the binomial FIR filter of that length everywhere G upsamples and D downsamples (StyleGAN2: 4, [1, 3, 3, 1])
    filter_taps: int = 0

    supported_sizes = (8, 16, 32, 64, 128, 256)

    def validate(self) -> None:
        super().validate()
        if self.num_classes:
            raise ConfigError(f"stylegan-lite is unconditional; num_classes must be 0, got {self.num_classes}")
        positive = {"w_dim": self.w_dim, "mapping_layers": self.mapping_layers, "g_width": self.g_width,
                    "g_max_width": self.g_max_width, "d_width": self.d_width, "d_max_width": self.d_max_width,
                    "mbstd_channels": self.mbstd_channels}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if not self.mapping_lr_mul > 0 or math.isinf(self.mapping_lr_mul):
            raise ConfigError(f"mapping_lr_mul must be a positive number, got {self.mapping_lr_mul}")
        if not 0 <= self.mixing_prob <= 1:
            raise ConfigError(f"mixing_prob must lie in [0, 1], got {self.mixing_prob}")
        if not 0 <= self.w_avg_beta < 1:
            raise ConfigError(f"w_avg_beta must lie in [0, 1), got {self.w_avg_beta}")
        d_width_4x4 = min(self.d_width * self.img_size // 4, self.d_max_width)
        if d_width_4x4 % self.mbstd_channels:
            raise ConfigError(f"mbstd_channels ({self.mbstd_channels}) must divide D's {d_width_4x4} channels at 4x4")
        if self.filter_taps not in (0, 2, 4, 6, 8):
            raise ConfigError(f"filter_taps must be 0 (bilinear and average pooling) or 2, 4, 6 or 8 (a binomial FIR "
                              f"filter; StyleGAN2 uses 4), got {self.filter_taps}")
        if self.mbstd_group < 0 or self.mbstd_group == 1:
            raise ConfigError(f"mbstd_group must be 0 (off) or at least 2, got {self.mbstd_group}")


def build_generator(cfg: StyleGANLiteConfig) -> StyleGANLiteGenerator:
    return StyleGANLiteGenerator(cfg)


def build_discriminator(cfg: StyleGANLiteConfig) -> StyleGANLiteDiscriminator:
    return StyleGANLiteDiscriminator(cfg)


_LR = 0.0025  # StyleGAN2-ADA's rate for small images
_R1_INTERVAL = 16
# StyleGAN2 scales D's Adam by c = interval / (interval + 1) for lazy R1: lr * c, beta1^c, beta2^c. Only the lr
# part is applied: beta1 is 0 anyway, and a recipe's betas are shared by G and D (0.99^c = 0.9906 vs 0.99).
_LAZY = _R1_INTERVAL / (_R1_INTERVAL + 1)
# r1_gamma 10 (not the ~0.01 StyleGAN2-ADA's heuristic gives at 32x32) and mixing_prob 0.5 (config): with weaker
# R1 or more mixing, G collapsed to a few digit shapes early on mnist-5k (docs/architectures/stylegan-lite.md).
# DiffAugment ("translation,cutout") made diversity worse on this short run, so it is off.

architecture = Architecture(
    name="stylegan-lite",
    summary="Reduced StyleGAN2: mapping network, modulated convolutions, noise, style mixing, truncation",
    paper="Karras et al. 2019, arXiv:1812.04948; Karras et al. 2020, arXiv:1912.04958",
    config_cls=StyleGANLiteConfig,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    recipe=Recipe(steps=3000, batch_size=32, loss="non-saturating", r1_gamma=10.0, r1_interval=_R1_INTERVAL,
                  optimizer="adam", g_lr=_LR, d_lr=_LR * _LAZY, betas=(0.0, 0.99), ema_kimg=2.0, ema_rampup=0.05),
    pretrained=(
        PretrainedCfg(name="stylegan-lite-mnist-5k", repo_id="ganzoo/stylegan-lite-mnist-5k", dataset="mnist-5k",
                      resolution=32,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch stylegan-lite --data mnist-5k --steps 6000",
                      summary="the default recipe on the embedded digits",
                      files='pretrained/stylegan-lite-mnist-5k',
                      sha256={
                          'config.json': '425a5ad78f4a106d89ef791b43b603236597bf75747b6616ff871515631467eb',
                          'generator.safetensors': 'dcc74a1bf2065767139b69555772e105e5e8a676eca170b7114f7cc4b8c2c7e2',
                          'discriminator.safetensors':
                              '31467a65ae78eb997471b38ffdfaf536829dafbd836085fb905002cb9699826f',
                      },
                      metrics={
                          'fid': 0.8746,
                          'kid': 0.0051,
                          'kid_std': 0.0024,
                          'is': 8.6721,
                          'is_std': 0.1918,
                          'precision': 0.7205,
                          'recall': 0.768,
                      }),
        PretrainedCfg(name="stylegan-lite-twemoji-32", repo_id="ganzoo/stylegan-lite-twemoji-32", dataset="twemoji",
                      resolution=32, license="cc-by-4.0",
                      recipe="ganzoo train --arch stylegan-lite --data twemoji --steps 12000",
                      summary="the default recipe on Twemoji's 1,560 train emoji in colour, no augmentation (which "
                              "beat ADA and DiffAugment here: docs/zoo.md), 12,000 steps, 44 CPU minutes",
                      files='pretrained/stylegan-lite-twemoji-32',
                      sha256={
                          'config.json': '188a7fc9f00e77b2e69c9a1010f77f09684bbe2b14f2453a00be7a6929add405',
                          'generator.safetensors': 'dde23321863ab4b87d5362d681aa788476863067eb391e89d442299b4ac31936',
                          'discriminator.safetensors':
                              '98eda6b54253bde5ee88fa416e2c8ec9cf3ab974c4bd84a079f3d583869b5476',
                      },
                      metrics={
                          'fid': 3.0439,
                          'kid': 0.0201,
                          'kid_std': 0.0145,
                          'is': 2.867,
                          'is_std': 0.1089,
                          'precision': 0.865,
                          'recall': 0.7456,
                      }),
    ),
    test_config={"img_size": 8, "z_dim": 8, "w_dim": 8, "g_width": 4, "g_max_width": 8, "d_width": 4,
                 "d_max_width": 8},
)

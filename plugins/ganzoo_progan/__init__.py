"""Progressive GAN: Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation", ICLR 2018 (arXiv:1710.10196).

Training starts at 4x4 and doubles the resolution in phases (4 -> 8 -> 16 -> 32 by default). Each new
resolution block of G and D is faded in: its output is blended with the upsampled (in G) or downsampled (in D)
output of the previous resolution by a weight alpha that grows linearly from 0 to 1 over `fade_kimg` thousand
images; the network then trains at that resolution, fully faded in, for `phase_kimg` thousand images. The
paper's other ingredients: pixelwise feature normalisation after every convolution of G (and of the latent),
a minibatch standard deviation feature map in D's last block, an equalised learning rate (weights stored as
N(0, 1) and scaled at run time by He's constant), and the WGAN-GP loss with a small drift term
0.001 * E[D(x)^2] on the real scores, Adam with betas (0, 0.99).

How growth is wired into ganzoo's one trainer (no architecture-specific branch there):

- G and D keep the current `level` (0 = 4x4, 1 = 8x8, ...) and `alpha` as buffers, so they travel with
  `state_dict` into checkpoints and model folders (the trainer copies buffers from G into the EMA generator
  after each step), and mirror them in plain Python numbers that `forward` branches on (no device sync).
  A freshly built model is fully grown (last level, alpha 1), so it can also be trained without growing.
- The `GrowthSchedule` training hook derives (level, alpha) from the images seen alone and sets them on G, D and
  the EMA copy before every step; a resumed run is therefore at exactly the same point of a fade-in.
- G always returns images of the final size: the current-resolution image is upsampled (nearest neighbour,
  so every low-resolution pixel becomes a flat block). `gan.sample()` works at any point of training, and the
  exported model has the final resolution whatever level it stopped at.
- D accepts final-size images (any multiple of the current resolution) and average-pools them down to the
  current resolution first. The hook's `process_real` brings the real batch to the current resolution in the
  same way (blending it with its 2x-downsampled-and-upsampled copy during a fade-in, as the paper does for
  reals), then upsamples it back to the final size, so reals, fakes and the gradient penalty's interpolates
  all have one shape and D pools them identically.

This is also how the authors' released training loop feeds its networks (reals faded between levels of detail
and upscaled to the networks' full input size). One consequence of scoring final-size images: the gradient
penalty's norm is taken in final-size pixel space, where a nearest-upsampled image is a factor
(final / current) longer than at the current resolution, so at low resolutions the critic is held to a Lipschitz
constant measured on the final grid (as if lambda were divided by that factor). It trains stably as it is.

Deviations from the paper, for speed on small data: smaller feature maps (`fmap_base`, `fmap_max`), a short
schedule counted in thousands rather than hundreds of thousands of images, a latent of size `z_dim` (the paper:
512), and a tanh on each to-RGB output (blended after the tanh) so images stay in ganzoo's [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, PretrainedCfg, Recipe, TrainingHook
from ganzoo.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, pixel_norm

__all__ = ["GrowthSchedule", "ProGANConfig", "ProGANDiscriminator", "ProGANGenerator", "architecture",
           "growth_at"]

_SLOPE = 0.2  # leaky ReLU slope throughout


@dataclass(frozen=True)
class ProGANConfig(ArchConfig):
    """Progressive GAN hyperparameters: feature-map widths and the growth schedule."""

    img_size: int = 32  # the final resolution, a power of two >= 8; growth starts at 4x4
    z_dim: int = 128
    fmap_base: int = 512  # channels at resolution r: min(fmap_base // r, fmap_max): 64, 64, 32, 16 up to 32x32
    fmap_max: int = 64  # the paper uses 512 (base 8192); small maps keep a 32x32 run within minutes on a CPU
    phase_kimg: float = 8.0  # thousands of images at each resolution once it is fully faded in (paper: 800)
    fade_kimg: float = 8.0  # thousands of images over which a new resolution fades in (paper: 800)
    mbstd_group: int = 4  # group size of the minibatch standard deviation

    def validate(self) -> None:
        super().validate()
        size = self.img_size
        if size < 8 or size & (size - 1):
            raise ConfigError(f"img_size must be a power of two >= 8, got {size}")
        if self.fmap_max < 1 or self.fmap_base < size:
            raise ConfigError(f"fmap_max must be positive and fmap_base at least img_size ({size}), "
                              f"got {self.fmap_max} and {self.fmap_base}")
        if not self.phase_kimg > 0 or not self.fade_kimg >= 0:
            raise ConfigError(f"phase_kimg must be > 0 and fade_kimg >= 0, got {self.phase_kimg} and "
                              f"{self.fade_kimg}")
        if self.mbstd_group < 1:
            raise ConfigError(f"mbstd_group must be at least 1, got {self.mbstd_group}")

    @property
    def max_level(self) -> int:
        """Index of the final resolution: 4 * 2**max_level == img_size."""
        return int(math.log2(self.img_size)) - 2

    def width(self, level: int) -> int:
        """Feature maps at `level` (resolution 4 * 2**level)."""
        return min(self.fmap_base // (4 << level), self.fmap_max)


# ---------------------------------------------------------------------------------------------------------------------
# The schedule
# ---------------------------------------------------------------------------------------------------------------------


def growth_at(images_seen: int, max_level: int, phase_kimg: float, fade_kimg: float) -> tuple[int, float]:
    """(level, alpha) after `images_seen` images: 4x4 for `phase_kimg`, then per level a fade-in of `fade_kimg`
    (alpha 0 -> 1) and a stable phase of `phase_kimg`; the last level stays once reached."""
    t = images_seen / 1000.0
    if t < phase_kimg:
        return 0, 1.0
    t -= phase_kimg
    for level in range(1, max_level + 1):
        if t < fade_kimg:
            return level, t / fade_kimg
        t -= fade_kimg
        if t < phase_kimg or level == max_level:
            return level, 1.0
        t -= phase_kimg
    return max_level, 1.0


def _f32(alpha: float) -> float:
    """`alpha` rounded to float32, the precision of the buffer it is stored in (so a reload is exact)."""
    return float(torch.tensor(alpha, dtype=torch.float32))


def _sync_growth(module: nn.Module, incompatible_keys: Any) -> None:
    """After `load_state_dict`: refresh the Python mirrors of the level and alpha buffers."""
    module._level = int(module.level)
    module._alpha = float(module.alpha)


class _Growing:
    """Mixin for G and D: the current level and fade-in alpha, as buffers mirrored in Python numbers."""

    level: torch.Tensor
    alpha: torch.Tensor
    max_level: int

    def _init_growth(self, max_level: int) -> None:
        self.max_level = max_level
        self.register_buffer("level", torch.tensor(max_level, dtype=torch.int64))
        self.register_buffer("alpha", torch.tensor(1.0))
        self._level = max_level
        self._alpha = 1.0
        self.register_load_state_dict_post_hook(_sync_growth)

    def set_growth(self, level: int, alpha: float) -> None:
        """Run at resolution 4 * 2**level, with the newest block blended in by `alpha` in [0, 1]."""
        if not 0 <= level <= self.max_level or not 0 <= alpha <= 1:
            raise ValueError(f"level must lie in [0, {self.max_level}] and alpha in [0, 1], got {level}, {alpha}")
        alpha = _f32(alpha)
        self.level.fill_(level)
        self.alpha.fill_(alpha)
        self._level, self._alpha = int(level), alpha

    @property
    def resolution(self) -> int:
        """The resolution the network currently works at."""
        return 4 << self._level


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, _SLOPE)


def _up(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="nearest") if factor > 1 else x


def _down(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.avg_pool2d(x, factor) if factor > 1 else x


# ---------------------------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------------------------


class _GBlock(nn.Module):
    """Upsample 2x (nearest), then two 3x3 convolutions, each followed by leaky ReLU and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv2 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(_lrelu(self.conv1(_up(x, 2))))
        return pixel_norm(_lrelu(self.conv2(x)))


class ProGANGenerator(_Growing, Generator):
    """Latent -> 4x4 (dense layer, 3x3 convolution) -> one block per doubling -> to-RGB at the current level.

    Returns final-size images at any level: the current-resolution output is upsampled by nearest neighbour.
    """

    def __init__(self, cfg: ProGANConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        c0 = cfg.width(0)
        self.project = EqualizedLinear(cfg.z_dim, c0 * 16, gain=math.sqrt(2) / 4)  # the paper's 4x4 "conv"
        self.conv0 = EqualizedConv2d(c0, c0, 3)
        self.blocks = nn.ModuleDict({str(4 << k): _GBlock(cfg.width(k - 1), cfg.width(k))
                                     for k in range(1, cfg.max_level + 1)})
        self.to_rgb = nn.ModuleDict({str(4 << k): EqualizedConv2d(cfg.width(k), cfg.channels, 1, gain=1.0)
                                     for k in range(cfg.max_level + 1)})
        self._init_growth(cfg.max_level)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        level, alpha = self._level, self._alpha
        x = self.project(pixel_norm(z)).view(z.shape[0], -1, 4, 4)
        x = pixel_norm(_lrelu(x))
        x = pixel_norm(_lrelu(self.conv0(x)))
        previous = x
        for k in range(1, level + 1):
            previous = x
            x = self.blocks[str(4 << k)](x)
        rgb = torch.tanh(self.to_rgb[str(4 << level)](x))
        if level > 0 and alpha < 1:  # fade-in: blend with the previous level's image, upsampled
            low = torch.tanh(self.to_rgb[str(2 << level)](previous))
            rgb = torch.lerp(_up(low, 2), rgb, alpha)
        return _up(rgb, self.img_shape[1] // (4 << level))


# ---------------------------------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------------------------------


class _DBlock(nn.Module):
    """Two 3x3 convolutions with leaky ReLU, then 2x average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(_lrelu(self.conv2(_lrelu(self.conv1(x)))), 2)


class _DOutput(nn.Module):
    """The 4x4 block: minibatch standard deviation, 3x3 and 4x4 convolutions, a linear layer to one score."""

    def __init__(self, channels: int, group_size: int) -> None:
        super().__init__()
        self.mbstd = MinibatchStdDev(group_size)
        self.conv = EqualizedConv2d(channels + 1, channels, 3)
        self.dense = EqualizedConv2d(channels, channels, 4, padding=0)
        self.out = EqualizedLinear(channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _lrelu(self.conv(self.mbstd(x)))
        x = _lrelu(self.dense(x)).flatten(1)
        return self.out(x).flatten()


class ProGANDiscriminator(_Growing, Discriminator):
    """From-RGB at the current level -> one block per halving -> the 4x4 output block.

    Takes images whose size is a multiple of the current resolution (normally the final size) and
    average-pools them to the current resolution first.
    """

    def __init__(self, cfg: ProGANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        self.from_rgb = nn.ModuleDict({str(4 << k): EqualizedConv2d(cfg.channels, cfg.width(k), 1)
                                       for k in range(cfg.max_level + 1)})
        self.blocks = nn.ModuleDict({str(4 << k): _DBlock(cfg.width(k), cfg.width(k - 1))
                                     for k in range(1, cfg.max_level + 1)})
        self.output = _DOutput(cfg.width(0), cfg.mbstd_group)
        self._init_growth(cfg.max_level)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        level, alpha = self._level, self._alpha
        res = 4 << level
        size = images.shape[-1]
        if size < res or size % res:
            raise ValueError(f"{type(self).__name__} at {res}x{res} needs images whose size is a multiple of {res}, "
                             f"got {size}x{size}")
        x = _down(images, size // res)
        h = _lrelu(self.from_rgb[str(res)](x))
        if level > 0:
            h = self.blocks[str(res)](h)
            if alpha < 1:  # fade-in: blend with the previous level's path on the 2x-downsampled image
                low = _lrelu(self.from_rgb[str(res // 2)](F.avg_pool2d(x, 2)))
                h = torch.lerp(low, h, alpha)
            for k in range(level - 1, 0, -1):
                h = self.blocks[str(4 << k)](h)
        return self.output(h)


# ---------------------------------------------------------------------------------------------------------------------
# The training hook
# ---------------------------------------------------------------------------------------------------------------------


class GrowthSchedule(TrainingHook):
    """Drives progressive growing: sets (level, alpha) from the images seen, brings real batches to the level."""

    def __init__(self, cfg: ProGANConfig) -> None:
        self.max_level = cfg.max_level
        self.phase_kimg = cfg.phase_kimg
        self.fade_kimg = cfg.fade_kimg
        self.level, self.alpha = 0, 1.0

    def before_step(self, step: int, images_seen: int, generator: nn.Module, discriminator: nn.Module,
                    ema: nn.Module | None) -> None:
        level, alpha = growth_at(images_seen, self.max_level, self.phase_kimg, self.fade_kimg)
        self.level, self.alpha = level, _f32(alpha)
        for module in (generator, discriminator, ema):
            module = getattr(module, "module", module)  # unwrap DistributedDataParallel
            if isinstance(module, _Growing):
                module.set_growth(level, alpha)

    def process_real(self, images: torch.Tensor) -> torch.Tensor:
        """Average-pool to the current resolution (blended with the previous one during a fade-in), then
        upsample back to the input size, as G's output is."""
        factor = images.shape[-1] // (4 << self.level)
        x = _down(images, factor)
        if self.level > 0 and self.alpha < 1:
            x = torch.lerp(_up(F.avg_pool2d(x, 2), 2), x, self.alpha)
        return _up(x, factor)

    def stats(self) -> dict[str, float]:
        return {"resolution": float(4 << self.level), "alpha": self.alpha}


def make_hooks(cfg: ProGANConfig, recipe: Recipe) -> Sequence[TrainingHook]:
    """The growth schedule (the only hook progressive growing needs)."""
    return [GrowthSchedule(cfg)]


def build_generator(cfg: ProGANConfig) -> Generator:
    """A freshly initialised ProGAN generator for `cfg`."""
    return ProGANGenerator(cfg)


def build_discriminator(cfg: ProGANConfig) -> Discriminator:
    """A freshly initialised ProGAN discriminator for `cfg`."""
    return ProGANDiscriminator(cfg)


_TEST_CONFIG: Mapping[str, Any] = {"img_size": 8, "z_dim": 8, "fmap_base": 64, "fmap_max": 8, "phase_kimg": 0.024,
                                   "fade_kimg": 0.024}

architecture = Architecture(
    name="progan",
    summary="Progressive GAN: grows G and D from 4x4 with fade-ins; pixel norm, minibatch stddev, equalised lr",
    paper="Karras et al. 2018, arXiv:1710.10196",
    config_cls=ProGANConfig,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    recipe=Recipe(steps=2500, batch_size=32, loss="wasserstein", gp_weight=10.0, drift=0.001, optimizer="adam",
                  g_lr=1e-3, d_lr=1e-3, betas=(0.0, 0.99), d_steps=1, ema_kimg=2.0, ema_rampup=0.05),
    make_hooks=make_hooks,
    pretrained=(
        PretrainedCfg(name="progan-mnist-5k", repo_id="ganzoo/progan-mnist-5k", dataset="mnist-5k", resolution=32,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch progan --data mnist-5k --steps 5000",
                      summary="the default recipe run for 5,000 steps on the embedded digits, grown from 4x4 to 32x32",
                      files='pretrained/progan-mnist-5k',
                      sha256={
                          'config.json': '4d91379d89b99e1acb25c37322f4af4373a051d558ecbe07ded619f92ecbf34a',
                          'generator.safetensors': '79132f68b4f10e81b922c517de7bbfbb50376f66ecbc643993086f772e6d6066',
                          'discriminator.safetensors':
                              '43dcc32210e96e83a8bf78c3914d1c8fabe333576bc95c92e68d00cdbceb64e8',
                      },
                      metrics={
                          'fid': 2.8254,
                          'kid': 0.0457,
                          'kid_std': 0.0032,
                          'is': 7.4708,
                          'is_std': 0.1223,
                          'precision': 0.45,
                          'recall': 0.864,
                      }),
    ),
    test_config=_TEST_CONFIG,
)

"""Conditional GAN: Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014 (arXiv:1411.1784), with the
projection discriminator of Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018 (arXiv:1802.05637).

Both networks see the class label y. Mirza & Osindero feed y to G and D by concatenating it to their inputs;
Miyato & Koyama instead let D score a real/fake feature vector phi(x) and add the inner product of phi(x) with a
learnt class embedding: D(x, y) = psi(phi(x)) + <embed(y), phi(x)>. `discriminator` picks "concat", "projection"
or "both" (label maps at the inputs and the projection term).

Generator: DCGAN-style transposed convolutions. The label is embedded (`embed_dim`) and concatenated to z, and,
with `conditional_bn` (the default), every BatchNorm of G is class-conditional as well: its per-channel gain and
bias are looked up from the label (de Vries et al. 2017; Miyato & Koyama's generator). `conditional_bn=False`
leaves the concatenation to z as the only path for the label, as in Mirza & Osindero.

Discriminator: 4x4 stride-2 convolutions down to 7x7 (28x28 images) or 4x4 (32x32); phi(x) is the flattened last
feature map and psi a linear layer on it. The concat variant appends the label embedding, broadcast as `embed_dim`
constant maps, to the inputs of D's first and last convolutions. Without `spectral_norm` (the default) D has
BatchNorm in its hidden layers as DCGAN does; with it every weight of D, the projection's class embedding included,
is spectrally normalised (Miyato et al. 2018) and D has no BatchNorm.

Default recipe (fastest to reach 95 % class control on mnist-5k among those tried on a CPU): concat D with
BatchNorm, conditional BatchNorm in G, the non-saturating loss, Adam(2e-4, betas 0.5/0.999), an EMA of G, 3,500
steps of 64. Presets: `concat` (Mirza & Osindero: labels concatenated to z and D's inputs, plain BatchNorm in G)
and `projection` (Miyato & Koyama: projection D with spectral norm, conditional BatchNorm in G, hinge loss, two D
steps per G step and Adam betas (0, 0.9) as in their SNGAN setting; with one D step this small projection D let G
collapse to one image per class in our short runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ganzoo.errors import ConfigError, GanzooUsageError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, Preset, PretrainedCfg, Recipe
from ganzoo.layers import conv_plan, downsampling_blocks, normal_init_, stack_widths, upsampling_blocks

__all__ = ["CGANConfig", "CGANDiscriminator", "CGANGenerator", "ConditionalBatchNorm2d", "architecture"]


@dataclass(frozen=True)
class CGANConfig(ArchConfig):
    """cGAN hyperparameters. `num_classes` is filled in from the (labelled) dataset when training."""

    img_size: int = 28  # mnist-5k's own size; 32 is supported too
    z_dim: int = 100
    g_width: int = 64  # channels of G's last hidden layer; doubled at each coarser resolution
    d_width: int = 64  # channels of D's first layer; doubled at each downsampling
    embed_dim: int = 10  # label embedding concatenated to z (G) and, as maps, to the concat D's inputs
    discriminator: Literal["concat", "projection", "both"] = "concat"
    conditional_bn: bool = True  # class-conditional BatchNorm gains and biases in G
    spectral_norm: bool = False  # spectral normalisation of every D weight (else BatchNorm in D)
    bn_momentum: float = 0.1

    supported_sizes = (28, 32)

    def validate(self) -> None:
        super().validate()
        for name in ("g_width", "d_width", "embed_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.bn_momentum <= 1:
            raise ConfigError(f"bn_momentum must lie in (0, 1], got {self.bn_momentum}")


def _check_labels(labels: torch.Tensor | None, n: int, num_classes: int, who: str) -> torch.Tensor:
    """Labels must be given, one per image, and (checked where it costs no device sync) in range."""
    if labels is None:
        raise GanzooUsageError(f"the cgan {who} is conditional and needs class labels (one per image, "
                               f"0..{num_classes - 1}); pass labels=...")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise GanzooUsageError(f"the cgan {who} needs one label per image: got labels of shape "
                               f"{tuple(labels.shape)} for {n} images")
    # on an accelerator the check would wait for the device, and an embedding lookup asserts anyway; compiled,
    # it would split the graph in two (torch.compile cannot trace reading a tensor's value)
    if labels.device.type == "cpu" and labels.numel() and not torch.compiler.is_compiling():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise GanzooUsageError(f"label {bad} is out of range; classes are 0..{num_classes - 1}")
    return labels.long()


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine part, followed by a per-class gain and bias (de Vries et al. 2017)."""

    def __init__(self, channels: int, num_classes: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False, momentum=momentum)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class _Norm(nn.Module):
    """A BatchNorm that takes (and, when unconditional, ignores) the labels, so G's blocks look alike."""

    def __init__(self, channels: int, num_classes: int, conditional: bool, momentum: float) -> None:
        super().__init__()
        self.bn: nn.Module = (ConditionalBatchNorm2d(channels, num_classes, momentum) if conditional
                              else nn.BatchNorm2d(channels, momentum=momentum))
        self.conditional = conditional

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.bn(x, labels) if self.conditional else self.bn(x)


class CGANGenerator(Generator):
    """[z, embed(y)] -> linear to base x base -> (norm, ReLU, 2x transposed conv) per step -> tanh."""

    def __init__(self, cfg: CGANConfig) -> None:
        if cfg.num_classes < 1:
            raise ConfigError("cgan needs num_classes >= 1 (taken from the dataset when training)")
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size), cfg.num_classes)
        self.base, _ = conv_plan(cfg.img_size)
        top = stack_widths(cfg.g_width, cfg.img_size)[0]  # e.g. 128 for 28x28 (then 64)
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim)
        self.project = nn.Linear(cfg.z_dim + cfg.embed_dim, top * self.base * self.base, bias=False)
        self.norms, self.ups = upsampling_blocks(
            cfg.g_width, cfg.channels, cfg.img_size,
            lambda c: _Norm(c, cfg.num_classes, cfg.conditional_bn, cfg.bn_momentum), out_bias=True)
        normal_init_(self)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        y = _check_labels(labels, z.shape[0], self.num_classes, "generator")
        x = self.project(torch.cat([z, self.embed(y)], dim=1)).view(z.shape[0], -1, self.base, self.base)
        for norm, up in zip(self.norms, self.ups, strict=True):
            x = up(torch.relu(norm(x, y)))
        return torch.tanh(x)


class CGANDiscriminator(Discriminator):
    """Strided convolutions down to base x base, flattened to phi(x), then psi(phi(x)); label maps at the inputs
    (concat) and/or the projection term <embed(y), phi(x)> (projection)."""

    def __init__(self, cfg: CGANConfig) -> None:
        if cfg.num_classes < 1:
            raise ConfigError("cgan needs num_classes >= 1 (taken from the dataset when training)")
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size), cfg.num_classes)
        base, downs = conv_plan(cfg.img_size)
        self.kind = cfg.discriminator
        self.maps = self.kind in ("concat", "both")
        self.project = self.kind in ("projection", "both")
        extra = cfg.embed_dim if self.maps else 0  # label maps appended to the inputs of the first and last blocks
        norm = None if cfg.spectral_norm else (lambda c: nn.BatchNorm2d(c, momentum=cfg.bn_momentum))
        self.blocks = downsampling_blocks(cfg.channels, cfg.d_width, cfg.img_size, norm,
                                          extra_channels={0: extra, downs - 1: extra},
                                          spectral_norm=cfg.spectral_norm)
        features = stack_widths(cfg.d_width, cfg.img_size)[0] * base * base  # phi(x): the flattened last feature map
        self.psi = _spectral_norm(nn.Linear(features, 1)) if cfg.spectral_norm else nn.Linear(features, 1)
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim) if self.maps else None
        self.project_embed = nn.Embedding(cfg.num_classes, features) if self.project else None
        if not cfg.spectral_norm:
            normal_init_(self)
        if self.embed is not None:
            nn.init.xavier_uniform_(self.embed.weight)
        if self.project_embed is not None:
            nn.init.xavier_uniform_(self.project_embed.weight)
        if cfg.spectral_norm and self.project_embed is not None:
            self.project_embed = _spectral_norm(self.project_embed)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        y = _check_labels(labels, images.shape[0], self.num_classes, "discriminator")
        h = images
        maps = self.embed(y)[:, :, None, None] if self.embed is not None else None
        for i, block in enumerate(self.blocks):
            if maps is not None and i in (0, len(self.blocks) - 1):
                h = torch.cat([h, maps.expand(-1, -1, *h.shape[2:])], dim=1)
            h = block(h)
        phi = h.flatten(1)
        out = self.psi(phi).flatten()
        if self.project_embed is not None:
            out = out + (self.project_embed(y) * phi).sum(dim=1)
        return out


_CONCAT = {"discriminator": "concat", "conditional_bn": False, "spectral_norm": False}
_PROJECTION = {"discriminator": "projection", "conditional_bn": True, "spectral_norm": True}

architecture = Architecture(
    name="cgan",
    summary="Class-conditional GAN: label-conditioned G, concat or projection discriminator",
    paper="Mirza & Osindero 2014, arXiv:1411.1784; Miyato & Koyama 2018, arXiv:1802.05637",
    config_cls=CGANConfig,
    build_generator=CGANGenerator,
    build_discriminator=CGANDiscriminator,
    recipe=Recipe(steps=3500, batch_size=64, loss="non-saturating", optimizer="adam", g_lr=2e-4, d_lr=2e-4,
                  betas=(0.5, 0.999), ema_kimg=2.0, ema_rampup=0.05),
    presets={
        "projection": Preset(
            summary="Miyato & Koyama: projection D with spectral norm, conditional BatchNorm in G, hinge loss, "
                    "2 D steps per G step, Adam betas (0, 0.9)",
            config=_PROJECTION,
            recipe={"loss": "hinge", "d_steps": 2, "betas": (0.0, 0.9), "steps": 2000},
        ),
        "concat": Preset(
            summary="Mirza & Osindero: labels concatenated to z and to D's inputs, BatchNorm D, non-saturating loss",
            config=_CONCAT,
            recipe={"loss": "non-saturating"},
        ),
    },
    conditional=True,
    pretrained=(
        PretrainedCfg(name="cgan-mnist-5k", repo_id="ganzoo/cgan-mnist-5k", dataset="mnist-5k", resolution=28,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch cgan --data mnist-5k --steps 7000",
                      summary="the default recipe (concat D, conditional BatchNorm in G) for 7,000 steps on the "
                              "embedded digits (digits FD 1.13 at 3,000 steps, 0.77 at 6,000, 0.74 at 7,000)",
                      files='pretrained/cgan-mnist-5k',
                      sha256={
                          'config.json': '16c8e86acc9d85be54c5b64b0d7594407853b45849d6248ae3dfa87cdec37b95',
                          'generator.safetensors': 'a67124bc383f5b3e5734de9ec2ab74a2e2f2b981bb7cd3b7bebd54250ffc6808',
                          'discriminator.safetensors':
                              '58df3bea1c71c3b3e350efffdda82c8d5b2fb191a329ce8d77e223b531745fb9',
                      },
                      metrics={
                          'fid': 0.737,
                          'kid': -0.0011,
                          'kid_std': 0.0017,
                          'is': 9.6162,
                          'is_std': 0.1138,
                          'precision': 0.797,
                          'recall': 0.759,
                      }),
        PretrainedCfg(name="cgan-twemoji-32", repo_id="ganzoo/cgan-twemoji-32", dataset="twemoji", resolution=32,
                      license="cc-by-4.0",
                      recipe="ganzoo train --arch cgan --data twemoji --img-size 32 --steps 4000 "
                             "--set augment=xflip,translation,color,cutout --set ada_target=0.05 --set ada_kimg=100",
                      summary="category-conditional (the nine Unicode emoji groups) on Twemoji's 1,560 train emoji "
                              "in colour, with adaptive augmentation, 4,000 steps (its best colour FD along 7,000), "
                              "26 CPU minutes",
                      files='pretrained/cgan-twemoji-32',
                      sha256={
                          'config.json': '61979208150fa2f5419edae7e9c8e8a67af4f52a0396433f03c340621e3764a1',
                          'generator.safetensors': '5dd2d85675ccefa00c0d100e533b6a86ee069e53cab0dd8baaf055e0f3263657',
                          'discriminator.safetensors':
                              'dd4776a25d0aa1807cad8cf99e229480f94266ca678ee94ebf16c0e315226ba0',
                      },
                      metrics={
                          'fid': 4.3923,
                          'kid': 0.0374,
                          'kid_std': 0.0099,
                          'is': 2.6692,
                          'is_std': 0.0912,
                          'precision': 0.8615,
                          'recall': 0.6805,
                      }),
    ),
    test_config={"img_size": 28, "z_dim": 16, "g_width": 8, "d_width": 8, "embed_dim": 4, "num_classes": 10},
)

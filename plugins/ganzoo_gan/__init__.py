"""GAN: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661).

Multilayer perceptrons on flattened images: G maps noise through ReLU layers to tanh pixels, D maps pixels
through LeakyReLU layers (the paper used maxout; LeakyReLU is the common modern stand-in) with dropout to one
logit. Trained with the paper's non-saturating generator objective by default; `loss="minimax"` gives the
objective exactly as stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, PretrainedCfg, Recipe

__all__ = ["GANConfig", "MLPDiscriminator", "MLPGenerator", "architecture"]


@dataclass(frozen=True)
class GANConfig(ArchConfig):
    """MLP widths: G grows through `g_hidden`, D shrinks through `d_hidden`."""

    img_size: int = 28
    z_dim: int = 100
    g_hidden: tuple[int, ...] = (256, 512, 1024)
    d_hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.3

    def validate(self) -> None:
        super().validate()
        if not self.g_hidden or not self.d_hidden or min(self.g_hidden + self.d_hidden) < 1:
            raise ConfigError("g_hidden and d_hidden need at least one positive width each")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")


class MLPGenerator(Generator):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        layers: list[nn.Module] = []
        width = cfg.z_dim
        for hidden in cfg.g_hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True)]
            width = hidden
        layers += [nn.Linear(width, cfg.channels * cfg.img_size * cfg.img_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, *self.img_shape)


class MLPDiscriminator(Discriminator):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        layers: list[nn.Module] = []
        width = cfg.channels * cfg.img_size * cfg.img_size
        for hidden in cfg.d_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2, True), nn.Dropout(cfg.dropout)]
            width = hidden
        layers += [nn.Linear(width, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images.flatten(1)).flatten()


architecture = Architecture(
    name="gan",
    summary="The original GAN: multilayer perceptrons on flattened images",
    paper="Goodfellow et al. 2014, arXiv:1406.2661",
    config_cls=GANConfig,
    build_generator=MLPGenerator,
    build_discriminator=MLPDiscriminator,
    recipe=Recipe(steps=3000, batch_size=64, loss="non-saturating", optimizer="adam", g_lr=2e-4, d_lr=2e-4,
                  betas=(0.5, 0.999), ema_kimg=2.0, ema_rampup=0.05),
    test_config={"img_size": 28, "z_dim": 16, "g_hidden": [32, 64], "d_hidden": [32]},
    pretrained=(
        PretrainedCfg(name="gan-mnist-5k", repo_id="ganzoo/gan-mnist-5k", dataset="mnist-5k", resolution=28,
                      license="cc-by-sa-3.0", recipe="ganzoo train --arch gan --data mnist-5k --steps 24000",
                      summary="the default recipe for 24,000 steps on the embedded digits (digits FD 2.96 at 12,000 "
                              "steps, 2.07 at 21,000 and at 24,000)",
                      files='pretrained/gan-mnist-5k',
                      sha256={
                          'config.json': '64c75c87e229db8e5887dbb724370eed5d38cd1a2e60de92e10a78eed3322cf2',
                          'generator.safetensors': 'c7f8217282a5b281fd564444e6ecb696afff621de0842ee967479b48bf1fe5d3',
                          # no discriminator: at 2.6 MB the MLP's D did not fit the 25 MB the zoo may ship with the
                          # eight entries' files (fine-tuning from this entry starts D fresh, and says so)
                      },
                      metrics={
                          'fid': 2.0674,
                          'kid': 0.0583,
                          'kid_std': 0.0074,
                          'is': 8.3173,
                          'is_std': 0.1941,
                          'precision': 0.6895,
                          'recall': 0.808,
                      }),
    ),
)

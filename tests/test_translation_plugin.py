"""A third party's translation plugin, written from docs/plugins.md alone: a `Translator` with a noise input, its own
objective registered under `ganzoo.objectives`, found and checked by the test kit like the built-in pix2pix."""

from __future__ import annotations

import json

import pytest
import torch
from test_registry import install

import ganzoo
from ganzoo.errors import GanzooUsageError, UnknownNameError
from ganzoo.testing import check_architecture, check_resume, paired_digits, tiny_train

PLUGIN = '''
from dataclasses import dataclass

import torch
from torch import nn

from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Recipe, Translator
from ganzoo.objectives import PairedObjective


@dataclass(frozen=True)
class Cfg(ArchConfig):
    img_size: int = 8
    channels: int = 3
    z_dim: int = 2
    width: int = 8


class NoisyTranslator(Translator):
    def __init__(self, cfg):
        super().__init__(cfg.channels, (cfg.channels, cfg.img_size, cfg.img_size), z_dim=cfg.z_dim,
                         size_multiple=2)
        self.net = nn.Sequential(nn.Conv2d(cfg.channels + cfg.z_dim, cfg.width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(cfg.width, cfg.channels, 3, padding=1), nn.Tanh())

    def forward(self, images, z=None):
        if z is None:
            z = images.new_zeros(images.shape[0], self.z_dim)
        maps = z[:, :, None, None].expand(-1, -1, *images.shape[2:]).to(images.dtype)
        return self.net(torch.cat([images, maps], dim=1))


class PairD(Discriminator):
    def __init__(self, cfg):
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        self.net = nn.Sequential(nn.Conv2d(2 * cfg.channels, 4, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))

    def forward(self, images, labels=None):
        return self.net(torch.cat([labels, images], dim=1)).flatten()


class SquaredPaired(PairedObjective):
    """The paired objective with a squared distance instead of L1 (reported as `l2`)."""

    name = "paired-l2"

    def __init__(self, loss, *, l2_weight=10.0, adversarial=True):
        super().__init__(loss, l1_weight=0.0, adversarial=adversarial)
        self.l2_weight = float(l2_weight)

    def g_phase(self, D, G, real, fake, cond, step):
        loss, stats = super().g_phase(D, G, real, fake, cond, step)
        l2 = (fake.float() - real.float()).square().mean()
        total = loss + self.l2_weight * l2
        return total, {**stats, "l2": l2.detach(), "g_loss": total.detach()}


architecture = Architecture(
    name="noisy-translator", summary="a third-party translation test architecture", paper="none", config_cls=Cfg,
    build_generator=NoisyTranslator, build_discriminator=PairD,
    recipe=Recipe(steps=4, batch_size=8, objective="paired-l2", objective_options={"l2_weight": 10.0}),
    task="translate", test_config={"width": 4},
)
'''


@pytest.fixture
def plugin(fake_site):
    install(fake_site, "ganzoo-noisy", "0.1", {"noisy-translator": "noisy_mod:architecture"},
            {"noisy_mod": PLUGIN})
    info = next(fake_site.glob("ganzoo_noisy-*.dist-info"))
    with open(info / "entry_points.txt", "a") as fh:
        fh.write("[ganzoo.objectives]\npaired-l2 = noisy_mod:SquaredPaired\n")
    return "noisy-translator"


def test_a_third_party_translation_plugin_passes_the_test_kit(plugin, tmp_path):
    assert plugin in ganzoo.list_models()
    check_architecture(plugin, tmp_path / "arch")
    check_resume(plugin, tmp_path / "resume", steps=4)
    records = [json.loads(line) for line in (tmp_path / "arch" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("l2" in r and r["l2"] > 0 for r in records)  # its own objective ran


def test_noise_is_drawn_from_the_seed_when_translating(plugin, tmp_path):
    model = tiny_train(plugin, tmp_path / "run", steps=1)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.equal(model.translate(x, seed=1), model.translate(x, seed=1))
    assert not torch.equal(model.translate(x, seed=1), model.translate(x, seed=2))
    assert model.translate(torch.zeros(1, 3, 6, 10)).shape == (1, 3, 6, 10)  # multiples of 2, any shape
    with pytest.raises(GanzooUsageError, match="multiples of 2"):
        model.translate(torch.zeros(1, 3, 7, 8))


def test_an_unknown_objective_names_the_known_ones(plugin, tmp_path):
    data = paired_digits(tmp_path / "pairs", count=16)
    with pytest.raises(UnknownNameError, match="paired-l2"):
        ganzoo.train(plugin, data=data, steps=1, out=tmp_path / "x", recipe={"objective": "paired-l3"})

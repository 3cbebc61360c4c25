"""WGAN: both presets train, weight clipping holds, the GP critic has no BatchNorm, the penalty is right."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.losses import build_loss, gradient_penalty
from ganzoo.registry import get_architecture
from ganzoo.testing import tiny_config, tiny_train


def test_presets_and_default_recipe_follow_the_papers():
    arch = get_architecture("wgan")
    clip, gp = arch.make_recipe("clip"), arch.make_recipe("gp")
    assert (clip.loss, clip.clip_value, clip.gp_weight, clip.optimizer, clip.d_lr, clip.d_steps) == (
        "wasserstein", 0.01, 0.0, "rmsprop", 5e-5, 5)
    assert (gp.loss, gp.gp_weight, gp.clip_value, gp.optimizer, gp.d_lr, gp.betas, gp.d_steps) == (
        "wasserstein", 10.0, 0.0, "adam", 1e-4, (0.0, 0.9), 5)
    assert arch.recipe.gp_weight == 10.0 and arch.make_config().critic_norm != "batch"


def test_critic_has_no_sigmoid_and_returns_unbounded_scores():
    gan = ganzoo.create("wgan", seed=0, **tiny_config("wgan"))
    assert not any(isinstance(m, nn.Sigmoid) for m in gan.discriminator.modules())
    scores = gan.discriminator(torch.randn(4, 1, 28, 28) * 100)
    assert scores.shape == (4,)


@pytest.mark.parametrize("size", [16, 28, 32, 64])
def test_sizes(size):
    gan = ganzoo.create("wgan", img_size=size, g_width=4, d_width=4, z_dim=8)
    images = gan.sample(2, seed=0)
    assert images.shape == (2, 1, size, size)
    assert gan.discriminator(images).shape == (2,)


def test_clip_preset_trains_and_keeps_every_critic_weight_clipped(tmp_path):
    gan = tiny_train("wgan", tmp_path / "clip", steps=3, preset="clip")
    assert any(isinstance(m, nn.BatchNorm2d) for m in gan.discriminator.modules())  # the 2017 paper's critic
    for name, p in gan.discriminator.named_parameters():
        assert p.abs().max() <= 0.01, f"{name} exceeds the clip value"
    assert torch.isfinite(gan.sample(4, seed=0)).all()


def test_gp_preset_trains_with_a_critic_without_batchnorm_and_logs_the_wasserstein_estimate(tmp_path):
    run = tmp_path / "gp"
    gan = tiny_train("wgan", run, steps=3, preset="gp", log_every=1)
    assert gan.config.critic_norm == "layer"
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gan.discriminator.modules())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    for record in records:
        assert {"wasserstein", "gradient_penalty", "d_real", "d_fake"} <= set(record)
        assert record["wasserstein"] == pytest.approx(record["d_real"] - record["d_fake"], abs=1e-4)


def test_gradient_penalty_with_a_batchnorm_critic_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="critic_norm 'batch' cannot be combined with a gradient penalty"):
        tiny_train("wgan", tmp_path / "bad", steps=1, preset="gp", config={"critic_norm": "batch"})
    with pytest.raises(ConfigError, match=r"gradient penalty \(gp_weight, r1_gamma or r2_gamma > 0\)"):
        tiny_train("wgan", tmp_path / "bad-r2", steps=1, preset="clip", config={"critic_norm": "batch"},
                   recipe={"r2_gamma": 1.0})
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad-r2").exists()  # refused before a run folder
    # clipping with BatchNorm (the original WGAN) is fine, and so is a GP with no normalisation
    tiny_train("wgan", tmp_path / "none", steps=1, config={"critic_norm": "none"})


def test_unknown_critic_norm_is_a_config_error():
    with pytest.raises(ConfigError, match="critic_norm must be one of 'batch', 'layer', 'none'"):
        ganzoo.create("wgan", critic_norm="instance")


def half_square(x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """A critic D(x) = ||x||^2 / 2 per sample, whose input gradient is x itself."""
    return x.flatten(1).square().sum(dim=1) / 2


def test_gradient_penalty_by_hand_when_real_equals_fake():
    # real == fake: every interpolate is x whatever eps is drawn, and grad D(x) = x
    x = torch.tensor([[3.0, 4.0], [0.0, 0.5], [1.0, 0.0]])  # norms 5, 0.5, 1
    expected = ((5 - 1) ** 2 + (0.5 - 1) ** 2 + (1 - 1) ** 2) / 3
    assert gradient_penalty(half_square, x, x.clone()).item() == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_by_hand_with_fixed_interpolation_weights(monkeypatch):
    real = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 6.0, 8.0]]).view(2, 1, 2, 2)
    fake = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).view(2, 1, 2, 2)
    eps = torch.tensor([0.25, 0.5]).view(2, 1, 1, 1)
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: eps.clone())
    # x_hat = fake + eps (real - fake): (0.5, 0, 0, 0) and (0, 0, 3, 4); grad = x_hat, norms 0.5 and 5
    expected = ((0.5 - 1) ** 2 + (5 - 1) ** 2) / 2
    assert gradient_penalty(half_square, real, fake).item() == pytest.approx(expected, rel=1e-6)
    # ... and it enters the critic's loss weighted by gp_weight, next to -(E D(real) - E D(fake))
    loss, stats = build_loss("wasserstein", gp_weight=10.0).d_loss(half_square, real, fake)
    d_real = (2.0**2 / 2 + (36 + 64) / 2) / 2
    assert stats["wasserstein"].item() == pytest.approx(d_real - 0.0)
    assert loss.item() == pytest.approx(-d_real + 10 * expected, rel=1e-6)

"""Each loss against values computed by hand on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.losses import build_loss, gradient_penalty, list_losses, r1_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sp(x: float) -> float:  # softplus
    return math.log1p(math.exp(x))


def d_from_logits(real_logits, fake_logits):
    """A 'discriminator' that returns fixed logits: real batches are zeros, fake batches ones."""

    def D(images, labels=None):
        return real_logits if images.flatten()[0] == 0 else fake_logits

    return D


def run_d(loss, real_logits, fake_logits):
    value, stats = loss.d_loss(d_from_logits(real_logits, fake_logits), torch.zeros(2, 1), torch.ones(2, 1))
    return value.item(), stats


def run_g(loss, fake_logits):
    value, _ = loss.g_loss(d_from_logits(None, fake_logits), torch.ones(2, 1))
    return value.item()


def test_zoo_names():
    assert set(list_losses()) >= {"minimax", "non-saturating", "hinge", "wasserstein", "least-squares"}
    with pytest.raises(UnknownNameError, match="did you mean 'hinge'"):
        build_loss("hinge2")


def test_minimax_is_the_papers_value_function():
    # D minimises -[log D(x) + log(1 - D(G(z)))]; G minimises log(1 - D(G(z))).
    loss = build_loss("minimax")
    d_value, _ = run_d(loss, REAL, FAKE)
    expected_d = (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2
    assert d_value == pytest.approx(expected_d, rel=1e-6)
    assert run_g(loss, FAKE) == pytest.approx(-(sp(0.5) + sp(-3)) / 2, rel=1e-6)


def test_non_saturating_generator_maximises_log_d():
    loss = build_loss("non-saturating")
    assert run_g(loss, FAKE) == pytest.approx((sp(-0.5) + sp(3)) / 2, rel=1e-6)


def test_one_sided_label_smoothing():
    loss = build_loss("non-saturating", label_smoothing=0.1)
    d_value, _ = run_d(loss, REAL, FAKE)
    # BCE with target t: t * softplus(-l) + (1 - t) * softplus(l); fake targets stay 0
    real_part = sum(0.9 * sp(-v) + 0.1 * sp(v) for v in (2.0, -1.0)) / 2
    assert d_value == pytest.approx(real_part + (sp(0.5) + sp(-3)) / 2, rel=1e-6)


def test_label_noise_draws_targets_from_the_seed_ranges():
    loss = build_loss("non-saturating", label_noise=True)
    logits = torch.zeros(10_000)
    real_t, fake_t = loss._targets(logits, True), loss._targets(logits, False)
    assert 0.7 <= real_t.min() and real_t.max() <= 1.2 and real_t.mean() == pytest.approx(0.95, abs=0.01)
    assert 0.0 <= fake_t.min() and fake_t.max() <= 0.3 and fake_t.mean() == pytest.approx(0.15, abs=0.01)


def test_hinge():
    loss = build_loss("hinge")
    d_value, _ = run_d(loss, REAL, FAKE)
    assert d_value == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert run_g(loss, FAKE) == pytest.approx(1.25)


def test_wasserstein_logs_its_estimate():
    loss = build_loss("wasserstein")
    d_value, stats = run_d(loss, REAL, FAKE)
    assert d_value == pytest.approx(-(0.5 - (-1.25)))
    assert stats["wasserstein"].item() == pytest.approx(1.75)
    assert run_g(loss, FAKE) == pytest.approx(1.25)


def test_least_squares():
    loss = build_loss("least-squares")
    d_value, _ = run_d(loss, REAL, FAKE)
    assert d_value == pytest.approx(0.5 * ((1 + 4) / 2 + (0.25 + 9) / 2))
    assert run_g(loss, FAKE) == pytest.approx(0.5 * (0.25 + 16) / 2)


class Linear(nn.Module):
    """D(x) = w . x: its input gradient is w everywhere, so the penalties have closed forms."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x, labels=None):
        return (x.flatten(1) * self.w).sum(1)


def test_gradient_penalty_matches_the_closed_form():
    D = Linear([3.0, 4.0])  # ||w|| = 5 -> (5 - 1)^2 = 16 at every interpolate
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(D, real, fake).item() == pytest.approx(16.0)
    loss = build_loss("wasserstein", gp_weight=10.0)
    value, stats = loss.d_loss(D, real, fake)
    expected = -(D(real).mean() - D(fake).mean()).item() + 10 * 16
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert stats["gradient_penalty"].item() == pytest.approx(16.0)
    value.backward()  # the penalty is differentiable with respect to D's weights
    assert D.w.grad is not None


def test_r1_penalty_and_its_lazy_interval():
    D = Linear([1.0, 2.0])  # ||w||^2 = 5
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    assert r1_penalty(D, real).item() == pytest.approx(5.0)
    loss = build_loss("non-saturating", r1_gamma=2.0, r1_interval=4)
    base, _ = build_loss("non-saturating").d_loss(D, real, fake)
    on, stats = loss.d_loss(D, real, fake, step=8)
    off, _ = loss.d_loss(D, real, fake, step=9)
    assert on.item() == pytest.approx(base.item() + 2.0 / 2 * 4 * 5.0, rel=1e-5)
    assert off.item() == pytest.approx(base.item(), rel=1e-6)
    assert "r1_penalty" in stats


def test_weight_clipping_and_drift():
    D = Linear([0.5, -0.2])
    build_loss("wasserstein", clip_value=0.01).after_d_step(D)
    assert D.w.abs().max().item() == pytest.approx(0.01)
    real, fake = torch.ones(2, 2), torch.zeros(2, 2)
    plain, _ = build_loss("wasserstein").d_loss(D, real, fake)
    drifted, _ = build_loss("wasserstein", drift=0.001).d_loss(D, real, fake)
    assert drifted.item() == pytest.approx(plain.item() + 0.001 * D(real).square().mean().item(), rel=1e-6)


def test_options_a_loss_does_not_take_are_errors():
    with pytest.raises(ConfigError, match="hinge"):
        build_loss("hinge", label_smoothing=0.1)

"""Each loss against values computed by hand on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.augment import augment
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.losses import _LOSSES, build_loss, gradient_penalty, list_losses, r1_penalty

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


class Curved(nn.Module):
    """A small convolutional D whose input gradient changes from image to image (unlike `Linear`'s), so R1 at the
    reals and R2 at the fakes differ. Counts its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Linear(4 * 6 * 6, 1)
        self.calls = 0

    def forward(self, x, labels=None):
        self.calls += 1
        return self.out(F.softplus(self.conv(x) * 2).flatten(1)).flatten()


def two_pass_d_loss(loss, D, real, fake, step):
    """D's loss as ganzoo computed it before R1 and R2 shared the adversarial forward pass: the logits, then one
    more forward pass and input gradient per penalty."""
    value, _ = loss.d_adversarial(D(real), D(fake))
    penalties = {}
    if step % loss.r1_interval == 0:
        for name, gamma, images in (("r1_penalty", loss.r1_gamma, real), ("r2_penalty", loss.r2_gamma, fake)):
            if gamma > 0:
                x = images.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
                penalties[name] = grad.flatten(1).square().sum(1).mean()
                value = value + gamma / 2 * loss.r1_interval * penalties[name]
    return value, penalties


def grads_of(value, D):
    D.zero_grad()
    value.backward()
    return [p.grad.clone() for p in D.parameters()]


@pytest.mark.parametrize("step", [0, 1, 6])  # due, not due, due again (r1_interval 3)
@pytest.mark.parametrize("name", sorted(_LOSSES))
def test_r1_and_r2_from_the_adversarial_forward_pass_equal_the_two_pass_penalties(name, step):
    D = Curved()
    real, fake = torch.randn(5, 1, 6, 6), torch.randn(5, 1, 6, 6) * 2
    loss = build_loss(name, r1_gamma=0.7, r2_gamma=0.3, r1_interval=3)
    value, stats = loss.d_loss(D, real, fake, step=step)
    assert D.calls == 2  # one forward pass per batch, penalty or not
    expected, penalties = two_pass_d_loss(loss, D, real, fake, step)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    for key in ("r1_penalty", "r2_penalty"):
        assert (key in stats) == (step % 3 == 0)
        if key in stats:
            assert stats[key].item() == pytest.approx(penalties[key].item(), rel=1e-6)
    if penalties:
        assert abs(penalties["r1_penalty"] - penalties["r2_penalty"]) > 0.05 * penalties["r1_penalty"]
    for got, want in zip(grads_of(value, D), grads_of(expected, D), strict=True):  # the same gradient for D
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-7)


def test_the_penalties_differentiate_through_what_d_does_to_its_input():
    """A D that augments its input (as the trainer's does) is penalised at the images the loss was given, through
    the augmentation, as the two-pass penalties were; R1 and R2 now see the augmentation their logits saw."""
    net = Curved()

    def D(x, labels=None):
        return net(augment(x, ["translation", "cutout", "color"]))

    real, fake = torch.randn(5, 1, 6, 6), torch.randn(5, 1, 6, 6) * 2
    loss = build_loss("relativistic", r1_gamma=0.5, r2_gamma=0.5)
    torch.manual_seed(3)
    value, stats = loss.d_loss(D, real, fake)
    # by hand, with the same augmentation draws: the reals' first, then the fakes'
    torch.manual_seed(3)
    seen = []

    def differentiate(images):
        x = images.detach().requires_grad_(True)
        a = augment(x, ["translation", "cutout", "color"])
        logits = net(a)
        (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        seen.append(torch.autograd.grad(logits.sum(), a, retain_graph=True)[0])
        return logits, grad.flatten(1).square().sum(1).mean()

    (real_logits, r1), (fake_logits, r2) = differentiate(real), differentiate(fake)
    expected = F.softplus(fake_logits - real_logits).mean() + 0.25 * (r1 + r2)
    assert stats["r1_penalty"].item() == pytest.approx(r1.item(), rel=1e-6)
    assert stats["r2_penalty"].item() == pytest.approx(r2.item(), rel=1e-6)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    # the gradient at the augmented images is another quantity: cutout zeroes a part of it
    at_augmented = seen[0].flatten(1).square().sum(1).mean().item()
    assert abs(at_augmented - r1.item()) > 0.05 * r1.item()


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

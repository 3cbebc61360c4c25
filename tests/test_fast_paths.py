"""`ganzoo.testing.check_fast_paths` fails when the trainer ignores `channels_last`, `amp` or `compile`.

With the option dropped, a run logs what the default run logs, so the comparison of logged values alone would
pass; the check's proof that the option took effect must not. That it passes when the options work is tested for
every architecture in tests/test_architectures.py.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from ganzoo.augment import augment
from ganzoo.losses import build_loss
from ganzoo.testing import COMPILED_REGION, FAST_PATHS, check_fast_paths
from ganzoo.trainer.loop import Trainer, _LossD


@pytest.mark.parametrize("option", sorted(FAST_PATHS))
@pytest.mark.parametrize("arch", ["gan", "dcgan"])  # a multilayer perceptron, convolutions with BatchNorm
def test_check_fast_paths_fails_when_the_trainer_ignores_the_option(tmp_path, monkeypatch, arch, option):
    original = Trainer.__init__
    signature = inspect.signature(original)
    dropped = []

    def ignoring(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        options = bound.arguments["options"]
        dropped.append(getattr(options, option))
        bound.arguments["options"] = options.replace(**{option: False})
        original(*bound.args, **bound.kwargs)

    monkeypatch.setattr(Trainer, "__init__", ignoring)
    with pytest.raises(AssertionError, match=f"^{option} did not take effect: "):
        check_fast_paths(arch, tmp_path, options=(option,))
    assert dropped == [False, True, True]  # the default run; the option's run and the trainer built from its plan


def test_check_fast_paths_fails_when_the_penalties_skip_the_compiled_d(tmp_path, monkeypatch):
    """G and D compiled, the penalties' passes through D left eager (as before they shared the compiled D): the
    check must see it. wgan's recipe has a gradient penalty."""
    original = _LossD.__init__

    def eager_penalties(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._compiled_grad = None

    monkeypatch.setattr(_LossD, "__init__", eager_penalties)
    with pytest.raises(AssertionError, match="^compile did not take effect: the loss's penalties ran no compiled"):
        check_fast_paths("wgan", tmp_path, options=("compile",))


class BatchNormD(torch.nn.Module):
    """A small D with BatchNorm, whose forward pass updates buffers, and an input gradient that varies."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)
        self.out = torch.nn.Linear(4 * 8 * 8, 1)

    def forward(self, x, labels=None):
        return self.out(F.softplus(self.norm(self.conv(x)) * 2).flatten(1)).flatten()


def test_compiled_penalties_equal_eager_ones_through_the_augmentation():
    """The trainer's D under --compile (its penalty path a compiled function of D's logits and input gradient) gives
    the loss what the eager D gives: logits, penalties, D's gradients and BatchNorm's running statistics, with the
    gradient taken at the images before the augmentation and instance noise, through them."""
    torch.manual_seed(0)
    nets = [BatchNormD(), None]
    nets[1] = copy.deepcopy(nets[0])

    def d_input(x):
        x = augment(x, ["translation", "cutout", "color"])
        return x + 0.1 * torch.randn_like(x)

    compiled = {"options": {"fallback_random": True}}
    eager = _LossD(nets[0], nets[0], d_input, None)
    fast = _LossD(nets[1], torch.compile(nets[1], **compiled), d_input, compiled)
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8) * 2
    loss = build_loss("relativistic", r1_gamma=0.5, r2_gamma=0.3, gp_weight=0.2)
    results = []
    for d, net in ((eager, nets[0]), (fast, nets[1])):
        torch.manual_seed(1)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            value, stats = loss.d_loss(d, real, fake)
        net.zero_grad()
        value.backward()
        compiled_regions = sum(e.name.startswith(COMPILED_REGION) for e in prof.events())
        results.append((stats, [p.grad for p in net.parameters()], dict(net.named_buffers()), compiled_regions))
    (stats, grads, buffers, regions), (fast_stats, fast_grads, fast_buffers, fast_regions) = results
    assert regions == 0 and fast_regions == 3  # R1's, R2's and the gradient penalty's passes, compiled
    assert stats.keys() == fast_stats.keys() >= {"r1_penalty", "r2_penalty", "gradient_penalty"}
    for key, value in stats.items():
        assert fast_stats[key].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-6), key
    for ours, theirs in zip(grads, fast_grads, strict=True):
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    for key, value in buffers.items():
        assert torch.allclose(value.float(), fast_buffers[key].float(), rtol=1e-5, atol=1e-6), key

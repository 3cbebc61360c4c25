"""The interfaces post-2019 GANs need: relativistic losses, R2, loss options from the recipe, step-derived schedules,
per-network betas, augmentation with a probability and ADA, and an architecture's own check of config and recipe."""

from __future__ import annotations

import json
import math

import pytest
import torch

import ganzoo
from ganzoo.augment import Augment, augment
from ganzoo.errors import ConfigError
from ganzoo.interfaces import Recipe, Schedule, TrainingContext
from ganzoo.losses import _LOSSES, GANLoss, NonSaturatingLoss, build_loss, loss_from_recipe, loss_options
from ganzoo.testing import assert_same_state, tiny_train
from ganzoo.trainer.ada import AdaptiveAugment

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([0.5, -3.0, 1.0])


def sp(x: float) -> float:  # softplus, by hand
    return math.log1p(math.exp(x))


def fixed_d(real_logits, fake_logits):
    """A 'discriminator' returning fixed logits: for zeros (the real batch) and ones (the fake batch)."""

    def D(images, labels=None):
        return real_logits if images.flatten()[0] == 0 else fake_logits

    return D


def d_and_g(name, real_logits=REAL, fake_logits=FAKE, **options):
    loss = build_loss(name, **options)
    D = fixed_d(real_logits, fake_logits)
    d_value, stats = loss.d_loss(D, torch.zeros(3, 1), torch.ones(3, 1))
    g_value, _ = loss.g_loss(D, torch.ones(3, 1), real=torch.zeros(3, 1))
    return d_value.item(), g_value.item(), stats


# ---------------------------------------------------------------------------------------------------------------------
# losses


def test_relativistic_pairing_loss_by_hand():
    d_value, g_value, _ = d_and_g("relativistic")
    r, f = REAL.tolist(), FAKE.tolist()
    assert d_value == pytest.approx(sum(sp(-(a - b)) for a, b in zip(r, f, strict=True)) / 3, rel=1e-6)
    assert g_value == pytest.approx(sum(sp(-(b - a)) for a, b in zip(r, f, strict=True)) / 3, rel=1e-6)


def test_relativistic_average_loss_by_hand():
    d_value, g_value, _ = d_and_g("relativistic-average")
    r, f = REAL.tolist(), FAKE.tolist()
    mr, mf = sum(r) / 3, sum(f) / 3
    expected_d = sum(sp(-(a - mf)) for a in r) / 3 + sum(sp(b - mr) for b in f) / 3
    expected_g = sum(sp(-(b - mr)) for b in f) / 3 + sum(sp(a - mf) for a in r) / 3
    assert d_value == pytest.approx(expected_d, rel=1e-6)
    assert g_value == pytest.approx(expected_g, rel=1e-6)


@pytest.mark.parametrize("name", ["relativistic", "relativistic-average"])
def test_relativistic_losses_need_the_real_batch_in_gs_phase(name):
    loss = build_loss(name)
    assert loss.uses_real_in_g
    with pytest.raises(ConfigError, match="needs the real batch"):
        loss.g_loss(fixed_d(REAL, FAKE), torch.ones(3, 1))


def test_relativistic_g_gradient_reaches_g_through_the_fakes_only():
    w = torch.tensor([1.5, -0.5])
    fake = torch.randn(4, 2, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    real = torch.randn(4, 2, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    loss, _ = build_loss("relativistic").g_loss(lambda x, labels=None: x @ w, fake, real=real)
    loss.backward()
    assert real.grad is None  # the real batch is detached: G's loss moves G, not the data
    # d/dfake_i of mean softplus(r_i - f_i) = -sigmoid(r_i - f_i) / n * w
    expected = -torch.sigmoid((real @ w - fake @ w).detach()).unsqueeze(1) / 4 * w
    assert torch.allclose(fake.grad, expected, atol=1e-6)


def test_r1_and_r2_penalise_ds_gradient_at_the_reals_and_at_the_fakes_by_hand():
    """D(x) = ||x||^2 / 2 has the gradient x, so ||grad D||^2 = ||x||^2 differs between the batches: 1 at the reals
    below, (4 + 9) / 2 = 6.5 at the fakes. An R2 computed at the reals, or not at all, gives other numbers."""

    def D(x, labels=None):
        return 0.5 * x.square().sum(1)

    real = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    fake = torch.tensor([[2.0, 0.0], [0.0, -3.0]])
    plain, _ = build_loss("hinge").d_loss(D, real, fake)
    # hinge by hand: D(real) = (0.5, 0.5), D(fake) = (2, 4.5): mean relu(1 - 0.5) + mean relu(1 + D(fake))
    assert plain.item() == pytest.approx(0.5 + (3.0 + 5.5) / 2)
    value, stats = build_loss("hinge", r2_gamma=0.1, r1_interval=4).d_loss(D, real, fake, step=8)
    assert stats["r2_penalty"].item() == pytest.approx(6.5) and "r1_penalty" not in stats
    assert (value - plain).item() == pytest.approx(0.1 / 2 * 4 * 6.5)  # gamma / 2 * interval * E||grad||^2
    _, off_step = build_loss("hinge", r2_gamma=0.1, r1_interval=4).d_loss(D, real, fake, step=9)
    assert "r2_penalty" not in off_step
    value, stats = build_loss("hinge", r1_gamma=0.2).d_loss(D, real, fake)
    assert stats["r1_penalty"].item() == pytest.approx(1.0) and "r2_penalty" not in stats
    assert (value - plain).item() == pytest.approx(0.2 / 2 * 1.0)
    value, stats = build_loss("hinge", r1_gamma=0.2, r2_gamma=0.1).d_loss(D, real, fake)
    assert stats["r1_penalty"].item() == pytest.approx(1.0) and stats["r2_penalty"].item() == pytest.approx(6.5)
    assert (value - plain).item() == pytest.approx(0.2 / 2 * 1.0 + 0.1 / 2 * 6.5)


@pytest.mark.parametrize("name, threshold", [("non-saturating", 0.0), ("minimax", 0.0), ("hinge", 0.0),
                                             ("least-squares", 0.5)])
def test_a_loss_with_a_decision_threshold_reports_the_sign_of_ds_real_outputs_around_it(name, threshold):
    _, _, stats = d_and_g(name)
    expected = (REAL - threshold).sign().mean().item()  # (2, -1, 0.5): 1/3 around 0, 0 around 0.5 (one is on it)
    assert build_loss(name).decision_threshold == threshold
    assert stats["overfit_signal"].item() == pytest.approx(expected)
    _, _, shifted = d_and_g(name, REAL + 10, FAKE + 10)  # a fixed threshold: every real is now judged real
    assert shifted["overfit_signal"].item() == 1.0


SEPARATED_REAL, SEPARATED_FAKE = torch.tensor([5.0, 6.0, 7.0, 8.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("name", ["relativistic", "relativistic-average", "wasserstein"])
def test_a_shift_invariant_loss_reports_a_signal_that_a_constant_offset_of_d_does_not_change(name):
    """Relativistic and Wasserstein losses do not change when D adds a constant to every output, so D's offset
    drifts freely: the overfitting signal must not see it (E[sign D(real)] would follow it from -1 to 1), and reads
    how often D ranks a real above a fake."""
    assert build_loss(name).decision_threshold is None
    # every real against every fake: 2 beats all three fakes (+3), -1 beats one and loses to two (-1), 0.5 ties one,
    # beats one and loses to one (0): 2 / 9
    for offset in (-100.0, 0.0, 3.0, 100.0):
        _, _, stats = d_and_g(name, REAL + offset, FAKE + offset)
        assert stats["overfit_signal"].item() == pytest.approx(2 / 9), offset
        # a D that puts every real above every fake is sure of every real; one that inverts them, of none
        _, _, apart = d_and_g(name, SEPARATED_REAL + offset, SEPARATED_FAKE + offset)
        assert apart["overfit_signal"].item() == 1.0, offset
        _, _, inverted = d_and_g(name, SEPARATED_FAKE + offset, SEPARATED_REAL + offset)
        assert inverted["overfit_signal"].item() == -1.0, offset
    # and a positive scale of D's outputs changes nothing either
    _, _, scaled = d_and_g(name, REAL * 7 - 2, FAKE * 7 - 2)
    assert scaled["overfit_signal"].item() == pytest.approx(2 / 9)


def test_a_third_party_loss_without_a_threshold_gets_the_shift_invariant_signal_and_may_report_its_own():
    class Plain(GANLoss):
        name = "test-plain"

        def d_adversarial(self, real_logits, fake_logits):
            return (fake_logits - real_logits).mean(), {}

    class Own(Plain):
        def overfit_signal(self, real_logits, fake_logits):
            return (real_logits > fake_logits.max()).float().mean() * 2 - 1

    D = fixed_d(REAL + 50, FAKE + 50)
    _, plain = Plain().d_loss(D, torch.zeros(3, 1), torch.ones(3, 1))
    _, own = Own().d_loss(D, torch.zeros(3, 1), torch.ones(3, 1))
    assert plain["overfit_signal"].item() == pytest.approx(2 / 9)  # as for the relativistic losses
    assert own["overfit_signal"].item() == pytest.approx(-1 / 3)  # only 2 is above the fakes' largest, 1


class MarginLoss(NonSaturatingLoss):
    """A third-party loss with an option of its own."""

    name = "test-margin"

    def __init__(self, *, margin: float = 0.0, **regularisers):
        super().__init__(**regularisers)
        self.margin = float(margin)

    def d_adversarial(self, real_logits, fake_logits):
        return super().d_adversarial(real_logits - self.margin, fake_logits + self.margin)


@pytest.fixture
def margin_loss():
    _LOSSES[MarginLoss.name] = MarginLoss
    yield MarginLoss
    _LOSSES.pop(MarginLoss.name)


def test_loss_options_reach_the_loss_and_unknown_ones_are_named(margin_loss):
    assert loss_options("test-margin")["margin"] == 0.0 and "r2_gamma" in loss_options("test-margin")
    loss = loss_from_recipe(Recipe(loss="test-margin", loss_options={"margin": 0.25}, r2_gamma=1.0))
    assert loss.margin == 0.25 and loss.r2_gamma == 1.0 and loss.label_smoothing == 0.0
    with pytest.raises(ConfigError, match="loss 'test-margin' does not take margn; its options are .*margin"):
        loss_from_recipe(Recipe(loss="test-margin", loss_options={"margn": 1}))
    with pytest.raises(ConfigError, match="loss_options sets r1_gamma, which is a recipe field"):
        loss_from_recipe(Recipe(loss="test-margin", loss_options={"r1_gamma": 1}))
    with pytest.raises(ConfigError, match="loss 'relativistic' does not take label_smoothing"):
        loss_from_recipe(Recipe(loss="relativistic", label_smoothing=0.1))


def test_a_loss_option_set_in_the_recipe_changes_training(margin_loss, tmp_path):
    def d_loss_after(margin):
        tiny_train("dcgan", tmp_path / str(margin), steps=1, log_every=1,
                   recipe={"loss": "test-margin", "loss_options": {"margin": margin}})
        return json.loads((tmp_path / str(margin) / "metrics.jsonl").read_text().splitlines()[0])["d_loss"]

    assert d_loss_after(2.0) > d_loss_after(0.0) + 1.0  # a margin of 2 makes D's task much harder


class OldStyleLoss(GANLoss):
    """A loss written against the interface before G's phase got the real batch."""

    name = "test-old-style"
    g_calls = 0

    def d_adversarial(self, real_logits, fake_logits):
        return (torch.relu(1 - real_logits) + torch.relu(1 + fake_logits)).mean(), {}

    def g_loss(self, D, fake, labels=None):  # the old signature
        type(self).g_calls += 1
        loss = -D(fake, labels).mean()
        return loss, {"g_loss": loss.detach()}


def test_a_loss_with_the_old_g_loss_signature_still_trains(tmp_path):
    _LOSSES[OldStyleLoss.name] = OldStyleLoss
    try:
        tiny_train("dcgan", tmp_path / "run", steps=2, recipe={"loss": "test-old-style"})
    finally:
        _LOSSES.pop(OldStyleLoss.name)
    assert OldStyleLoss.g_calls == 2


# ---------------------------------------------------------------------------------------------------------------------
# schedules and betas


def test_schedule_values():
    cosine = Schedule(kind="cosine", to=1.0)
    assert cosine.value(3.0, 0, 100) == pytest.approx(3.0)
    assert cosine.value(3.0, 50, 100) == pytest.approx(2.0)
    assert cosine.value(3.0, 100, 100) == pytest.approx(1.0)
    assert cosine.value(3.0, 500, 100) == pytest.approx(1.0)  # held after the horizon
    linear = Schedule(kind="linear", to=0.0, steps=10)
    assert [linear.value(2.0, s, 1000) for s in (0, 5, 10)] == pytest.approx([2.0, 1.0, 0.0])
    warm = Schedule(kind="constant", warmup=4)
    assert [warm.value(8.0, s, 100) for s in range(6)] == pytest.approx([2.0, 4.0, 6.0, 8.0, 8.0, 8.0])
    warm_cos = Schedule(kind="cosine", to=0.0, warmup=10, steps=110)
    assert warm_cos.value(1.0, 9, 0) == pytest.approx(1.0) and warm_cos.value(1.0, 60, 0) == pytest.approx(0.5)


@pytest.mark.parametrize("schedules, message", [
    ({"lr": {"kind": "cosine"}}, "schedules.lr: a cosine schedule needs 'to'"),
    ({"lr": {"to": 1e-5}, "d_lr": {"to": 1e-6}}, "d_lr is scheduled by both 'lr' and 'd_lr'"),
    ({"lr": {"kind": "constant", "to": 1.0}}, "a constant schedule keeps the recipe's value"),
    ({"lr": {"to": 1e-5, "warmup": 20, "steps": 10}}, r"warmup \(20\) must be shorter than steps \(10\)"),
    ({"lr": 0.1}, "schedules.lr must be a JSON object"),
])
def test_bad_schedules_are_one_line_errors(schedules, message):
    with pytest.raises(ConfigError, match=message):
        Recipe(schedules=schedules)


def test_schedule_targets_are_checked_against_the_loss(tmp_path):
    with pytest.raises(ConfigError, match="'gama' is neither an optimiser value .* nor a numeric option of loss"):
        tiny_train("dcgan", tmp_path / "bad", steps=1, recipe={"schedules": {"gama": {"to": 0.1}}})
    with pytest.raises(ConfigError, match="'gamma' also schedules r2_gamma, which is 0"):
        tiny_train("dcgan", tmp_path / "bad2", steps=1, recipe={"r1_gamma": 1.0, "schedules": {"gamma": {"to": 0.1}}})
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()


def trainer_for(recipe, tmp_path, arch="dcgan", adjust=None):
    from ganzoo.data import load_dataset
    from ganzoo.model import build_model
    from ganzoo.registry import get_architecture
    from ganzoo.testing import tiny_config
    from ganzoo.trainer.loop import RunOptions, Trainer

    torch.manual_seed(0)
    model = build_model(arch, get_architecture(arch).config_cls.from_dict(tiny_config(arch)))
    if adjust is not None:
        adjust(model)
    rec = Recipe.from_dict({"batch_size": 8, **recipe})
    return Trainer(model, rec, load_dataset("mnist-5k", img_size=model.img_shape[1], channels=1),
                   RunOptions(device="cpu", log_every=1000, sample_every=1000, checkpoint_every=1000), tmp_path)


def test_schedules_drive_learning_rates_betas_and_loss_weights(tmp_path):
    recipe = {"steps": 8, "g_lr": 4e-4, "d_lr": 2e-4, "r1_gamma": 1.0, "r2_gamma": 0.5, "betas": [0.0, 0.9],
              "schedules": {"lr": {"kind": "linear", "to": 0.0}, "gamma": {"kind": "cosine", "to": 0.1},
                            "g_beta2": {"kind": "linear", "to": 0.99}}}
    trainer = trainer_for(recipe, tmp_path)
    seen = []
    for _ in range(4):
        trainer.train_step()  # the values of step s are set before step s runs
        g, d = trainer.opt_G.param_groups[0], trainer.opt_D.param_groups[0]
        seen.append((g["lr"], d["lr"], g["betas"][1], d["betas"][1], trainer.loss.r1_gamma, trainer.loss.r2_gamma))
    for step, (g_lr, d_lr, g_b2, d_b2, r1, r2) in enumerate(seen):
        t = step / 8
        cos = 0.5 * (1 + math.cos(math.pi * t))
        assert g_lr == pytest.approx(4e-4 * (1 - t)) and d_lr == pytest.approx(2e-4 * (1 - t))
        assert g_b2 == pytest.approx(0.9 + 0.09 * t) and d_b2 == pytest.approx(0.9)  # D's beta2 not scheduled
        assert r1 == pytest.approx(0.1 + 0.9 * cos) and r2 == pytest.approx(0.1 + 0.4 * cos)
    assert trainer.scheduled_values(8)["g_lr"] == pytest.approx(0.0)


def test_parameter_groups_with_their_own_learning_rate_follow_the_schedule(tmp_path):
    def two_groups(model):
        G = model.generator
        first = list(G.parameters())[:2]
        rest = list(G.parameters())[2:]
        G.param_groups = lambda: [{"params": first, "lr_mult": 0.01}, {"params": rest}]  # e.g. a mapping network

    recipe = {"steps": 4, "g_lr": 1e-3, "schedules": {"g_lr": {"kind": "linear", "to": 0.0}}}
    trainer = trainer_for(recipe, tmp_path, adjust=two_groups)
    assert [g["lr"] for g in trainer.opt_G.param_groups] == pytest.approx([1e-5, 1e-3])
    before = [p.detach().clone() for p in trainer.G.parameters()]
    trainer.train_step()
    trainer.train_step()  # the lrs of step 1: the schedule's 3/4, times each group's factor
    assert [g["lr"] for g in trainer.opt_G.param_groups] == pytest.approx([0.75e-5, 0.75e-3])
    moved = [(p.detach() - b).abs().max().item() for p, b in zip(trainer.G.parameters(), before, strict=True)]
    assert max(moved[:2]) < 0.05 * max(moved[2:])  # Adam's steps are about lr in size: the slow group barely moved


def test_separate_betas_for_g_and_d(tmp_path):
    trainer = trainer_for({"g_betas": [0.0, 0.99], "d_betas": [0.5, 0.9]}, tmp_path)
    assert trainer.opt_G.param_groups[0]["betas"] == (0.0, 0.99)
    assert trainer.opt_D.param_groups[0]["betas"] == (0.5, 0.9)
    trainer = trainer_for({"betas": [0.2, 0.8], "d_betas": [0.5, 0.9]}, tmp_path)
    assert trainer.opt_G.param_groups[0]["betas"] == (0.2, 0.8)
    with pytest.raises(ConfigError, match="betas belong to Adam"):
        Recipe(optimizer="rmsprop", d_betas=[0.5, 0.9])


# ---------------------------------------------------------------------------------------------------------------------
# augmentation with a probability, and ADA


def batch(n=64, seed=0):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("name", ["xflip", "rotate90", "translation", "cutout", "brightness", "contrast",
                                  "saturation", "color"])
def test_each_augmentation_applies_with_probability_p(name):
    x = batch()
    torch.manual_seed(0)
    assert torch.equal(Augment(name, p=0.0)(x), x)  # p = 0: nothing changes
    torch.manual_seed(0)
    out = Augment(name, p=0.5, adaptive=True)(x)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    # about half the images are chosen; a chosen flip or rotation leaves an image as it was 1/2 or 1/4 of the time
    assert 0.1 < changed < 0.75, changed


def test_xflip_and_rotate90_move_pixels_exactly():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    torch.manual_seed(0)
    flipped = augment(x, ["xflip"])
    assert all(torch.equal(img, x[0]) or torch.equal(img, x[0].flip(2)) for img in flipped)
    torch.manual_seed(0)
    turned = augment(x, ["rotate90"])
    rotations = [torch.rot90(x[0], k, dims=(1, 2)) for k in range(4)]
    kinds = {next(k for k, r in enumerate(rotations) if torch.equal(img, r)) for img in turned}
    assert kinds == {0, 1, 2, 3}


def test_a_registered_augmentation_is_usable_by_name():
    from ganzoo.augment import AUGMENTATIONS, register_augmentation

    register_augmentation("test-negate", lambda x: -x)
    try:
        assert torch.equal(Augment("test-negate")(batch(4)), -batch(4))
        assert Recipe(augment="xflip,test-negate").augment == "xflip,test-negate"
        with pytest.raises(ConfigError, match="already registered"):
            register_augmentation("test-negate", lambda x: x)
    finally:
        AUGMENTATIONS.pop("test-negate")


def ada(target=0.6, kimg=0.1, interval=2, batch_size=10):
    hook = AdaptiveAugment(target, kimg, interval, batch_size)
    service = Augment("xflip", p=0.0, adaptive=True)
    hook.setup(TrainingContext(recipe=Recipe(), device=torch.device("cpu"), augment=service))
    return hook, service


def test_ada_moves_p_by_the_sign_of_rt_minus_the_target():
    hook, service = ada()  # each adjustment moves p by 10 * 2 / 100 = 0.2
    history = []
    for d_step, sign in enumerate([1.0, 0.6] * 3 + [-1.0, -1.0] * 2 + [0.0] * 10):
        hook.after_d_step(d_step, {"overfit_signal": torch.tensor(sign)})
        history.append(round(service.p.item(), 6))
    # r_t = 0.8 > 0.6 three times: p 0.2, 0.4, 0.6; then r_t = -1 twice: 0.4, 0.2; then r_t = 0: 0.0 and held there
    assert history[1::2] == [0.2, 0.4, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert history[0::2] == [0.0, 0.2, 0.4, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0, 0.0]  # unchanged between adjustments
    for _ in range(20):
        hook.after_d_step(0, {"overfit_signal": torch.tensor(1.0)})
    assert service.p.item() == 1.0  # clamped
    assert hook.stats()["augment_p"] == 1.0 and hook.stats()["ada_rt"] == 1.0


def test_ada_state_round_trips_mid_interval():
    hook, service = ada(interval=4)  # each adjustment moves p by 10 * 4 / 100 = 0.4
    for sign in (1.0, 1.0, 1.0, 1.0, 1.0):  # one adjustment up, and one value into the next interval
        hook.after_d_step(0, {"overfit_signal": torch.tensor(sign)})
    state = json.loads(json.dumps(hook.state_dict()))
    other, other_service = ada(interval=4)
    other.load_state_dict(state)
    assert other_service.p.item() == pytest.approx(0.4)
    for h in (hook, other):
        for sign in (0.5, 0.5, 0.5):  # r_t = (1 + 1.5) / 4 = 0.625 > 0.6 only with the carried partial sum
            h.after_d_step(0, {"overfit_signal": torch.tensor(sign)})
    assert service.p.item() == other_service.p.item() == pytest.approx(0.8)


def test_ada_without_the_overfit_signal_says_what_to_add():
    hook, _ = ada()
    with pytest.raises(ConfigError, match="needs the loss to report overfit_signal"):
        hook.after_d_step(0, {"d_real": torch.tensor(1.0)})


# the held-out signal (the default) under RpGAN: at target 0.05 its noise crosses the target both ways within these
# few steps, so p moves and the resume matters; the held-back images and the position in them must resume too
ADA_RECIPE = {"augment": "xflip,translation,color", "ada_target": 0.05, "ada_kimg": 0.04, "ada_interval": 1,
              "loss": "relativistic", "r1_gamma": 0.1, "r2_gamma": 0.1, "ema_kimg": 0.01,
              # explicit horizons: the test extends a 5-step run to 12, and "the whole run" would change with it
              "schedules": {"lr": {"kind": "cosine", "to": 1e-5, "steps": 12},
                            "gamma": {"kind": "cosine", "to": 0.01, "steps": 12}}}


def p_history(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["augment_p"] for line in lines]


@pytest.mark.parametrize("signal", ["held-out", "train"])
def test_ada_p_is_logged_and_a_resumed_run_continues_bit_identically(tmp_path, signal):
    # r_t on training reals needs a loss with a decision threshold: hinge, at the paper's target
    recipe = ADA_RECIPE if signal == "held-out" else {**ADA_RECIPE, "loss": "hinge", "ada_signal": "train",
                                                      "ada_target": 0.6}
    whole = tiny_train("dcgan", tmp_path / "whole", steps=12, log_every=1, recipe=recipe)
    tiny_train("dcgan", tmp_path / "split", steps=5, log_every=1, recipe=recipe)
    resumed = ganzoo.train(out=tmp_path / "split", steps=12, resume=True)
    history = p_history(tmp_path / "whole")
    assert len(set(history)) > 2, history  # p moved (by 8 * 1 / 40 = 0.2 per D step)
    assert all(0 <= p <= 1 and abs(p * 5 - round(p * 5)) < 1e-5 for p in history), history
    assert p_history(tmp_path / "split") == history
    key = "ada_held_out" if signal == "held-out" else "ada_rt"

    def signals(run):
        return [json.loads(line)[key] for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert signals(tmp_path / "split") == signals(tmp_path / "whole")
    held = json.loads((tmp_path / "split" / "config.json").read_text())["data"]["held_out"]
    assert held == (256 if signal == "held-out" else 0)
    for name in ("generator", "discriminator", "ema"):
        assert_same_state(getattr(whole, name), getattr(resumed, name))


class SteadySignalLoss(NonSaturatingLoss):
    """Reports the overfitting signal 0.5 at every D step, whatever D does."""

    name = "test-steady-signal"

    def overfit_signal(self, real_logits, fake_logits):
        return torch.tensor(0.5)


@pytest.mark.parametrize("target, direction", [(0.45, 1), (0.55, -1)])
def test_ada_adjusts_p_every_ada_interval_d_steps_by_batch_times_interval_over_kimg(tmp_path, target, direction):
    """Interval 3 (not the default 4) with 2 D steps per G step: p moves after D steps 3, 6, 9 and 12, i.e. in G steps
    2, 3, 5 and 6, each time by 8 * 3 / (0.24 * 1000) = 0.1, up when the loss's signal (0.5 here) is above the
    target and down when below; the trainer takes the signal from the loss and logs r_t, its mean."""
    recipe = {"loss": SteadySignalLoss.name, "augment": "xflip,translation", "augment_p": 0.5, "ada_target": target,
              "ada_kimg": 0.24, "ada_interval": 3, "d_steps": 2, "ada_signal": "train"}
    _LOSSES[SteadySignalLoss.name] = SteadySignalLoss
    try:
        tiny_train("dcgan", tmp_path / "run", steps=6, log_every=1, recipe=recipe)
    finally:
        _LOSSES.pop(SteadySignalLoss.name)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    p = [r["augment_p"] for r in records]
    assert p == pytest.approx([0.5 + direction * 0.1 * n for n in (0, 1, 2, 2, 3, 4)], abs=1e-6)
    assert "ada_rt" not in records[0] and all(r["ada_rt"] == 0.5 for r in records[1:])


def test_augmentation_probability_reaches_ds_inputs(tmp_path):
    def d_inputs(p):
        trainer = trainer_for({"augment": "cutout", "augment_p": p}, tmp_path)
        seen = []
        trainer.D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        trainer.train_step()
        return seen[0], trainer.batches.get(0)[0]

    inputs, real = d_inputs(0.0)
    assert torch.equal(inputs, real)  # p = 0: D sees the real batch untouched
    inputs, real = d_inputs(1.0)
    cut = (inputs == 0) & (real != 0)
    assert cut.flatten(1).any(1).float().mean() > 0.9  # every image lost a square


# ---------------------------------------------------------------------------------------------------------------------
# the architecture's own check


def test_an_architectures_validate_runs_before_a_run_folder_exists(tmp_path, monkeypatch):
    from dataclasses import replace

    from ganzoo import registry

    arch = registry.get_architecture("dcgan")
    calls = []

    def validate(config, recipe):
        calls.append((config.img_size, recipe.loss))
        if recipe.loss == "wasserstein":
            raise ConfigError("dcgan's BatchNorm critic cannot take a Wasserstein loss here; use hinge")

    monkeypatch.setattr(registry, "get_architecture", lambda name: replace(arch, validate=validate))
    with pytest.raises(ConfigError, match="cannot take a Wasserstein loss"):
        tiny_train("dcgan", tmp_path / "bad", steps=1, recipe={"loss": "wasserstein"})
    assert not (tmp_path / "bad").exists()
    tiny_train("dcgan", tmp_path / "good", steps=1, recipe={"loss": "hinge"})
    assert ("hinge" in {loss for _, loss in calls}) and len(calls) >= 2


# ---------------------------------------------------------------------------------------------------------------------
# a third-party plugin, written apart from ganzoo and installed with pip, using all of it


EXTERNAL_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "ganzoo-extplug"
version = "0.3"
dependencies = ["ganzoo"]

[project.entry-points."ganzoo.architectures"]
extgan = "extplug:architecture"

[project.entry-points."ganzoo.losses"]
ext-relativistic = "extplug:MarginRelativistic"

[project.entry-points."ganzoo.augmentations"]
ext-invert = "extplug:invert"

[tool.setuptools]
py-modules = ["extplug"]
"""

EXTERNAL_MODULE = '''
"""A third party's GAN: its own relativistic loss with an option, R1 + R2, ADA with its own augmentation."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import ArchConfig, Architecture, Discriminator, Generator, Recipe
from ganzoo.losses import GANLoss


@dataclass(frozen=True)
class ExtConfig(ArchConfig):
    img_size: int = 8
    z_dim: int = 8
    hidden: int = 32


class ExtG(Generator):
    def __init__(self, cfg):
        super().__init__(cfg.z_dim, (cfg.channels, cfg.img_size, cfg.img_size))
        self.net = nn.Sequential(nn.Linear(cfg.z_dim, cfg.hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(cfg.hidden, cfg.channels * cfg.img_size ** 2), nn.Tanh())

    def forward(self, z, labels=None):
        return self.net(z).view(-1, *self.img_shape)


class ExtD(Discriminator):
    def __init__(self, cfg):
        super().__init__((cfg.channels, cfg.img_size, cfg.img_size))
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * cfg.img_size ** 2, cfg.hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(cfg.hidden, 1))

    def forward(self, images, labels=None):
        return self.net(images).flatten()


class MarginRelativistic(GANLoss):
    """RpGAN with a margin: D wants each real logit above its paired fake's by `margin`."""

    name = "ext-relativistic"
    uses_real_in_g = True

    def __init__(self, *, margin=0.0, **regularisers):
        super().__init__(**regularisers)
        self.margin = float(margin)

    def d_adversarial(self, real_logits, fake_logits):
        return F.softplus(fake_logits - real_logits + self.margin).mean(), {"margin": torch.tensor(self.margin)}

    def g_adversarial(self, fake_logits, real_logits=None):
        return F.softplus(real_logits - fake_logits + self.margin).mean()


def invert(x):
    return -x


def check(cfg, recipe):
    if recipe.loss == "ext-relativistic" and recipe.r2_gamma == 0:
        raise ConfigError("extgan's relativistic loss needs R2 as well as R1: set r2_gamma")


architecture = Architecture(
    name="extgan", summary="a third party's modern GAN", paper="none", config_cls=ExtConfig,
    build_generator=ExtG, build_discriminator=ExtD, validate=check,
    recipe=Recipe(steps=6, batch_size=8, loss="ext-relativistic", loss_options={"margin": 0.5}, r1_gamma=0.1,
                  r2_gamma=0.1, g_betas=(0.0, 0.9), d_betas=(0.0, 0.9), augment="xflip,ext-invert",
                  ada_target=0.6, ada_kimg=0.016, ada_interval=1, ema_kimg=0.01,
                  schedules={"lr": {"kind": "cosine", "to": 1e-5}, "margin": {"kind": "linear", "to": 0.0}}),
    test_config={"hidden": 8},
)
'''


def test_a_pip_installed_third_party_plugin_trains_with_its_own_relativistic_loss_r2_and_ada(tmp_path):
    import subprocess
    import sys
    import textwrap

    project, site = tmp_path / "extplug", tmp_path / "site"
    project.mkdir()
    (project / "pyproject.toml").write_text(EXTERNAL_PYPROJECT)
    (project / "extplug.py").write_text(textwrap.dedent(EXTERNAL_MODULE))
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(site), str(project)], capture_output=True, text=True,
                         timeout=300)
    assert pip.returncode == 0, pip.stderr
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}

    def ganzoo_cli(*args):
        return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=env,
                              timeout=300, cwd=tmp_path)

    refused = ganzoo_cli("train", "--arch", "extgan", "--set", "r2_gamma=0", "--out", "bad", "--device", "cpu")
    assert refused.returncode == 2 and "needs R2 as well as R1" in refused.stderr and "Traceback" not in refused.stderr
    run = ganzoo_cli("train", "--arch", "extgan", "--out", "run", "--log-every", "1", "--device", "cpu")
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    for r in records:
        assert {"r1_penalty", "r2_penalty", "augment_p", "g_lr"} <= set(r)
        # the loss's own option, scheduled linearly from 0.5 to 0 over the 6 steps, reached the loss
        assert r["margin"] == pytest.approx(0.5 * (1 - (r["step"] - 1) / 6), abs=1e-6)
    assert len({r["augment_p"] for r in records}) > 1  # ADA moved p (by 8 / 16 = 0.5 per D step)
    plan = json.loads((tmp_path / "run" / "config.json").read_text())
    assert plan["recipe"]["loss"] == "ext-relativistic" and plan["recipe"]["augment"] == "xflip,ext-invert"
    sampled = ganzoo_cli("sample", "run", "-n", "4", "-o", "grid.png")
    assert sampled.returncode == 0 and (tmp_path / "grid.png").stat().st_size > 0, sampled.stderr

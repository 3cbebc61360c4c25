"""Every field of `Recipe` has a test that observes its specific effect and fails when the trainer ignores it.

The tests watch training from outside the loss: forward hooks on the trainer's D and G record what D was fed and
what it answered (and, for inputs D is differentiated against, the gradient there), optimiser step hooks record
learning rates and updates, and the values compared come from `metrics.jsonl` and the checkpoints a run writes.
Real images are recognised as rows of the dataset, fakes as outputs of G recorded in the same step, so no test
depends on whether a loss calls D on real or fake images first. Each test uses dcgan's tiny test config at batch 8
for a few steps.

`sync_batchnorm` is tested here in one process (a one-process group: the trainer swaps every BatchNorm for one over
the global batch and back); the numbers on two processes against one are checked by
tests/test_distributed.py::test_synchronised_batchnorm_on_two_processes_is_close_to_one_process, which fails too
when the trainer ignores the option.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from ganzoo.data import ImageDataset, load_dataset
from ganzoo.interfaces import Recipe
from ganzoo.model import build_model
from ganzoo.registry import get_architecture
from ganzoo.testing import tiny_config
from ganzoo.trainer.checkpoint import Checkpoint
from ganzoo.trainer.loop import RunOptions, Trainer

ARCH = "dcgan"
BATCH = 8


# ---------------------------------------------------------------------------------------------------------------------
# building a trainer and watching it
# ---------------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _dataset(img_size: int, channels: int) -> ImageDataset:
    return load_dataset("mnist-5k", img_size=img_size, channels=channels)


@functools.lru_cache(maxsize=4)
def _rows(img_size: int, channels: int) -> tuple[torch.Tensor, dict[bytes, int]]:
    """The dataset as D sees it (floats in [-1, 1], one row per image) and the index of each row's bytes."""
    images = _dataset(img_size, channels).images.float().div_(127.5).sub_(1.0).flatten(1)
    return images, {row.numpy().tobytes(): i for i, row in enumerate(images)}


def make_trainer(out: Path, *, arch: str = ARCH, world: Any = None, **recipe: Any) -> Trainer:
    """A trainer of the tiny config on mnist-5k with `Recipe()`'s defaults, batch 8 and `recipe` applied.

    It logs every step, and writes no sample grid or checkpoint before the end of `run()`.
    """
    spec = get_architecture(arch)
    cfg = spec.make_config(None, **tiny_config(arch))
    rec = Recipe(**{"batch_size": BATCH, "steps": 3, **recipe})
    torch.manual_seed(0)
    model = build_model(arch, cfg)
    options = RunOptions(device="cpu", seed=0, log_every=1, sample_every=10**6, checkpoint_every=10**6, grid_size=4)
    return Trainer(model, rec, _dataset(cfg.img_size, cfg.channels), options, out, world=world)


@dataclasses.dataclass
class DCall:
    """One call of D during training."""

    step: int  # the trainer's step counter (the generator updates done before it)
    x: torch.Tensor  # the images D was fed
    out: torch.Tensor  # D's logits
    grad: torch.Tensor | None  # d sum(logits) / d x, flattened per row, when x is a leaf D is differentiated against


class Recorder:
    """Forward hooks on a trainer's D and G: every training-mode call of D, every output of the training-mode G."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.calls: list[DCall] = []
        self.fakes: list[tuple[int, torch.Tensor]] = []
        img_size, channels = trainer.G.img_shape[1], trainer.G.img_shape[0]
        self.images, self.index = _rows(img_size, channels)
        trainer.D.register_forward_hook(self._on_d)
        trainer.G.register_forward_hook(self._on_g)

    def _on_d(self, module: torch.nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if not module.training:  # the plugin-contract check of sampling before the first step, not a training call
            return
        x = args[0]
        grad = None
        if x.requires_grad and x.is_leaf:  # a penalty's input: the gradient the penalty is built from
            (grad,) = torch.autograd.grad(out.sum(), x, retain_graph=True)
            grad = grad.detach().flatten(1).clone()
        self.calls.append(DCall(self.trainer.step, x.detach().clone(), out.detach().float().clone(), grad))

    def _on_g(self, module: torch.nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if module.training:  # not the sample grids
            self.fakes.append((self.trainer.step, out.detach().clone()))

    def dataset_rows(self, x: torch.Tensor) -> list[int] | None:
        """The dataset index of every row of `x`, or None when some row is not a dataset image."""
        found = [self.index.get(row.contiguous().numpy().tobytes()) for row in x.float().flatten(1)]
        return None if any(i is None for i in found) else found

    def is_fake(self, call: DCall) -> bool:
        return any(s == call.step and torch.equal(call.x, f) for s, f in self.fakes)

    def at(self, step: int) -> list[DCall]:
        return [c for c in self.calls if c.step == step]

    def real(self, step: int) -> list[DCall]:
        """D's calls on real batches at `step` (R1 takes its gradient from one of them, when due)."""
        return [c for c in self.at(step) if self.dataset_rows(c.x) is not None]

    def fake(self, step: int) -> list[DCall]:
        """D's calls on G's images at `step`: those of D's steps, then the one of G's step."""
        return [c for c in self.at(step) if self.is_fake(c)]

    def penalties(self, step: int) -> list[DCall]:
        """D's calls at `step` that a penalty differentiates with respect to their input."""
        return [c for c in self.at(step) if c.grad is not None]

    def logits(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real, fake) logits of the one D step at `step` and the fake logits of G's step."""
        (real,), fakes = self.real(step), self.fake(step)
        assert len(fakes) == 2, f"step {step}: D saw {len(fakes)} fake batches, expected D's and G's"
        return real.out, fakes[0].out, fakes[1].out


def metrics(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def approx(value: float) -> Any:
    """What metrics.jsonl's six decimals allow."""
    return pytest.approx(value, rel=1e-5, abs=3e-6)


def bce_d(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> float:
    """The cross-entropy D loss on logits, with D's target for real images `real_target` (fakes: 0)."""
    return ((F.softplus(real) - real_target * real).mean() + F.softplus(fake).mean()).item()


class StepLog:
    """Optimiser step hooks: the learning rates, gradients and parameters before and after every step."""

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        self.lrs: list[list[float]] = []
        self.grads: list[list[torch.Tensor | None]] = []
        self.before: list[list[torch.Tensor]] = []
        self.after: list[list[torch.Tensor]] = []
        self.params = [p for group in opt.param_groups for p in group["params"]]
        opt.register_step_pre_hook(self._pre)
        opt.register_step_post_hook(self._post)

    def _pre(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.lrs.append([float(group["lr"]) for group in opt.param_groups])
        self.grads.append([None if p.grad is None else p.grad.detach().clone() for p in self.params])
        self.before.append([p.detach().clone() for p in self.params])

    def _post(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.after.append([p.detach().clone() for p in self.params])

    def replay(self, reference: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
        """Apply the recorded gradients with `reference`, an optimiser over copies of the initial parameters."""
        for grads in self.grads:
            for p, g in zip(params, grads, strict=True):
                p.grad = None if g is None else g.clone()
            reference.step()


# ---------------------------------------------------------------------------------------------------------------------
# length and size of a run
# ---------------------------------------------------------------------------------------------------------------------


def test_steps_is_the_number_of_generator_updates(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=3)
    g_steps = StepLog(trainer.opt_G)
    trainer.run()
    assert trainer.step == 3 and len(g_steps.lrs) == 3
    assert [line["step"] for line in metrics(tmp_path / "run")] == [1, 2, 3]
    ckpt = Checkpoint.load(tmp_path / "run" / "checkpoints" / "step-0000003.safetensors")
    assert ckpt.meta["step"] == 3
    assert ckpt.tensors["opt_G.0.step"].item() == 3  # Adam's own count of G's updates


def test_batch_size_is_the_rows_of_every_batch(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=2, batch_size=6)
    record = Recorder(trainer)
    trainer.run()
    assert record.calls and all(call.x.shape[0] == 6 for call in record.calls)
    assert all(fake.shape[0] == 6 for _, fake in record.fakes)
    assert len(record.real(0)) == 1 and len(record.real(1)) == 1
    assert [line["kimg"] for line in metrics(tmp_path / "run")] == [0.006, 0.012]


# ---------------------------------------------------------------------------------------------------------------------
# the loss and its options
# ---------------------------------------------------------------------------------------------------------------------

def _ra(winner: torch.Tensor, loser: torch.Tensor) -> float:
    """RaSGAN's terms: -log sigmoid(winner - mean loser) - log(1 - sigmoid(loser - mean winner))."""
    return (F.softplus(loser.mean() - winner).mean() + F.softplus(loser - winner.mean()).mean()).item()


#: each loss of the zoo: (D's loss from D's logits on the real and fake batch, G's loss from D's logits on G's fakes
#: and, for relativistic losses, on the real batch in G's step)
LOSSES = {
    "minimax": (lambda r, f: bce_d(r, f), lambda g, gr: (-F.softplus(g)).mean().item()),
    "non-saturating": (lambda r, f: bce_d(r, f), lambda g, gr: F.softplus(-g).mean().item()),
    "hinge": (lambda r, f: (F.relu(1 - r).mean() + F.relu(1 + f).mean()).item(), lambda g, gr: -g.mean().item()),
    "wasserstein": (lambda r, f: (f.mean() - r.mean()).item(), lambda g, gr: -g.mean().item()),
    "least-squares": (lambda r, f: (0.5 * ((r - 1).square().mean() + f.square().mean())).item(),
                      lambda g, gr: (0.5 * (g - 1).square().mean()).item()),
    # pairs real i with fake i: softplus(-(D(x_i) - D(G(z_i)))) for D, the reverse for G
    "relativistic": (lambda r, f: F.softplus(f - r).mean().item(), lambda g, gr: F.softplus(gr - g).mean().item()),
    "relativistic-average": (lambda r, f: _ra(r, f), lambda g, gr: _ra(g, gr)),
}
RELATIVISTIC = ("relativistic", "relativistic-average")


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_is_the_named_loss_of_the_zoo(tmp_path, loss):
    trainer = make_trainer(tmp_path / "run", steps=2, loss=loss)
    record = Recorder(trainer)
    trainer.run()
    d_formula, g_formula = LOSSES[loss]
    for step, line in enumerate(metrics(tmp_path / "run")):
        reals, fakes = record.real(step), record.fake(step)
        relativistic = loss in RELATIVISTIC  # G's step compares its fakes with the step's real batch, seen again
        assert len(reals) == (2 if relativistic else 1) and len(fakes) == 2, f"step {step}"
        real, fake, g_fake = reals[0].out, fakes[0].out, fakes[1].out
        g_real = reals[1].out if relativistic else None
        if relativistic:
            assert torch.equal(reals[1].x, reals[0].x) and not torch.equal(reals[1].out, real)  # D moved in between
        assert line["d_loss"] == approx(d_formula(real, fake)), f"step {step}"
        assert line["g_loss"] == approx(g_formula(g_fake, g_real)), f"step {step}"


def test_label_smoothing_makes_the_real_target_one_minus_s(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=2, label_smoothing=0.25)
    record = Recorder(trainer)
    trainer.run()
    for step, line in enumerate(metrics(tmp_path / "run")):
        real, fake, _ = record.logits(step)
        assert line["d_loss"] == approx(bce_d(real, fake, real_target=0.75)), f"step {step}"
        assert line["d_loss"] != approx(bce_d(real, fake))  # told apart from the target 1


class BCESpy:
    """Records the (logits, targets) of every `torch.nn.functional.binary_cross_entropy_with_logits` call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        original = F.binary_cross_entropy_with_logits

        def spy(logits: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            self.calls.append((logits.detach().float().clone(), target.detach().float().clone()))
            return original(logits, target, *args, **kwargs)

        monkeypatch.setattr(F, "binary_cross_entropy_with_logits", spy)

    def targets(self, logits: torch.Tensor) -> torch.Tensor:
        """The target of the call on `logits`."""
        (target,) = [t for x, t in self.calls if torch.equal(x, logits)]
        return target


def _targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, **recipe: Any) -> list[tuple[Any, ...]]:
    """(real targets, fake targets, logged d_loss, real logits, fake logits) of each D step of a 3-step run."""
    spy = BCESpy(monkeypatch)
    trainer = make_trainer(tmp_path / name, steps=3, **recipe)
    record = Recorder(trainer)
    trainer.run()
    steps = []
    for step, line in enumerate(metrics(tmp_path / name)):
        real, fake, _ = record.logits(step)
        steps.append((spy.targets(real), spy.targets(fake), line["d_loss"], real, fake))
    return steps


def test_label_noise_draws_targets_real_in_0_7_to_1_2_fake_in_0_to_0_3(tmp_path, monkeypatch):
    plain = _targets(tmp_path, monkeypatch, "plain")
    assert all(torch.all(r == 1) and torch.all(f == 0) for r, f, *_ in plain)  # the spy sees the plain targets
    noisy = _targets(tmp_path, monkeypatch, "noisy", label_noise=True)
    real = torch.cat([r for r, *_ in noisy])
    fake = torch.cat([f for _, f, *_ in noisy])
    assert real.min() >= 0.7 and real.max() <= 1.2 and fake.min() >= 0 and fake.max() <= 0.3
    # 24 uniform draws each: they spread over most of their interval, and no two steps share their targets
    assert real.max() - real.min() > 0.25 and fake.max() - fake.min() > 0.15
    assert len({tuple(r.tolist()) for r, *_ in noisy}) == 3
    for r, f, logged, real_logits, fake_logits in noisy:  # and D's loss is built from them
        expected = F.binary_cross_entropy_with_logits(real_logits, r) + F.binary_cross_entropy_with_logits(
            fake_logits, f)
        assert logged == approx(expected.item())


def test_gradient_penalty_is_computed_at_interpolates_and_added_with_its_weight(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=2, loss="wasserstein", gp_weight=7.0)
    record = Recorder(trainer)
    trainer.run()
    for step, line in enumerate(metrics(tmp_path / "run")):
        real, fake, _ = record.logits(step)
        (penalty,) = record.penalties(step)
        # the penalty's inputs lie between this step's real and fake images, row by row
        r, f, x = record.real(step)[0].x.flatten(1), record.fake(step)[0].x.flatten(1), penalty.x.flatten(1)
        t = ((x - f) * (r - f)).sum(1) / (r - f).square().sum(1)
        assert torch.allclose(x, f + t[:, None] * (r - f), atol=1e-5) and t.min() >= 0 and t.max() <= 1
        gp = (penalty.grad.norm(dim=1) - 1).square().mean().item()
        assert line["gradient_penalty"] == approx(gp)
        assert line["d_loss"] == approx(LOSSES["wasserstein"][0](real, fake) + 7.0 * gp)


@pytest.mark.parametrize("gamma, interval", [(1.0, 1), (4.0, 3)])
def test_r1_is_applied_on_multiples_of_its_interval_and_scaled_by_it(tmp_path, gamma, interval):
    trainer = make_trainer(tmp_path / "run", steps=4, r1_gamma=gamma, r1_interval=interval)
    record = Recorder(trainer)
    trainer.run()
    applied = [step for step in range(4) if record.penalties(step)]
    assert applied == [step for step in range(4) if step % interval == 0]
    for step, line in enumerate(metrics(tmp_path / "run")):
        real, fake, _ = record.logits(step)
        if step not in applied:
            assert "r1_penalty" not in line and line["d_loss"] == approx(bce_d(real, fake))
            continue
        (penalty,) = record.penalties(step)
        (real_call,) = record.real(step)
        assert penalty is real_call  # at the real images, from the forward pass that gives the adversarial logits
        r1 = penalty.grad.square().sum(1).mean().item()
        assert line["r1_penalty"] == approx(r1)
        assert line["d_loss"] == approx(bce_d(real, fake) + gamma / 2 * interval * r1)


@pytest.mark.parametrize("r1_gamma", [0.0, 2.0])
def test_r2_is_applied_at_the_fakes_of_the_step_on_multiples_of_the_interval(tmp_path, r1_gamma):
    """R2 at G's images (R1 beside it at the reals, when on): D is nonlinear, so the two give different numbers, and
    an R2 computed at the reals or left out fails here."""
    gamma, interval = 3.0, 2
    trainer = make_trainer(tmp_path / "run", steps=4, r1_gamma=r1_gamma, r2_gamma=gamma, r1_interval=interval)
    record = Recorder(trainer)
    trainer.run()
    for step, line in enumerate(metrics(tmp_path / "run")):
        real, fake, _ = record.logits(step)
        penalties = record.penalties(step)
        if step % interval:
            assert not penalties and "r2_penalty" not in line and line["d_loss"] == approx(bce_d(real, fake))
            continue
        at_fakes = [p for p in penalties if torch.equal(p.x, record.fake(step)[0].x)]
        at_reals = [p for p in penalties if torch.equal(p.x, record.real(step)[0].x)]
        assert len(at_fakes) == 1 and len(at_reals) == (1 if r1_gamma else 0) and len(penalties) == 1 + len(at_reals)
        r2 = at_fakes[0].grad.square().sum(1).mean().item()
        assert line["r2_penalty"] == approx(r2)
        expected = bce_d(real, fake) + gamma / 2 * interval * r2
        if r1_gamma:
            r1 = at_reals[0].grad.square().sum(1).mean().item()
            assert line["r1_penalty"] == approx(r1) and abs(r1 - r2) > 0.05 * max(r1, r2)  # told apart
            expected += r1_gamma / 2 * interval * r1
        assert line["d_loss"] == approx(expected)


def test_clip_value_keeps_every_d_weight_within_c_after_every_d_step(tmp_path):
    c = 0.01
    trainer = make_trainer(tmp_path / "run", steps=2, d_steps=2, loss="wasserstein", clip_value=c)
    assert max(p.abs().max().item() for p in trainer.D.parameters()) > c  # clipping has work to do
    d_steps = StepLog(trainer.opt_D)
    seen: list[tuple[int, float]] = []  # (D updates done, largest |weight|) at every call of D

    def watch(module: torch.nn.Module, args: Any) -> None:
        seen.append((len(d_steps.after), max(p.abs().max().item() for p in module.parameters())))

    trainer.D.register_forward_pre_hook(watch)
    trainer.run()
    after_updates = [largest for done, largest in seen if done > 0]
    assert len(after_updates) >= 5 and max(after_updates) <= c  # D's second step, G's steps: all clipped
    weights = torch.cat([p.detach().flatten() for p in trainer.D.parameters()])
    assert weights.abs().max().item() <= c and (weights.abs() == c).sum() > 0  # some weights sit at the bound


def test_drift_adds_exactly_drift_times_the_mean_squared_real_logit(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=2, loss="wasserstein", drift=0.5)
    record = Recorder(trainer)
    trainer.run()
    for step, line in enumerate(metrics(tmp_path / "run")):
        real, fake, _ = record.logits(step)
        drift = 0.5 * real.square().mean().item()
        assert drift > 1e-4
        assert line["d_loss"] == approx(LOSSES["wasserstein"][0](real, fake) + drift)


# ---------------------------------------------------------------------------------------------------------------------
# optimisation
# ---------------------------------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "adam": ({"betas": (0.3, 0.8), "eps": 1e-3}, torch.optim.Adam, {"betas": (0.3, 0.8), "eps": 1e-3}),
    "rmsprop": ({"rho": 0.7, "eps": 1e-4}, torch.optim.RMSprop, {"alpha": 0.7, "eps": 1e-4}),
    "sgd": ({"momentum": 0.6}, torch.optim.SGD, {"momentum": 0.6}),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_and_its_hyperparameters_are_the_recipes(tmp_path, name):
    recipe, cls, hyper = OPTIMIZERS[name]
    trainer = make_trainer(tmp_path / "run", steps=2, optimizer=name, g_lr=3e-3, d_lr=5e-3, **recipe)
    logs = {"G": StepLog(trainer.opt_G), "D": StepLog(trainer.opt_D)}
    initial = {"G": [p.detach().clone() for p in trainer.G.parameters()],
               "D": [p.detach().clone() for p in trainer.D.parameters()]}
    trainer.run()
    for which, opt, lr in (("G", trainer.opt_G, 3e-3), ("D", trainer.opt_D, 5e-3)):
        assert type(opt) is cls
        for group in opt.param_groups:
            assert group["lr"] == lr and all(group[k] == v for k, v in hyper.items()), group
        # the updates are those of that optimiser with those hyperparameters
        params = [p.clone() for p in initial[which]]
        logs[which].replay(cls(params, lr=lr, **hyper), params)
        for got, want in zip(logs[which].after[-1], params, strict=True):
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), f"{which}: {name} updates differ"


def test_g_lr_and_d_lr_are_the_step_sizes_of_g_and_d(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=2, optimizer="sgd", g_lr=0.01, d_lr=0.03)
    logs = {"G": StepLog(trainer.opt_G), "D": StepLog(trainer.opt_D)}
    trainer.run()
    for which, lr in (("G", 0.01), ("D", 0.03)):
        log = logs[which]
        assert log.lrs == [[lr], [lr]]
        for grads, before, after in zip(log.grads, log.before, log.after, strict=True):
            for g, b, a in zip(grads, before, after, strict=True):
                assert torch.allclose(a, b - lr * g, rtol=1e-6, atol=1e-7), which


def test_lr_decay_divides_the_learning_rate_by_one_plus_decay_times_step(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=4, optimizer="sgd", g_lr=0.01, d_lr=0.02, lr_decay=0.5)
    logs = {"G": StepLog(trainer.opt_G), "D": StepLog(trainer.opt_D)}
    trainer.run()
    for which, base in (("G", 0.01), ("D", 0.02)):
        log = logs[which]
        expected = [base / (1 + 0.5 * step) for step in range(4)]
        assert [lrs[0] for lrs in log.lrs] == pytest.approx(expected, rel=1e-12)
        for lr, grads, before, after in zip(expected, log.grads, log.before, log.after, strict=True):
            for g, b, a in zip(grads, before, after, strict=True):
                assert torch.allclose(a, b - lr * g, rtol=1e-6, atol=1e-7), which
    ckpt = Checkpoint.load(tmp_path / "run" / "checkpoints" / "step-0000004.safetensors")
    assert ckpt.meta["opt_D"]["param_groups"][0]["lr"] == pytest.approx(0.02 / (1 + 0.5 * 3))


def test_d_steps_updates_d_that_often_per_g_step_each_on_its_own_real_batch(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=2, d_steps=3)
    record = Recorder(trainer)
    trainer.run()
    ckpt = Checkpoint.load(tmp_path / "run" / "checkpoints" / "step-0000002.safetensors")
    assert ckpt.tensors["opt_D.0.step"].item() == 6 and ckpt.tensors["opt_G.0.step"].item() == 2
    batches = [record.dataset_rows(call.x) for step in range(2) for call in record.real(step)]
    assert len(batches) == 6
    assert len({frozenset(rows) for rows in batches}) == 6  # six different real batches
    assert len(record.fake(0)) == len(record.fake(1)) == 4  # three D steps' fakes and G's
    assert [line["kimg"] for line in metrics(tmp_path / "run")] == [0.024, 0.048]


# ---------------------------------------------------------------------------------------------------------------------
# stabilisers
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ema_kimg, ema_rampup", [(0.01, 0.0), (0.01, 0.5)])
def test_ema_weights_are_the_hand_computed_average(tmp_path, ema_kimg, ema_rampup):
    assert make_trainer(tmp_path / "none").model.ema is None  # ema_kimg 0: no EMA generator
    trainer = make_trainer(tmp_path / "run", steps=2, ema_kimg=ema_kimg, ema_rampup=ema_rampup)
    ema = [p.detach().clone() for p in trainer.G.parameters()]  # starts as a copy of G
    for step in (1, 2):
        trainer.train_step()
        half_life = ema_kimg * 1000  # in images
        if ema_rampup > 0:
            half_life = min(half_life, ema_rampup * step * BATCH)
        beta = 0.5 ** (BATCH / half_life)
        ema = [beta * e + (1 - beta) * p.detach() for e, p in zip(ema, trainer.G.parameters(), strict=True)]
    assert beta < 0.9  # far from a frozen average: the weights moved
    for got, want in zip(trainer.model.ema.parameters(), ema, strict=True):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-8)
    for got, want in zip(trainer.model.ema.buffers(), trainer.G.buffers(), strict=True):
        assert torch.equal(got, want)  # BatchNorm statistics are copied


def _noise(record: Recorder, call: DCall) -> torch.Tensor:
    """What D's input adds to its nearest source, row by row: a dataset image or a fake of the same step."""
    fakes = [f.flatten(1) for s, f in record.fakes if s == call.step]
    sources = torch.cat([record.images, *fakes])
    x = call.x.flatten(1)
    nearest = torch.cdist(x, sources).argmin(dim=1)
    return x - sources[nearest]


@pytest.mark.parametrize("steps, noise_steps", [(5, 3), (4, 0)])
def test_instance_noise_has_std_sigma0_decayed_linearly_to_zero(tmp_path, steps, noise_steps):
    sigma0 = 0.3
    trainer = make_trainer(tmp_path / "run", steps=steps, instance_noise=sigma0, instance_noise_steps=noise_steps)
    record = Recorder(trainer)
    trainer.run()
    horizon = noise_steps or steps
    for step in range(steps):
        sigma = sigma0 * max(0.0, 1 - step / horizon)
        calls = record.at(step)
        assert len(calls) == 3  # D's real and fake batches, and G's fakes
        for call in calls:
            noise = _noise(record, call)
            if sigma == 0:
                assert torch.all(noise == 0), f"step {step}: noise after {horizon} steps"
            else:
                assert noise.std().item() == pytest.approx(sigma, rel=0.05), f"step {step}"
                assert abs(noise.mean().item()) < 4 * sigma / noise.numel() ** 0.5


def _translated(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Per row: `x` is `source` shifted by up to 1/8 of its size, zero-filled, and not by (0, 0) in every row."""
    n, _, h, w = source.shape
    limit = int(h * 0.125 + 0.5)
    padded = F.pad(source, [limit] * 4)
    found = torch.zeros(n, dtype=torch.bool)
    moved = torch.zeros(n, dtype=torch.bool)
    for dy in range(-limit, limit + 1):
        for dx in range(-limit, limit + 1):
            shifted = padded[:, :, limit + dy:limit + dy + h, limit + dx:limit + dx + w]
            match = (shifted == x).flatten(1).all(1)
            found |= match
            moved |= match & ((dy, dx) != (0, 0)) & ~(source == x).flatten(1).all(1)
    return found.all() & moved.any()


def _cut_out(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Per row: `x` is `source` with a half-size square around some pixel set to zero (and not nothing)."""
    n, _, h, w = source.shape
    size = int(h * 0.5 + 0.5)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    tops = torch.arange(h).view(-1, 1, 1, 1) - size // 2
    lefts = torch.arange(w).view(1, -1, 1, 1) - size // 2
    inside = ((ys >= tops) & (ys < tops + size) & (xs >= lefts) & (xs < lefts + size)).view(-1, 1, 1, h, w)
    candidates = source.unsqueeze(0) * (~inside).to(source.dtype)  # (centres, n, C, H, W)
    match = (candidates == x.unsqueeze(0)).flatten(2).all(2).any(0)
    return match.all() & (x != source).any()


def _recoloured(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Per row (one channel): `x` = a * `source` + b with a contrast a in [0.5, 1.5], not the identity everywhere."""
    s, t = source.flatten(1).double(), x.flatten(1).double()
    sc, tc = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    a = (sc * tc).sum(1) / sc.square().sum(1)
    b = t.mean(1) - a * s.mean(1)
    fits = (t - (a[:, None] * s + b[:, None])).abs().max() < 1e-4
    return fits & (a >= 0.5 - 1e-4).all() & (a <= 1.5 + 1e-4).all() & ((a - 1).abs() + b.abs() > 1e-3).any()


AUGMENT_CHECKS = {"translation": _translated, "cutout": _cut_out, "color": _recoloured}


@pytest.mark.parametrize("policy", sorted(AUGMENT_CHECKS))
def test_augment_transforms_every_input_of_d(tmp_path, policy):
    plain = make_trainer(tmp_path / "plain", steps=2)
    plain_record = Recorder(plain)
    plain.run()  # the same real batches (the data order depends only on seed and step), untransformed
    trainer = make_trainer(tmp_path / "run", steps=2, augment=policy)
    record = Recorder(trainer)
    trainer.run()
    check = AUGMENT_CHECKS[policy]
    for step in range(2):
        (real,) = plain_record.real(step)
        fakes = [f for s, f in record.fakes if s == step]
        calls = record.at(step)
        assert len(calls) == 3 and not record.real(step)  # no call of D saw an untransformed real batch
        kinds = []
        for call in calls:
            if check(call.x, real.x):
                kinds.append("real")
            elif any(check(call.x, fake) for fake in fakes):
                kinds.append("fake")
        assert sorted(kinds) == ["fake", "fake", "real"], f"step {step}: {policy} inputs matched {kinds}"


# ---------------------------------------------------------------------------------------------------------------------
# distributed runs
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def one_process_group():
    """A one-process gloo group and its `World`, left again afterwards."""
    import torch.distributed as dist
    import torch.distributed.nn.functional  # noqa: F401 - before the group exists, as World.from_env does

    from ganzoo.trainer.distributed import World

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield World(rank=0, world_size=1, local_rank=0)
    finally:
        dist.destroy_process_group()


def _norms(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in module.modules() if "BatchNorm" in type(m).__name__]


@pytest.mark.parametrize("sync", [True, False])
def test_sync_batchnorm_trains_with_batchnorm_over_the_global_batch(tmp_path, one_process_group, sync):
    trainer = make_trainer(tmp_path / "run", steps=2, world=one_process_group, sync_batchnorm=sync)
    training = _norms(trainer.G) + _norms(trainer.D)  # the layers as the trainer holds them
    assert _norms(trainer.G) and _norms(trainer.D)
    ran: list[str] = []
    for norm in training:
        norm.register_forward_hook(lambda m, args, out: ran.append(type(m).__name__))
    trainer.run()
    assert set(ran) == ({"GlobalBatchNorm"} if sync else {"BatchNorm2d"})
    assert len(ran) >= 2 * len(training)  # every layer, at every step
    # afterwards the model has its own BatchNorm layers back, holding the weights it trained
    restored = _norms(trainer.G) + _norms(trainer.D)
    assert {type(m).__name__ for m in restored} == {"BatchNorm2d"}
    assert all(a.weight is b.weight and a.running_mean is b.running_mean
               for a, b in zip(training, restored, strict=True))


def test_sync_batchnorm_on_one_process_trains_as_plain_batchnorm(tmp_path, one_process_group):
    """The global BatchNorm of one process computes what BatchNorm computes (up to float rounding)."""
    synced = make_trainer(tmp_path / "sync", steps=2, world=one_process_group, sync_batchnorm=True, optimizer="sgd")
    plain = make_trainer(tmp_path / "plain", steps=2, world=one_process_group, optimizer="sgd")
    synced.run()
    plain.run()
    for a, b in zip(synced.D.state_dict().values(), plain.D.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_sync_batchnorm_in_one_process_is_plain_batchnorm_and_says_so(tmp_path, caplog):
    """Without a process group the batch is the global batch: the option is satisfied as it is, the run equals one
    without it, and a warning says so rather than ignoring it silently (as for a model without BatchNorm)."""
    runs = {}
    for sync in (True, False):
        caplog.clear()
        with caplog.at_level("WARNING", logger="ganzoo"):
            runs[sync] = make_trainer(tmp_path / str(sync), steps=2, sync_batchnorm=sync)
            runs[sync].run()
        said = [r.getMessage() for r in caplog.records if "sync_batchnorm" in r.getMessage()]
        assert said == (["sync_batchnorm: this run is one process, whose batch is the global batch, so BatchNorm "
                         "already normalises over it; the option matters in distributed runs (--nproc, torchrun)"]
                        if sync else [])
        assert {type(m).__name__ for m in _norms(runs[sync].D)} == {"BatchNorm2d"}
    for a, b in zip(runs[True].D.state_dict().values(), runs[False].D.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    caplog.clear()
    with caplog.at_level("WARNING", logger="ganzoo"):
        make_trainer(tmp_path / "r3gan", arch="r3gan", sync_batchnorm=True)  # no BatchNorm anywhere
    assert any("neither G nor D has a BatchNorm layer" in r.getMessage() for r in caplog.records)


def test_label_noise_with_label_smoothing_is_refused_as_one_would_be_unused(tmp_path):
    from ganzoo.errors import ConfigError
    from ganzoo.testing import tiny_train

    with pytest.raises(ConfigError, match="label_noise draws D's targets itself .* set one of them"):
        tiny_train(ARCH, tmp_path / "run", steps=1, recipe={"label_noise": True, "label_smoothing": 0.1})
    assert not (tmp_path / "run").exists()


def _ada_run(tmp_path: Path, **recipe: Any) -> tuple[Trainer, Recorder]:
    """Three steps of ADA that keeps p at 0 (a target r never reaches), so D's inputs are the images as they are."""
    trainer = make_trainer(tmp_path, augment="xflip", ada_target=0.99, ada_interval=1, **recipe)
    recorder = Recorder(trainer)
    trainer.run()
    return trainer, recorder


def test_ada_signal_held_out_ranks_ds_logits_on_training_reals_against_held_back_reals(tmp_path):
    """Held out: at every D step D also scores held-back images, which no training batch holds, and p follows the
    ranking of that step's training reals against them (2 AUC - 1). Train: D scores the training reals alone, and p
    follows E[sign D(x)] (the loss's threshold is 0)."""
    from ganzoo.trainer.ada import held_out_signal

    trainer, rec = _ada_run(tmp_path / "held", ada_signal="held-out")
    held = set(rec.dataset_rows(trainer.held_out.images.float().div(127.5).sub(1.0)))
    logged = [m["ada_held_out"] for m in metrics(tmp_path / "held")]
    for step in range(3):
        (train, scored) = rec.real(step)  # the step's real batch, then the held-back chunk, both dataset rows
        assert not set(rec.dataset_rows(train.x)) & held and len(train.x) == BATCH
        assert set(rec.dataset_rows(scored.x)) <= held and len(scored.x) == 64
        assert logged[step] == pytest.approx(held_out_signal(train.out, scored.out).item(), rel=1e-6, abs=1e-7)
        assert "ada_rt" not in metrics(tmp_path / "held")[step]
    trainer, rec = _ada_run(tmp_path / "train", ada_signal="train")
    assert trainer.held_out is None
    logged = [m["ada_rt"] for m in metrics(tmp_path / "train")]
    for step in range(3):
        (train,) = rec.real(step)
        assert logged[step] == pytest.approx(train.out.sign().mean().item(), rel=1e-6, abs=1e-7)


def test_ada_holdout_is_how_many_images_are_held_back_and_scored(tmp_path):
    """12 images held back (instead of the automatic 256 of 5,000): D scores those 12 at every D step, and no
    training batch holds any of them."""
    trainer, rec = _ada_run(tmp_path / "run", ada_holdout=12)
    assert len(trainer.held_out) == 12
    held = rec.dataset_rows(trainer.held_out.images.float().div(127.5).sub(1.0))
    assert len(set(held)) == 12
    for step in range(3):
        train, scored = rec.real(step)
        assert sorted(rec.dataset_rows(scored.x)) == sorted(held)  # all 12, every step
        assert not set(rec.dataset_rows(train.x)) & set(held)
    assert trainer.run_info["held_out"] == 12


#: each field of Recipe and the tests here that fail when the trainer ignores it
TESTED_BY = {
    "steps": ["test_steps_is_the_number_of_generator_updates"],
    "batch_size": ["test_batch_size_is_the_rows_of_every_batch"],
    "loss": ["test_loss_is_the_named_loss_of_the_zoo"],
    "label_smoothing": ["test_label_smoothing_makes_the_real_target_one_minus_s"],
    "label_noise": ["test_label_noise_draws_targets_real_in_0_7_to_1_2_fake_in_0_to_0_3"],
    "gp_weight": ["test_gradient_penalty_is_computed_at_interpolates_and_added_with_its_weight"],
    "r1_gamma": ["test_r1_is_applied_on_multiples_of_its_interval_and_scaled_by_it"],
    "r1_interval": ["test_r1_is_applied_on_multiples_of_its_interval_and_scaled_by_it"],
    "clip_value": ["test_clip_value_keeps_every_d_weight_within_c_after_every_d_step"],
    "drift": ["test_drift_adds_exactly_drift_times_the_mean_squared_real_logit"],
    "optimizer": ["test_optimizer_and_its_hyperparameters_are_the_recipes"],
    "g_lr": ["test_g_lr_and_d_lr_are_the_step_sizes_of_g_and_d"],
    "d_lr": ["test_g_lr_and_d_lr_are_the_step_sizes_of_g_and_d"],
    "betas": ["test_optimizer_and_its_hyperparameters_are_the_recipes"],
    "rho": ["test_optimizer_and_its_hyperparameters_are_the_recipes"],
    "eps": ["test_optimizer_and_its_hyperparameters_are_the_recipes"],
    "momentum": ["test_optimizer_and_its_hyperparameters_are_the_recipes"],
    "lr_decay": ["test_lr_decay_divides_the_learning_rate_by_one_plus_decay_times_step"],
    "d_steps": ["test_d_steps_updates_d_that_often_per_g_step_each_on_its_own_real_batch"],
    "ema_kimg": ["test_ema_weights_are_the_hand_computed_average"],
    "ema_rampup": ["test_ema_weights_are_the_hand_computed_average"],
    "instance_noise": ["test_instance_noise_has_std_sigma0_decayed_linearly_to_zero"],
    "instance_noise_steps": ["test_instance_noise_has_std_sigma0_decayed_linearly_to_zero"],
    "augment": ["test_augment_transforms_every_input_of_d"],
    # and, two processes against one, in tests/test_distributed.py:
    # test_synchronised_batchnorm_on_two_processes_is_close_to_one_process
    "sync_batchnorm": ["test_sync_batchnorm_trains_with_batchnorm_over_the_global_batch"],
    # the fields of post-2019 GANs, tested in tests/test_modern.py
    "r2_gamma": ["test_r2_is_applied_at_the_fakes_of_the_step_on_multiples_of_the_interval",
                 "test_modern::test_r1_and_r2_penalise_ds_gradient_at_the_reals_and_at_the_fakes_by_hand"],
    "loss_options": ["test_modern::test_a_loss_option_set_in_the_recipe_changes_training"],
    "g_betas": ["test_modern::test_separate_betas_for_g_and_d"],
    "d_betas": ["test_modern::test_separate_betas_for_g_and_d"],
    "schedules": ["test_modern::test_schedules_drive_learning_rates_betas_and_loss_weights"],
    "augment_p": ["test_modern::test_augmentation_probability_reaches_ds_inputs"],
    # p moves by batch * interval / (kimg * 1000) every interval D steps, towards the target: both tests check all three
    "ada_target": ["test_modern::test_ada_adjusts_p_every_ada_interval_d_steps_by_batch_times_interval_over_kimg",
                   "test_modern::test_ada_p_is_logged_and_a_resumed_run_continues_bit_identically"],
    "ada_kimg": ["test_modern::test_ada_adjusts_p_every_ada_interval_d_steps_by_batch_times_interval_over_kimg",
                 "test_modern::test_ada_p_is_logged_and_a_resumed_run_continues_bit_identically"],
    "ada_interval": ["test_modern::test_ada_adjusts_p_every_ada_interval_d_steps_by_batch_times_interval_over_kimg"],
    "ada_signal": ["test_ada_signal_held_out_ranks_ds_logits_on_training_reals_against_held_back_reals"],
    "ada_holdout": ["test_ada_holdout_is_how_many_images_are_held_back_and_scored",
                    "test_ada::test_a_run_records_how_many_images_it_held_back"],
    # what a step does with G and D (ganzoo.objectives), on pix2pix, in tests/test_pix2pix.py
    "objective": ["test_pix2pix::test_the_objective_is_what_the_step_does",
                  "test_pix2pix::test_objectives_and_tasks_must_agree"],
    "objective_options": ["test_pix2pix::test_l1_weight_is_the_lambda_of_the_generator_loss",
                          "test_pix2pix::test_objectives_and_tasks_must_agree"],
    # path-length regularisation (StyleGAN2), on stylegan-lite, in tests/test_path_length.py
    "pl_weight": ["test_path_length::test_pl_weight_and_pl_interval_scale_the_term_in_gs_gradient",
                  "test_path_length::test_pl_penalty_follows_the_moving_target_on_multiples_of_pl_interval"],
    "pl_interval": ["test_path_length::test_pl_penalty_follows_the_moving_target_on_multiples_of_pl_interval",
                    "test_path_length::test_pl_weight_and_pl_interval_scale_the_term_in_gs_gradient"],
}


def _module_tree(module: str) -> ast.Module:
    return ast.parse((Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8"))


def _mentions(node: ast.AST) -> set[str]:
    """What `node` can set or read a recipe field by: keyword argument names, attribute names, string constants."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.keyword) and sub.arg:
            found.add(sub.arg)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.add(sub.value)
    return found


def _test_uses(name: str) -> set[str] | None:
    """The names a test uses to set or read recipe fields (`_mentions`), in its body and decorators and in the
    module-level values it refers to (a recipe dict, a table of cases), followed through further values but not
    through functions, so that a shared helper's defaults (make_trainer's steps, ...) count for no test. None when
    `name` (`function` here, or `module::function` in tests/module.py) is no test function."""
    module, sep, function = name.rpartition("::")
    tree = _module_tree(module if sep else Path(__file__).stem)
    values: dict[str, ast.AST] = {}
    test: ast.FunctionDef | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function and function.startswith("test_"):
            test = node
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Name):
                values[target.id] = node
    if test is None:
        return None
    used, todo, followed = set(), [test], set()
    while todo:
        node = todo.pop()
        used |= _mentions(node)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in values and sub.id not in followed:
                followed.add(sub.id)
                todo.append(values[sub.id])
    return used


def test_every_recipe_field_has_a_test_here():
    """A field added to `Recipe` needs a test that fails when the trainer ignores it, named in TESTED_BY; each named
    test exists and sets or reads that very field (the mutation exercise, breaking each field's use one at a time,
    is what shows the tests fail when a field is ignored)."""
    assert sorted(TESTED_BY) == sorted(Recipe.field_names())
    uses = {name: _test_uses(name) for names in TESTED_BY.values() for name in names}
    missing = [name for name, used in uses.items() if used is None]
    assert not missing, f"TESTED_BY names tests that do not exist: {missing}"
    unused = [f"{field}: {name}" for field, names in TESTED_BY.items() for name in names if field not in uses[name]]
    assert not unused, f"TESTED_BY names tests that never set or read the field: {unused}"


def test_the_field_check_sees_a_test_that_does_not_use_its_field():
    """The check above is not vacuous: a test of another field, or a helper's default, does not count."""
    assert "r2_gamma" in _test_uses("test_r2_is_applied_at_the_fakes_of_the_step_on_multiples_of_the_interval")
    assert "r2_gamma" not in _test_uses("test_r1_is_applied_on_multiples_of_its_interval_and_scaled_by_it")
    assert "batch_size" not in _test_uses("test_steps_is_the_number_of_generator_updates")  # make_trainer's default
    assert "ada_interval" in _test_uses("test_modern::test_ada_p_is_logged_and_a_resumed_run_continues_bit_identically")
    assert _test_uses("make_trainer") is None and _test_uses("test_modern::no_such_test") is None

"""Path-length regularisation (Karras et al. 2020, section 3.2) as the recipe fields `pl_weight` and `pl_interval`.

The trainer is watched from outside the loss: the generator's `synthesize` (which only the regulariser calls) and the
random draws the loss module makes are recorded, the path lengths, the moving target and the penalty are recomputed
by hand from them, and compared with what `metrics.jsonl`, G's gradients and the checkpoints show.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import ganzoo
import ganzoo.losses
from ganzoo.data import load_dataset
from ganzoo.errors import ConfigError
from ganzoo.interfaces import Recipe, exposes_w
from ganzoo.model import build_model
from ganzoo.registry import get_architecture
from ganzoo.testing import assert_same_state, tiny_config, tiny_train
from ganzoo.trainer.checkpoint import Checkpoint, find_checkpoints
from ganzoo.trainer.loop import RunOptions, Trainer

ARCH = "stylegan-lite"
BATCH = 8


def make_trainer(out: Path, **recipe: Any) -> Trainer:
    """stylegan-lite's tiny config on mnist-5k, batch 8, `Recipe()`'s defaults with `recipe` applied, logging every
    step."""
    spec = get_architecture(ARCH)
    cfg = spec.make_config(None, **tiny_config(ARCH))
    rec = Recipe(**{"batch_size": BATCH, "steps": 4, **recipe})
    torch.manual_seed(0)
    model = build_model(ARCH, cfg)
    options = RunOptions(device="cpu", seed=0, log_every=1, sample_every=10**6, checkpoint_every=10**6, grid_size=4)
    dataset = load_dataset("mnist-5k", img_size=cfg.img_size, channels=cfg.channels)
    return Trainer(model, rec, dataset, options, out)


class PathRecorder:
    """Records every call of G.synthesize (the regulariser's) and, when the loss module then draws a random image of
    the same shape (y), the gradient d sum(images * y / sqrt(H W)) / d ws, computed at once while the graph lives."""

    def __init__(self, trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trainer = trainer
        self.calls: list[dict[str, Any]] = []
        G = trainer.G
        synthesize = G.synthesize

        def recorded(ws: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            images = synthesize(ws, labels)
            self.calls.append({"step": trainer.step, "ws": ws, "images": images})
            return images

        G.synthesize = recorded
        draw_rows = ganzoo.losses.draw_rows

        def draws(n: int, draw: Any) -> torch.Tensor:
            value = draw_rows(n, draw)
            last = self.calls[-1] if self.calls else None
            if last is not None and "grad" not in last and value.shape == last["images"].shape:
                h, w = value.shape[-2:]
                (grad,) = torch.autograd.grad((last["images"] * value / math.sqrt(h * w)).sum(), last["ws"],
                                              retain_graph=True)
                last["grad"] = grad.detach()
            return value

        monkeypatch.setattr(ganzoo.losses, "draw_rows", draws)


def metrics(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def test_pl_penalty_follows_the_moving_target_on_multiples_of_pl_interval(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path / "run", steps=5, pl_weight=2.0, pl_interval=2)
    record = PathRecorder(trainer, monkeypatch)
    trainer.run()
    lines = metrics(tmp_path / "run")
    assert [c["step"] for c in record.calls] == [0, 2, 4]
    target = 0.0
    for call in record.calls:
        ws, grad = call["ws"], call["grad"]
        assert ws.shape == (BATCH // 2, trainer.G.num_style_layers, trainer.G.w_dim)  # the batch shrunk by 2
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()  # squared lengths averaged over the style layers
        target = target + 0.01 * (lengths.mean().item() - target)
        penalty = (lengths - target).square().mean().item()
        line = lines[call["step"]]
        assert line["pl_penalty"] == pytest.approx(penalty, rel=1e-5)
        assert line["pl_length"] == pytest.approx(lengths.mean().item(), rel=1e-5)
    assert all("pl_penalty" not in line for line in lines if line["step"] - 1 not in (0, 2, 4))
    (_, last), = find_checkpoints(tmp_path / "run" / "checkpoints")[-1:]
    assert Checkpoint.load(last).tensors["loss.pl_mean"].item() == pytest.approx(target, rel=1e-6)


def _g_gradients(out: Path, **recipe: Any) -> list[torch.Tensor]:
    trainer = make_trainer(out, steps=1, **recipe)
    grads: list[torch.Tensor] = []
    trainer.opt_G.register_step_pre_hook(lambda opt, args, kwargs: grads.extend(
        p.grad.detach().clone() for group in opt.param_groups for p in group["params"] if p.grad is not None))
    trainer.run()
    return grads


def test_pl_weight_and_pl_interval_scale_the_term_in_gs_gradient(tmp_path):
    """Every run below draws the same random numbers on its first step (the regulariser is due at step 0), so G's
    gradient is the adversarial one plus pl_weight * pl_interval times the penalty's: linear in the weight, and
    weight 1 at interval 2 gives what weight 2 at interval 1 gives."""
    g1, g2, g3 = (_g_gradients(tmp_path / f"w{w}", pl_weight=float(w), pl_interval=2) for w in (1, 2, 3))
    g_once = _g_gradients(tmp_path / "every", pl_weight=2.0, pl_interval=1)
    flat = [torch.cat([g.flatten() for g in grads]) for grads in (g1, g2, g3, g_once)]
    step = flat[1] - flat[0]
    assert step.norm() > 1e-3 * flat[0].norm()  # the penalty reaches G's weights
    assert torch.allclose(flat[2] - flat[1], step, rtol=1e-3, atol=1e-6 * step.abs().max().item())
    assert torch.allclose(flat[3], flat[0], rtol=1e-4, atol=1e-7)


def test_a_run_with_path_length_regularisation_resumes_exactly(tmp_path):
    """The moving target is in the checkpoint: a run stopped at step 3 and resumed equals one that never stopped (the
    step-4 penalty depends on the target steps 0 and 2 moved)."""
    recipe = {"pl_weight": 2.0, "pl_interval": 2}

    class Stop(Exception):
        pass

    def stop_at_3(step: int, total: int, record: Any) -> None:
        if step == 3:
            raise Stop

    whole = tiny_train(ARCH, tmp_path / "whole", steps=6, recipe=recipe, checkpoint_every=3)
    with pytest.raises(Stop):
        tiny_train(ARCH, tmp_path / "split", steps=6, recipe=recipe, checkpoint_every=3, progress=stop_at_3)
    saved = Checkpoint.load(find_checkpoints(tmp_path / "split" / "checkpoints")[-1][1])
    assert saved.tensors["loss.pl_mean"].item() > 0
    resumed = ganzoo.train(out=tmp_path / "split", steps=6, resume=True)
    for name in ("generator", "discriminator", "ema"):
        assert_same_state(getattr(whole, name), getattr(resumed, name))


def test_pl_weight_needs_a_generator_with_a_w_space(tmp_path):
    assert exposes_w(ganzoo.create(ARCH, **tiny_config(ARCH)).generator)
    assert not exposes_w(ganzoo.create("dcgan", **tiny_config("dcgan")).generator)
    with pytest.raises(ConfigError, match=r"^pl_weight needs a generator with an intermediate latent space W .* "
                                          r"dcgan's has none; set pl_weight=0") as info:
        tiny_train("dcgan", tmp_path / "run", steps=1, recipe={"pl_weight": 2.0})
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="pl_interval must be at least 1"):
        Recipe(pl_interval=0)

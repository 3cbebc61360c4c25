"""The shared trainer: seeded determinism, Ctrl-C, divergence, the seed lectures' tricks, run folders."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

import ganzoo
from ganzoo.errors import GanzooUsageError
from ganzoo.testing import assert_same_state, tiny_train
from ganzoo.trainer import TrainingDiverged, TrainingInterrupted


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = tiny_train("dcgan", tmp_path / "a", steps=3, seed=1)
    b = tiny_train("dcgan", tmp_path / "b", steps=3, seed=1)
    c = tiny_train("dcgan", tmp_path / "c", steps=3, seed=2)
    assert_same_state(a.generator, b.generator)
    assert not torch.equal(a.generator.net[0].weight, c.generator.net[0].weight)


@pytest.fixture
def sigint_handler():
    """A known SIGINT handler for the test (the suite may run with SIGINT ignored, as a background job does);
    the handler the suite had is put back afterwards."""
    marker = []

    def handler(signum, frame):  # never reached: the trainer's own handler is installed over it during the run
        marker.append(signum)

    before = signal.signal(signal.SIGINT, handler)
    yield handler
    signal.signal(signal.SIGINT, before)


def _signal_at(at: int, sig: signal.Signals):
    """A progress callback that sends this process `sig` after step `at`."""
    def progress(step, total, record):
        if step == at:
            os.kill(os.getpid(), sig)

    return progress


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_exactly(tmp_path, sigint_handler):
    with pytest.raises(TrainingInterrupted) as info:
        tiny_train("gan", tmp_path / "run", steps=6, progress=_signal_at(3, signal.SIGINT))
    assert info.value.step == 3 and info.value.checkpoint.is_file()
    assert (tmp_path / "run" / "model" / "generator.safetensors").is_file()  # exported on the way out
    assert signal.getsignal(signal.SIGINT) is sigint_handler  # the handler from before the run, restored
    resumed = ganzoo.train(out=tmp_path / "run", resume=True)
    whole = tiny_train("gan", tmp_path / "whole", steps=6)
    assert_same_state(whole.generator, resumed.generator)
    assert_same_state(whole.discriminator, resumed.discriminator)


def test_an_ignored_sigint_stays_ignored_and_sigterm_still_stops(tmp_path):
    """Started with SIGINT ignored (a background job, a CI runner), the run does not take Ctrl-C over: a SIGINT
    changes nothing and SIG_IGN is still there afterwards; SIGTERM still stops it with a checkpoint."""
    before_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    before_term = signal.getsignal(signal.SIGTERM)
    try:
        model = tiny_train("gan", tmp_path / "ignored", steps=4, progress=_signal_at(2, signal.SIGINT))
        assert model.info["training"]["steps"] == 4  # ran to the end
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN

        with pytest.raises(TrainingInterrupted) as info:
            tiny_train("gan", tmp_path / "term", steps=4, progress=_signal_at(2, signal.SIGTERM))
        assert info.value.step == 2 and info.value.checkpoint.is_file()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is before_term
    finally:
        signal.signal(signal.SIGINT, before_int)


def test_non_finite_losses_stop_training_with_the_step(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"diverged: .* near step 2 .*no checkpoint"):
        tiny_train("gan", tmp_path / "run", steps=4, log_every=2, recipe={"g_lr": 1e30, "d_lr": 1e30})


@pytest.mark.parametrize("recipe", [
    {"label_smoothing": 0.1},
    {"label_noise": True},
    {"instance_noise": 0.1},
    {"d_steps": 3},
    {"loss": "hinge"},
    {"loss": "least-squares"},
    {"loss": "minimax"},
    {"loss": "wasserstein", "gp_weight": 10.0, "optimizer": "adam", "betas": [0.0, 0.9]},
    {"loss": "wasserstein", "clip_value": 0.01, "optimizer": "rmsprop"},
    {"r1_gamma": 1.0, "r1_interval": 2},
    {"optimizer": "sgd", "momentum": 0.5, "lr_decay": 1e-3},
    {"ema_kimg": 0.0},
])
def test_recipe_options_train(tmp_path, recipe):
    model = tiny_train("dcgan", tmp_path / "run", steps=3, recipe=recipe, log_every=1)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(line["d_loss"])) for line in lines)
    assert (model.ema is None) == (recipe.get("ema_kimg", 2.0) == 0)


def test_weight_clipping_holds_after_training(tmp_path):
    model = tiny_train("gan", tmp_path / "run", steps=2, recipe={"loss": "wasserstein", "clip_value": 0.01})
    assert max(p.abs().max().item() for p in model.discriminator.parameters()) <= 0.01 + 1e-9


def test_keras_preset_trains_with_rmsprop(tmp_path):
    model = ganzoo.train("dcgan", preset="keras-mnist", steps=1, batch_size=4, out=tmp_path / "run", grid_size=4)
    plan = json.loads((tmp_path / "run" / "config.json").read_text())
    assert plan["preset"] == "keras-mnist" and plan["recipe"]["optimizer"] == "rmsprop"
    assert model.config.variant == "keras-mnist"


def test_channels_last_and_rgb_data(tmp_path):
    model = tiny_train("dcgan", tmp_path / "run", steps=2, channels_last=True, config={"channels": 3})
    assert model.sample(2, seed=0).shape == (2, 3, 28, 28)


def test_default_out_is_numbered_when_taken(tmp_path):
    first = tiny_train("gan", None, steps=1)
    second = tiny_train("gan", None, steps=1)
    assert first.info["run"] == os.path.join("runs", "gan") and second.info["run"] == os.path.join("runs", "gan-2")


def test_batch_larger_than_dataset_is_a_clear_error(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.new("L", (28, 28), color=i * 40).save(folder / f"{i}.png")
    with pytest.raises(GanzooUsageError, match="fewer than the batch size"):
        tiny_train("gan", tmp_path / "run", steps=1, data=str(folder))


def test_overwrite_replaces_only_run_files(tmp_path):
    run = tmp_path / "run"
    tiny_train("gan", run, steps=1)
    (run / "notes.txt").write_text("mine")
    tiny_train("gan", run, steps=2, overwrite=True)
    assert (run / "notes.txt").read_text() == "mine"
    assert json.loads((run / "config.json").read_text())["recipe"]["steps"] == 2

"""Fine-tuning: `ganzoo train --init MODEL` and `ganzoo.train(init=MODEL)` start from a trained model."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

import ganzoo
from ganzoo._io import sha256_of
from ganzoo.cli import cli
from ganzoo.testing import assert_same_state, tiny_config, tiny_train
from ganzoo.trainer.loop import Trainer


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def one_error(result, code):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture
def first_step(monkeypatch):
    """The networks' weights as the first training step finds them: {"G", "D", "EMA"} -> state dict copies."""
    seen = {}
    original = Trainer.train_step

    def train_step(self):
        if self.step == 0 and not seen:
            for name, module in (("G", self.G), ("D", self.D), ("EMA", self.model.ema)):
                seen[name] = {k: v.clone() for k, v in module.state_dict().items()}
        original(self)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    return seen


def assert_state_equals_file(state, path):
    stored = load_file(str(path))
    assert state.keys() == stored.keys()
    for key, value in stored.items():
        assert state[key].equal(value), key


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained tiny DCGAN run: its model/ has a generator (the EMA weights) and a discriminator."""
    run = tmp_path_factory.mktemp("finetune") / "source"
    tiny_train("dcgan", run, steps=2)
    return run


def test_finetuning_starts_from_the_sources_generator_ema_and_discriminator(source, tmp_path, first_step):
    model = ganzoo.train(init=source, steps=2, out=tmp_path / "tuned", batch_size=8, grid_size=4, device="cpu")
    assert_state_equals_file(first_step["G"], source / "model" / "generator.safetensors")
    assert_state_equals_file(first_step["EMA"], source / "model" / "generator.safetensors")
    assert_state_equals_file(first_step["D"], source / "model" / "discriminator.safetensors")
    assert not first_step["G"]["net.0.weight"].equal(model.generator.state_dict()["net.0.weight"])  # then trained

    plan = json.loads((tmp_path / "tuned" / "config.json").read_text())
    source_config = json.loads((source / "model" / "config.json").read_text())
    assert plan["architecture"] == "dcgan" and plan["config"] == source_config["config"]
    assert plan["init"] == {
        "source": str(source), "from": str((source / "model").resolve()),
        "generator_sha256": sha256_of(source / "model" / "generator.safetensors"),
        "discriminator_sha256": sha256_of(source / "model" / "discriminator.safetensors")}
    exported = json.loads((tmp_path / "tuned" / "model" / "config.json").read_text())
    assert exported["training"]["init"]["generator_sha256"] == plan["init"]["generator_sha256"]


def test_a_source_without_discriminator_gets_a_new_one_said_once(tmp_path, first_step, caplog):
    config = tiny_config("gan")
    ganzoo.create("gan", discriminator=False, seed=5, **config).save_pretrained(tmp_path / "g-only", samples=False)
    assert not (tmp_path / "g-only" / "discriminator.safetensors").exists()
    with caplog.at_level(logging.INFO, logger="ganzoo"):
        ganzoo.train(init=tmp_path / "g-only", steps=1, out=tmp_path / "tuned", batch_size=8, grid_size=4,
                     device="cpu", seed=3)
    said = [r for r in caplog.records if "no discriminator" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING and "seed 3" in said[0].getMessage()
    assert_state_equals_file(first_step["G"], tmp_path / "g-only" / "generator.safetensors")
    fresh = ganzoo.create("gan", seed=3, **config).discriminator  # what a run from scratch with seed 3 starts with
    assert first_step["D"].keys() == fresh.state_dict().keys()
    assert all(first_step["D"][k].equal(v) for k, v in fresh.state_dict().items())
    plan = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert plan["init"]["discriminator_sha256"] is None


@pytest.mark.parametrize("flags, fragment", [
    (["--img-size", "32"], "img_size=32"),
    (["--set", "d_width=16"], "d_width=16"),
    (["--set", "z_dim=7"], "z_dim=7"),
])
def test_a_change_that_breaks_the_weights_shapes_is_refused_before_a_run_folder(source, tmp_path, flags, fragment):
    out = tmp_path / "tuned"
    line = one_error(invoke("train", "--init", source, *flags, "--steps", 1, "--out", out), 2)
    assert f"cannot fine-tune {source} with {fragment}: the " in line and "train from scratch without --init" in line
    assert not out.exists()


def test_changes_that_keep_the_shapes_are_allowed(source, tmp_path, first_step):
    out = tmp_path / "tuned"
    result = invoke("train", "--init", source, "--set", "dropout=0.1", "--g-lr", 1e-4, "--steps", 1, "-b", 8,
                    "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "config.json").read_text())
    assert plan["config"]["dropout"] == 0.1 and plan["recipe"]["g_lr"] == 1e-4
    assert_state_equals_file(first_step["G"], source / "model" / "generator.safetensors")


def test_init_with_resume_or_another_architecture_is_a_usage_error(source, tmp_path):
    assert "--resume continues a run; pick one" in one_error(
        invoke("train", "--init", source, "--resume", "--out", source), 2)
    line = one_error(invoke("train", "--init", source, "--arch", "gan", "--out", tmp_path / "x"), 2)
    assert "is a dcgan model, not gan" in line
    assert not (tmp_path / "x").exists()
    with pytest.raises(ganzoo.errors.GanzooUsageError, match="pick one"):
        ganzoo.train(init=source, resume=True, out=source)


def test_a_finetuning_run_killed_before_its_first_checkpoint_starts_again_from_the_source(source, tmp_path):
    def killed_at_1(step, total, record):
        raise SystemExit("killed")

    run = tmp_path / "tuned"
    with pytest.raises(SystemExit):
        ganzoo.train(init=source, steps=3, out=run, batch_size=8, grid_size=4, device="cpu", progress=killed_at_1)
    resumed = ganzoo.train(out=run, resume=True)
    whole = ganzoo.train(init=source, steps=3, out=tmp_path / "whole", batch_size=8, grid_size=4, device="cpu")
    assert_same_state(whole.generator, resumed.generator)
    assert_same_state(whole.discriminator, resumed.discriminator)

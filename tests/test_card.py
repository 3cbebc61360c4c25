"""Model cards: the command in a card retrains the same config and recipe; metric names say their feature space."""

from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner

import ganzoo
from ganzoo.card import model_card, train_command
from ganzoo.cli import cli
from ganzoo.testing import tiny_train


@pytest.mark.parametrize("architecture, options", [
    ("wgan", {"preset": "clip", "recipe": {"batch_size": 8, "d_steps": 1, "betas": [0.5, 0.9]}}),
    ("cgan", {"recipe": {"batch_size": 8, "loss": "hinge"}}),
])
def test_the_card_command_reproduces_config_and_recipe(architecture, options, tmp_path):
    model = tiny_train(architecture, tmp_path / "run", steps=1, seed=3, **options)
    model = ganzoo.load(tmp_path / "run")
    command = train_command(model, model.info["training"])
    assert command.startswith(f"ganzoo train --arch {architecture} --data mnist-5k --steps 1 --batch-size 8")
    assert command.endswith("--seed 3") and command in (tmp_path / "run" / "model" / "README.md").read_text()
    result = CliRunner().invoke(cli, [*shlex.split(command)[1:], "--dry-run"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    config = model.config.to_dict()
    if architecture == "cgan":  # the trainer takes num_classes from the data; the dry run does not load it
        assert "num_classes" not in command and plan["config"]["num_classes"] == 0
        config["num_classes"] = 0
    assert plan["config"] == config
    assert plan["recipe"] == model.info["training"]["recipe"]


def test_an_untrained_model_has_no_command_and_metrics_name_their_features():
    gan = ganzoo.create("gan", seed=0, **ganzoo.registry.get_architecture("gan").test_config)
    assert train_command(gan, {}) is None
    gan.info["metrics"] = [{"name": "fid", "value": 12.3456789, "provenance": {"extractor": "inception"}},
                           {"name": "kid", "value": 0.5}]
    card = model_card(gan, {})
    assert "| FID (inception features) | 12.3457 |" in card and "| KID | 0.5 |" in card
    assert "name: FID (inception features)" in card and "Train it again" not in card

"""The pretrained catalogue: every entry the plugins declare is consistent, and an unpublished one says how to train it.

Tests run over `ganzoo.list_pretrained()`, so an entry a plugin adds is checked without anyone remembering to.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
from click.testing import CliRunner

import ganzoo
from ganzoo.card import DATASET_LICENSES
from ganzoo.cli import cli
from ganzoo.hub import NotPublishedError
from ganzoo.registry import get_pretrained

ENTRIES = ganzoo.list_pretrained()
MNIST_5K = ["cgan-mnist-5k", "dcgan-mnist-5k", "gan-mnist-5k", "progan-mnist-5k", "stylegan-lite-mnist-5k",
            "wgan-mnist-5k"]


def test_every_architecture_has_an_entry_on_the_embedded_digits():
    assert sorted(n for n in ENTRIES if n.endswith("-mnist-5k")) == MNIST_5K
    assert {get_pretrained(n)[0] for n in MNIST_5K} == set(ganzoo.list_models())


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_is_consistent(name):
    architecture, entry = get_pretrained(name)
    assert entry.name == name == f"{architecture}-{entry.dataset}"
    assert entry.repo_id == f"ganzoo/{name}"
    assert entry.license == DATASET_LICENSES[entry.dataset]
    assert entry.summary and entry.resolution > 0
    if entry.published:
        assert re.fullmatch(r"[0-9a-f]{40}", entry.revision)
        assert "generator.safetensors" in entry.sha256
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in entry.sha256.values())
    else:  # nothing to pin, nothing measured
        assert not entry.sha256 and not entry.metrics


@pytest.mark.parametrize("name", ENTRIES)
def test_recipe_is_a_train_command_that_makes_the_declared_resolution(name):
    architecture, entry = get_pretrained(name)
    args = shlex.split(entry.recipe)
    assert args[:2] == ["ganzoo", "train"]
    assert args[args.index("--arch") + 1] == architecture and args[args.index("--data") + 1] == entry.dataset
    result = CliRunner().invoke(cli, [*args[1:], "--dry-run"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["architecture"] == architecture and plan["config"]["img_size"] == entry.resolution


@pytest.mark.parametrize("name", [n for n in ENTRIES if not get_pretrained(n)[1].published])
@pytest.mark.parametrize("network", ["hub without the repo", "offline"])
def test_an_unpublished_entry_says_so_and_how_to_train_it(name, network, hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    if network == "offline":
        from huggingface_hub import constants

        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _, entry = get_pretrained(name)
    expected = f"{name} is in the catalogue but its weights are not published yet; train it yourself with " \
               f"`{entry.recipe} --out runs/{name}`, then load runs/{name}"
    with pytest.raises(NotPublishedError) as info:
        ganzoo.load(name)
    assert str(info.value) == expected
    result = CliRunner().invoke(cli, ["pull", name])
    assert result.exit_code == 1 and result.stderr == f"Error: {expected}\n"


def test_list_pretrained_shows_every_entry_with_its_repo_and_state():
    result = CliRunner().invoke(cli, ["list", "--pretrained"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["name", "architecture", "dataset"] and "Hub repo" in header
    assert [row.split()[0] for row in rows] == ENTRIES
    for row in rows:
        architecture, entry = get_pretrained(row.split()[0])
        assert row.split()[1:5] == [architecture, entry.dataset, f"{entry.resolution}px", entry.repo_id]
        assert row.endswith(f"published ({entry.revision[:7]})" if entry.published else "not published yet")
    only = CliRunner().invoke(cli, ["list", "--pretrained", "wgan*"]).stdout.splitlines()
    assert [row.split()[0] for row in only[1:]] == ["wgan-mnist-5k"]

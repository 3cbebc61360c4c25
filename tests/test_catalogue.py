"""The pretrained catalogue: every entry the plugins declare is consistent, says where it can be had, and an entry
available nowhere says how to train it. (Shipped model folders are checked in test_shipped.py.)

Tests run over `ganzoo.list_pretrained()`, so an entry a plugin adds is checked without anyone remembering to.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

import ganzoo
from ganzoo import registry
from ganzoo.card import DATASET_LICENSES
from ganzoo.cli import cli
from ganzoo.data import BUILTIN
from ganzoo.hub import NotPublishedError, availability
from ganzoo.registry import get_pretrained

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ganzoo.list_pretrained()
MNIST_5K = ["cgan-mnist-5k", "dcgan-mnist-5k", "gan-mnist-5k", "progan-mnist-5k", "r3gan-mnist-5k", "sngan-mnist-5k",
            "stylegan-lite-mnist-5k", "wgan-mnist-5k"]


def test_every_generative_architecture_has_an_entry_on_the_embedded_digits():
    # image-to-image architectures (pix2pix) translate pairs: the digits have none, so they have no such entry
    generative = {a for a in ganzoo.list_models() if registry.get_architecture(a).task == "generate"}
    assert "pix2pix" in set(ganzoo.list_models()) - generative
    assert sorted(n for n in ENTRIES if n.endswith("-mnist-5k")) == MNIST_5K
    assert {get_pretrained(n)[0] for n in MNIST_5K} == generative


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_is_consistent(name):
    architecture, entry = get_pretrained(name)
    # named after what made it: the architecture and its data, and for colour data the size too (32 and 64 px)
    assert entry.name == name
    assert name in (f"{architecture}-{entry.dataset}", f"{architecture}-{entry.dataset}-{entry.resolution}")
    assert entry.repo_id == f"ganzoo/{name}"
    assert entry.license == DATASET_LICENSES[entry.dataset]
    assert entry.summary and entry.resolution > 0
    if entry.on_hub:
        assert re.fullmatch(r"[0-9a-f]{40}", entry.revision)
    if entry.shipped:  # the built-in plugins keep every shipped model folder in the same place
        assert entry.files == f"pretrained/{name}"
    if entry.published:
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


def test_list_pretrained_shows_where_every_entry_can_be_had_and_what_it_needs():
    result = CliRunner().invoke(cli, ["list", "--pretrained"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["name", "architecture", "dataset", "size", "Hub", "repo", "where", "needs"]
    assert [row.split()[0] for row in rows] == ENTRIES
    for row in rows:
        architecture, entry = get_pretrained(row.split()[0])
        found = availability(entry.name)
        assert row.split()[1:5] == [architecture, entry.dataset, f"{entry.resolution}px", entry.repo_id]
        assert row.split()[5:] == f"{found.where} {found.needs}".split() and row.endswith(f"  {found.needs}")
        if entry.shipped:
            assert found.where == "shipped" and found.needs == "nothing: loads offline"
        elif entry.on_hub:
            assert found.where == f"hub@{entry.revision[:7]}"
            assert found.needs.startswith(f"a download from {entry.repo_id}")
        else:  # an entry whose data does not ship says so
            data = "" if entry.dataset in BUILTIN else f"{entry.dataset} (downloaded) + "
            assert (found.where, found.needs) == ("not yet", f"{data}training: {entry.recipe}")
    only = CliRunner().invoke(cli, ["list", "--pretrained", "wgan*"]).stdout.splitlines()
    assert [row.split()[0] for row in only[1:]] == ["wgan-mnist-5k"]


def test_the_readme_table_is_the_catalogue():
    """README's catalogue table: one row per entry with its data, size, where it can be had and its recipe."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    header = "| name | data | size | where | trained with `ganzoo train` ... |"
    assert header in text
    lines = text[text.index(header):].splitlines()[2:]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[:lines.index("")]]
    assert sorted(row[0].strip("`") for row in rows) == ENTRIES
    for name, data, size, where, recipe in rows:
        _, entry = get_pretrained(name.strip("`"))
        declared = " + ".join(w for w, yes in (("shipped", entry.shipped), ("hub", entry.on_hub)) if yes)
        assert [data, size, where] == [entry.dataset, str(entry.resolution), declared or "not yet"], name
        assert f"ganzoo train {recipe.strip('`')}" == entry.recipe

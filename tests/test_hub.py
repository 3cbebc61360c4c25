"""Publishing and loading through the Hub, against the loopback Hub server (tests/hub_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import ganzoo
from ganzoo import registry
from ganzoo.cli import cli
from ganzoo.errors import GanzooError, GanzooUsageError, WeightsError
from ganzoo.hub import NotPublishedError, pull, push, sha256_of
from ganzoo.interfaces import PretrainedCfg
from ganzoo.testing import tiny_train


@pytest.fixture
def online(hub, monkeypatch):
    """Point ganzoo (and the client it uses) at the loopback Hub, with a write token."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", hub.write_token)
    return hub


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hub") / "run"
    tiny_train("dcgan", out, steps=2)
    return out


def offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def catalogue_entry(monkeypatch, **fields):
    """Add an entry to the pretrained catalogue, as a plugin would declare it."""
    entry = PretrainedCfg(**{"name": "tiny-hub", "repo_id": "tester/tiny", "dataset": "mnist-5k", **fields})
    original = registry._catalogue
    monkeypatch.setattr(registry, "_catalogue", lambda: {**original(), entry.name: ("dcgan", entry)})
    return entry


def test_push_then_load_by_repo_id_in_an_empty_cache(online, tiny_run):
    result = push(tiny_run, "tester/tiny")
    assert result["commit_url"].endswith(result["commit"]) and result["revision"] == "main"
    stored = online.files("tester/tiny")
    assert set(stored) >= {"config.json", "generator.safetensors", "discriminator.safetensors", "README.md",
                           "samples.png"}
    card = stored["README.md"].decode()
    assert "library_name: ganzoo" in card and 'ganzoo.load("tester/tiny")' in card
    assert "- dcgan" in card and "unconditional-image-generation" in card and "cc-by-sa-3.0" in card
    local = ganzoo.load(tiny_run)
    for name in ("tester/tiny", "hf-hub:tester/tiny"):
        remote = ganzoo.load(name)
        assert torch.equal(local.sample(8, seed=1), remote.sample(8, seed=1))
        assert remote.info["source"].startswith("hf-hub:tester/tiny")


def test_revision_pinning(online, tiny_run, tmp_path):
    first = push(tiny_run, "tester/pinned")["commit"]
    retrained = tiny_train("dcgan", tmp_path / "again", steps=3, seed=7)
    second = push(retrained, "tester/pinned", message="second")["commit"]
    assert first != second
    old, new = ganzoo.load("tester/pinned", revision=first), ganzoo.load("tester/pinned")
    assert torch.equal(old.sample(4, seed=0), ganzoo.load(tiny_run).sample(4, seed=0))
    assert torch.equal(new.sample(4, seed=0), retrained.sample(4, seed=0))


def test_push_to_a_branch_and_a_private_repo(online, tiny_run):
    result = push(tiny_run, "tester/branched", branch="experiment", private=True)
    assert result["revision"] == "experiment"
    assert online.is_private("tester/branched") and "generator.safetensors" in online.files("tester/branched",
                                                                                           "experiment")
    assert ganzoo.load("tester/branched", revision="experiment").architecture == "dcgan"


def test_offline_loads_from_the_cache_and_says_what_is_missing(online, tiny_run, monkeypatch):
    push(tiny_run, "tester/cached")
    ganzoo.load("tester/cached")
    seen = len(online.requests)
    offline(monkeypatch)
    assert ganzoo.load("tester/cached").architecture == "dcgan"
    assert len(online.requests) == seen  # nothing was asked of the Hub
    with pytest.raises(GanzooError, match="not in the local cache and offline mode is on"):
        ganzoo.load("tester/never-downloaded")


def test_catalogue_entry_downloads_the_pinned_revision_and_verifies_it(online, tiny_run, monkeypatch):
    commit = push(tiny_run, "tester/tiny")["commit"]
    hashes = {f: sha256_of(tiny_run / "model" / f) for f in ("generator.safetensors", "discriminator.safetensors")}
    catalogue_entry(monkeypatch, revision=commit, sha256=hashes)
    push(tiny_train("dcgan", tiny_run.parent / "newer", steps=3, seed=9), "tester/tiny")  # main moves on
    assert "tiny-hub" in ganzoo.list_pretrained("tiny*")
    model = ganzoo.load("tiny-hub")
    assert torch.equal(model.sample(4, seed=0), ganzoo.load(tiny_run).sample(4, seed=0))
    assert model.info["source"] == f"hf-hub:tester/tiny@{commit}"


def test_a_checksum_mismatch_is_an_error_that_deletes_nothing(online, tiny_run, monkeypatch):
    commit = push(tiny_run, "tester/tiny")["commit"]
    catalogue_entry(monkeypatch, revision=commit, sha256={"generator.safetensors": "0" * 64})
    with pytest.raises(WeightsError, match="sha256 of generator.safetensors .* pull again"):
        ganzoo.load("tiny-hub")
    folder = pull("tester/tiny", revision=commit)  # the cached copy is still there
    assert (folder / "generator.safetensors").is_file()


def test_a_tampered_file_fails_verification(online, tiny_run, monkeypatch):
    commit = push(tiny_run, "tester/tiny")["commit"]
    hashes = {"generator.safetensors": sha256_of(tiny_run / "model" / "generator.safetensors")}
    catalogue_entry(monkeypatch, revision=commit, sha256=hashes)
    online.tamper("tester/tiny", "generator.safetensors", b"not the weights", revision=commit)
    with pytest.raises(WeightsError, match="sha256"):
        ganzoo.load("tiny-hub")


def test_an_unpublished_entry_says_how_to_train_it(online, monkeypatch, tiny_run):
    catalogue_entry(monkeypatch, recipe="ganzoo train --arch dcgan --data mnist-5k")
    with pytest.raises(NotPublishedError, match="not published yet.*ganzoo train --arch dcgan --data mnist-5k"):
        ganzoo.load("tiny-hub")
    with pytest.raises(NotPublishedError, match="ganzoo train --arch dcgan --data celeba"):
        ganzoo.load("dcgan-celeba")
    push(tiny_run, "tester/tiny")  # once a maintainer pushes it, the entry loads (unpinned until pinned)
    assert ganzoo.load("tiny-hub").architecture == "dcgan"


def test_a_cached_file_changed_after_download_is_caught_offline_too(online, tiny_run, monkeypatch):
    push(tiny_run, "tester/tiny")
    folder = pull("tester/tiny")
    blob = (folder / "generator.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:-4] + b"\0\0\0\0")
    offline(monkeypatch)
    with pytest.raises(WeightsError) as info:
        ganzoo.load("tester/tiny")
    advice = "remove it with `hf cache rm model/tester/tiny -y` and pull again"
    assert str(info.value) == "the cached generator.safetensors of tester/tiny was changed after it was downloaded " \
                              f"(its sha256 differs from the Hub's); {advice}"
    # the advice works: the command removes the cached copy, and pulling again gets the Hub's bytes back
    hf = Path(sys.executable).with_name("hf")
    done = subprocess.run([str(hf), "cache", "rm", "model/tester/tiny", "-y"], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    monkeypatch.delenv("HF_HUB_OFFLINE")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert torch.equal(ganzoo.load("tester/tiny").sample(2, seed=0), ganzoo.load(tiny_run).sample(2, seed=0))


def test_unknown_names_repos_and_revisions(online, tiny_run):
    with pytest.raises(GanzooUsageError, match="did you mean 'dcgan-celeba'"):
        ganzoo.load("dcgan-celebq")
    with pytest.raises(GanzooUsageError, match="no local folder or Hub repo named 'nobody/nothing'"):
        ganzoo.load("nobody/nothing")
    push(tiny_run, "tester/tiny")
    with pytest.raises(GanzooUsageError, match="no revision 'v9'"):
        ganzoo.load("tester/tiny", revision="v9")


def test_a_repo_missing_a_file(online):
    online.put("tester/partial", {"config.json": json.dumps({"architecture": "dcgan", "config": {}}).encode()})
    with pytest.raises(GanzooError, match="generator.safetensors|lacks a file"):
        ganzoo.load("tester/partial")


def test_an_unauthorised_push_names_the_fix(online, tiny_run, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(GanzooError, match="refused to write.*log in"):
        push(tiny_run, "tester/denied")
    assert "tester/denied" not in online.repos


def test_cli_push_pull_and_sample_by_repo_id(online, tiny_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["push", str(tiny_run), "--repo", "tester/cli", "-m", "from the CLI"])
    assert result.exit_code == 0, result.output
    assert "pushed to tester/cli@main: " in result.output and online.write_token not in result.output
    result = runner.invoke(cli, ["pull", "tester/cli"])
    assert result.exit_code == 0, result.output
    assert (tmp_path.parent / result.stdout.strip()).joinpath("generator.safetensors").is_file()
    result = runner.invoke(cli, ["sample", "tester/cli", "-n", "4", "-o", str(tmp_path / "g.png")])
    assert result.exit_code == 0 and (tmp_path / "g.png").is_file()
    result = runner.invoke(cli, ["pull", "nobody/nothing"])
    assert result.exit_code == 2 and result.stderr.startswith("Error: no local folder or Hub repo")


def test_gan_push_to_hub(online):
    gan = ganzoo.create("gan", seed=0, **registry.get_architecture("gan").test_config)
    result = gan.push_to_hub("tester/fresh")
    assert result["commit"] in online.commits("tester/fresh")
    assert torch.equal(ganzoo.load("tester/fresh").sample(3, seed=0), gan.sample(3, seed=0))

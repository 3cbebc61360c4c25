"""benchmarks/zoo.py end to end on one catalogue entry: train with its recipe, evaluate, push to the loopback Hub, and
ship it in its plugin's package (a third-party plugin's, in a temporary site folder)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from test_shipped import FILES, NAME, REPO, offline, write_plugin

import ganzoo
from ganzoo.hub import LOADED_FILES, sha256_of
from ganzoo.registry import get_pretrained, package_path
from ganzoo.testing import check_shipped

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--only", "gan-mnist-5k", "--steps", "2", "--eval-samples", "100", "--metrics", "fid,is"]


@pytest.fixture(scope="module")
def zoo():
    spec = importlib.util.spec_from_file_location("zoo_script", ROOT / "benchmarks" / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def online(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", hub.write_token)
    return hub


def test_zoo_trains_evaluates_and_publishes_a_card_with_its_metrics(zoo, online, tmp_path, capsys):
    assert zoo.main([*SMOKE, "--out", str(tmp_path / "zoo"), "--push"]) == 0
    out = capsys.readouterr().out

    files = online.files("ganzoo/gan-mnist-5k")
    meta = json.loads(files["config.json"])
    assert meta["training"]["data"] == "mnist-5k" and meta["training"]["steps"] == 2
    values = {m["name"]: m["value"] for m in meta["metrics"]}
    assert set(values) == {"fid", "is", "is_std"}
    for metric in meta["metrics"]:
        prov = metric["provenance"]
        assert (prov["extractor"], prov["real_data"], prov["split"], prov["fake_images"], prov["real_images"]) == \
            ("digits", "mnist-5k", "test", 100, 1000)

    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "ganzoo" and card.data.license == "cc-by-sa-3.0"
    assert card.data.datasets == ["mnist-5k"] and {"gan", "unconditional-image-generation"} <= set(card.data.tags)
    results = {r.metric_type: r for r in card.data.eval_results}
    assert {name: r.metric_value for name, r in results.items()} == values
    assert json.loads(results["fid"].metric_config)["extractor"] == "digits"
    assert results["fid"].metric_name == "FID (digits features)"
    assert "ganzoo train --arch gan --data mnist-5k --steps 2 --batch-size 64 --seed 0" in card.text
    assert "## Evaluation" in card.text and "digits features" in card.text
    assert 'ganzoo.load("ganzoo/gan-mnist-5k")' in card.text and "![samples](samples.png)" in card.text

    # the lines to pin name the commit that was pushed and the sha256 of the published weights
    commit = online.commits("ganzoo/gan-mnist-5k")[-1]
    assert f"revision={commit!r}" in out
    assert sha256_of(tmp_path / "zoo" / "gan-mnist-5k" / "model" / "generator.safetensors") in out
    (tmp_path / "g").write_bytes(files["generator.safetensors"])
    assert sha256_of(tmp_path / "g") in out
    assert re.search(r"metrics=\{\n {8}'fid': [0-9.]+,\n {8}'is': [0-9.]+,\n {8}'is_std': [0-9.]+,\n    \},", out)
    assert ganzoo.load("ganzoo/gan-mnist-5k").info["metrics"] == meta["metrics"]


def test_ship_writes_the_pushed_files_into_the_plugin_and_prints_the_lines_to_pin(zoo, online, fake_site, tmp_path,
                                                                                 capsys, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    write_plugin(fake_site)  # a third-party entry that ships nothing yet
    args = ["--only", NAME, "--steps", "2", "--eval-samples", "100", "--metrics", "fid", "--out", str(tmp_path / "zoo")]
    assert zoo.main([*args, "--ship", "--push"]) == 0
    out = capsys.readouterr().out

    folder = fake_site / "tinyship" / FILES
    shipped = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert set(shipped) == {"config.json", "generator.safetensors", "discriminator.safetensors", "README.md",
                            "samples.png"}
    assert shipped == online.files(REPO)  # byte for byte what was pushed, the model card included
    assert json.loads(shipped["config.json"])["metrics"][0]["name"] == "fid"
    pins = {name: sha256_of(folder / name) for name in LOADED_FILES}
    commit = online.commits(REPO)[-1]
    sha256 = "".join(f"        {name!r}: {digest!r},\n" for name, digest in pins.items())
    assert f"    repo_id={REPO!r}, revision={commit!r},\n    files={FILES!r},\n    sha256={{\n{sha256}    }},\n" in out
    size = sum(len(data) for data in shipped.values())  # and what the built-in entries ship
    for name in ganzoo.list_pretrained():
        architecture, entry = get_pretrained(name)
        if entry.shipped:
            size += sum(p.stat().st_size for p in package_path(architecture, entry.files).rglob("*") if p.is_file())
    assert f"all shipped entries together: {size / 1e6:.2f} MB (at most 60 MB may ship)" in out

    # the maintainer pastes the lines into the entry: it loads from the package, offline
    write_plugin(fake_site, files=FILES, sha256=pins, revision=commit)
    offline(monkeypatch)
    check_shipped(NAME)
    sys.modules.pop("tinyship", None)


def test_a_model_that_cannot_be_evaluated_is_reported_and_not_pushed(zoo, online, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the inception weights cannot be downloaded
    assert zoo.main([*SMOKE, "--extractor", "inception", "--out", str(tmp_path / "zoo"), "--push"]) == 1
    captured = capsys.readouterr()
    assert "NOT EVALUATED gan-mnist-5k (inception features): the inception extractor's weights are not cached" \
        in captured.out
    assert "not finished: gan-mnist-5k" in captured.err
    assert "ganzoo/gan-mnist-5k" not in online.repos


def test_bad_requests_exit_2(zoo, capsys):
    assert zoo.main(["--only", "nothing-like-this*"]) == 2
    assert "no catalogue entries match" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        zoo.main(["--metrics", "fdi"])
    assert info.value.code == 2 and "unknown metric 'fdi'" in capsys.readouterr().err

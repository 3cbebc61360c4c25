"""benchmarks/zoo.py end to end on one catalogue entry: train with its recipe, evaluate, push to the loopback Hub."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import ganzoo
from ganzoo.hub import sha256_of

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
    assert re.search(r"metrics=\{'fid': [0-9.]+, 'is': [0-9.]+, 'is_std': [0-9.]+\}", out)
    assert ganzoo.load("ganzoo/gan-mnist-5k").info["metrics"] == meta["metrics"]


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

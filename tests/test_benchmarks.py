"""The benchmark command runs end to end: `benchmarks/run_all.py --quick` on one small architecture with the smallest
settings every section takes, writing RESULTS.md with every section. Nothing here is timed; the figures of such a
run mean nothing, only that every script works and the report is generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = {
    "train": "--rounds 1 --steps 1 --warmup 0 --fast cl",
    "sample": "--images 16 --batch-size 16 --rounds 1 --steps 1 --warmup 0",
    "startup": "--rounds 1 --warmup 0",
    "memory": "--steps 1 --repeats 1",
    "quality": "--cpu-minutes 0.005 --num-samples 40 --real-images 80",
    "ddp": "--arch gan --img-size 28 --batch-size 8 --rounds 1 --steps 1 --warmup 0 --repeats 1",
}


def test_run_all_quick_writes_every_section(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import each other by name, as when run as files
    import run_all

    out = tmp_path / "RESULTS.md"
    argv = ["--quick", "--arch", "gan", "--device", "cpu", "--threads", "1", "--out", str(out)]
    argv += [f"--args={key}={extra}" for key, extra in TINY.items()]
    threads = torch.get_num_threads()
    try:  # in this process, to spare a start-up; the memory and start-up sections still start their own
        assert run_all.main(argv) == 0
    finally:
        torch.set_num_threads(threads)

    text = out.read_text(encoding="utf-8")
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    keys = [s.key for s in run_all.SECTIONS]
    assert set(TINY) == set(keys), "give every section tiny settings here"
    assert [p["key"] for p in data["sections"]] == keys
    for number, part in enumerate(data["sections"], 1):
        assert "error" not in part, part.get("error")
        assert f"## {number}. {part['title']}" in text
    for needle in (f"{data['machine']['cpu_count']} cores", f"torch {data['torch_version']}",
                   f"ganzoo {data['ganzoo_version']}", "Command: `", "## Targets", "Quick run", "| gan",
                   "real vs real (floor, 28px)", "`ganzoo --help`", "`ganzoo list`"):
        assert needle in text, needle
    verdicts = [row["verdict"] for p in data["sections"] for row in p["summary"]]
    # train (default, fast path), sample, startup (--help, list), memory, quality (the ladder): every target has a
    # verdict
    assert len(verdicts) == 7 and set(verdicts) <= {"pass", "fail"}, verdicts
    assert not list(tmp_path.glob(".RESULTS*.tmp")), "no leftover temporary files of the atomic writes"


def test_stacked_mnist_quick_reports_mode_coverage(tmp_path, monkeypatch):
    """benchmarks/stacked_mnist.py --quick on one architecture: real stacks read as many confident modes, the trained
    model's row holds sane values and a grid (in --figures, linked from the results in --out), a conditional
    architecture and a broken plugin are left out with a note, and the published anchors are in the table."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import stacked_mnist

    from ganzoo.errors import PluginError

    real_get = stacked_mnist.get_architecture

    def get_architecture(name):
        if name == "dcgan":  # stands in for a plugin that fails to import (r3gan, sngan while they are written)
            raise PluginError("plugin 'dcgan' failed to load: ModuleNotFoundError: No module named 'x'")
        return real_get(name)

    monkeypatch.setattr(stacked_mnist, "get_architecture", get_architecture)
    threads = torch.get_num_threads()
    try:
        args = stacked_mnist.parse_args(["--quick", "--arch", "gan,cgan,dcgan", "--cpu-seconds", "1", "--samples",
                                         "96", "--threads", "1", "--device", "cpu", "--out", str(tmp_path),
                                         "--figures", str(tmp_path / "figs")])
        result = stacked_mnist.run(args)
    finally:
        torch.set_num_threads(threads)

    real = result["real"]
    assert real["samples"] == 96 and real["confident_fraction"] > 0.8 and real["modes"] >= 85
    assert all(a > 0.9 for a in real["channel_accuracy"])
    assert real["calibration"]["accuracy"] > 0.98 and real["calibration"]["ece"] < 0.02  # over all 25,600 stacks
    # the independent check: a second reader (one epoch under --quick) counted the same samples
    assert result["second_reader"]["epochs"] == 1 and real["second_reader"]["samples"] == 96
    by_name = {a["architecture"]: a for a in result["architectures"]}
    gan = by_name["gan"]
    assert gan["training"]["steps"] >= 1 and gan["training"]["cpu_s"] >= 0.9
    c = gan["coverage"]
    assert c["samples"] == 96 and 1 <= c["modes"] <= 96 and 0 <= c["kl"] <= 6.91
    assert c["confident_modes"] <= c["modes"] and 0 <= c["confident_fraction"] <= 1
    assert c["confident_modes"] <= c["softmax_confident_modes"] and gan["second_reader"]["samples"] == 96
    assert "conditional" in by_name["cgan"]["skipped"] and "PluginError" in by_name["dcgan"]["error"]
    from PIL import Image

    with Image.open(tmp_path / "figs" / "grid-gan.png") as grid:
        assert grid.size[0] >= 8 * 32 and grid.mode == "RGB"
    assert not list(tmp_path.glob("*.png"))  # the grids went to --figures only
    text = (tmp_path / "RESULTS-stacked-mnist.md").read_text(encoding="utf-8")
    saved = json.loads((tmp_path / "RESULTS-stacked-mnist.json").read_text(encoding="utf-8"))
    assert saved["architectures"][0]["coverage"] == c
    assert saved["architectures"][0]["grid"] == "figs/grid-gan.png" and saved["real"]["grid"] == "figs/grid-real.png"
    assert "real: ![real](figs/grid-real.png)" in text and "- gan: ![gan](figs/grid-gan.png)" in text
    for needle in ("| real test stacks | - | - | ", "| gan | ", "DCGAN (published, plain argmax) | - | - | 99 | 3.400",
                   "R3GAN (published, plain argmax) | - | - | 1000 | 0.078", "- cgan: left out (conditional",
                   "- dcgan: left out (PluginError", "second reader: confident modes"):
        assert needle in text, needle
    assert [row["verdict"] for row in stacked_mnist.summary(result)] == ["-"]  # fewer samples than the protocol

    # the r3gan aim, judged from a result: more confident modes and a lower confident KL than every other, >= 900
    def row(name, modes, kl):
        return {"architecture": name, "coverage": {"confident_modes": modes, "confident_kl": kl}}

    full = {"real": {"samples": 25600, "confident_modes": 1000}, "architectures": [row("dcgan", 300, 1.5)]}
    verdicts = [r["verdict"] for r in stacked_mnist.summary({**full, "architectures": [
        *full["architectures"], row("r3gan", 950, 0.2)]})]
    assert verdicts == ["pass", "pass"]
    assert stacked_mnist.summary({**full, "architectures": [row("dcgan", 300, 0.1), row("r3gan", 950, 0.2)]})[1][
        "verdict"] == "fail"  # a lower KL elsewhere
    assert stacked_mnist.summary({**full, "architectures": [row("r3gan", 850, 0.2)]})[1]["verdict"] == "fail"

    # runs made in parallel processes combine into one table; runs with other settings are refused
    import shutil

    other = tmp_path.parent / "other-run"
    shutil.copytree(tmp_path, other)
    moved = json.loads((other / "RESULTS-stacked-mnist.json").read_text(encoding="utf-8"))
    moved["architectures"] = [{**moved["architectures"][0], "architecture": "gan-copy"}]
    moved["settings"]["architectures"] = ["gan-copy"]
    (other / "RESULTS-stacked-mnist.json").write_text(json.dumps(moved), encoding="utf-8")
    merged = stacked_mnist.merge([tmp_path, other], tmp_path.parent / "merged", tmp_path.parent / "merged-figs")
    assert [a["architecture"] for a in merged["architectures"]] == ["gan", "cgan", "dcgan", "gan-copy"]
    merged_text = (tmp_path.parent / "merged" / "RESULTS-stacked-mnist.md").read_text(encoding="utf-8")
    assert "| gan-copy | " in merged_text and "![real](../merged-figs/grid-real.png)" in merged_text
    assert (tmp_path.parent / "merged-figs" / "grid-gan.png").is_file()
    assert merged["architectures"][3]["grid"] == "../merged-figs/grid-gan.png"
    assert not list((tmp_path.parent / "merged").glob("*.png"))
    moved["settings"]["samples"] = 25600
    (other / "RESULTS-stacked-mnist.json").write_text(json.dumps(moved), encoding="utf-8")
    with pytest.raises(SystemExit, match="other settings"):
        stacked_mnist.merge([tmp_path, other], tmp_path.parent / "merged2")

    # the default run's grids go where the docs show them; any other --out keeps its grids unless told otherwise
    assert stacked_mnist.parse_args([]).figures == stacked_mnist.DEFAULT_FIGURES
    assert stacked_mnist.DEFAULT_FIGURES == BENCHMARKS.parent / "docs" / "img" / "stacked-mnist"
    assert stacked_mnist.parse_args(["--out", str(tmp_path)]).figures == tmp_path

"""The benchmark command runs end to end: `benchmarks/run_all.py --quick` on one small architecture with the smallest
settings every section takes, writing RESULTS.md with every section. Nothing here is timed; the figures of such a
run mean nothing, only that every script works and the report is generated."""

from __future__ import annotations

import json
from pathlib import Path

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

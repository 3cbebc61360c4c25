"""benchmarks/quality_time.py: its verdicts read curves correctly, and both phases run end to end on tiny settings.

Nothing here is timed or judged on quality: a few steps of training say nothing about a recipe, only that the
script trains, measures, plots and reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def qt(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import quality_time

    return quality_time


def _curve(*points: tuple[float, float]) -> list[dict[str, float]]:
    return [{"step": i + 1, "cpu_s": t, "wall_s": t / 2, "fid": fd, "kid": 0.0} for i, (t, fd) in enumerate(points)]


def test_plain_fd_is_interpolated_in_log_space_and_undefined_outside_the_run(qt):
    plain = _curve((10, 100.0), (20, 10.0))
    assert qt.plain_fd_at(plain, 10) == pytest.approx(100.0)
    assert qt.plain_fd_at(plain, 15) == pytest.approx(math.sqrt(100.0 * 10.0))  # half-way in log FD
    assert qt.plain_fd_at(plain, 5) is None and qt.plain_fd_at(plain, 25) is None


def test_verdicts_flag_a_recipe_point_worse_than_the_plain_loop(qt):
    plain = _curve((10, 100.0), (20, 50.0), (30, 20.0))
    better = {"curves": {"plain": plain, "dcgan": _curve((10, 90.0), (20, 40.0), (30, 15.0))}}
    v = qt.verdicts(better)
    assert v["dcgan_no_worse_than_plain"] and v["dcgan_worse_points"] == []
    assert v["dcgan_time_to_plain_final_fd"] == 30  # its first point at or below the plain loop's final 20

    worse = {"curves": {"plain": plain, "dcgan": _curve((10, 90.0), (20, 60.0), (30, 15.0))}}
    v = qt.verdicts(worse)
    assert not v["dcgan_no_worse_than_plain"]
    assert [p["cpu_s"] for p in v["dcgan_worse_points"]] == [20]

    fast = {"curves": {"plain": plain, "dcgan": _curve((10, 18.0), (20, 12.0))}}
    assert qt.verdicts(fast)["dcgan_time_to_plain_final_fd"] == 10


def test_both_phases_run_and_report_every_curve_with_its_grid(qt, tmp_path):
    out = tmp_path / "qt"
    argv = ["--only", "dcgan", "--steps", "4", "--points", "2", "--plain-seconds", "1", "--eval-samples", "20",
            "--out", str(out)]
    assert qt.main(argv) == 0
    result = json.loads((out / "RESULTS-quality-time.json").read_text(encoding="utf-8"))
    assert set(result["curves"]) == {"dcgan", "plain"}
    dcgan = result["curves"]["dcgan"]
    assert [p["step"] for p in dcgan] == [2, 4]  # a checkpoint at every point, the last one the finished model
    assert all(p["cpu_s"] > 0 and p["fid"] > 0 for p in dcgan)
    assert dcgan[0]["cpu_s"] < dcgan[1]["cpu_s"]
    assert len(result["curves"]["plain"]) == 2
    assert (out / "quality_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "grid-dcgan.png").is_file() and (out / "grid-plain.png").is_file()
    text = (out / "RESULTS-quality-time.md").read_text(encoding="utf-8")
    assert "| dcgan | 4 |" in text and "| plain |" in text
    # the run is the catalogue entry's: zoo.py --reuse would ship it
    config = json.loads((out / "dcgan-mnist-5k" / "config.json").read_text(encoding="utf-8"))
    assert config["architecture"] == "dcgan" and config["options"]["data"] == "mnist-5k"

"""benchmarks/quality_time.py: its verdicts read curves correctly, and both phases run end to end on tiny settings.

Nothing here is timed or judged on quality: a few steps of training say nothing about a recipe, only that the
script trains, measures, plots and reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

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
    assert v["dcgan"]["final_no_worse"] and v["dcgan"]["worse_points"] == []
    assert v["dcgan"]["time_to_plain_final_fd"] == 30  # its first point at or below the plain loop's final 20

    worse = {"curves": {"plain": plain, "dcgan": _curve((10, 90.0), (20, 60.0), (30, 25.0))}}
    v = qt.verdicts(worse)
    assert v["dcgan"]["final_no_worse"] is False and v["dcgan"]["plain_fid_at_final"] == pytest.approx(20.0)
    assert [p["cpu_s"] for p in v["dcgan"]["worse_points"]] == [20, 30]

    fast = {"curves": {"plain": plain, "dcgan": _curve((10, 18.0), (20, 12.0))}}
    assert qt.verdicts(fast)["dcgan"]["time_to_plain_final_fd"] == 10
    # every convolutional run is held to the loop, the 2014 MLP is not; a run past the loop's end has no verdict
    both = {"curves": {"plain": plain, "gan": _curve((10, 500.0)), "wgan": _curve((10, 90.0), (40, 15.0))}}
    v = qt.verdicts(both)
    assert "gan" not in v and v["wgan"]["final_no_worse"] is None and v["wgan"]["time_to_plain_final_fd"] == 40


def test_keep_carries_over_only_the_earlier_curves_that_were_not_measured_again(qt, tmp_path):
    earlier = {"curves": {"gan": _curve((5, 9.0)), "wgan": _curve((10, 8.0)), "plain": _curve((10, 7.0))},
               "finals": {"gan": {"fid": 9.0}, "wgan": {"fid": 8.0}}}
    previous = tmp_path / "RESULTS-quality-time.json"
    previous.write_text(json.dumps(earlier), encoding="utf-8")
    now = {"curves": {"wgan": _curve((20, 4.0)), "sngan": _curve((30, 2.0))}, "finals": {"wgan": {"fid": 4.0}},
           "floor": {"fid": 0.5, "kid": 0.0}, "eval_samples": 10, "device": "cpu"}
    merged = qt.keep_earlier(now, previous)
    assert list(merged["curves"]) == ["gan", "wgan", "plain", "sngan"]  # the earlier order, then the new runs
    assert merged["curves"]["wgan"][-1]["fid"] == 4.0 and merged["curves"]["plain"][-1]["fid"] == 7.0
    assert merged["kept"] == ["gan", "plain"] and merged["finals"]["wgan"]["fid"] == 4.0
    assert "Carried over from the earlier measurement (its runs are no longer on disk): gan, plain." in \
        qt.markdown(merged)
    assert qt.keep_earlier(now, tmp_path / "missing.json") is now
    assert "Carried over" not in qt.markdown(now)


def test_zoo_runs_give_their_logged_fd_at_cpu_time_spread_over_the_steps(qt, tmp_path):
    run = tmp_path / "dcgan-mnist-5k"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text(json.dumps({"training": {"steps": 400}}), encoding="utf-8")
    records = [{"step": 100, "time_s": 50.0}, {"step": 200, "time_s": 99.0, "eval": [{"name": "fid", "value": 9.5}]},
               {"step": 400, "time_s": 210.0, "eval": [{"name": "pr", "value": 0.5}, {"name": "fid", "value": 3.25}]}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (tmp_path / "dcgan.log").write_text("\tUser time (seconds): 150.50\n\tSystem time (seconds): 9.50\n",
                                        encoding="utf-8")
    curves = qt.zoo_curves(tmp_path, ["dcgan", "wgan"])  # wgan has no run there: left out
    assert list(curves) == ["dcgan"]
    assert [(p["step"], p["cpu_s"], p["fid"]) for p in curves["dcgan"]] == [(200, 80.0, 9.5), (400, 160.0, 3.25)]
    estimated = qt.zoo_curves(tmp_path, ["dcgan"], {"dcgan": 400.0})  # a run whose report was lost
    assert [p["cpu_s"] for p in estimated["dcgan"]] == [200.0, 400.0]


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


def test_real_images_stand_in_draws_from_every_class_of_a_class_sorted_set(monkeypatch):
    """The floor's real "samples" come from the whole set: mnist-5k's parts are stored class by class, and its first
    2,000 train digits (0 to 4 only) score a recall of 0.55 where real digits score 0.89."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from quality import RealImages

    from ganzoo.data import load_dataset

    train = load_dataset("mnist-5k", img_size=32, channels=1, split="train")
    assert train.labels[:2000].unique().tolist() == [0, 1, 2, 3, 4]  # the trap: sorted by class
    stand_in = RealImages(train, torch.device("cpu"))
    drawn = stand_in.sample(2000, seed=0)
    as_uint8 = drawn.add(1).mul(127.5).round().to(torch.uint8)
    index = {bytes(img.numpy()): int(label) for img, label in zip(train.images, train.labels, strict=True)}
    labels = torch.tensor([index[bytes(img.numpy())] for img in as_uint8])
    assert labels.unique().tolist() == list(range(10)) and labels.bincount().min() > 100
    assert torch.equal(drawn, stand_in.sample(2000, seed=0))  # seeded

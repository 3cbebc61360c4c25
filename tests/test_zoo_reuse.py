"""benchmarks/zoo.py --reuse: a finished run of the same plan is shipped as it is, also when it was planned before
recipe fields that now exist at their defaults; a finished run of another plan is never trained over.

Seen: a 53-CPU-minute run planned before `ada_signal` existed compared unequal, and `--reuse` retrained into its
folder with --overwrite, deleting it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganzoo.testing import tiny_train

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def zoo(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import zoo

    return zoo


def _digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_planned_before_new_recipe_fields_is_reused_and_another_plan_is_left_alone(zoo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "gan-mnist-5k"
    tiny_train("gan", run, steps=2)
    plan = json.loads((run / "config.json").read_text())
    config = " ".join(f"--set {k}={json.dumps(v, separators=(',', ':'))}" for k, v in plan["config"].items()
                      if k not in ("channels", "num_classes"))
    command = f"ganzoo train --arch gan --data mnist-5k --steps 2 -b {plan['recipe']['batch_size']} {config}"
    reason, differ = zoo.reuse_check(run, command, None)
    assert reason is not None and differ == [], differ
    # as if planned by an older ganzoo: fields that did not exist then are missing from its config.json
    for field in ("ada_signal", "ada_holdout", "pl_weight", "pl_interval"):
        plan["recipe"].pop(field, None)
    (run / "config.json").write_text(json.dumps(plan))
    assert zoo.reuse_check(run, command, None)[0] is not None
    before = _digest(run)
    reason, differ = zoo.reuse_check(run, command.replace("--steps 2", "--steps 3"), None)
    assert reason is None and differ == ["recipe.steps"]
    # main(): the catalogue's gan-mnist-5k recipe is another plan than this tiny run: under --reuse the entry fails
    # with what differs, and the run is left as it was (it used to be trained over with --overwrite)
    assert zoo.main(["--only", "gan-mnist-5k", "--out", str(tmp_path), "--reuse"]) == 1
    assert _digest(run) == before

"""Schedules that follow their run: lengths as fractions of the run's planned length, fixed when the run starts.

A run-relative schedule anneals over a 1,000-step and a 50,000-step run alike; the planned length is the plan's
`steps` and every checkpoint's `planned_steps`, so a resume continues exactly; a resume that would change the length
of a run whose recipe follows it is refused, and a run with fixed-length schedules alone may still be extended.
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest
from click.testing import CliRunner

import ganzoo
from ganzoo.cli import cli
from ganzoo.errors import ConfigError, GanzooUsageError
from ganzoo.interfaces import Recipe, Schedule
from ganzoo.testing import assert_same_state, tiny_train
from ganzoo.trainer.checkpoint import Checkpoint, find_checkpoints

#: a cheap recipe (dcgan's tiny config) whose learning rate follows the run
RELATIVE = {"schedules": {"lr": {"kind": "cosine", "to": 1e-5}}}
FIXED = {"schedules": {"lr": {"kind": "cosine", "to": 1e-5, "steps": 6}}}


def folder_digest(folder):
    """Every file under `folder` with the sha256 of its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------------------------
# the schedules


@pytest.mark.parametrize("spec", [
    {"kind": "cosine", "to": 5e-5},
    {"kind": "linear", "to": 0.0},
    {"kind": "cosine", "to": 0.99, "fraction": 0.6},
    {"kind": "linear", "to": 1.0, "fraction": 0.8, "warmup_fraction": 0.1},
])
def test_a_schedule_at_half_a_run_has_one_value_whatever_the_runs_length(spec):
    schedule = Schedule.from_dict(spec)
    assert schedule.relative
    # a warm-up moves in whole steps (step s trains with (s + 1) / warm-up steps of the value), so during it the
    # two runs agree only to within one step: compare them after it
    fractions = (0.3, 0.5, 0.75, 1.0) if "warmup_fraction" in spec else (0.0, 0.05, 0.3, 0.5, 0.75, 1.0)
    for fraction in fractions:
        short = schedule.value(2e-4, round(fraction * 1000), 1000)
        long = schedule.value(2e-4, round(fraction * 50000), 50000)
        assert long == pytest.approx(short, rel=1e-12, abs=1e-18), (fraction, short, long)
    # and it moved: the value half-way is neither the start nor the end
    half = schedule.value(2e-4, 500, 1000)
    assert half != pytest.approx(2e-4) and half != pytest.approx(spec["to"])


def test_fractions_shape_the_course_and_fixed_lengths_ignore_the_run():
    linear = Schedule(kind="linear", to=0.0, fraction=0.5)  # reaches 0 at half the run, then stays
    assert [linear.value(1.0, s, 100) for s in (0, 25, 50, 90)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    warm = Schedule(kind="constant", warmup_fraction=0.1)  # warm-up over the first tenth of the run
    assert [warm.value(8.0, s, 40) for s in (0, 1, 3, 4, 30)] == pytest.approx([2.0, 4.0, 8.0, 8.0, 8.0])
    assert not warm.relative or warm.warmup_steps(40) == 4  # a relative warm-up makes the schedule relative
    assert warm.relative
    fixed = Schedule(kind="cosine", to=0.0, steps=1000)
    assert not fixed.relative
    assert fixed.value(1.0, 500, 1000) == pytest.approx(0.5)
    assert fixed.value(1.0, 25000, 50000) == pytest.approx(0.0)  # a fixed length has long ended at half of 50,000


@pytest.mark.parametrize("spec, message", [
    ({"to": 0.1, "fraction": 0.0}, r"fraction must lie in \(0, 1\]"),
    ({"to": 0.1, "fraction": 1.5}, r"fraction must lie in \(0, 1\]"),
    ({"to": 0.1, "steps": 10, "fraction": 0.5}, "not both"),
    ({"to": 0.1, "warmup": 2, "warmup_fraction": 0.1}, "not both"),
    ({"to": 0.1, "fraction": 0.3, "warmup_fraction": 0.3}, r"warmup_fraction \(0.3\) must be below fraction"),
    ({"to": 0.1, "warmup_fraction": 1.0}, r"warmup_fraction must lie in \[0, 1\)"),
])
def test_bad_fractions_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError, match=message) as info:
        Recipe(schedules={"lr": spec})
    assert "\n" not in str(info.value)


def test_a_warm_up_as_long_as_the_schedule_in_this_run_is_refused():
    Recipe(steps=100, schedules={"lr": {"to": 0.0, "fraction": 0.5, "warmup": 40}})
    with pytest.raises(ConfigError, match=r"schedules.lr: its warm-up \(40 steps\) is not shorter than its length "
                                          r"\(25 of the run's 50 steps\)"):
        Recipe(steps=50, schedules={"lr": {"to": 0.0, "fraction": 0.5, "warmup": 40}})


def test_what_follows_the_planned_length():
    r3gan = ganzoo.registry.get_architecture("r3gan")
    assert r3gan.recipe.run_relative() == ["schedules.lr", "schedules.gamma", "schedules.beta2"]
    assert r3gan.make_recipe("cifar10").run_relative() == r3gan.recipe.run_relative()
    assert Recipe(**FIXED).run_relative() == []
    assert Recipe(schedules={"lr": {"kind": "constant", "warmup": 5}}).run_relative() == []
    assert Recipe(instance_noise=0.1).run_relative() == ["instance_noise"]
    assert Recipe(instance_noise=0.1, instance_noise_steps=100).run_relative() == []
    assert Recipe().run_relative() == []


def test_the_trainer_follows_a_fraction_of_the_run(tmp_path):
    recipe = {"g_lr": 1e-3, "schedules": {"g_lr": {"kind": "linear", "to": 0.0, "fraction": 0.5}}}
    tiny_train("dcgan", tmp_path / "run", steps=4, log_every=1, recipe=recipe)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # logged after step s: the value step s trained with, at 0-based step s - 1 of a run planned for 4 (horizon 2)
    assert [line["g_lr"] for line in lines] == pytest.approx([1e-3, 5e-4, 0.0, 0.0], abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# the plan is fixed: resume, extension, checkpoints


def test_the_planned_length_survives_a_checkpoint_round_trip(tmp_path):
    tiny_train("dcgan", tmp_path / "run", steps=3, checkpoint_every=2, recipe=RELATIVE)
    checkpoints = find_checkpoints(tmp_path / "run" / "checkpoints")
    assert [step for step, _ in checkpoints] == [2, 3]
    for _, path in checkpoints:
        again = Checkpoint.from_bytes(Checkpoint.load(path).to_bytes())
        assert again.meta["planned_steps"] == 3 and isinstance(again.meta["planned_steps"], int)


def test_a_checkpoint_of_another_planned_length_is_refused(tmp_path):
    """config.json edited by hand to another length: the checkpoint's planned length catches it."""
    run = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop_at_2(step, total, record):
        if step == 2:
            raise Stop

    with pytest.raises(Stop):
        tiny_train("dcgan", run, steps=4, checkpoint_every=2, recipe=RELATIVE, progress=stop_at_2)
    plan = json.loads((run / "config.json").read_text())
    plan["recipe"]["steps"] = 8
    (run / "config.json").write_text(json.dumps(plan))
    with pytest.raises(ConfigError, match=r"planned for 4 steps, and .*config.json now plans 8; schedules.lr follow"):
        ganzoo.train(out=run, resume=True)
    plan["recipe"]["steps"] = 4
    (run / "config.json").write_text(json.dumps(plan))
    resumed = ganzoo.train(out=run, resume=True)  # put back: it resumes, and equals the run never stopped
    whole = tiny_train("dcgan", tmp_path / "whole", steps=4, checkpoint_every=2, recipe=RELATIVE)
    assert_same_state(whole.generator, resumed.generator)
    assert_same_state(whole.discriminator, resumed.discriminator)


@pytest.mark.parametrize("recipe, what", [(RELATIVE, "schedules.lr"),
                                          ({"instance_noise": 0.1}, "instance_noise")])
def test_extending_a_run_that_follows_its_length_is_refused_and_changes_nothing(tmp_path, recipe, what):
    run = tmp_path / "run"
    tiny_train("dcgan", run, steps=2, recipe=recipe)
    before = folder_digest(run)
    with pytest.raises(GanzooUsageError, match=rf"cannot change steps from 2 to 4 when resuming .*: {what} follow"):
        ganzoo.train(out=run, steps=4, resume=True)
    assert folder_digest(run) == before
    result = CliRunner().invoke(cli, ["train", "--resume", "--out", str(run), "--steps", "3"], prog_name="ganzoo")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: cannot change steps from 2 to 3"), result.output
    assert "--init" in lines[0] and "Traceback" not in result.output
    assert folder_digest(run) == before


def test_a_run_with_fixed_lengths_may_be_extended_and_equals_a_longer_run(tmp_path):
    tiny_train("dcgan", tmp_path / "split", steps=3, recipe=FIXED)
    extended = ganzoo.train(out=tmp_path / "split", steps=6, resume=True)
    whole = tiny_train("dcgan", tmp_path / "whole", steps=6, recipe=FIXED)
    for name in ("generator", "discriminator", "ema"):
        assert_same_state(getattr(whole, name), getattr(extended, name))
    plan = json.loads((tmp_path / "split" / "config.json").read_text())
    assert plan["recipe"]["steps"] == 6
    last = Checkpoint.load(find_checkpoints(tmp_path / "split" / "checkpoints")[-1][1])
    assert last.meta["planned_steps"] == 6 and last.meta["step"] == 6


def test_a_resume_asked_for_fewer_steps_than_its_newest_checkpoint_is_refused_and_changes_nothing(tmp_path):
    """Seen: a run stopped by SIGTERM writes a checkpoint where it stopped (step 6,052); `--resume --steps 6000`
    trained on from there and exported a model of 6,052 steps. A resume only goes forward: it is refused."""
    run = tmp_path / "run"
    tiny_train("dcgan", run, steps=3, recipe=FIXED)
    (run / "model" / "config.json").unlink()  # as if stopped after its step-3 checkpoint, before the export
    before = folder_digest(run)
    with pytest.raises(GanzooUsageError, match=r"newest checkpoint in .* is at step 3, past the 2 steps asked"):
        ganzoo.train(out=run, steps=2, resume=True)
    assert folder_digest(run) == before
    result = CliRunner().invoke(cli, ["train", "--resume", "--out", str(run), "--steps", "2"], prog_name="ganzoo")
    assert result.exit_code == 2 and "--steps 3 or more" in result.output and "Traceback" not in result.output
    assert folder_digest(run) == before
    assert ganzoo.train(out=run, steps=3, resume=True).info["training"]["steps"] == 3  # as far as it went: fine


def test_a_relative_run_stopped_half_way_and_resumed_equals_one_never_stopped(tmp_path):
    """The test kit's check_resume on r3gan, whose default recipe now anneals over the whole run: its 10-step run
    moves every schedule all the way (lr 2e-4 -> 5e-5), and the resumed half follows the same course."""
    from ganzoo.testing import check_resume

    check_resume("r3gan", tmp_path, steps=4)
    lines = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    by_step = {line["step"]: line for line in lines}
    expected = 5e-5 + (2e-4 - 5e-5) * 0.5 * (1 + math.cos(math.pi * 3 / 4))  # what step 4 (index 3 of 4) used
    assert by_step[4]["g_lr"] == pytest.approx(expected, rel=1e-6)

"""`ganzoo train ... --auto-resume` (`ganzoo.train(resume="auto")`): what a scheduler that kills and restarts a job
with the same command line needs. Start the run when the folder holds none, continue it when it does, do nothing
when it has finished, refuse a folder that holds another run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import ganzoo
from ganzoo.cli import cli
from ganzoo.errors import GanzooUsageError
from ganzoo.testing import assert_same_state, tiny_train

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_resume.py"
TINY = ["--arch", "dcgan", "--set", "g_width=4", "--set", "d_width=4", "--set", "z_dim=8", "--img-size", "28",
        "-b", "8", "--device", "cpu", "--checkpoint-every", "1"]


def harness():
    spec = importlib.util.spec_from_file_location("kill_resume", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_resume"] = module
    spec.loader.exec_module(module)
    return module


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "folder" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def refused(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_random_sigkills_from_the_first_instant_then_the_same_command_ends_bit_identical(tmp_path):
    """The same command line, SIGKILLed after 0.05 s, 0.3 s and random moments over the start-up and the training,
    started again until it exits 0: the run equals an uninterrupted one bit for bit (generator, discriminator, the
    final checkpoint with EMA and optimisers, every logged value); once more, it exits 0 and changes nothing."""
    lines: list[str] = []
    report = harness().auto_resume_kills(tmp_path / "work", kills=5, steps=16, seed=4, log=lines.append)
    summary = "\n".join(lines + report.unreadable + report.differences)
    assert not report.unreadable, summary
    assert report.identical, summary
    assert report.kills >= 5, summary
    assert report.states[0] == "no run folder", summary  # killed before anything existed, and recovered
    assert any(s.startswith("checkpoint") for s in report.states), summary  # and killed while training
    assert report.untouched and "already finished its 16 steps; nothing to do" in report.finished_again, summary


@pytest.fixture
def finished(tmp_path) -> Path:
    run = tmp_path / "run"
    result = invoke("train", *TINY, "--steps", 3, "--out", run, "--auto-resume")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "model" / "config.json").read_text())["training"]["steps"] == 3
    return run


def test_a_finished_run_is_left_alone(finished):
    before = tree(finished)
    result = invoke("train", *TINY, "--steps", 3, "--out", finished, "--auto-resume")
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("already finished its 3 steps; nothing to do")
    assert tree(finished) == before
    model = ganzoo.train("dcgan", steps=3, out=finished, resume="auto", config={"g_width": 4, "d_width": 4,
                         "z_dim": 8, "img_size": 28}, recipe={"batch_size": 8}, device="cpu", checkpoint_every=1)
    assert model.info["auto_resume"] == "finished" and model.info["training"]["steps"] == 3
    assert tree(finished) == before


@pytest.mark.parametrize("change,fragment", [
    (["--seed", "1"], "seed is 1 here but 0 in the run"),
    (["--set", "g_width=8"], "config.g_width is 8 here but 4 in the run"),
    (["--loss", "hinge"], "recipe.loss is \"hinge\" here but"),
    (["--data", "stacked-mnist", "--channels", "1"], "here but"),
    (["--steps", "5"], "--resume --steps N"),  # a longer run is asked for once, explicitly
], ids=["seed", "config", "recipe", "data", "steps"])
def test_a_folder_holding_another_plan_is_refused(finished, change, fragment):
    before = tree(finished)
    args = [*TINY, "--steps", 3, "--out", finished, "--auto-resume"]
    if "--steps" in change:
        args = [*TINY, "--out", finished, "--auto-resume"]
    refused(invoke("train", *args, *change), 2, "holds another run", fragment)
    assert tree(finished) == before


def test_another_architecture_is_refused(finished):
    before = tree(finished)
    refused(invoke("train", "--arch", "gan", "--steps", 3, "--device", "cpu", "--out", finished, "--auto-resume"), 2,
            'architecture is "gan" here but "dcgan" in the run')
    assert tree(finished) == before


def test_other_cadence_and_device_do_not_make_another_run(finished):
    """What a resume may change (how often it logs, samples and checkpoints, the device) is not the plan."""
    before = tree(finished)
    result = invoke("train", *TINY, "--steps", 3, "--out", finished, "--auto-resume", "--log-every", 7)
    assert result.exit_code == 0 and "nothing to do" in result.output, result.output
    assert tree(finished) == before


@pytest.mark.parametrize("damage", ["config", "samples"])
def test_a_run_killed_while_exporting_is_finished_again(finished, tmp_path, damage):
    """model/config.json is the last file an export writes: without it, or with a file missing, the run is not
    finished, and --auto-resume exports it again from the final checkpoint."""
    reference = ganzoo.load(finished)
    (finished / "model" / ("config.json" if damage == "config" else "samples.png")).unlink()
    result = invoke("train", *TINY, "--steps", 3, "--out", finished, "--auto-resume")
    assert result.exit_code == 0, result.output
    assert "trained dcgan for 3 steps" in result.output
    assert (finished / "model" / "samples.png").is_file()
    again = ganzoo.load(finished)
    assert_same_state(reference.generator, again.generator)
    assert_same_state(reference.discriminator, again.discriminator)


def test_a_folder_with_only_leftovers_starts_the_run(tmp_path):
    """A run killed before its config.json was written leaves at most these: the folder counts as empty."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".ganzoo-lock").write_text("4242\na running training\n")
    (run / ".ganzoo-write-test").write_bytes(b"")
    (run / ".config.json.ab12cd34.tmp").write_text('{"archi')
    (run / "slurm-17.out").write_text("the job's own log")  # not a run's file: left as it is
    result = invoke("train", *TINY, "--steps", 2, "--out", run, "--auto-resume")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert (run / "slurm-17.out").read_text() == "the job's own log"
    assert invoke("train", *TINY, "--steps", 2, "--out", tmp_path / "whole").exit_code == 0
    assert_same_state(ganzoo.load(tmp_path / "whole").generator, ganzoo.load(run).generator)


def test_a_run_killed_after_its_config_before_its_first_checkpoint_is_continued(tmp_path):
    run = tmp_path / "run"

    def die_at_2(step, total, record):
        if step == 2:
            raise SystemExit("killed")  # stands in for SIGKILL: no checkpoint, no clean-up

    kwargs = {"resume": "auto", "checkpoint_every": 1000, "log_every": 1}
    with pytest.raises(SystemExit):
        tiny_train("dcgan", run, steps=4, progress=die_at_2, **kwargs)
    assert (run / "config.json").is_file() and not (run / "checkpoints").exists()
    model = tiny_train("dcgan", run, steps=4, **kwargs)
    assert model.info["auto_resume"] == "resumed"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert_same_state(tiny_train("dcgan", tmp_path / "whole", steps=4, log_every=1).generator, model.generator)


def test_a_folder_with_a_runs_files_but_no_config_is_refused(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    before = tree(run)
    refused(invoke("train", *TINY, "--steps", 2, "--out", run, "--auto-resume"), 2, "no config.json",
            "choose another --out")
    assert tree(run) == before


@pytest.mark.parametrize("args,fragment", [
    ([*TINY, "--auto-resume", "--resume", "--out", "r"], "drop --resume"),
    ([*TINY, "--auto-resume", "--overwrite", "--out", "r"], "pick one"),
    ([*TINY, "--auto-resume"], "pass --out RUN"),
    ([*TINY[2:], "--auto-resume", "--out", "r"], "missing --arch"),
], ids=["resume", "overwrite", "no-out", "no-arch"])
def test_auto_resume_needs_a_whole_command(tmp_path, args, fragment, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(invoke("train", *args), 2, fragment)
    assert not (tmp_path / "r").exists()


def test_resume_still_refuses_a_folder_that_does_not_exist(tmp_path):
    refused(invoke("train", "--resume", "--out", tmp_path / "typo"), 2, "not a ganzoo run folder")
    assert not (tmp_path / "typo").exists()


def test_resume_takes_true_false_or_auto():
    with pytest.raises(GanzooUsageError, match="'auto'"):
        ganzoo.train("dcgan", out="x", resume="sometimes")

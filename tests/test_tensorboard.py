"""TensorBoard events beside metrics.jsonl, read back as TensorBoard reads them (`EventAccumulator`)."""

from __future__ import annotations

import io
import json
import logging
import sys

import numpy as np
import pytest
from conftest import require
from PIL import Image

import ganzoo
from ganzoo.testing import tiny_train

require("tensorboard")  # skipped without it on a developer's machine, a failure under CI

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: E402

ADA = {"augment": "xflip,translation", "ada_target": 0.6, "ada_signal": "train", "ada_interval": 1, "ada_kimg": 0.1}


def read_events(run):
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def expected_scalars(run):
    """{tag: {step: value}} as metrics.jsonl has them: a training line's keys, an evaluation's eval/<name>."""
    expected: dict[str, dict[int, float]] = {}
    for line in metrics(run):
        if "eval" in line:
            values = {f"eval/{e['name']}": e["value"] for e in line["eval"]}
            values.update({f"eval/{k}": v for k, v in line["diagnostics"].items() if isinstance(v, (int, float))})
        else:
            values = {k: v for k, v in line.items() if k != "step"}
        for tag, value in values.items():
            expected.setdefault(tag, {})[line["step"]] = value
    return expected


def assert_events_match_metrics(run):
    acc = read_events(run)
    expected = expected_scalars(run)
    assert set(acc.Tags()["scalars"]) == set(expected)
    for tag, by_step in expected.items():
        events = acc.Scalars(tag)
        assert [e.step for e in events] == sorted(by_step), tag  # each step once, in order
        for event in events:
            assert event.value == np.float32(by_step[event.step]), (tag, event.step)
    return acc


def image_array(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)))


def test_events_hold_every_logged_scalar_the_sample_grids_and_the_config(tmp_path):
    run = tmp_path / "run"
    tiny_train("dcgan", run, steps=4, log_every=1, sample_every=2, recipe=ADA, eval_every=4, eval_samples=64)
    acc = assert_events_match_metrics(run)
    scalars = set(acc.Tags()["scalars"])
    assert {"d_loss", "g_loss", "img_per_s", "kimg", "time_s", "augment_p", "eval/fid"} <= scalars
    assert [e.value for e in acc.Scalars("augment_p")] != [0.0] * 4  # ADA moved it, and the events show it

    grids = acc.Images("samples")
    assert [g.step for g in grids] == [0, 2, 4]
    for grid in grids:  # the same pixels as the PNG grid in samples/ (TensorBoard's copy is RGB)
        png = np.asarray(Image.open(run / "samples" / f"step-{grid.step:07d}.png"))
        got = image_array(grid.encoded_image_string)
        assert (got == got[..., :1]).all() and np.array_equal(got[..., 0], png)

    plan = json.loads((run / "config.json").read_text())
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["architecture"].string_value == "dcgan"
    assert hparams["config/img_size"].number_value == plan["config"]["img_size"]
    assert hparams["config/z_dim"].number_value == plan["config"]["z_dim"]
    assert hparams["recipe/loss"].string_value == plan["recipe"]["loss"]
    assert hparams["recipe/g_lr"].number_value == pytest.approx(plan["recipe"]["g_lr"])
    assert hparams["recipe/augment"].string_value == ADA["augment"]
    assert hparams["options/seed"].number_value == 0


def test_a_killed_run_resumed_reads_back_each_step_once_with_the_resumed_values(tmp_path):
    """Killed at step 3 with its checkpoint at step 2: step 3's scalars and grid are in the first session's file
    and again in the resumed one's; read back, every step is there once, with the value metrics.jsonl keeps."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    run = tmp_path / "run"

    def killed_at_3(step, total, record):
        if step == 3:
            raise SystemExit("killed")  # as in test_kill_resume: no checkpoint, no export

    with pytest.raises(SystemExit):
        tiny_train("gan", run, steps=5, log_every=1, sample_every=1, checkpoint_every=2, progress=killed_at_3)
    ganzoo.train(out=run, resume=True)
    assert [line["step"] for line in metrics(run)] == [1, 2, 3, 4, 5]

    files = sorted(run.glob("events.out.tfevents.*"))
    assert len(files) == 2
    written = [(e.step, v.tag) for f in files for e in EventFileLoader(str(f)).Load() for v in e.summary.value]
    assert written.count((3, "time_s")) == 2 and written.count((3, "samples")) == 2  # logged by both sessions
    assert written.count((2, "time_s")) == 1  # before the checkpoint: not logged again

    acc = assert_events_match_metrics(run)  # time_s differs between the sessions: the resumed value is read
    assert [g.step for g in acc.Images("samples")] == [0, 1, 2, 3, 4, 5]


@pytest.fixture
def sigint_handler():
    """A plain SIGINT handler for the test (the suite may run with SIGINT ignored); the old one put back after."""
    import signal

    before = signal.signal(signal.SIGINT, lambda signum, frame: None)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_resume_after_ctrl_c_appends_without_duplicates(tmp_path, sigint_handler):
    import os
    import signal

    def ctrl_c_at_2(step, total, record):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    run = tmp_path / "run"
    with pytest.raises(ganzoo.trainer.TrainingInterrupted):
        tiny_train("gan", run, steps=4, log_every=1, sample_every=1, progress=ctrl_c_at_2)
    ganzoo.train(out=run, resume=True)
    acc = assert_events_match_metrics(run)
    assert [e.step for e in acc.Scalars("d_loss")] == [1, 2, 3, 4]
    assert len(acc.PluginTagToContent("hparams")) == 3  # experiment, session start and end: written once


def test_without_tensorboard_nothing_is_written_and_training_is_unchanged(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as when it is not installed
    with caplog.at_level(logging.DEBUG, logger="ganzoo"):
        tiny_train("gan", tmp_path / "run", steps=2, log_every=1)
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    notes = [r for r in caplog.records if "tensorboard is not installed" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.DEBUG
    assert [line["step"] for line in metrics(tmp_path / "run")] == [1, 2]


def test_overwrite_removes_the_old_runs_events(tmp_path):
    run = tmp_path / "run"
    tiny_train("gan", run, steps=3, log_every=1)
    tiny_train("gan", run, steps=2, log_every=1, overwrite=True)
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert [e.step for e in read_events(run).Scalars("d_loss")] == [1, 2]

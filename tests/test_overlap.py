"""Outputs never overlap inputs: every command that writes refuses, before it touches anything, to write onto or
into what it reads (a fine-tune's source, the data, a model's own files) or a folder that a running training writes.

Each case checks the exit code, the one-line message, and that the disk is as it was: every file's bytes and every
folder (none made, none removed) below the user's folder, hashed before and after.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import ganzoo
from ganzoo._paths import inside, local_data_paths, overlaps
from ganzoo._runlock import LOCK_NAME, FolderLock, check_not_busy, holder
from ganzoo.cli import cli
from ganzoo.errors import GanzooUsageError

TINY = ["--set", "g_width=4", "--set", "d_width=4", "--set", "z_dim=8", "--img-size", "28", "-b", "8",
        "--device", "cpu"]


def tree(root: Path) -> dict[str, str]:
    """Every file (sha256 of its bytes) and folder below `root`, symlinks as their targets."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[name] = "folder"
        else:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def refused(result, code: int, *fragments: str) -> str:
    """The command exited with `code` and printed one line, `Error: ...`, holding every fragment."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny dcgan run (2 steps, a checkpoint each step)."""
    out = tmp_path_factory.mktemp("overlap") / "a"
    result = invoke("train", "--arch", "dcgan", "--steps", 2, "--out", out, "--checkpoint-every", 1, *TINY)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def user(trained, tmp_path) -> Path:
    """The user's folder: `a`, a copy of the finished run, and `imgs`, an image folder of two classes."""
    root = tmp_path / "user"
    shutil.copytree(trained, root / "a")
    for cls in ("x", "y"):
        (root / "imgs" / cls).mkdir(parents=True)
        for i in range(8):
            Image.new("L", (28, 28), color=20 * i + (100 if cls == "y" else 0)).save(root / "imgs" / cls / f"{i}.png")
    return root


def check_refused(user: Path, args: list[object], code: int, *fragments: str) -> str:
    before = tree(user)
    line = refused(invoke(*args), code, *fragments)
    assert tree(user) == before
    return line


# --- the helper --------------------------------------------------------------------------------------------------


def test_overlaps_sees_the_same_folder_under_other_names(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert overlaps(tmp_path / "a", tmp_path / "a" / "b" / "c.png")  # a file to be written inside
    assert overlaps(tmp_path / "a" / "b" / ".." / "b", tmp_path / "a" / "b")
    assert overlaps(tmp_path / "link" / "b", tmp_path / "a")  # through a symlink
    assert inside(tmp_path / "link" / "new" / "x", tmp_path / "a")
    assert not inside(tmp_path / "a", tmp_path / "a" / "b")
    assert not overlaps(tmp_path / "a" / "b", tmp_path / "ab")  # a common prefix is no overlap
    assert not overlaps(tmp_path / "a", tmp_path / "other")


def test_local_data_paths_of_every_kind_of_spec(tmp_path):
    (tmp_path / "parquet").mkdir()
    assert local_data_paths("mnist-5k", ["mnist-5k"]) == []
    assert local_data_paths("stream:imgs") == [Path("imgs")]
    assert local_data_paths("zip:d.zip") == [Path("d.zip")]
    assert local_data_paths(f"hf:{tmp_path / 'parquet'}#train") == [tmp_path / "parquet"]
    assert local_data_paths("hf:someone/dataset") == []  # a Hub dataset: nothing local


# --- train: the fine-tune's source --------------------------------------------------------------------------------


@pytest.mark.parametrize("init,out", [
    ("a", "a"),  # the case: --overwrite would delete a/model before reading it
    ("a/model", "a"),  # the run folder holds the source
    ("a", "a/model"),  # the run folder is the source's model folder
    ("a", "a/finetune"),  # a run inside the source's run folder
    ("a/model", "a/model/.."),  # `..`
    ("link", "a"),  # a symlink to the source
], ids=["same", "source-inside-out", "out-is-the-model-folder", "out-inside-source", "dotdot", "symlink"])
def test_a_fine_tune_into_its_own_source_is_refused(user, init, out, monkeypatch):
    monkeypatch.chdir(user)
    (user / "link").symlink_to(user / "a")
    check_refused(user, ["train", "--init", init, "--out", out, "--overwrite", "--steps", 1, "--device", "cpu"], 2,
                  "overlaps the model the run starts from", "choose another --out")


def test_the_python_api_refuses_too(user):
    before = tree(user)
    with pytest.raises(GanzooUsageError, match="overlaps the model the run starts from"):
        ganzoo.train(init=user / "a", out=user / "a", overwrite=True, steps=1, device="cpu")
    assert tree(user) == before


def test_a_fine_tune_beside_its_source_is_allowed(user):
    result = invoke("train", "--init", user / "a", "--out", user / "b", "--steps", 1, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (user / "b" / "model" / "generator.safetensors").is_file()
    assert (user / "a" / "model" / "generator.safetensors").is_file()


def test_a_hub_source_is_checked_in_its_cache_folder(user, hub, monkeypatch):
    """A Hub name resolves to a folder of huggingface_hub's cache: a run folder there would overwrite it."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    model = user / "a" / "model"
    hub.put("tester/tiny", {n: (model / n).read_bytes() for n in ("config.json", "generator.safetensors")})
    from ganzoo.hub import locate

    cache = locate("tester/tiny")[0]
    before = tree(cache.parents[2])
    refused(invoke("train", "--init", "tester/tiny", "--out", cache, "--overwrite", "--steps", 1, "--device", "cpu"),
            2, "overlaps the model the run starts from")
    assert tree(cache.parents[2]) == before


# --- train: the data ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,out,extra,fragment", [
    ("imgs", "imgs/run", [], "is inside the data"),  # the run's grids would join the images
    ("imgs", "imgs", ["--overwrite"], "is inside the data"),
    ("stream:imgs", "imgs/x/run", [], "is inside the data"),
    ("a/samples", "a", ["--overwrite"], "which the run in a writes"),  # --overwrite would delete the data
    ("a/model", "a", ["--resume"], "which the run in a writes"),  # a resume writes there too
], ids=["out-inside-data", "out-is-data", "streamed", "data-in-the-run-samples", "data-in-the-model-on-resume"])
def test_a_run_folder_overlapping_its_data_is_refused(user, data, out, extra, fragment, monkeypatch):
    monkeypatch.chdir(user)
    args = ["train", "--out", out, *extra]
    if "--resume" not in extra:
        args += ["--arch", "dcgan", "--data", data, "--steps", 1, *TINY]
    else:  # a resumed run reads the data its plan names
        import json

        plan = json.loads((user / "a" / "config.json").read_text())
        plan["options"]["data"] = data
        (user / "a" / "config.json").write_text(json.dumps(plan))
    check_refused(user, args, 2, fragment)


def test_data_kept_in_the_run_folder_beside_the_runs_files_is_kept(user, monkeypatch):
    """Data inside the run folder but outside what a run writes is neither deleted by --overwrite nor added to."""
    monkeypatch.chdir(user)
    shutil.move(user / "imgs", user / "a" / "mydata")
    before = tree(user / "a" / "mydata")
    result = invoke("train", "--arch", "dcgan", "--data", "a/mydata", "--out", "a", "--overwrite", "--steps", 1,
                    *TINY)
    assert result.exit_code == 0, result.output
    assert tree(user / "a" / "mydata") == before


def test_overwrite_also_removes_the_previous_runs_best_model(user):
    (user / "a" / "best").mkdir()
    (user / "a" / "best" / "config.json").write_text("{}")
    result = invoke("train", "--arch", "dcgan", "--out", user / "a", "--overwrite", "--steps", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert not (user / "a" / "best").exists()


# --- data prepare --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("src,out,fragment", [
    ("imgs", "imgs/out.zip", "lies inside the source"),
    ("imgs", "imgs/x/out.zip", "lies inside the source"),
    ("d.zip", "d.zip", "is the source"),
    ("zip:d.zip", "./d.zip", "is the source"),
], ids=["inside", "deep-inside", "same-zip", "same-zip-other-name"])
def test_data_prepare_onto_or_into_its_source_is_refused(user, src, out, fragment, monkeypatch):
    monkeypatch.chdir(user)
    result = invoke("data", "prepare", "imgs", "d.zip", "--size", 8)
    assert result.exit_code == 0, result.output
    check_refused(user, ["data", "prepare", src, out, "--size", 8], 2, fragment, "write the zip outside")


# --- -o of sample, interpolate, mix, progress, eval --json ---------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["sample", "a", "-o", "a/model/samples.png"],  # the model's own preview, which push publishes
    ["sample", "a/model", "-o", "a/model/samples.png"],
    ["sample", "a", "-o", "a/model/grid.png"],  # into the exported folder, which every export replaces
    ["sample", "a", "-o", "a/samples/step-0000002.png"],  # the run's own progress grid
    ["sample", "a", "-o", "a/checkpoints/x.png"],
    ["interpolate", "a", "-o", "a/model/walk.gif"],
    ["mix", "a", "-o", "a/model/samples.png"],
    ["progress", "a", "-o", "a/samples/x.gif"],
    ["eval", "a", "--json", "a/model/config.json"],  # would replace the config that loading reads
    ["eval", "a/model", "--json", "a/model/README.md"],
], ids=["sample-run", "sample-model", "sample-into-model", "sample-run-grid", "sample-checkpoints", "interpolate",
        "mix", "progress", "eval-json-config", "eval-json-card"])
def test_an_output_onto_a_models_own_files_is_refused(user, args, monkeypatch):
    monkeypatch.chdir(user)
    option = "--json" if "--json" in args else "-o"
    check_refused(user, args, 2, f"{option} {args[-1]} would write", "choose an")


def test_a_grid_beside_the_model_is_written(user, monkeypatch):
    monkeypatch.chdir(user)
    before = tree(user / "a")
    assert invoke("sample", "a", "-n", 4, "-o", "a/grid.png").exit_code == 0  # the run folder, not its files
    assert invoke("progress", "a").exit_code == 0  # RUN/progress.gif, its default
    after = tree(user / "a")
    assert {k: v for k, v in after.items() if k not in ("grid.png", "progress.gif")} == before


# --- a folder that a running training writes ------------------------------------------------------------------------


def test_a_lock_is_held_by_one_open_file_and_released_with_it(tmp_path):
    lock = FolderLock(tmp_path, "a running training").acquire()
    assert holder(tmp_path) == f"a running training (pid {os.getpid()})"
    with pytest.raises(GanzooUsageError, match="is being written by a running training"):
        FolderLock(tmp_path).acquire(attempts=1)
    with pytest.raises(GanzooUsageError, match="is being written"):
        check_not_busy(tmp_path / "model")  # a folder inside counts
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists() and holder(tmp_path) is None
    (tmp_path / LOCK_NAME).write_text("123\na running training\n")  # left by a killed run: held by nobody
    assert holder(tmp_path) is None
    FolderLock(tmp_path).acquire().release()


@pytest.fixture(scope="module")
def running(trained, tmp_path_factory):
    """A training writing `ROOT/r` in another process (its lock taken), SIGKILLed at the end; yields (ROOT, process).

    One process for all the cases below: each checks that it changed nothing, so that they cannot affect each other.
    """
    root = tmp_path_factory.mktemp("busy")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["train", "--arch", "dcgan", "--steps", 100000, "--checkpoint-every", 100000, "--sample-every", 100000,
            "--out", root / "r", *TINY]
    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", *map(str, args)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while holder(root / "r") is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder(root / "r") == f"a running training (pid {proc.pid})", proc.stderr.read() if proc.poll() else ""
    # what the commands below would read, as a finished run would hold it
    shutil.copytree(trained / "model", root / "r" / "model")
    yield root, proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("args", [
    ["eval", "r"],
    ["eval", "r/model"],  # the model folder of the run
    ["push", "r", "--repo", "someone/r"],
    ["push", "r/model", "--repo", "someone/r"],
    ["train", "--resume", "--out", "r"],
    ["train", "--arch", "dcgan", "--out", "r", "--overwrite", "--steps", 1, *TINY],
    ["train", "--arch", "dcgan", "--out", "r", "--steps", 1, *TINY],
    ["train", "--arch", "dcgan", "--out", "r", "--auto-resume", "--steps", 1, *TINY],
    ["train", "--init", "r", "--out", "ft", "--steps", 1, "--device", "cpu"],
], ids=["eval", "eval-model", "push", "push-model", "resume", "overwrite", "new", "auto-resume", "init"])
def test_a_folder_being_trained_is_refused(running, args, monkeypatch):
    root, proc = running
    monkeypatch.chdir(root)
    model = tree(root / "r" / "model")
    refused(invoke(*args), 2, "r is being written by a running training", f"(pid {proc.pid})",
            "wait for it to finish or stop it")
    assert tree(root / "r" / "model") == model
    assert sorted(p.name for p in root.iterdir()) == ["r"]  # no folder made (ft)
    assert proc.poll() is None  # the training goes on


def test_a_sigkilled_training_leaves_its_folder_free(running, monkeypatch):
    root, proc = running
    monkeypatch.chdir(root)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (root / "r" / LOCK_NAME).exists() and holder(root / "r") is None
    result = invoke("train", "--arch", "dcgan", "--out", "r", "--overwrite", "--steps", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert not (root / "r" / LOCK_NAME).exists()  # a training that ends removes it


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_worker_does_not_keep_a_killed_trainings_lock(tmp_path):
    """Streamed data is decoded by forked DataLoader workers: they must not hold the lock of a parent killed with
    SIGKILL, or the job started again would be refused until they noticed and exited."""
    script = (
        "import os, sys, time\n"
        "from ganzoo._runlock import FolderLock\n"
        f"FolderLock({str(tmp_path)!r}).acquire()\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    os.write(1, b'worker\\n'); time.sleep(60); os._exit(0)\n"
        "os.write(1, f'{child}\\n'.encode())\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # each line one write(2) of its own (atomic on a pipe): print() may write a text and its newline separately (under
    # PYTHONUNBUFFERED), and the two processes' lines then interleave ('worker11905')
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    # the worker prints once fork() has returned in it, i.e. after its at-fork handler ran: on a loaded machine it
    # may not have been scheduled yet when the parent is killed, and then it still holds the lock's descriptor
    lines = {proc.stdout.readline().strip(), proc.stdout.readline().strip()}
    assert "worker" in lines, lines
    child = int((lines - {"worker"}).pop())
    try:
        assert holder(tmp_path) == f"a running training (pid {proc.pid})"
        proc.kill()
        proc.wait()
        os.kill(child, 0)  # the worker lives on
        assert holder(tmp_path) is None
    finally:
        proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)

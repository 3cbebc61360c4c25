"""Distributed data-parallel training on the CPU: 2 processes over gloo, as torchrun starts them."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganzoo.sharding import batch_shard, draw_rows
from ganzoo.testing import assert_same_state

WORKER = Path(__file__).with_name("ddp_worker.py")
TIMEOUT = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def run_workers(out: Path, processes: int, *args: str) -> list[dict[str, object]]:
    """Run tests/ddp_worker.py in `processes` processes joined over gloo; returns each rank's outputs.

    The rendezvous port is free when chosen but may be taken by another program before rank 0 listens on it: then
    the run is started again on another port (at most twice)."""
    for attempt in range(3):
        port = str(_free_port())
        procs = []
        for rank in range(processes):
            env = _clean_env()
            if processes > 1:
                env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes),
                           MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
            procs.append(subprocess.Popen([sys.executable, str(WORKER), str(out), *args], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = [proc.communicate(timeout=TIMEOUT)[0] for proc in procs]
        taken = any("EADDRINUSE" in o or "address already in use" in o.lower() for o in outputs)
        if taken and attempt < 2 and any(proc.returncode for proc in procs):
            continue
        for proc, output in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, output[-3000:]
        break
    return [{**json.loads((out / f"rank{r}.json").read_text()), "state": load_file(str(out / f"rank{r}.safetensors"))}
            for r in range(processes)]


@pytest.mark.parametrize("arch, config, recipe", [
    ("dcgan", {}, {}),  # BatchNorm in G and D, statistics per process
    ("dcgan", {}, {"sync_batchnorm": True}),  # BatchNorm over the global batch
    ("wgan", {}, {}),  # 5 critic steps per G step, gradient penalty
    ("progan", {}, {}),  # growing: parameters unused in early phases, fade-in buffers
])
def test_every_rank_holds_identical_weights_after_every_step(tmp_path, arch, config, recipe):
    args = ["--arch", arch, "--steps", "3", "--batch-size", "8", "--config", json.dumps(config),
            "--recipe", json.dumps(recipe)]
    ranks = run_workers(tmp_path, 2, *args)
    assert ranks[0]["digests"] == ranks[1]["digests"]
    assert len(set(ranks[0]["digests"])) == 3  # the weights changed at every step
    assert all("GlobalBatchNorm" not in r["norms"] for r in ranks)  # released: plain BatchNorm again
    assert_group_threads_ended(ranks)


def assert_group_threads_ended(ranks: list[dict[str, object]]) -> None:
    """Leaving the group ended its native threads (gloo's loops, the TCPStore server): none is left to be torn
    down in the interpreter's exit, where that aborted a finished process now and then."""
    for r in ranks:
        if r["threads"] is None:  # not Linux: nothing to read
            continue
        left = [name for name in r["threads"] if "gloo" in name or "tcpstore" in name]
        assert not left, f"threads still running after leaving the group: {left}"


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max(((a[k].double() - b[k].double()).abs().max().item(), k) for k in a if a[k].is_floating_point())
    assert worst[0] <= atol, f"largest difference {worst[0]:.3g} in {worst[1]}"


def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path):
    """Without batch-coupled layers (BatchNorm, minibatch std) 2 ranks compute what 1 rank does on the same global
    batch: the same data, latents, noise and style-mixing draws; only the order of float additions differs."""
    args = ["--arch", "stylegan-lite", "--batch-size", "8", "--config", json.dumps({"mbstd_group": 0})]
    initial = run_workers(tmp_path / "initial", 1, *args, "--steps", "0")[0]
    one = run_workers(tmp_path / "one", 1, *args, "--steps", "3")[0]
    two = run_workers(tmp_path / "two", 2, *args, "--steps", "3")[0]
    _assert_close(one["state"], two["state"], atol=1e-5)
    assert_group_threads_ended([two])
    with pytest.raises(AssertionError):  # training moved the weights far more than that tolerance
        _assert_close(initial["state"], one["state"], atol=1e-3)


def test_synchronised_batchnorm_on_two_processes_is_close_to_one_process(tmp_path):
    args = ["--arch", "dcgan", "--steps", "3", "--batch-size", "8", "--recipe", json.dumps({"sync_batchnorm": True})]
    one = run_workers(tmp_path / "one", 1, *args)[0]
    two = run_workers(tmp_path / "two", 2, *args)[0]
    _assert_close(one["state"], two["state"], atol=1e-4)


def test_draw_rows_gives_each_shard_its_rows_of_the_global_draw():
    torch.manual_seed(1)
    whole = torch.randn(8, 3)
    parts = []
    for rank in range(2):
        torch.manual_seed(1)
        with batch_shard(rank, 2):
            parts.append(draw_rows(4, lambda m: torch.randn(m, 3)))
    assert torch.equal(torch.cat(parts), whole)


def _ganzoo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], cwd=cwd, env=_clean_env(), text=True,
                          capture_output=True, timeout=TIMEOUT)


TINY = ["--arch", "dcgan", "--batch-size", "8", "--device", "cpu", "--set", "g_width=8", "--set", "d_width=8",
        "--set", "z_dim=16", "--img-size", "28", "--log-every", "1", "--sample-every", "100"]


def test_nproc_run_writes_once_and_resumes_exactly(tmp_path):
    """`ganzoo train --nproc 2`: one run folder written by rank 0; stopping after 2 steps and resuming to 4 gives
    the weights and logged values of an uninterrupted 4-step run of 2 processes."""
    whole = _ganzoo("train", "--nproc", "2", *TINY, "--steps", "4", "--out", str(tmp_path / "whole"), cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "trained dcgan for 4 steps" in whole.stdout and whole.stdout.count("run folder:") == 1
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["recipe"]["batch_size"] == 8
    lines = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]  # one line per step: rank 0 alone wrote

    part = tmp_path / "part"
    first = _ganzoo("train", "--nproc", "2", *TINY, "--steps", "2", "--out", str(part), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = _ganzoo("train", "--nproc", "2", "--resume", "--out", str(part), "--steps", "4", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    import ganzoo

    a, b = ganzoo.load(str(tmp_path / "whole")), ganzoo.load(str(part))
    assert_same_state(a.generator, b.generator)
    assert_same_state(a.discriminator, b.discriminator)
    logged = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in lines]
    for got, want in zip(logged, expected, strict=True):
        assert {k: v for k, v in got.items() if k not in ("time_s", "img_per_s")} == \
               {k: v for k, v in want.items() if k not in ("time_s", "img_per_s")}


def test_nproc_trains_with_adas_held_out_signal_summed_over_processes(tmp_path):
    """Two processes hold back the same images (seeded by the run) and sum the held-out signal's pairs once per
    interval: the run trains, records what it held back and logs the signal in whole pairs (the summing itself is
    tests/test_ada.py::test_a_distributed_run_sums_the_pairs_of_every_process)."""
    recipe = {"augment": "xflip,translation", "ada_target": "0.05", "ada_kimg": "0.04", "ada_interval": "1",
              "ada_holdout": "24"}
    sets = [arg for key, value in recipe.items() for arg in ("--set", f"{key}={value}")]
    run = _ganzoo("train", "--nproc", "2", *TINY, "--steps", "4", *sets, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["held_out"] == 24
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # 4 training rows a process against the 24 held-back images each process scored: 192 pairs in all
    assert len(logged) == 4 and all(abs(r["ada_held_out"] * 192 - round(r["ada_held_out"] * 192)) < 1e-4
                                    for r in logged), logged
    assert all(abs(r["augment_p"] * 5 - round(r["augment_p"] * 5)) < 1e-5 for r in logged), logged


def test_nproc_errors_are_reported_once(tmp_path):
    odd = _ganzoo("train", "--nproc", "2", *TINY, "--steps", "2", "--batch-size", "7", "--out", str(tmp_path / "r"),
                  cwd=tmp_path)
    assert odd.returncode == 2
    errors = [line for line in odd.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == ["Error: batch size 7 does not split evenly over 2 processes; use a multiple of 2 "
                      "(--batch-size 6 or 8)"], odd.stderr
    assert "Traceback" not in odd.stderr
    assert not (tmp_path / "r" / "config.json").exists()

    def one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
        assert result.returncode == code, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
        return errors[0]

    one_error(_ganzoo("train", "--nproc", "2", *TINY, "--steps", "2", "--data", str(tmp_path / "nowhere"),
                      "--out", str(tmp_path / "r2"), cwd=tmp_path), 2)
    assert "keep_best" in one_error(_ganzoo("train", "--nproc", "2", *TINY, "--steps", "2", "--eval-every", "1",
                                            "--keep-best", "kid", "--out", str(tmp_path / "r3"), cwd=tmp_path), 2)
    assert not (tmp_path / "r3" / "config.json").exists()
    run = tmp_path / "r4"
    assert _ganzoo("train", "--nproc", "2", *TINY, "--steps", "1", "--out", str(run), cwd=tmp_path).returncode == 0
    assert "cannot change batch_size" in one_error(_ganzoo("train", "--nproc", "2", "--resume", "--out", str(run),
                                                           "--batch-size", "16", cwd=tmp_path), 2)


def test_ctrl_c_stops_every_process_after_the_same_step(tmp_path):
    """SIGINT to the launcher's process group, as a terminal's Ctrl-C sends it: one checkpoint, one message, exit
    130, and the run resumes."""
    import signal
    import time

    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "train", "--nproc", "2", *TINY, "--steps", "100000",
                             "--out", str(run)], cwd=tmp_path, env=_clean_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + TIMEOUT
    metrics = run / "metrics.jsonl"
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "ganzoo train --nproc 2 --resume --out" in errors[0], stderr
    checkpoints = sorted((run / "checkpoints").glob("*.safetensors"))
    assert len(checkpoints) == 1
    step = int(checkpoints[0].stem.removeprefix("step-"))
    resumed = _ganzoo("train", "--resume", "--out", str(run), "--steps", str(step + 2), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"for {step + 2} steps" in resumed.stdout


def test_nproc_resume_falls_back_past_a_damaged_checkpoint_and_refuses_without_one(tmp_path):
    """The distributed resume reads its checkpoint as a single process does (rank 0 reads, the others receive):
    a damaged newest checkpoint is skipped with a warning naming it; with none readable every process stops,
    one error line, and the exported model is left as it was."""
    run = tmp_path / "run"
    assert _ganzoo("train", *TINY, "--steps", "2", "--checkpoint-every", "1", "--out", str(run),
                   cwd=tmp_path).returncode == 0
    older, newest = sorted((run / "checkpoints").glob("step-*.safetensors"))
    newest.write_bytes(newest.read_bytes()[:300])
    resumed = _ganzoo("train", "--nproc", "2", "--resume", "--out", str(run), "--steps", "3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.count(f"checkpoint {newest} is unreadable") == 1, resumed.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # resumed from step 1: step 2 trained again and logged once
    events = sorted(run.glob("events.out.tfevents.*"))
    if importlib.util.find_spec("tensorboard") is not None:  # one file a session: rank 0 alone writes events
        assert len(events) == 2, events

    for path in (run / "checkpoints").glob("step-*.safetensors"):
        path.write_bytes(b"\0" * 64)
    model = {p.name: p.read_bytes() for p in (run / "model").iterdir()}
    refused = _ganzoo("train", "--nproc", "2", "--resume", "--out", str(run), "--steps", "4", cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "is readable (newest:" in errors[0] and "--overwrite" in errors[0], refused.stderr
    assert {p.name: p.read_bytes() for p in (run / "model").iterdir()} == model
    assert sorted(run.glob("events.out.tfevents.*")) == events  # the refused resume wrote nothing


def test_nproc_auto_resume_starts_then_leaves_a_finished_run_alone(tmp_path):
    """`--auto-resume` with 2 processes: rank 0 decides and holds the run folder's lock; a second start of the finished
    run exits 0 and changes nothing; another plan is refused, said once."""
    run = tmp_path / "r"
    args = ["train", "--nproc", "2", *TINY, "--steps", "2", "--out", str(run), "--auto-resume"]
    first = _ganzoo(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("trained dcgan for 2 steps") == 1
    assert not (run / ".ganzoo-lock").exists()  # rank 0 took it and gave it back
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    again = _ganzoo(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished its 2 steps; nothing to do") == 1, again.stdout
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before
    other = _ganzoo(*args, "--seed", "1", cwd=tmp_path)
    errors = [line for line in other.stderr.splitlines() if line.startswith("Error: ")]
    assert other.returncode == 2 and len(errors) == 1 and "holds another run" in errors[0], other.stderr

"""Kill a training run with SIGKILL at random moments, resume it, repeat; the end must equal an uninterrupted run.

    .venv/bin/python benchmarks/kill_resume.py                      # 20 kills, seed 0
    .venv/bin/python benchmarks/kill_resume.py --kills 50 --seed 7 --keep runs/kill-check
    .venv/bin/python benchmarks/kill_resume.py --json results/kill_resume.json

What it does:

1. Trains a tiny DCGAN (`ganzoo train` in a subprocess, a checkpoint after every step) without interruption: the
   reference. Its timings (start-up, seconds per step) size the random delays below.
2. Starts the same run again in another folder and SIGKILLs it, `--kills` times. Each kill picks a moment with a
   seeded RNG, in one of four ways:
   - `startup`: a random delay after the process starts (often before the first checkpoint or even before
     config.json exists);
   - `step`: once the run has saved a checkpoint a few steps further on, a random fraction of a step later;
   - `write`: once the run is a few steps further on, the instant a temporary file of an atomic checkpoint write
     appears in checkpoints/;
   - `export`: the instant the final model/ folder is being written (only as the last kill).
   After every kill every file the run holds is read back: each checkpoint must load, each other safetensors file
   must parse, config.json and metrics.jsonl must be valid JSON. Then it starts again with `--resume` (or
   `--overwrite` when the kill came before config.json existed, as a user would: there is nothing to resume).
3. Lets the last attempt finish and compares with the reference, bit for bit: every tensor and the metadata of
   model/generator.safetensors, model/discriminator.safetensors and the final checkpoint (except its wall time),
   and metrics.jsonl (every logged value except timings).

A kill "during a write" is counted when a temporary file of an atomic write (`.NAME.XXXXXXXX.tmp`) was on disk
right after the process died: direct evidence that the process died between creating and renaming it.

Exit status 0 when the runs are identical and nothing was ever unreadable, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

MODES = ("startup", "step", "write", "export")
# A tiny DCGAN (BatchNorm buffers, EMA, Adam state) with instance noise and noisy labels, so the RNG state and
# every part of a checkpoint matter for an exact resume.
RUN_ARGS = ["--arch", "dcgan", "--set", "g_width=4", "--set", "d_width=4", "--set", "z_dim=8", "--img-size", "28",
            "--batch-size", "8", "--instance-noise", "0.1", "--label-noise", "--seed", "5"]
# Resumable options: the CLI passes them on every call, so a resume must repeat them.
CADENCE = ["--checkpoint-every", "1", "--log-every", "3", "--sample-every", "7", "--device", "cpu"]
TIMING_KEYS = ("time_s", "img_per_s")


@dataclass
class Kill:
    """One SIGKILL: how its moment was chosen and what it left behind."""

    number: int
    mode: str
    resumed_from: int | None  # newest checkpoint step when the attempt started (None: a fresh start)
    step_at_kill: int | None  # newest checkpoint step right after the kill
    temp_files: list[str]  # temporary files of atomic writes found right after the kill
    seconds: float  # how long the attempt ran before the kill


@dataclass
class Report:
    kills: int = 0
    kills_during_write: int = 0
    fresh_starts: int = 0
    resumes: int = 0
    finished_early: int = 0  # attempts that ended on their own before the planned kill
    unreadable: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    identical: bool = False
    steps: int = 0
    wall_s: float = 0.0
    records: list[Kill] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.identical and not self.unreadable


def ganzoo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganzoo", *args]


def temp_files(folder: Path) -> list[Path]:
    """Temporary files of atomic writes (`.NAME.XXXXXXXX.tmp`) anywhere in `folder`."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(".*.tmp") if p.is_file())


def newest_step(run: Path) -> int | None:
    """Step of the newest checkpoint file name in `run/checkpoints` (names only; nothing is read)."""
    try:
        names = os.listdir(run / "checkpoints")
    except FileNotFoundError:
        return None
    steps = [int(n[5:12]) for n in names if n.startswith("step-") and n.endswith(".safetensors")]
    return max(steps) if steps else None


def _writing(folder: Path) -> bool:
    """Whether an atomic write is under way in `folder` (its temporary file exists)."""
    try:
        return any(n.endswith(".tmp") for n in os.listdir(folder))
    except FileNotFoundError:
        return False


def check_readable(run: Path) -> list[str]:
    """Every file the run holds that a later command reads: problems, as one line each."""
    from ganzoo.errors import GanzooError
    from ganzoo.serialization import read_state
    from ganzoo.trainer.checkpoint import Checkpoint, find_checkpoints

    problems = []
    for step, path in find_checkpoints(run / "checkpoints"):
        try:
            ckpt = Checkpoint.load(path)
            if int(ckpt.meta["step"]) != step:
                problems.append(f"{path}: holds step {ckpt.meta['step']}, named {step}")
        except GanzooError as exc:
            problems.append(f"{path}: {exc}")
    for path in sorted((run / "model").glob("*.safetensors")):
        try:
            read_state(path)
        except GanzooError as exc:
            problems.append(f"{path}: {exc}")
    for path in (run / "config.json", run / "model" / "config.json"):
        if path.exists():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: not JSON ({exc})")
    if (run / "metrics.jsonl").exists():
        for n, line in enumerate((run / "metrics.jsonl").read_text(encoding="utf-8").splitlines(), 1):
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"{run / 'metrics.jsonl'} line {n} is not JSON: {line[:60]!r}")
    return problems


def _metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in lines if line.strip()]


def _same_bits(x, y) -> bool:
    import torch

    return x.dtype == y.dtype and x.shape == y.shape and torch.equal(x.reshape(-1).view(torch.uint8),
                                                                     y.reshape(-1).view(torch.uint8))


def _tensor_differences(what: str, a: dict, b: dict) -> list[str]:
    if a.keys() != b.keys():
        return [f"{what}: keys differ: {sorted(set(a) ^ set(b))[:4]}"]
    return [f"{what}: {key} differs" for key in sorted(a) if not _same_bits(a[key], b[key])]


def compare_runs(reference: Path, run: Path) -> list[str]:
    """Differences between two finished runs, bit for bit (empty when identical).

    Files are compared by content (every tensor's bytes, dtype and shape, and the metadata), not as whole files:
    safetensors writes its metadata keys in an arbitrary order, so equal content need not give equal bytes.
    """
    from safetensors import safe_open

    from ganzoo.trainer.checkpoint import Checkpoint, find_checkpoints

    differences = []
    for name in ("generator.safetensors", "discriminator.safetensors"):
        a, b = reference / "model" / name, run / "model" / name
        if not b.is_file():
            differences.append(f"model/{name} is missing")
            continue
        with safe_open(str(a), "pt") as fa, safe_open(str(b), "pt") as fb:
            if fa.metadata() != fb.metadata():
                differences.append(f"model/{name}: metadata differs")
            differences += _tensor_differences(f"model/{name}", {k: fa.get_tensor(k) for k in fa.keys()},
                                               {k: fb.get_tensor(k) for k in fb.keys()})
    ref_ckpts, run_ckpts = find_checkpoints(reference / "checkpoints"), find_checkpoints(run / "checkpoints")
    if not run_ckpts or ref_ckpts[-1][0] != run_ckpts[-1][0]:
        differences.append(f"newest checkpoints differ: {ref_ckpts[-1:]} vs {run_ckpts[-1:]}")
    else:
        a, b = Checkpoint.load(ref_ckpts[-1][1]), Checkpoint.load(run_ckpts[-1][1])
        differences += _tensor_differences("newest checkpoint", a.tensors, b.tensors)
        meta_a = {k: v for k, v in a.meta.items() if k != "elapsed"}
        meta_b = {k: v for k, v in b.meta.items() if k != "elapsed"}
        if meta_a != meta_b:
            keys = sorted(k for k in meta_a.keys() | meta_b.keys() if meta_a.get(k) != meta_b.get(k))
            differences.append(f"newest checkpoint: metadata differs in {keys}")
    ref_metrics, run_metrics = _metrics(reference), _metrics(run)
    if ref_metrics != run_metrics:
        ref_steps, run_steps = [r["step"] for r in ref_metrics], [r["step"] for r in run_metrics]
        if ref_steps != run_steps:
            differences.append(f"metrics.jsonl logs steps {run_steps}, the reference {ref_steps}")
        else:
            steps = [a["step"] for a, b in zip(ref_metrics, run_metrics, strict=True) if a != b]
            differences.append(f"metrics.jsonl values differ at steps {steps}")
    return differences


class _Attempt:
    """One `ganzoo train` process, its output going to a log file."""

    def __init__(self, args: list[str], log: Path, cwd: Path) -> None:
        self.log = log
        self.started = time.perf_counter()
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(ganzoo_command(*args), stdout=fh, stderr=subprocess.STDOUT, cwd=cwd,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILL the process; False when it had already ended."""
        if not self.running:
            return False
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return self.proc.returncode == -signal.SIGKILL

    def wait(self) -> int:
        return self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _wait_until(attempt: _Attempt, condition, timeout: float = 120.0, poll: float = 0.0005) -> bool:
    """Poll `condition` until it holds (True) or the attempt ends or times out (False)."""
    deadline = time.perf_counter() + timeout
    while attempt.running and time.perf_counter() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def _wait_for_checkpoint(attempt: _Attempt, run: Path, step: int) -> None:
    """Return once the run's newest checkpoint is at `step` or later, or the attempt has ended."""
    while attempt.running and (newest_step(run) or 0) < step:
        time.sleep(0.005)


def _sleep_while_running(attempt: _Attempt, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while attempt.running and time.perf_counter() < end:
        time.sleep(min(0.002, max(0.0, end - time.perf_counter())))


@dataclass
class Timing:
    startup_s: float  # process start to first checkpoint
    step_s: float  # seconds per step, checkpoint included


def reference_run(folder: Path, steps: int, logs: Path, run_args: list[str] | None = None) -> Timing:
    """The uninterrupted run; also measures how long start-up and a step take."""
    args = RUN_ARGS if run_args is None else run_args
    attempt = _Attempt(["train", *args, *CADENCE, "--steps", str(steps), "--out", str(folder)],
                       logs / "reference.log", folder.parent)
    _wait_until(attempt, lambda: newest_step(folder) is not None, poll=0.002)
    first = time.perf_counter()
    startup = first - attempt.started
    step_first = newest_step(folder) or 0
    if attempt.wait() != 0:
        raise RuntimeError(f"the reference run failed:\n{attempt.output()[-2000:]}")
    step_s = (time.perf_counter() - first) / max(1, steps - step_first)
    return Timing(startup, step_s)


def plan_modes(kills: int, rng: random.Random) -> list[str]:
    """Kinds of kill moments: random ones, and an `export` kill last when there are at least 3 kills."""
    modes = [rng.choices(MODES[:3], weights=(2, 4, 4))[0] for _ in range(kills)]
    if kills >= 3:
        modes[-1] = "export"
    return modes


def kill_and_resume(work: Path, *, kills: int, steps: int, seed: int, modes: list[str] | None = None,
                    log=print, run_args: list[str] | None = None) -> Report:
    """Run the whole harness in `work` (reference/, run/, logs/); returns the report.

    `run_args` replaces the training arguments `RUN_ARGS` (another architecture or data, e.g. a streamed dataset)."""
    run_args = RUN_ARGS if run_args is None else run_args
    rng = random.Random(seed)
    modes = modes or plan_modes(kills, rng)
    kills = len(modes)
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    reference, run = work / "reference", work / "run"
    report = Report(steps=steps)
    t0 = time.perf_counter()
    timing = reference_run(reference, steps, logs, run_args)
    log(f"reference: {steps} steps, start-up {timing.startup_s:.2f} s, {1000 * timing.step_s:.1f} ms a step")
    # steps a non-startup kill lets the run advance at most, so that every planned kill finds the run unfinished
    gap = max(1, (steps - 2) // (2 * kills))

    def command() -> list[str]:
        if (run / "config.json").is_file():
            report.resumes += 1
            return ["train", "--resume", "--out", str(run), *CADENCE]
        report.fresh_starts += 1
        return ["train", *run_args, *CADENCE, "--steps", str(steps), "--out", str(run), "--overwrite"]

    for number, mode in enumerate(modes, 1):
        start_step = newest_step(run) if (run / "config.json").is_file() else None
        attempt = _Attempt(command(), logs / f"attempt-{number:03d}.log", work)
        target = (start_step or 0) + rng.randint(1, gap)
        if mode == "startup":
            _sleep_while_running(attempt, rng.uniform(0, timing.startup_s + 2 * timing.step_s))
        elif mode == "step":
            _wait_until(attempt, lambda t=target: (newest_step(run) or 0) >= t)
            _sleep_while_running(attempt, rng.uniform(0, timing.step_s))
        elif mode == "write":
            _wait_until(attempt, lambda t=target: (newest_step(run) or 0) >= t)
            _wait_until(attempt, lambda: _writing(run / "checkpoints"))
        elif mode == "export":
            _wait_until(attempt, lambda: _writing(run / "model"))
        else:
            raise ValueError(f"unknown kill mode {mode!r}")
        seconds = time.perf_counter() - attempt.started
        if not attempt.kill():
            report.finished_early += 1
            code = attempt.proc.returncode
            log(f"kill {number:2d} ({mode}): the attempt ended on its own (exit {code}) before the kill")
            if code != 0:
                report.unreadable.append(f"attempt {number} failed with exit code {code}: "
                                         f"{attempt.output().strip().splitlines()[-1:]}")
                break
            continue
        report.kills += 1
        leftovers = [str(p.relative_to(run)) for p in temp_files(run)]
        new = [p for p in leftovers if not any(p == q for r in report.records for q in r.temp_files)]
        if new:
            report.kills_during_write += 1
        record = Kill(number, mode, start_step, newest_step(run), new, round(seconds, 3))
        report.records.append(record)
        problems = check_readable(run)
        report.unreadable += [f"after kill {number}: {p}" for p in problems]
        log(f"kill {number:2d} ({mode:7s}) after {seconds:5.2f} s: checkpoint {start_step} -> {record.step_at_kill}"
            + (f", mid-write: {', '.join(new)}" if new else "") + (f", UNREADABLE: {problems}" if problems else ""))

    final = _Attempt(command(), logs / "final.log", work)
    if final.wait() != 0:
        report.unreadable.append(f"the final resume failed: {final.output().strip().splitlines()[-1:]}")
    else:
        report.differences = compare_runs(reference, run)
        report.identical = not report.differences
        report.unreadable += [f"after the final resume: {p}" for p in check_readable(run)]
    report.wall_s = round(time.perf_counter() - t0, 1)
    return report


def _state(run: Path) -> str:
    """What a killed attempt left in the run folder, in words (for the log of `auto_resume_kills`)."""
    if not run.exists():
        return "no run folder"
    if not (run / "config.json").is_file():
        return "a folder without config.json"
    step = newest_step(run)
    if step is None:
        return "config.json, no checkpoint"
    exported = (run / "model" / "config.json").is_file()
    return f"checkpoint {step}" + (", model exported" if exported else "")


@dataclass
class AutoReport:
    attempts: int = 0
    kills: int = 0
    states: list[str] = field(default_factory=list)  # what each kill left, in order
    differences: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    finished_again: str = ""  # what an attempt after the run finished printed
    untouched: bool = False  # ... and whether it left every file as it was
    identical: bool = False
    wall_s: float = 0.0


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def auto_resume_kills(work: Path, *, kills: int, steps: int, seed: int, log=print,
                      run_args: list[str] | None = None) -> AutoReport:
    """`ganzoo train ... --auto-resume`, the same command line every time, SIGKILLed after random delays from the
    first instant on (0.05 s, 0.3 s, then `kills` random moments spread over an uninterrupted run's start-up and
    training), and started again until it exits 0 on its own; then once more, which must exit 0 and change nothing.
    The run must end bit-identical to an uninterrupted one (`compare_runs`)."""
    run_args = RUN_ARGS if run_args is None else run_args
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    reference, run = work / "reference", work / "run"
    report = AutoReport()
    t0 = time.perf_counter()
    timing = reference_run(reference, steps, logs, run_args)
    log(f"reference: {steps} steps, start-up {timing.startup_s:.2f} s, {1000 * timing.step_s:.1f} ms a step")
    # A third of the random kills fall in the start-up (before and around the run folder's creation), the rest in
    # the training and its export, so that every phase is hit. The start-up kills are moments in seconds; the
    # training kills wait for the newest checkpoint to reach a random step (increasing, so each attempt gets
    # further), then a random part of a step: a loaded machine slows a run down but cannot make these kills land
    # after the run has finished.
    early = max(1, kills // 3)
    start = timing.startup_s
    moments: list[tuple[float, int | None]] = [(0.05, None), (0.3, None)]
    moments += [(0.3 + (start - 0.3) * (i + rng.random()) / early, None) for i in range(early)]
    targets = sorted(rng.sample(range(1, steps), min(kills - early, steps - 1)))
    moments += [(timing.step_s * rng.random(), target) for target in targets]
    command = ["train", *run_args, *CADENCE, "--steps", str(steps), "--out", str(run), "--auto-resume"]
    for moment in [*moments, None]:
        report.attempts += 1
        attempt = _Attempt(command, logs / f"attempt-{report.attempts:03d}.log", work)
        if moment is not None:
            delay, target = moment
            if target is not None:
                _wait_for_checkpoint(attempt, run, target)
            _sleep_while_running(attempt, delay)
            if attempt.kill():
                report.kills += 1
                report.states.append(_state(run))
                report.unreadable += [f"after kill {report.kills}: {p}" for p in check_readable(run)]
                when = f"at checkpoint {target} + {delay:4.2f} s" if target is not None else f"after {delay:5.2f} s"
                log(f"kill {report.kills:2d} {when}: {report.states[-1]}")
                continue
        code = attempt.wait()
        if code != 0:
            report.unreadable.append(f"attempt {report.attempts} exited {code}: {attempt.output()[-400:]}")
            report.wall_s = round(time.perf_counter() - t0, 1)
            return report
        break  # it finished on its own
    report.differences = compare_runs(reference, run)
    report.identical = not report.differences
    before = _tree(run)
    again = _Attempt(command, logs / "again.log", work)
    code = again.wait()
    report.finished_again = f"exit {code}: {again.output().strip()}"
    report.untouched = code == 0 and _tree(run) == before
    report.wall_s = round(time.perf_counter() - t0, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs before the run may finish (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--steps", type=int, help="training steps (default: 6 per kill, at least 40)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    steps = args.steps or max(40, 6 * args.kills)
    if steps < 2 * args.kills + 2:
        parser.error(f"--steps must be at least {2 * args.kills + 2} for {args.kills} kills")

    import tempfile

    with tempfile.TemporaryDirectory(prefix="ganzoo-kill-") as tmp:
        work = args.keep or Path(tmp)
        report = kill_and_resume(work, kills=args.kills, steps=steps, seed=args.seed)
    modes = {m: sum(r.mode == m for r in report.records) for m in MODES}
    print()
    print(f"kills:              {report.kills} ({', '.join(f'{m} {n}' for m, n in modes.items())})")
    print(f"kills during write: {report.kills_during_write} (a temporary file of an atomic write was left behind)")
    print(f"fresh starts:       {report.fresh_starts} (killed before config.json existed)")
    print(f"resumes:            {report.resumes}")
    print(f"ended before kill:  {report.finished_early}")
    print(f"unreadable files:   {len(report.unreadable)}" + "".join(f"\n  {p}" for p in report.unreadable))
    print(f"identical:          {'yes' if report.identical else 'no'}" + "".join(f"\n  {d}" for d in
                                                                               report.differences))
    print(f"wall time:          {report.wall_s} s ({steps} steps, seed {args.seed})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**asdict(report), "seed": args.seed}, indent=2) + "\n", encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

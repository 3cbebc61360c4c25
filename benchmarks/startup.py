"""Start-up time: wall time of `ganzoo --help` and `ganzoo list` against `python -c "import torch"`.

Each command runs in a fresh subprocess, the three in turn (rotated every round), and the median over rounds is
reported. `import torch` is the reference: a command that imports torch cannot start faster than that.

    .venv/bin/python benchmarks/startup.py                  # 10 rounds, about half a minute
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import add_common_args, check_args, finish, md_table, result_header, setup_device, verdict

TARGET_S = 0.5  # ganzoo --help and ganzoo list


def ganzoo_command() -> list[str]:
    """The `ganzoo` console script of this Python environment (next to the interpreter), else `python -m ganzoo`."""
    script = Path(sys.executable).with_name("ganzoo")
    if script.is_file():
        return [str(script)]
    found = shutil.which("ganzoo")
    return [found] if found else [sys.executable, "-m", "ganzoo"]


def commands() -> dict[str, list[str]]:
    cli = ganzoo_command()
    return {"ganzoo --help": [*cli, "--help"], "ganzoo list": [*cli, "list"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"]}


def time_command(argv: list[str]) -> float:
    """Wall seconds from spawning `argv` to its exit; a failure is an error with the command's own message."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {tail[0]}")
    return elapsed


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for name, c in result["commands"].items():
        target = c.get("target_s")
        rows.append([f"`{name}`", f"{c['median_s']:.3f}", f"{c['min_s']:.3f}-{c['max_s']:.3f}",
                     f"< {target}" if target else "(reference)",
                     verdict(c["median_s"], target, higher_is_better=False) if target else ""])
    return (f"Median wall time of {result['settings']['rounds']} runs each, in fresh processes.\n\n"
            + md_table(["command", "median s", "range s", "target s", ""], rows))


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"what": f"start-up: `{name}`", "value": f"{c['median_s']:.3f} s", "target": f"< {c['target_s']} s",
             "verdict": verdict(c["median_s"], c["target_s"], higher_is_better=False)}
            for name, c in result["commands"].items() if c.get("target_s")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--rounds", type=int, default=None, help="runs of each command (default 10, --quick 2)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs of each command first (file-system cache, byte-code files)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds if args.rounds is not None else (2 if args.quick else 10)
    check_args(parser, args, positive=("rounds",), non_negative=("warmup",))
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time the commands; the section's result (see run_all.py)."""
    device = setup_device(args)  # the commands themselves do not use it; recorded with the machine
    t_start = time.perf_counter()
    cmds = commands()
    result = result_header("startup", device, {"rounds": args.rounds, "warmup": args.warmup, "commands": cmds,
                                              "quick": args.quick})
    print(f"torch {torch.__version__}; load average {result['load_average_before']}")
    names = list(cmds)
    for _ in range(args.warmup):  # untimed: the file-system cache and byte-code files
        for name in names:
            time_command(cmds[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(time_command(cmds[name]))
        print(f"  round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in names), flush=True)
    result["commands"] = {
        name: {"median_s": round(statistics.median(t), 4), "min_s": round(min(t), 4), "max_s": round(max(t), 4),
               "runs_s": [round(x, 4) for x in t], **({"target_s": TARGET_S} if name.startswith("ganzoo") else {})}
        for name, t in times.items()}
    finish(result, args.json, t_start)
    return result


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    print()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

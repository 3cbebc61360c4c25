"""Every benchmark section in one command, and `benchmarks/RESULTS.md` written from what it measured.

    .venv/bin/python benchmarks/run_all.py                   # everything: about 25-30 minutes on 2 idle cores
    .venv/bin/python benchmarks/run_all.py --quick           # smoke run (written to the temporary folder)
    .venv/bin/python benchmarks/run_all.py --only train,memory --arch dcgan
    .venv/bin/python benchmarks/run_all.py --device cuda
    .venv/bin/python benchmarks/run_all.py --args train="--compile --rounds 7" --args quality="--cpu-minutes 5"

RESULTS.md holds the machine (CPU model, cores, memory, GPU), the ganzoo, torch and Python versions, the date,
the command line, a table of every target next to its measured value with pass or fail, and one part per section
with that section's own tables. RESULTS.json next to it holds every number. Both are replaced atomically, and
only once every section has run.

A section is a script in this folder that provides:
    parse_args(argv) -> argparse.Namespace     its command line (with --device, --threads, --quick; --arch when
                                               it runs per architecture)
    run(args) -> dict                          measures, prints its progress, returns the result (JSON-able)
    markdown(result) -> str                    its tables for RESULTS.md
    summary(result) -> list[dict]              target rows: {"what", "value", "target", "verdict"}
Adding a section is one entry in SECTIONS.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS_DIR, load_average, machine_info, md_table, now_iso

import ganzoo
from ganzoo._io import write_json, write_text
from ganzoo.trainer.loop import resolve_device


@dataclass(frozen=True)
class Section:
    """One benchmark script run as a part of RESULTS.md."""

    key: str  # the name --only and --args use
    title: str
    module: str  # the script in this folder, imported by name
    per_architecture: bool = True  # takes --arch
    quick_args: str = ""  # with --quick, after the section's own --quick: a smoke run of all sections in minutes


SECTIONS = [
    Section("train", "Training speed: the trainer against a plain loop, the fast path, FLOPs", "train_speed",
            quick_args="--rounds 1 --steps 2 --warmup 0"),
    Section("sample", "Sampling speed: gan.sample against a bare G(z) loop", "sample_speed",
            quick_args="--rounds 1"),
    Section("startup", "Start-up time of the command line", "startup", per_architecture=False,
            quick_args="--rounds 1"),
    Section("memory", "Peak memory of training", "memory", quick_args="--steps 1"),
    Section("quality", "Quality at a fixed CPU budget", "quality",
            quick_args="--cpu-minutes 0.02 --num-samples 100 --real-images 300"),
    Section("ddp", "Distributed scaling: 2 processes against 1", "ddp_scaling", per_architecture=False),
]


def section_argv(section: Section, args: argparse.Namespace) -> list[str]:
    """The section's command line: the shared options, then what --args gives it."""
    argv = ["--device", args.device, "--threads", str(args.threads)]
    if args.quick:
        argv += ["--quick", *shlex.split(section.quick_args)]
    if section.per_architecture and args.arch:
        argv += ["--arch", args.arch]
    return argv + args.extra.get(section.key, [])


# ---------------------------------------------------------------------------------------------------------------------
# where and with what
# ---------------------------------------------------------------------------------------------------------------------


def git_revision() -> str | None:
    """The commit of the ganzoo source tree being measured, with '+ local changes' when it has any."""
    root = Path(ganzoo.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + (" + local changes" if dirty else "")


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and the child processes it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def command_line() -> str:
    """How this run was started, with the interpreter relative to the working folder when it lies inside it."""
    exe = os.path.relpath(sys.executable)
    return shlex.join([sys.executable if exe.startswith("..") else exe, *sys.argv])


def header_lines(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    cpu = f"{m.get('cpu_model', m['processor'])}, {m['cpu_count']} cores"
    if "memory_gib" in m:
        cpu += f", {m['memory_gib']:g} GiB memory"
    lines = [f"- Date: {meta['date']} (took {meta['elapsed_s'] / 60:.1f} minutes)",
             f"- Command: `{meta['command']}`",
             f"- Machine: {cpu}; {m['platform']}"]
    if "gpu" in m:
        lines.append(f"- GPU: {m['gpu']}, {m['gpu_memory_gib']:g} GiB")
    lines += [f"- Software: ganzoo {meta['ganzoo_version']}"
              + (f" (git {meta['git']})" if meta.get("git") else "")
              + f", torch {meta['torch_version']}, Python {m['python']}",
              f"- Device: {m['device']}, {m['torch_threads']} torch threads",
              f"- Load average (1, 5, 15 min) before: {meta['load_average_before']}, after: "
              f"{meta['load_average_after']}"]
    if meta["quick"]:
        lines.append("- **Quick run** (`--quick`): tiny rounds that check the scripts work; the figures mean little.")
    return lines


# ---------------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------------


def render(meta: dict[str, Any], parts: list[dict[str, Any]]) -> str:
    out = ["# ganzoo benchmark results", "",
           "Written by `benchmarks/run_all.py` from what it measured; run it again rather than editing this file. "
           "How to read every table: `benchmarks/README.md`. Every number: `RESULTS.json`.", "",
           *header_lines(meta), "", "## Targets", ""]
    rows = [[p["key"], r["what"], r["value"], r["target"], r["verdict"]] for p in parts for r in p.get("summary", [])]
    if rows:
        passed = sum(r[-1] == "pass" for r in rows)
        out += [f"{passed} of {len(rows)} targets met.", "",
                md_table(["section", "what", "measured", "target", ""], rows)]
    else:
        out.append("No section with a target ran.")
    for number, part in enumerate(parts, 1):
        out += ["", f"## {number}. {part['title']}", ""]
        if "error" in part:
            out += [f"**The section failed:** `{part['error']}`"]
            continue
        out += [part["markdown"], "",
                f"*`{part['module']}.py {shlex.join(part['argv'])}`: {part['elapsed_s']:.0f} s wall, "
                f"{part['cpu_s']:.0f} CPU s; load average before {part['load_average_before']}, after "
                f"{part['load_average_after']}.*"]
    left_out = meta.get("left_out", {})
    if left_out:
        out += ["", "Not run this time: " + "; ".join(f"{key} ({why})" for key, why in left_out.items()) + "."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    keys = [s.key for s in SECTIONS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--only", default=None, help=f"comma-separated sections to run, of {', '.join(keys)}")
    parser.add_argument("--arch", default=None,
                        help="comma-separated architectures for the per-architecture sections (default all)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where every section runs; auto is CUDA when available")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default, one per core); 1 is steadier on a busy machine")
    parser.add_argument("--quick", action="store_true", help="every section's smoke-run settings")
    parser.add_argument("--args", action="append", default=[], metavar="SECTION=ARGS",
                        help="more options for one section, e.g. train=\"--compile --rounds 7\" (repeatable)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the Markdown file to write (default: benchmarks/RESULTS.md; with --quick "
                             "ganzoo-benchmarks-quick/RESULTS.md in the temporary folder, so a smoke run does not "
                             "replace the real figures)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="where every number goes (default: RESULTS.json next to --out)")
    args = parser.parse_args(argv)
    if args.only:
        wanted = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in wanted if k not in keys]
        if unknown or not wanted:
            parser.error(f"unknown section {unknown[0] if unknown else args.only!r}; sections: {', '.join(keys)}")
        args.sections = [s for s in SECTIONS if s.key in wanted]
    else:
        args.sections = list(SECTIONS)
    args.extra = {}
    for item in args.args:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in keys:
            parser.error(f"--args takes SECTION=ARGS with SECTION one of {', '.join(keys)}, got {item!r}")
        args.extra.setdefault(key.strip(), []).extend(shlex.split(value))
    if args.threads < 0:
        parser.error("--threads must be at least 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but CUDA is not available here")
    args.left_out = {s.key: "`--only`" for s in SECTIONS if s not in args.sections}
    if args.device == "cuda" and torch.cuda.device_count() < 2 and any(s.key == "ddp" for s in args.sections):
        # the scaling section compares 1 GPU with 2; on one GPU it has nothing to compare (--device auto runs it
        # on the CPU instead)
        args.sections = [s for s in args.sections if s.key != "ddp"]
        args.left_out["ddp"] = f"it needs 2 GPUs with `--device cuda`, this machine has {torch.cuda.device_count()}"
    if args.out is None:
        folder = Path(tempfile.gettempdir()) / "ganzoo-benchmarks-quick" if args.quick else RESULTS_DIR
        args.out = folder / "RESULTS.md"
    if args.json is None:
        args.json = args.out.with_suffix(".json")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # every section's command line is checked before anything runs, so a typo does not surface an hour later
    planned = []
    for section in args.sections:
        module = importlib.import_module(section.module)
        section_args = section_argv(section, args)
        try:
            planned.append((section, module, section_args, module.parse_args(section_args)))
        except SystemExit as exc:
            print(f"run_all: the options for section {section.key} are not valid: {shlex.join(section_args)}",
                  file=sys.stderr)
            return int(exc.code or 2)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    meta: dict[str, Any] = {"date": now_iso(), "command": command_line(), "quick": args.quick,
                            "ganzoo_version": ganzoo.__version__, "git": git_revision(),
                            "torch_version": torch.__version__, "machine": machine_info(device),
                            "load_average_before": load_average(), "left_out": args.left_out}
    parts: list[dict[str, Any]] = []
    for number, (section, module, section_args, parsed) in enumerate(planned, 1):
        print(f"\n=== {number}/{len(planned)} {section.key}: {section.title} ===", flush=True)
        part: dict[str, Any] = {"key": section.key, "title": section.title, "module": section.module,
                                "argv": section_args, "load_average_before": load_average()}
        start, cpu_start = time.perf_counter(), cpu_seconds()
        try:
            result = module.run(parsed)
            part.update(result=result, markdown=module.markdown(result), summary=module.summary(result))
        except Exception as exc:  # one broken section must not lose the others' figures
            traceback.print_exc()
            part["error"] = f"{type(exc).__name__}: {exc}"
        part["elapsed_s"] = round(time.perf_counter() - start, 1)
        part["cpu_s"] = round(cpu_seconds() - cpu_start, 1)
        part["load_average_after"] = load_average()
        parts.append(part)
    meta["elapsed_s"] = round(time.perf_counter() - t0, 1)
    meta["load_average_after"] = load_average()

    write_json(args.json, {**meta, "sections": parts})
    write_text(args.out, render(meta, parts))
    print(f"\nwrote {args.out} and {args.json} ({meta['elapsed_s'] / 60:.1f} minutes)")
    for part in parts:
        for row in part.get("summary", []):
            print(f"  {row['verdict']:4}  {row['what']}: {row['value']} (target {row['target']})")
    failed = [p["key"] for p in parts if "error" in p or any(
        "error" in a for a in p.get("result", {}).get("architectures", []))]
    if failed:
        print(f"sections with errors: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

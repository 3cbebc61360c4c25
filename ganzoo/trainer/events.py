"""TensorBoard event files beside `metrics.jsonl`, written when the `tensorboard` extra is installed.

What goes in: every scalar of every metrics.jsonl line under the same name (losses, images/s, scheduled values,
the augmentation probability ...), evaluation values as `eval/<name>`, the fixed-latent sample grid at each sample
step, and the run's architecture, config, recipe and options as hyperparameters. The files sit in the run folder,
so `tensorboard --logdir runs` shows every run.

A resumed run opens a new event file with `purge_step` one past the step it resumes from: readers (TensorBoard,
`EventAccumulator`) then drop what the interrupted session wrote after its checkpoint, and each step is read once,
with the value the resumed run logged. Without tensorboard nothing is written and training is unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["EVENT_FILE_PREFIX", "EventWriter", "open_event_writer"]

logger = logging.getLogger(__name__)

EVENT_FILE_PREFIX = "events.out.tfevents."
_STAMP = re.compile(r"^events\.out\.tfevents\.(\d+)\.")


def _wait_for_a_later_second(folder: Path) -> None:
    """Event files are read in name order and named by the second they were opened in: make sure a new one sorts
    after the files already there (a resume within a second of the interruption would otherwise sort first)."""
    stamps = [int(m.group(1)) for p in folder.glob(EVENT_FILE_PREFIX + "*") if (m := _STAMP.match(p.name))]
    if not stamps or max(stamps) > time.time() + 1:  # none, or stamped ahead of this clock: waiting would not help
        return
    while int(time.time()) <= max(stamps):
        time.sleep(0.05)


def hparams_of(plan: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """A run plan (architecture, config, recipe, options ...) flattened to the scalar values TensorBoard's hparams
    accept: nested keys joined with '/', lists and objects as JSON text, None left out."""
    flat: dict[str, bool | int | float | str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and prefix.count("/") < 1:
            for key, inner in value.items():
                walk(f"{prefix}/{key}" if prefix else str(key), inner)
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix] = value
        elif value is not None:
            flat[prefix] = json.dumps(value, sort_keys=True)

    walk("", dict(plan))
    return flat


class EventWriter:
    """Writes a run's scalars, sample grids and hyperparameters as TensorBoard events (see the module docstring)."""

    def __init__(self, folder: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder.mkdir(parents=True, exist_ok=True)
        _wait_for_a_later_second(folder)
        # steps after the checkpoint were logged by the session that was interrupted: they are logged again
        purge = start_step + 1 if start_step > 0 else 0
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge, max_queue=1000, flush_secs=30)

    def scalars(self, record: Mapping[str, Any]) -> None:
        """One metrics.jsonl line: each finite number under its own name at the line's step; an evaluation line's
        values as `eval/<name>` and its numeric diagnostics as `eval/<diagnostic>`."""
        step = int(record["step"])
        values: dict[str, float] = {}
        if "eval" in record:
            for entry in record.get("eval") or []:
                values[f"eval/{entry['name']}"] = entry["value"]
            for key, value in (record.get("diagnostics") or {}).items():
                values[f"eval/{key}"] = value
        else:
            values = {key: value for key, value in record.items() if key != "step"}
        for tag, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)

    def grid(self, tag: str, grid: torch.Tensor, step: int) -> None:
        """A sample grid: (C, H, W) uint8."""
        self.writer.add_image(tag, grid, step, dataformats="CHW")

    def hparams(self, plan: Mapping[str, Any], metrics: tuple[str, ...] = ("d_loss", "g_loss")) -> None:
        """The run's plan as hyperparameters, in this folder (not in a sub-run as `SummaryWriter.add_hparams` does);
        `metrics` are the logged scalars TensorBoard's HParams view shows beside them."""
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(hparams_of(plan), dict.fromkeys(metrics, 0.0)):
            self.writer.file_writer.add_summary(summary, 0)

    def flush(self) -> None:
        """Write what is queued (called with every checkpoint, so events up to it survive a kill)."""
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def open_event_writer(folder: Path, start_step: int) -> EventWriter | None:
    """An `EventWriter` for the run folder, or None when tensorboard is not installed (said once, at debug level) or
    cannot be used here (said as a warning: training goes on without events)."""
    try:
        return EventWriter(folder, start_step)
    except ImportError as exc:
        logger.debug("tensorboard is not installed (%s); no event files (install ganzoo[tensorboard])", exc)
    except Exception as exc:  # noqa: BLE001 - a broken optional extra must not stop training
        logger.warning("cannot write TensorBoard events in %s (%s: %s); training without them", folder,
                       type(exc).__name__, exc)
    return None

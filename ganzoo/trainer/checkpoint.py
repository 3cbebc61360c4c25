"""Training checkpoints: every tensor in one safetensors file, everything else as JSON in its metadata.

One file per checkpoint, written atomically, so a checkpoint is either complete or absent. It holds what an
exact resume needs: G, D and EMA weights and buffers, both optimisers, the step, the RNG states and the hooks'
state. Only tensors and JSON are stored, never Python objects.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.errors import WeightsError
from ganzoo.serialization import save_state

__all__ = ["Checkpoint", "find_checkpoints", "flatten_optimizer", "latest_checkpoint", "resume_checkpoint",
           "unflatten_optimizer"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^step-(\d+)\.safetensors$")
META_KEY = "ganzoo.checkpoint"


def flatten_optimizer(prefix: str, state_dict: Mapping[str, Any], tensors: dict[str, torch.Tensor]) -> dict:
    """Move an optimiser state dict's tensors into `tensors` under `prefix`; return the JSON-able rest."""
    rest: dict[str, Any] = {"param_groups": state_dict["param_groups"], "state": {}}
    for pid, entry in state_dict["state"].items():
        json_entry = {}
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{name}"] = value
            else:
                json_entry[name] = value
        rest["state"][str(pid)] = json_entry
    return rest


def unflatten_optimizer(prefix: str, rest: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict:
    """Inverse of `flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {int(pid): dict(entry) for pid, entry in rest["state"].items()}
    head = prefix + "."
    for key, value in tensors.items():
        if key.startswith(head):
            pid, name = key[len(head):].split(".", 1)
            state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


class Checkpoint:
    """Tensors (by prefixed name) plus JSON-able metadata."""

    def __init__(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.tensors = tensors
        self.meta = meta

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        head = prefix + "."
        return {k[len(head):]: v for k, v in self.tensors.items() if k.startswith(head)}

    def save(self, path: Path) -> None:
        save_state(self.tensors, path, {META_KEY: json.dumps(self.meta)})

    def to_bytes(self) -> bytes:
        """The checkpoint as the bytes of a safetensors file (what rank 0 sends the other processes on resume)."""
        from safetensors.torch import save

        flat = {k: v.detach().to("cpu").contiguous() for k, v in self.tensors.items()}
        return save(flat, metadata={META_KEY: json.dumps(self.meta)})

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Inverse of `to_bytes`."""
        from safetensors.torch import load

        header_size = int.from_bytes(data[:8], "little")
        raw = json.loads(data[8:8 + header_size]).get("__metadata__", {}).get(META_KEY)
        if raw is None:
            raise WeightsError("the checkpoint sent by rank 0 is not a ganzoo checkpoint")
        return cls(load(data), json.loads(raw))

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """Read a checkpoint file; a missing, cut-short or foreign file is a `WeightsError` naming it."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path), device="cpu")
            with safe_open(str(path), framework="pt") as fh:
                raw = (fh.metadata() or {}).get(META_KEY)
            meta = json.loads(raw) if raw is not None else None
        except (SafetensorError, OSError, ValueError) as exc:  # ValueError: JSONDecodeError too
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise WeightsError(f"checkpoint {path} is unreadable ({reason[:200]})") from None
        if not isinstance(meta, dict) or "step" not in meta:
            raise WeightsError(f"checkpoint {path} is a safetensors file but not a ganzoo checkpoint")
        return cls(tensors, meta)


def find_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(folder: Path) -> Checkpoint | None:
    """The newest readable checkpoint in `folder`; None when there is none.

    Checkpoints are written atomically, so an unreadable one is damage (a disk error, a copy cut short): it is
    skipped with a warning that names it, and the next older one is tried. Whether a run may start again from step 0
    without one is the caller's decision (see `resume_checkpoint`).
    """
    for step, path in reversed(find_checkpoints(folder)):
        try:
            ckpt = Checkpoint.load(path)
        except WeightsError as exc:
            logger.warning("%s; trying the checkpoint before step %d", exc, step)
            continue
        return ckpt
    return None


def resume_checkpoint(out: Path, exported: tuple[str, ...] = ("model", "best")) -> Checkpoint | None:
    """The checkpoint a resumed run in the run folder `out` continues from, or None to start from step 0.

    Falls back past damaged checkpoints to the newest readable one. Starting from step 0 is allowed only where it
    loses nothing: a run that never wrote a checkpoint nor exported a model (one killed early). When checkpoints
    exist but none is readable, or a model was exported but no checkpoint is left, this raises a `WeightsError`
    rather than retrain over the exported model.
    """
    folder = out / "checkpoints"
    found = find_checkpoints(folder)
    ckpt = latest_checkpoint(folder)
    if ckpt is not None:
        if int(ckpt.meta["step"]) != found[-1][0]:
            logger.warning("resuming %s from its newest readable checkpoint, step %d", out, ckpt.meta["step"])
        return ckpt
    fix = "restore it from a copy, or train again from step 0 with --overwrite (replaces the run's files)"
    if found:
        raise WeightsError(f"cannot resume {out}: none of its {len(found)} checkpoint(s) is readable "
                           f"(newest: {found[-1][1]}); {fix}")
    models = [out / name for name in exported if (out / name).exists()]
    if models:
        raise WeightsError(f"cannot resume {out}: it has an exported {models[0]} but no checkpoint in {folder}; "
                           f"{fix}")
    return None

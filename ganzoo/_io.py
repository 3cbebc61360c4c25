"""Atomic file writes: write a temporary file in the same folder, fsync it, then rename it over the target.

A reader never sees a half-written file, and a crash mid-write leaves the previous version in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "remove_leftover_temps", "temp_target", "write_bytes", "write_json", "write_text"]


def _file_mode() -> int:
    """The mode a plain open() would give a new file (0666 less the umask); mkstemp alone would give 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")  # what atomic_path's mkstemp call creates


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # fsync on a folder is not supported on every file system; durability is best effort there
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it is fsynced and renamed to `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _MODE)  # after the writer: some writers (safetensors) replace the file themselves
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        if exc.filename in (tmp_name, str(tmp)) and exc.errno is not None:  # name the file the user asked for
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_leftover_temps(folder: str | os.PathLike[str], targets: Iterable[str] | None = None) -> list[Path]:
    """Delete the temporary files `atomic_path` left in `folder` because their process died before the rename.

    Such a file never replaced its target and nothing reads it, but it can be as large as a checkpoint. Only call
    this when no other process is writing into `folder`. With `targets`, only temporary files of those file names
    are removed. Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = set(targets) if targets is not None else None
    removed = []
    for path in folder.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match and (wanted is None or match["target"] in wanted) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def temp_target(name: str) -> str | None:
    """The file name whose atomic write left the temporary file called `name`, or None for any other name."""
    match = _TEMP_NAME.match(name)
    return match["target"] if match else None


def _write(target: str | os.PathLike[str], mode: str, writer: Callable[[IO[Any]], None]) -> None:
    with atomic_path(target) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
        writer(fh)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Atomically replace `target` with `data`."""
    _write(target, "wb", lambda fh: fh.write(data))


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Atomically replace `target` with `text` (UTF-8)."""
    _write(target, "w", lambda fh: fh.write(text))


def write_json(target: str | os.PathLike[str], obj: Any) -> None:
    """Atomically replace `target` with `obj` as indented JSON."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

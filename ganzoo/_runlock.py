"""The lock a training holds on its run folder for its whole life, so that no other command writes or publishes the
folder meanwhile (another training, `ganzoo eval`, `ganzoo push`, a fine-tune starting from it).

The lock is an OS lock (`fcntl.flock`, or `msvcrt.locking` on Windows) on `RUN/.ganzoo-lock`: the kernel drops it
when its process ends, however it ends, SIGKILL included, so a killed run never leaves its folder locked. The file
holds the holder's pid for the message of a refused command; a lock file that no process holds is a leftover and
means nothing. A training removes the file when it ends normally. In a distributed run rank 0, the process that
writes the run folder, holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from pathlib import Path

from ganzoo.errors import GanzooUsageError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "FolderBusyError", "FolderLock", "check_not_busy", "holder"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".ganzoo-lock"
_WINDOWS_BYTE = 1 << 30  # msvcrt locks a byte range; one far past the pid text, so the text stays readable
_held: set[int] = set()  # lock file descriptors this process holds (closed in forked children, see below)
_warned = False  # said once that the file system has no locks


class FolderBusyError(GanzooUsageError):
    """A run folder is locked by a running training (or another process writing it)."""


def _try_lock(fd: int, shared: bool = False) -> bool:
    """Take the lock on `fd` without waiting (`shared`: a read lock, which only probes); False when another open
    file holds it. A file system without locks (some network mounts) gives True: the check is skipped there."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            _no_locks(exc)
        return True
    if msvcrt is not None:
        os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    return True  # no OS lock on this platform: the check is skipped


def _no_locks(exc: OSError) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning("this file system does not support file locks (%s); a run folder cannot be protected from "
                       "being written by two commands at once here", exc.strerror or exc)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
    elif msvcrt is not None:
        os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _close_in_child() -> None:
    """A forked child (a DataLoader worker) must not keep its parent's lock alive after the parent is killed."""
    for fd in list(_held):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def holder(folder: str | os.PathLike[str]) -> str | None:
    """Who holds `folder`'s lock ("a running training (pid N)"), or None when nobody does. Creates nothing."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY if fcntl is not None else os.O_RDWR)
    except OSError:
        return None  # no lock file (or not a folder we can look into): nobody holds it
    try:
        if _try_lock(fd, shared=True):
            _unlock(fd)
            return None
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode("utf-8", "replace").split("\n")
    finally:
        os.close(fd)
    pid = text[0].strip() if text and text[0].strip().isdigit() else "unknown"
    what = text[1].strip() if len(text) > 1 and text[1].strip() else "a running training"
    return f"{what} (pid {pid})"


def check_not_busy(path: str | os.PathLike[str], *, ancestors: bool = True) -> None:
    """Refuse (`FolderBusyError`, one line) when `path`, or with `ancestors` a folder above it, is locked: a model
    folder inside a run folder that a training is writing counts. Creates nothing."""
    given = Path(path).expanduser()
    path = Path(os.path.abspath(given))
    for folder in (path, *path.parents) if ancestors else (path,):
        who = holder(folder)
        if who is not None:
            name = given if folder == path else folder
            raise FolderBusyError(f"{name} is being written by {who}; wait for it to finish or stop it")


class FolderLock:
    """The exclusive lock on a folder (`RUN/.ganzoo-lock`), taken by `acquire` and given back by `release`."""

    def __init__(self, folder: str | os.PathLike[str], what: str = "a running training") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self, attempts: int = 5) -> FolderLock:
        """Take the lock (the folder must exist), or raise `FolderBusyError` naming the process that holds it.

        A lock only probed by `holder` at that instant is retried a few times (a probe holds it for microseconds).
        """
        for attempt in range(attempts):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if _try_lock(fd):
                # the file may have been removed by its previous holder between our open and our lock: then the
                # lock we hold is on a file nobody else can find; start again with the file now at the path
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except OSError:
                    same = False
                if same:
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, f"{os.getpid()}\n{self.what}\n".encode())
                    self._fd = fd
                    _held.add(fd)
                    return self
                _unlock(fd)
            os.close(fd)
            if attempt + 1 < attempts:
                time.sleep(0.05)
        who = holder(self.folder) or "another process"
        raise FolderBusyError(f"{self.folder} is being written by {who}; wait for it to finish or stop it")

    def release(self) -> None:
        """Remove the lock file and give the lock back (nothing when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _held.discard(fd)
        with contextlib.suppress(OSError):  # unlinked while held: whoever opens the path next finds a new file
            self.path.unlink()
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FolderLock:
        return self.acquire() if not self.held else self

    def __exit__(self, *exc: object) -> None:
        self.release()

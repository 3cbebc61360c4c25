"""Whether two paths overlap: the check every command that writes makes before it touches anything.

An output overlaps an input when they are the same file or folder, or one lies inside the other. Paths are compared
after resolving symlinks and `..`, and, for the parts that exist, by identity (device and inode), so that a second
name for the same folder (a bind mount, a different letter case on a case-insensitive file system) is seen too.
Nothing here writes, and only the standard library is imported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["first_overlap", "inside", "local_data_paths", "overlaps"]


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.normcase(os.path.realpath(Path(path).expanduser())))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether `path` is `folder` or lies somewhere below it (neither needs to exist)."""
    p, f = _resolved(path), _resolved(folder)
    if p == f or f in p.parents:
        return True
    target = _identity(f)
    if target is None:
        return False
    return any(_identity(a) == target for a in (p, *p.parents) if os.path.lexists(a))


def overlaps(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether `a` and `b` are the same path or one lies inside the other."""
    return inside(a, b) or inside(b, a)


def first_overlap(outputs: Iterable[str | os.PathLike[str]], inputs: Iterable[str | os.PathLike[str]]
                  ) -> tuple[Path, Path] | None:
    """The first (output, input) pair that overlaps, or None."""
    ins = [Path(i) for i in inputs]
    for out in outputs:
        for source in ins:
            if overlaps(out, source):
                return Path(out), source
    return None


def local_data_paths(spec: str | os.PathLike[str], names: Iterable[str] = ()) -> list[Path]:
    """The local file or folder a data spec reads (an image folder, `stream:`/`folder:` FOLDER, `zip:` FILE or a .zip,
    `hf:` a local folder or parquet file), or [] for a dataset name in `names` or a Hub dataset id. Paired data
(`IN>TARGET`, `ab:FOLDER`, `ba:FOLDER`) and unpaired data (`A~B`, `ganzoo.unpaired`) read each of their folders,
``srN:SPEC`` what SPEC reads."""
    text = os.fspath(spec).strip()
    if text.lower() in {n.lower() for n in names}:
        return []
    low = re.match(r"sr\d*:", text, re.IGNORECASE)
    if low:  # super-resolution pairs, srN:SPEC: what SPEC reads
        return local_data_paths(text[low.end():].strip(), names)
    if ">" in text:  # paired data, IN>TARGET: each side on its own
        return [p for side in text.split(">") if side.strip() for p in local_data_paths(side.strip(), names)]
    cut = text.find("~", 1)  # unpaired data, A~B (the rule of ganzoo.unpaired.is_unpaired)
    if cut > 0 and not text.startswith(("stream:", "zip:", "hf:", "folder:", "ab:", "ba:")) \
            and not Path(text).expanduser().is_dir():
        return [p for side in (text[:cut], text[cut + 1:]) if side.strip()
                for p in local_data_paths(side.strip(), names)]
    for prefix in ("ab:", "ba:"):  # side-by-side pairs
        if text.startswith(prefix):
            return [Path(text[len(prefix):]).expanduser()]
    if text.startswith("hf:"):
        target = Path(text[len("hf:"):].partition("#")[0]).expanduser()
        return [target] if target.exists() else []
    for prefix in ("stream:", "zip:", "folder:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return [Path(text).expanduser()] if text else []

"""Entry-point discovery of architecture plugins, name resolution and the pretrained catalogue.

Discovery reads entry-point metadata only; a plugin module is imported the first time its architecture is
used. Importing this module does not import torch, so `ganzoo --help` and `ganzoo list` stay fast.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import sys
import threading
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ganzoo.errors import PluginError, unknown_name

if TYPE_CHECKING:
    from ganzoo.interfaces import Architecture, PretrainedCfg

__all__ = [
    "ARCHITECTURE_GROUP",
    "LOSS_GROUP",
    "PluginRecord",
    "get_architecture",
    "list_models",
    "list_pretrained",
    "get_pretrained",
    "package_path",
    "plugin_record",
    "plugin_records",
    "refresh",
]

logger = logging.getLogger(__name__)

ARCHITECTURE_GROUP = "ganzoo.architectures"
LOSS_GROUP = "ganzoo.losses"


@dataclass
class PluginRecord:
    """One name registered in an entry-point group, and what became of it when it was loaded."""

    name: str
    value: str  # "module:attribute"
    distribution: str
    version: str
    entry_point: Any = field(repr=False, default=None)
    conflict: list[str] = field(default_factory=list)  # other distributions registering the same name
    loaded: Any = field(repr=False, default=None)
    error: str | None = None  # why importing or validating the plugin failed

    @property
    def origin(self) -> str:
        return f"{self.distribution} {self.version}".strip()


_lock = threading.RLock()
_records: dict[str, dict[str, PluginRecord]] = {}


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def _discover(group: str) -> dict[str, PluginRecord]:
    with _lock:
        if group in _records:
            return _records[group]
        found: dict[str, PluginRecord] = {}
        for ep in metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else "unknown distribution"
            version = dist.version if dist is not None else ""
            record = PluginRecord(ep.name, ep.value, dist_name, version, entry_point=ep)
            previous = found.get(ep.name)
            if previous is None:
                found[ep.name] = record
            elif previous.distribution != dist_name:
                previous.conflict.append(record.origin)
        _records[group] = found
        return found


def refresh() -> None:
    """Forget what was discovered, so newly installed plugins are found (used by tests and long sessions)."""
    with _lock:
        _records.clear()


def plugin_records(group: str = ARCHITECTURE_GROUP) -> list[PluginRecord]:
    """Every registered name in `group`, naturally sorted, without importing any plugin."""
    records = _discover(group)
    return [records[name] for name in sorted(records, key=_natural_key)]


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered architectures, optionally filtered by a shell-style wildcard (`"*gan*"`)."""
    names = [r.name for r in plugin_records()]
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def _check_architecture(record: PluginRecord, obj: Any) -> Architecture:
    from ganzoo.interfaces import ArchConfig, Architecture

    if not isinstance(obj, Architecture):
        raise PluginError(
            f"plugin {record.name!r} from {record.origin} points at {type(obj).__name__}, not a "
            "ganzoo.interfaces.Architecture; fix its entry point"
        )
    if obj.name != record.name:
        raise PluginError(
            f"plugin {record.name!r} from {record.origin} defines architecture {obj.name!r}; "
            "the entry-point name and Architecture.name must agree"
        )
    if not (isinstance(obj.config_cls, type) and issubclass(obj.config_cls, ArchConfig)):
        raise PluginError(f"plugin {record.name!r} from {record.origin}: config_cls must subclass ArchConfig")
    if not (callable(obj.build_generator) and callable(obj.build_discriminator)):
        raise PluginError(f"plugin {record.name!r} from {record.origin}: builders must be callable")
    return obj


def load_record(record: PluginRecord) -> Any:
    """Import a plugin (once). Returns the loaded object or None, recording any error on the record."""
    with _lock:
        if record.loaded is None and record.error is None:
            try:
                obj = record.entry_point.load()
                record.loaded = _check_architecture(record, obj) if record.entry_point.group == ARCHITECTURE_GROUP \
                    else obj
            except PluginError as exc:
                record.error = str(exc)
            except (Exception, SystemExit) as exc:  # a broken third-party plugin must not take ganzoo down with it
                message = " ".join(str(exc).split())  # one line, whatever the plugin raised
                record.error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
                logger.debug("plugin %s failed to import", record.name, exc_info=True)
        return record.loaded


def plugin_record(name: str) -> PluginRecord:
    """The record of the plugin that registered architecture `name` (without importing it)."""
    records = _discover(ARCHITECTURE_GROUP)
    if name not in records:
        raise unknown_name("architecture", name, records, hint="see `ganzoo list`")
    return records[name]


def package_path(architecture: str, relative: str) -> Path | None:
    """`relative` (a POSIX path) inside the package that holds `architecture`'s entry-point module.

    The package is found through the entry point that registered the architecture, never by a fixed name: for
    `ganzoo_dcgan:architecture` it is `ganzoo_dcgan`; for `mypkg.models:architecture` it is `mypkg.models` when that
    is a package, else `mypkg`. This is where a plugin ships files such as pretrained model folders. Returns None
    when the package is not a folder on the file system (e.g. imported from a zip file).
    """
    record = plugin_record(architecture)
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or any(p in ("..", ".") for p in parts) or "\\" in relative:
        raise PluginError(f"plugin {architecture!r} from {record.origin} names the path {relative!r}; it must be a "
                          "relative folder inside the plugin's package, such as 'pretrained/NAME'")
    get_architecture(architecture)  # imports the module through its entry point (once); raises if it cannot be
    module_name = record.value.partition(":")[0].strip()
    module = sys.modules[module_name]  # imported just above, with every package above it
    package = module if hasattr(module, "__path__") else sys.modules.get(module.__package__ or "")
    if package is None:
        raise PluginError(f"plugin {architecture!r} from {record.origin} is the top-level module {module_name!r}, "
                          "which has no package folder to ship files in; move it into a package")
    root = resources.files(package)
    if not isinstance(root, Path):
        logger.info("package %s of plugin %s is not a folder on disk; its shipped files cannot be read",
                    package.__name__, architecture)
        return None
    return root.joinpath(*parts)


def get_architecture(name: str) -> Architecture:
    """The `Architecture` registered as `name`, importing its plugin on first use."""
    records = _discover(ARCHITECTURE_GROUP)
    record = records.get(name)
    if record is None:
        raise unknown_name("architecture", name, records, hint="see `ganzoo list`")
    if record.conflict:
        others = ", ".join(record.conflict)
        raise PluginError(
            f"architecture {name!r} is registered by more than one distribution: {record.origin}, {others}; "
            "uninstall all but one"
        )
    load_record(record)
    if record.error is not None:
        raise PluginError(
            f"plugin {name!r} from {record.origin} failed to load: {record.error}; "
            f"reinstall or fix {record.distribution}"
        )
    return record.loaded


def _catalogue() -> dict[str, tuple[str, PretrainedCfg]]:
    """Catalogue name -> (architecture, entry), from every plugin that loads."""
    entries: dict[str, tuple[str, PretrainedCfg]] = {}
    for record in plugin_records():
        arch = load_record(record) if not record.conflict else None
        if arch is None:
            continue
        for cfg in arch.pretrained:
            entries[cfg.name] = (arch.name, cfg)
    return entries


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Names of the pretrained catalogue entries declared by the plugins (imports the plugins)."""
    names = sorted(_catalogue(), key=_natural_key)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_pretrained(name: str) -> tuple[str, PretrainedCfg]:
    """(architecture name, catalogue entry) for a pretrained name such as `dcgan-mnist`."""
    entries = _catalogue()
    if name not in entries:
        raise unknown_name("pretrained model", name, entries, hint="see `ganzoo list --pretrained`")
    return entries[name]

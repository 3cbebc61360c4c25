"""The exceptions ganzoo raises on purpose.

Every message is one line that names the problem and, where there is one, the fix. The CLI turns
`GanzooUsageError` into exit code 2 (the user asked for something that cannot be) and any other
`GanzooError` into exit code 1 (something went wrong while doing what was asked).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DataError",
    "GanzooError",
    "GanzooUsageError",
    "PluginError",
    "UnknownNameError",
    "WeightsError",
]


class GanzooError(Exception):
    """Base class: an expected failure with a one-line, user-facing message."""


class GanzooUsageError(GanzooError, ValueError):
    """The request itself is wrong: a bad name, value or path given by the user."""


class ConfigError(GanzooUsageError):
    """A config or recipe value is missing, of the wrong type or out of range."""


class UnknownNameError(GanzooUsageError, KeyError):
    """A name (architecture, loss, dataset, preset) that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataError(GanzooError):
    """A dataset could not be found, read or decoded."""


class PluginError(GanzooError):
    """A plugin failed to import, is registered twice, or does not satisfy the interface."""


class WeightsError(GanzooError):
    """A weights or checkpoint file is missing, corrupt, or does not match the model."""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> UnknownNameError:
    """Build an `UnknownNameError` that suggests the closest known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        suggestion = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        suggestion = "known: " + (", ".join(known) if known else "none")
    message = f"unknown {kind} {name!r}; {suggestion}"
    if hint:
        message += f" ({hint})"
    return UnknownNameError(message)

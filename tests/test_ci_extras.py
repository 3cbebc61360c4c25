"""The suite's rule for optional extras (tests/conftest.py): a missing extra skips on a developer's machine and fails
under CI, where the variable CI holds a truthy value; CI=false, CI=0, CI=no and an empty CI are not CI."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped
from conftest import require, under_ci


@pytest.mark.parametrize("value, ci", [(None, False), ("", False), ("0", False), ("false", False), ("False", False),
                                       ("no", False), (" off ", False), ("true", True), ("1", True), ("yes", True),
                                       ("TRUE", True)])
def test_ci_is_set_only_by_a_truthy_value(monkeypatch, value, ci):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert under_ci() is ci
    outcome = Failed if ci else Skipped
    with pytest.raises(outcome, match="no_such_extra_module"):
        require("no_such_extra_module", "pip install it")


def test_an_installed_extra_is_returned_under_ci_and_elsewhere(monkeypatch):
    for value in ("true", "false"):
        monkeypatch.setenv("CI", value)
        assert require("json").dumps([1]) == "[1]"

"""Shared fixtures: every test runs in its own working folder with its own ganzoo and Hugging Face caches, whatever
the environment the suite was started from (a user's HF settings and token, a torchrun or CI job's variables)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from ganzoo import registry

pytest_plugins = ("hub_server",)  # the `hub` fixture: a loopback Hugging Face Hub

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # the suite runs in one process a core (pyproject's addopts)
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

#: set by torchrun (and schedulers): in a test process they would turn in-process training into a distributed run
_LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                       "MASTER_PORT", "TORCHELASTIC_RUN_ID")


#: values of the CI variable that mean "not under CI" (compared case-insensitively, surrounding spaces ignored)
_NOT_CI = ("", "0", "false", "no", "off")


def under_ci() -> bool:
    """Whether the suite runs under CI: the variable CI set to a truthy value (CI=false, CI=0 and CI= are not CI)."""
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI


def missing(what: str, fix: str) -> None:
    """Skip on a developer's machine; fail under CI, whose install (.ci/run) must have provided `what`."""
    if under_ci():
        pytest.fail(f"CI needs {what}; {fix}", pytrace=False)
    pytest.skip(f"needs {what} ({fix})", allow_module_level=True)


def require(module: str, fix: str = 'pip install -e ".[dev]"') -> ModuleType:
    """`module` imported; when it is not installed, a skip on a developer's machine and a failure under CI."""
    try:
        return importlib.import_module(module)
    except ImportError:
        missing(module, fix)
        raise  # not reached: missing() always raises


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    from hub_server import _isolate_hf_settings  # loaded (and assertion-rewritten) by pytest_plugins by now

    monkeypatch.setenv("GANZOO_HOME", str(tmp_path / "ganzoo-home"))
    _isolate_hf_settings(monkeypatch, tmp_path / "hf-home")  # no user cache, token or offline mode
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    for name in _LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    registry.refresh()  # forget plugins that a test put on sys.path


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A folder on sys.path where tests create installed distributions (dist-info + modules)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    return site

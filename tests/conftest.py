"""Shared fixtures: every test runs in its own working folder with its own ganzoo and Hugging Face caches, whatever
the environment the suite was started from (a user's HF settings and token, a torchrun or CI job's variables)."""

from __future__ import annotations

import pytest

from ganzoo import registry

pytest_plugins = ("hub_server",)  # the `hub` fixture: a loopback Hugging Face Hub

#: set by torchrun (and schedulers): in a test process they would turn in-process training into a distributed run
_LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                       "MASTER_PORT", "TORCHELASTIC_RUN_ID")


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

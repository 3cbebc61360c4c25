"""Shared fixtures: every test runs in its own working folder with its own ganzoo cache."""

from __future__ import annotations

import pytest

from ganzoo import registry

pytest_plugins = ("hub_server",)  # the `hub` fixture: a loopback Hugging Face Hub


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_HOME", str(tmp_path / "ganzoo-home"))
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

"""Shared fixtures of the engine and registry tests."""

from __future__ import annotations

import sys

import pytest

from comic_studio.generation import registry
from comic_studio.generation.plugin_loading import PROBE_CACHE_ENV, PROBE_TIMEOUT_ENV
from comic_studio.generation.registry import PLUGINS_DIR_ENV


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """An empty user plugins folder for this test (probe verdicts cached under tmp_path, not in the
    user's cache); afterwards the registry forgets it and its private modules are unloaded."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setenv(PLUGINS_DIR_ENV, str(folder))
    monkeypatch.setenv(PROBE_CACHE_ENV, str(tmp_path / "cache" / "probes.json"))
    monkeypatch.setenv(PROBE_TIMEOUT_ENV, "60")  # only bounds a hang
    registry.refresh()
    yield folder
    monkeypatch.delenv(PLUGINS_DIR_ENV, raising=False)
    registry.refresh()
    for name in [m for m in sys.modules if m.startswith("comic_studio_user_plugins.")]:
        del sys.modules[name]

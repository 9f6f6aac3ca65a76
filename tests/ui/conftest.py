"""Qt tests run offscreen; every test gets a fresh StudioContext on a new document."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture
def ctx(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    from comic_studio.ui.context import StudioContext

    return StudioContext()


@pytest.fixture
def shots(tmp_path):
    """The folder a test saves its screenshots in (for looking at, never asserted): the one that
    ``COMIC_STUDIO_SHOTS`` names, to keep them after the run, else the test's own tmp_path."""
    chosen = os.environ.get("COMIC_STUDIO_SHOTS")
    folder = Path(chosen) if chosen else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder

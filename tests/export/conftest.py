"""Fixtures for the export tests (builders live in export_builders.py: a unique module name)."""

from __future__ import annotations

import pytest
from export_builders import fake_balloon_geometry

from comic_studio.core.assets import AssetStore


@pytest.fixture
def assets() -> AssetStore:
    return AssetStore()


@pytest.fixture
def fake_lettering(monkeypatch):
    """Route the compositor's default balloon geometry to the fixed stand-in, so tests of export
    behaviour (pixels, text, boxes) do not move when lettering's shapes or fitting change; the
    real lettering path is covered by test_export_with_lettering.py."""
    import comic_studio.export.compositor as compositor

    monkeypatch.setattr(compositor, "default_balloon_geometry", lambda: fake_balloon_geometry)
    return fake_balloon_geometry

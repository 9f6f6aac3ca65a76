"""Fixtures of the AnimeAdapter training tests (the tiny SD 1.5 kit itself is the plugin's ``sd15_kit``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two character pictures with their box masks and a stick-figure pose image each."""
    from comic_studio.testing.tiny_sd15 import write_tiny_anime_dataset

    return write_tiny_anime_dataset(tmp_path_factory.mktemp("anime-data"))


@pytest.fixture
def tiny_cache(sd15_kit, tmp_path, monkeypatch):
    """``--models tiny`` finds the session's SD 1.5 kit in the user cache (instead of building another).
    Returns the cache's ``tiny-models`` folder (a test may link more kits into it)."""
    models = tmp_path / "cache" / "comic-studio" / "tiny-models"
    models.mkdir(parents=True)
    (models / "sd15").symlink_to(sd15_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return models

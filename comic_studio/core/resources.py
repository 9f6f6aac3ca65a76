"""Where the bundled data lives (page presets, templates, poses, fonts, sample story).

``resources/`` sits beside the package in a checkout and in an editable install; a frozen build
(PyInstaller) or a distro package points ``COMIC_STUDIO_RESOURCES`` at its copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from comic_studio.core.errors import ComicStudioError


def resources_dir() -> Path:
    override = os.environ.get("COMIC_STUDIO_RESOURCES")
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "resources"
    if not path.is_dir():
        raise ComicStudioError(
            f"bundled resources not found at {path}; set COMIC_STUDIO_RESOURCES to the resources/ folder"
        )
    return path


def resource(*parts: str) -> Path:
    """Path of a bundled resource, e.g. ``resource("fonts", "ComicNeue-Bold.ttf")``."""
    return resources_dir().joinpath(*parts)

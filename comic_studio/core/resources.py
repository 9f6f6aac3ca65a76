"""Where the bundled data lives (page presets, templates, poses, fonts, sample story, icons).

``comic_studio/resources/`` ships inside the package, so a checkout, an editable install, a wheel
(pip/pipx) and a PyInstaller bundle all find it beside this module; a distro package that keeps the
data elsewhere points ``COMIC_STUDIO_RESOURCES`` at its copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from comic_studio.core.errors import ComicStudioError

DESKTOP_APP_ID = "io.github.comicstudio.ComicStudio"
"""The reverse-DNS id of the desktop integration: the names of the .desktop, MIME and AppStream files
and the icon under ``resources/desktop`` and ``resources/icons``, and the window's desktop file name
(so a Wayland compositor shows the window with the launcher's icon)."""


def resources_dir() -> Path:
    override = os.environ.get("COMIC_STUDIO_RESOURCES")
    path = Path(override) if override else Path(__file__).resolve().parents[1] / "resources"
    if not path.is_dir():
        raise ComicStudioError(
            f"bundled resources not found at {path}; reinstall comic-studio, or set "
            "COMIC_STUDIO_RESOURCES to a copy of its resources folder"
        )
    return path


def resource(*parts: str) -> Path:
    """Path of a bundled resource, e.g. ``resource("fonts", "ComicNeue-Bold.ttf")``."""
    return resources_dir().joinpath(*parts)

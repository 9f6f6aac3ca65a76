"""The user's pose libraries: where they live, reading them, and merging them with the bundled one.

User libraries live in ``user_data_dir("comic-studio")/poses`` (``$COMIC_STUDIO_POSES_DIR``
overrides), one ``NAME.json`` in the bundled library's format per import, photos in ``NAME.images/``
(each entry's ``image`` field points there), stored CLIP features in ``NAME.features/MODEL-ID.npz``,
imported segmentation maps in ``NAME.masks/STEM.npz`` (the ``masks`` field).
Their entries' ids carry the ``user:`` prefix. Writing them is :mod:`comic_studio.poses.importing`'s job.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from comic_studio.core.errors import ComicStudioError
from comic_studio.poses.library import PoseEntry, load_library

log = logging.getLogger(__name__)

POSES_DIR_ENV = "COMIC_STUDIO_POSES_DIR"
USER_PREFIX = "user:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""The photo formats an import copies next to a library (and a photo-folder import reads)."""


def user_poses_dir() -> Path:
    """Where user pose libraries live (may not exist yet)."""
    override = os.environ.get(POSES_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("comic-studio", appauthor=False)) / "poses"


def load_user_libraries(folder: Path | None = None, errors: list[str] | None = None) -> list[PoseEntry]:
    """Every user library's entries, ids prefixed ``user:``. A broken file is skipped (and its
    problem appended to ``errors`` and logged): one bad import must not hide the bundled poses."""
    folder = Path(folder) if folder is not None else user_poses_dir()
    if not folder.is_dir():
        return []
    out: list[PoseEntry] = []
    seen: set[str] = set()
    for path in sorted(folder.glob("*.json")):
        try:
            entries = load_library(path)
        except ComicStudioError as exc:
            _report_once(str(exc))
            if errors is not None:
                errors.append(str(exc))
            continue
        for e in entries:
            uid = USER_PREFIX + e.id
            if uid in seen:
                problem = f"{path}: entry id {e.id!r} is also in another user library; skipped"
                log.warning(problem)
                if errors is not None:
                    errors.append(problem)
                continue
            seen.add(uid)
            # The file stores the image relative to its folder; in memory it is absolute, so the
            # retriever needs no idea of where the entry came from.
            image = str(path.parent / e.image) if e.image else None
            masks = str(path.parent / e.masks) if e.masks else None
            out.append(PoseEntry(id=uid, caption=e.caption, tags=e.tags, figures=e.figures, aspect=e.aspect,
                                 image=image, masks=masks))  # fmt: skip
    return out


_reported: set[str] = set()
"""Problems already logged: every storyboard render reads the libraries, and a broken file should
be reported once, not once per panel."""


def _report_once(problem: str) -> None:
    if problem not in _reported:
        _reported.add(problem)
        log.warning("skipping user pose library: %s", problem)


def load_all_libraries(user_dir: Path | None = None, errors: list[str] | None = None) -> list[PoseEntry]:
    """The bundled library first, then every user library (ids prefixed ``user:``)."""
    return load_library() + load_user_libraries(user_dir, errors)


def user_entry_image(entry_id: str, user_dir: Path | None = None) -> Path | None:
    """The photo an imported ``user:LIB/STEM`` entry came from, when it was copied, else None."""
    if not entry_id.startswith(USER_PREFIX) or "/" not in entry_id:
        return None
    lib, stem = entry_id[len(USER_PREFIX) :].split("/", 1)
    folder = (Path(user_dir) if user_dir is not None else user_poses_dir()) / f"{lib}.images"
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None

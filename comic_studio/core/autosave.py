"""Crash recovery: periodic copies of the open project, offered back at the next start.

A recovery file is an ordinary ``.comic`` archive (so :func:`load_project` opens it) named after the
project id, in ``<state dir>/recovery``. The state dir is, in order: the ``state_dir`` argument, the
``COMIC_STUDIO_STATE_DIR`` environment variable (tests, portable installs), or platformdirs'
``user_state_dir("comic-studio")``. Its metadata (title, the user's own file, time) travels inside the
same archive as ``recovery.json``, so file and metadata can never disagree after a crash — one atomic
rename writes both. Writing a recovery never changes the asset store: it keeps pointing at the
user's real file, not at a copy that :func:`discard_recovery` will delete.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import ProjectFileError
from comic_studio.core.model import Project
from comic_studio.core.projectfile import write_archive

STATE_DIR_ENV = "COMIC_STUDIO_STATE_DIR"
RECOVERY_MEMBER = "recovery.json"
RECOVERY_SUFFIX = ".recovery.comic"
_MAX_RECOVERY_JSON = 64 * 1024


@dataclass(frozen=True)
class Recovery:
    """One recovery file waiting to be restored or discarded."""

    path: Path
    project_id: str
    title: str
    source_path: Path | None
    """The file the user was editing, or ``None`` for a project never saved."""
    saved_at: datetime


def recovery_dir(state_dir: str | Path | None = None) -> Path:
    """The folder holding recovery files (not created here)."""
    if state_dir is None:
        state_dir = os.environ.get(STATE_DIR_ENV) or None
    if state_dir is None:
        from platformdirs import user_state_dir  # noqa: PLC0415 — only needed without an override

        state_dir = user_state_dir("comic-studio")
    return Path(state_dir) / "recovery"


def recovery_path(project_id: str, state_dir: str | Path | None = None) -> Path:
    """Where the recovery file for ``project_id`` lives. Ids come from files, so they are sanitised."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", project_id)[:64] or "unnamed"
    return recovery_dir(state_dir) / f"{safe}{RECOVERY_SUFFIX}"


def write_recovery(
    project: Project,
    assets: AssetStore,
    source_path: str | Path | None,
    state_dir: str | Path | None = None,
) -> Path:
    """Atomically write (or replace) the recovery file of ``project``; return its path."""
    target = recovery_path(project.id, state_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectFileError(target, f"cannot create the recovery folder ({exc.strerror or exc})") from exc
    meta = {
        "project_id": project.id,
        "title": project.title,
        "source_path": str(Path(source_path).absolute()) if source_path is not None else None,
        "saved_at": datetime.now(UTC).isoformat(),
    }
    write_archive(
        target, project, assets, keep_backup=False, extra_members={RECOVERY_MEMBER: json.dumps(meta).encode("utf-8")}
    )
    return target


def find_recovery(source_path: str | Path | None, project_id: str, state_dir: str | Path | None = None) -> Path | None:
    """The recovery file for ``project_id`` if it holds newer work than ``source_path``.

    "Newer" compares modification times; a missing source (never saved, or deleted since) makes any
    recovery file worth offering.
    """
    candidate = recovery_path(project_id, state_dir)
    try:
        recovered_at = candidate.stat().st_mtime_ns
    except OSError:
        return None
    if source_path is None:
        return candidate
    try:
        source_at = Path(source_path).stat().st_mtime_ns
    except OSError:
        return candidate
    return candidate if recovered_at > source_at else None


def discard_recovery(project_id: str, state_dir: str | Path | None = None) -> None:
    """Delete the recovery file of ``project_id`` (after a save, or when the user declines it)."""
    try:
        recovery_path(project_id, state_dir).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ProjectFileError(
            recovery_path(project_id, state_dir), f"cannot delete the recovery file ({exc.strerror or exc})"
        ) from exc


def pending_recoveries(state_dir: str | Path | None = None) -> list[Recovery]:
    """Recovery files to offer at start-up, newest first. Unreadable ones are skipped, not fatal:
    a half-written temporary file or a stranger's zip must not block the app from starting."""
    folder = recovery_dir(state_dir)
    try:
        candidates = sorted(folder.glob(f"*{RECOVERY_SUFFIX}"))
    except OSError:
        return []
    found = [info for info in map(_read_recovery_info, candidates) if info is not None]
    return sorted(found, key=lambda info: info.saved_at, reverse=True)


def _read_recovery_info(path: Path) -> Recovery | None:
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(RECOVERY_MEMBER)
            if info.file_size > _MAX_RECOVERY_JSON:
                return None
            with zf.open(info) as stream:
                meta = json.loads(stream.read(_MAX_RECOVERY_JSON + 1))
        source = meta.get("source_path")
        saved_at = datetime.fromisoformat(meta["saved_at"])
        return Recovery(
            path=path,
            project_id=str(meta["project_id"]),
            title=str(meta.get("title", "")),
            source_path=Path(source) if isinstance(source, str) else None,
            saved_at=saved_at if saved_at.tzinfo else saved_at.replace(tzinfo=UTC),
        )
    except (
        OSError,
        zipfile.BadZipFile,
        zlib.error,
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
        EOFError,
        RecursionError,
        NotImplementedError,
        RuntimeError,
    ):
        return None

"""Crash recovery: periodic copies of the open project, offered back at the next start.

A recovery file is an ordinary ``.comic`` archive (so :func:`load_project` opens it) in
``<state dir>/recovery`` (:func:`comic_studio.core.settings.state_dir`). Its metadata (title, the
user's own file, time) travels inside the same archive as ``recovery.json``, so file and metadata can
never disagree after a crash — one atomic rename writes both. Writing a recovery never changes the
asset store: it keeps reading from its session cache, not from a copy that :func:`discard_recovery`
will delete.

Which recovery belongs to which document: the project id *and* the file the document was opened
from (or last saved to). A copy of a project has the same id but another path, so opening or saving
the copy never offers or deletes the original's unsaved work, while reopening the original after a
crash offers it. The key is the document's path, not where the file is now: moving the open file
keeps its recovery with it for the session. A project never saved is keyed by its id alone (ids are
random per new project). Matching reads the metadata, not the file name, so recovery files of older
versions (named by the id alone) are still offered for the file they name and removed when it is
saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from comic_studio.core.assets import AssetStore
from comic_studio.core.atomic import remove_stale_temporaries_in
from comic_studio.core.errors import ProjectFileError
from comic_studio.core.model import Project
from comic_studio.core.projectfile import write_archive
from comic_studio.core.safe_read import UnsafeInputError, open_regular, parse_json
from comic_studio.core.settings import state_dir as default_state_dir

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
    return (Path(state_dir) if state_dir is not None else default_state_dir()) / "recovery"


def recovery_path(project_id: str, source_path: str | Path | None, state_dir: str | Path | None = None) -> Path:
    """Where the recovery file of the document ``project_id`` opened from ``source_path`` (``None``:
    never saved) is written. Ids come from files, so they are sanitised."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", project_id)[:64] or "unnamed"
    if source_path is not None:
        where = hashlib.sha256(_same_file(source_path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        safe = f"{safe}-{where}"
    return recovery_dir(state_dir) / f"{safe}{RECOVERY_SUFFIX}"


def write_recovery(
    project: Project,
    assets: AssetStore,
    source_path: str | Path | None,
    state_dir: str | Path | None = None,
) -> Path:
    """Atomically write (or replace) the recovery file of ``project`` opened from ``source_path``;
    return its path."""
    target = recovery_path(project.id, source_path, state_dir)
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
    """The newest recovery file of this document (``project_id`` opened from ``source_path``) that
    holds newer work than ``source_path``, or ``None``. A copy of the project elsewhere never
    matches."""
    newer = [r for r in _recoveries_of(project_id, source_path, state_dir) if holds_newer_work(r)]
    return max(newer, key=lambda r: r.saved_at).path if newer else None


def holds_newer_work(recovery: Recovery) -> bool:
    """Whether ``recovery`` was written after its project file was last saved. "After" compares
    modification times; a missing file (never saved, or deleted since) makes any recovery worth
    offering."""
    try:
        recovered_at = recovery.path.stat().st_mtime_ns
    except OSError:
        return False
    if recovery.source_path is None:
        return True
    try:
        source_at = recovery.source_path.stat().st_mtime_ns
    except OSError:
        return True
    return recovered_at > source_at


def discard_recovery(project_id: str, source_path: str | Path | None, state_dir: str | Path | None = None) -> None:
    """Delete the recovery files of this document (after a save, or when the user declines them):
    the current one and any older-version one naming the same file; never a copy's."""
    doomed = {recovery_path(project_id, source_path, state_dir)}
    doomed.update(r.path for r in _recoveries_of(project_id, source_path, state_dir))
    for path in sorted(doomed):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ProjectFileError(path, f"cannot delete the recovery file ({exc.strerror or exc})") from exc


def clean_recovery_folder(state_dir: str | Path | None = None) -> None:
    """Remove what killed autosaves left behind (their temporary files). At start-up."""
    remove_stale_temporaries_in(recovery_dir(state_dir))


def _recoveries_of(project_id: str, source_path: str | Path | None, state_dir: str | Path | None) -> list[Recovery]:
    wanted = _same_file(source_path) if source_path is not None else None
    return [
        r
        for r in pending_recoveries(state_dir)
        if r.project_id == project_id
        and (
            r.source_path is None
            if wanted is None
            else r.source_path is not None and _same_file(r.source_path) == wanted
        )
    ]


def _same_file(path: str | Path) -> str:
    """One spelling per file: absolute, symlinks and ``..`` resolved, case folded where the system
    ignores case (``a/../B.comic`` and ``b.comic`` are the same file on Windows)."""
    return os.path.normcase(os.path.realpath(os.path.abspath(path)))


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
        # Regular files only: a FIFO named like a recovery file must not hang the app's start.
        with open_regular(path, what="recovery file") as fh, zipfile.ZipFile(fh) as zf:
            info = zf.getinfo(RECOVERY_MEMBER)
            if info.file_size > _MAX_RECOVERY_JSON:
                return None
            with zf.open(info) as stream:
                meta = parse_json(stream.read(_MAX_RECOVERY_JSON + 1), where=path, limit=_MAX_RECOVERY_JSON)
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
        UnsafeInputError,
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

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

Two copies of the app may have the same file open. Each window writes through its own
:class:`RecoveryOwner`, whose token is part of the recovery's name and metadata and which holds a
lock (:mod:`comic_studio.core.ownership`) for as long as its process lives. A recovery whose owner
is alive is that window's running autosave, not a crash: it is never offered to, nor deleted by,
another copy of the app. When the owner dies (a crash, kill -9) the operating system drops the lock
and the recovery becomes an ordinary crashed one.

A file moved or renamed after a crash still gets its unsaved work back: opening a file offers a
crashed recovery of the same project whose recorded file no longer exists and which is newer than
the file opened (an ``mv`` keeps the file's modification time). A copy cannot take it: while the
original is still where it was, its recovery is only offered there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import threading
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from comic_studio.core import ownership
from comic_studio.core.assets import AssetStore
from comic_studio.core.atomic import atomic_write_text, remove_stale_temporaries_in
from comic_studio.core.errors import ProjectFileError
from comic_studio.core.model import Project
from comic_studio.core.projectfile import write_archive
from comic_studio.core.safe_read import UnsafeInputError, open_regular, parse_json
from comic_studio.core.settings import state_dir as default_state_dir

RECOVERY_MEMBER = "recovery.json"
RECOVERY_SUFFIX = ".recovery.comic"
OWNERS_FOLDER = "owners"
SAVES_FOLDER = "saves"
_MAX_RECOVERY_JSON = 64 * 1024
_TOKEN = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Recovery:
    """One recovery file waiting to be restored or discarded."""

    path: Path
    project_id: str
    title: str
    source_path: Path | None
    """The file the user was editing, or ``None`` for a project never saved."""
    saved_at: datetime
    owner: str | None = None
    """The token of the :class:`RecoveryOwner` that wrote it (``None``: written without one)."""


class RecoveryOwner:
    """The writer of one window's recovery files, alive as long as its process.

    The lock file ``<recovery>/owners/<token>.lock`` is made and locked at the first write and
    released by :meth:`close` (or by the operating system when the process dies)."""

    def __init__(self, state_dir: str | Path | None = None) -> None:
        self.token = secrets.token_hex(8)
        self._state_dir = state_dir
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def hold(self) -> None:
        """Take the lock now (idempotent). Best effort: without it the recovery is simply treated as
        a crashed one by other copies of the app, as before owners existed."""
        with self._mutex:
            if self._fd is not None:
                return
            path = _owner_lock(self.token, self._state_dir)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return
            with contextlib.suppress(OSError):
                ownership.lock(fd)
            self._fd = fd

    def close(self) -> None:
        """Let go: the recoveries left behind become crashed ones, offered at the next start."""
        with self._mutex:
            if self._fd is None:
                return
            with contextlib.suppress(OSError):
                _owner_lock(self.token, self._state_dir).unlink()
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _owner_lock(token: str, state_dir: str | Path | None) -> Path:
    return recovery_dir(state_dir) / OWNERS_FOLDER / f"{token}.lock"


def owner_alive(token: str | None, state_dir: str | Path | None = None) -> bool:
    """Whether the owner ``token`` still runs (in this process or another). ``None``, an unknown
    token and a file system without locks all answer no: the recovery is treated as crashed."""
    if token is None or not _TOKEN.fullmatch(token):
        return False
    try:
        fd = os.open(_owner_lock(token, state_dir), os.O_RDWR)
    except OSError:
        return False
    try:
        return ownership.try_lock(fd) is False
    finally:
        os.close(fd)  # releases the lock we may just have taken


def recovery_dir(state_dir: str | Path | None = None) -> Path:
    """The folder holding recovery files (not created here)."""
    return (Path(state_dir) if state_dir is not None else default_state_dir()) / "recovery"


def recovery_path(
    project_id: str,
    source_path: str | Path | None,
    state_dir: str | Path | None = None,
    owner: RecoveryOwner | None = None,
) -> Path:
    """Where ``owner``'s recovery file of the document ``project_id`` opened from ``source_path``
    (``None``: never saved) is written. Ids come from files, so they are sanitised."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", project_id)[:64] or "unnamed"
    if source_path is not None:
        safe = f"{safe}-{_file_key(source_path)}"
    if owner is not None:
        safe = f"{safe}-{owner.token}"
    return recovery_dir(state_dir) / f"{safe}{RECOVERY_SUFFIX}"


def write_recovery(
    project: Project,
    assets: AssetStore,
    source_path: str | Path | None,
    state_dir: str | Path | None = None,
    owner: RecoveryOwner | None = None,
) -> Path:
    """Atomically write (or replace) ``owner``'s recovery file of ``project`` opened from
    ``source_path``; return its path."""
    target = recovery_path(project.id, source_path, state_dir, owner)
    if owner is not None:
        owner.hold()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectFileError(target, f"cannot create the recovery folder ({exc.strerror or exc})") from exc
    meta = {
        "project_id": project.id,
        "title": project.title,
        "source_path": str(Path(source_path).absolute()) if source_path is not None else None,
        "saved_at": datetime.now(UTC).isoformat(),
        "owner": owner.token if owner is not None else None,
    }
    write_archive(
        target, project, assets, keep_backup=False, extra_members={RECOVERY_MEMBER: json.dumps(meta).encode("utf-8")}
    )
    return target


def find_recovery(source_path: str | Path | None, project_id: str, state_dir: str | Path | None = None) -> Path | None:
    """The newest crashed recovery of this document (``project_id`` opened from ``source_path``)
    that holds newer work than ``source_path``, or ``None``. A copy of the project elsewhere never
    matches while the original is where it was; a file moved after a crash finds the recovery it
    left at its old place."""
    newer = [r for r in _recoveries_of(project_id, source_path, state_dir) if holds_newer_work(r)]
    if not newer and source_path is not None:
        newer = _moved_away(project_id, source_path, state_dir)
    return max(newer, key=lambda r: r.saved_at).path if newer else None


def _moved_away(project_id: str, opened: str | Path, state_dir: str | Path | None) -> list[Recovery]:
    """Crashed recoveries of ``project_id`` whose file is no longer where they say and that are
    newer than the file ``opened`` (which may be that file, moved)."""
    try:
        opened_at = Path(opened).stat().st_mtime_ns
    except OSError:
        return []
    found = []
    for r in pending_recoveries(state_dir):
        if r.project_id != project_id or r.source_path is None or r.source_path.exists():
            continue
        with contextlib.suppress(OSError):
            if r.path.stat().st_mtime_ns > opened_at:
                found.append(r)
    return found


def holds_newer_work(recovery: Recovery) -> bool:
    """Whether ``recovery`` holds work its project file lacks: it was written after the file was
    last saved, or the file was saved since by someone else (another copy of the app, another
    program) than the window that wrote the recovery — that save did not include this work.
    "After" compares modification times; a missing file (never saved, or deleted since) makes any
    recovery worth offering."""
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
    if recovered_at > source_at:
        return True
    if recovery.owner is None:  # written without an owner: who saved since cannot be told
        return False
    return _last_saved_by(recovery.source_path, recovery.path.parent) != recovery.owner


def note_saved(source_path: str | Path, owner: RecoveryOwner, state_dir: str | Path | None = None) -> None:
    """Record that ``owner``'s window has just saved ``source_path`` (right after the save, before
    its recovery is discarded): a crash in between leaves a recovery that this record shows to
    be stale, while the recoveries of other copies of the app stay offered. Best effort."""
    try:
        stamp = Path(source_path).stat().st_mtime_ns
        record = _save_record(source_path, recovery_dir(state_dir))
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps({"owner": owner.token, "mtime_ns": stamp}), "the save record")
    except OSError:
        pass


def _save_record(source_path: str | Path, folder: Path) -> Path:
    return folder / SAVES_FOLDER / f"{_file_key(source_path)}.json"


def _last_saved_by(source_path: Path, folder: Path) -> str | None:
    """The owner whose save produced ``source_path`` as it is now, if a record says so."""
    try:
        record = json.loads(_save_record(source_path, folder).read_bytes()[:4096])
        if record["mtime_ns"] == source_path.stat().st_mtime_ns and isinstance(record["owner"], str):
            return record["owner"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    return None


def discard_recovery(
    project_id: str,
    source_path: str | Path | None,
    state_dir: str | Path | None = None,
    owner: RecoveryOwner | None = None,
) -> None:
    """Delete the recovery files of this document (after a save, or when the user declines them):
    ``owner``'s own and the crashed ones naming the same file; never a copy's, never another running
    window's."""
    doomed = {recovery_path(project_id, source_path, state_dir, owner)}
    doomed.update(r.path for r in _recoveries_of(project_id, source_path, state_dir))
    for path in sorted(doomed):
        delete_recovery_file(path)


def delete_recovery_file(path: Path) -> None:
    """Delete one recovery file (gone already is fine)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ProjectFileError(path, f"cannot delete the recovery file ({exc.strerror or exc})") from exc


def clean_recovery_folder(state_dir: str | Path | None = None) -> None:
    """Remove what killed autosaves left behind (their temporary files, their owners' lock files).
    At start-up."""
    remove_stale_temporaries_in(recovery_dir(state_dir))
    with contextlib.suppress(OSError):
        for lock in (recovery_dir(state_dir) / OWNERS_FOLDER).glob("*.lock"):
            if not owner_alive(lock.stem, state_dir):
                lock.unlink(missing_ok=True)


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


def _file_key(path: str | Path) -> str:
    """A short name for the file at ``path`` (any spelling of it), for recovery and save-record names."""
    return hashlib.sha256(_same_file(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _same_file(path: str | Path) -> str:
    """One spelling per file: absolute, symlinks and ``..`` resolved, case folded where the system
    ignores case (``a/../B.comic`` and ``b.comic`` are the same file on Windows)."""
    return os.path.normcase(os.path.realpath(os.path.abspath(path)))


def pending_recoveries(state_dir: str | Path | None = None) -> list[Recovery]:
    """Crashed recovery files to offer at start-up, newest first: those of running windows (this
    copy of the app or another) are left alone. Unreadable ones are skipped, not fatal: a
    half-written temporary file or a stranger's zip must not block the app from starting."""
    folder = recovery_dir(state_dir)
    try:
        candidates = sorted(folder.glob(f"*{RECOVERY_SUFFIX}"))
    except OSError:
        return []
    found = [info for info in map(_read_recovery_info, candidates) if info is not None]
    crashed = [info for info in found if not owner_alive(info.owner, state_dir)]
    return sorted(crashed, key=lambda info: info.saved_at, reverse=True)


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
        owner = meta.get("owner")
        saved_at = datetime.fromisoformat(meta["saved_at"])
        return Recovery(
            path=path,
            project_id=str(meta["project_id"]),
            title=str(meta.get("title", "")),
            source_path=Path(source) if isinstance(source, str) else None,
            saved_at=saved_at if saved_at.tzinfo else saved_at.replace(tzinfo=UTC),
            owner=owner if isinstance(owner, str) else None,
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

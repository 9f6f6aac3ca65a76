"""A private folder per open document: what the document needs, kept where only this process writes.

The user's ``.comic`` file may be moved, renamed, deleted or overwritten while it is open (a file
manager, a sync client, ``cp`` over it, another copy of the app saving to the same name). The asset
store reads images lazily, so it must not read them from the user's file. Two ways were weighed:

- an open descriptor on the user's file: free at open, and on POSIX a moved or deleted file stays
  readable through it; but a file overwritten *in place* (``cp other.comic open.comic``) changes
  under the descriptor and the images are gone, and on Windows an open file can be neither renamed
  nor replaced (our own Save's rename included);
- a copy of the file in a folder of our own, made before the loader reads it: it survives every
  one of those, on every system, and the loader checks the very bytes the session will read.

The copy is what this module makes. Its cost is one sequential copy of the file at open (the loader
already reads and hashes every asset, so opening takes about twice as long) and the file's size on
disk while it is open; ``bench/run.py --only project_io`` prints both for a project of 1 GiB.
Images added during the session live in memory until a save, then move into this folder
(:meth:`SessionCache.keep`), so memory stays bounded however long the session; nothing is ever read
back from the file the user saved to.

The folder is ``<state dir>/sessions/session-XXXX``, on disk (a RAM-backed ``/tmp`` would hold the
copy in memory). It is deleted when the asset store that owns it is collected or the app exits; a
killed app's folder is recognised by its unheld lock (:mod:`comic_studio.core.ownership`) and
deleted the next time any session starts one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path

from comic_studio.core import ownership
from comic_studio.core.errors import ComicStudioError, ProjectFileError
from comic_studio.core.safe_read import UnsafeInputError, open_regular

SESSIONS_FOLDER = "sessions"
LOCK_FILE = ".owner.lock"
_COPY_CHUNK = 8 * 1024 * 1024
_CREATION_GRACE_SECONDS = 600  # a folder whose owner has not locked it yet is being created, or abandoned


class SessionCacheError(ComicStudioError):
    """The session cache folder cannot be made or written (the message names it)."""


def sessions_dir() -> Path:
    from comic_studio.core.settings import state_dir  # noqa: PLC0415 — settings imports the model, which imports assets

    return state_dir() / SESSIONS_FOLDER


class SessionCache:
    """The folder is made at first use (a new, never-saved document costs nothing)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self._root = Path(root) if root is not None else None
        self._folder: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._mutex = threading.Lock()
        self._names = itertools.count()

    @property
    def folder(self) -> Path:
        with self._mutex:
            if self._folder is None:
                self._folder = self._create()
            return self._folder

    def stage_archive(self, source: Path) -> Path:
        """Copy ``source`` into the folder and return the copy's path.

        Only regular files are copied (a FIFO or ``/dev/zero`` named ``.comic`` would block or
        never end): anything else, or a file that cannot be opened, is a :class:`ProjectFileError`
        (:func:`comic_studio.core.safe_read.open_regular` checks). A copy that fails half-way (a
        full disk, a bad sector) raises :class:`SessionCacheError`, and the caller may read the
        user's file directly instead.
        """
        try:
            src = open_regular(source, what="project file")
        except UnsafeInputError as exc:  # a FIFO or /dev/zero named .comic would block or never end
            raise ProjectFileError(source, exc.problem) from exc
        with src:
            target = self.folder / f"opened-{next(self._names)}{source.suffix}"
            try:
                with open(target, "xb") as out:
                    _copy(src, out)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    target.unlink()
                raise SessionCacheError(
                    f"{target}: cannot copy {source.name} into the session cache ({exc.strerror or exc})"
                ) from exc
        return target

    def keep(self, digest: str, data: bytes) -> Path:
        """Write an asset's bytes under its hash (once) and return the file; raises
        :class:`SessionCacheError`. A complete file appears under its name or none does."""
        target = self.folder / "assets" / digest
        if target.exists():
            return target  # content-addressed: same name, same bytes (the reader checks the hash)
        partial = target.with_name(f"{digest}.{threading.get_ident()}.part")
        try:
            target.parent.mkdir(exist_ok=True)
            partial.write_bytes(data)
            os.replace(partial, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise SessionCacheError(f"{target}: cannot write to the session cache ({exc.strerror or exc})") from exc
        return target

    def close(self) -> None:
        """Delete the folder now (otherwise when this object is collected, or at exit)."""
        if self._finalizer is not None:
            self._finalizer()

    def _create(self) -> Path:
        root = self._root or sessions_dir()
        try:
            root.mkdir(parents=True, exist_ok=True)
            remove_abandoned_sessions(root)
            for _ in range(16):
                folder = Path(tempfile.mkdtemp(prefix="session-", dir=root))
                fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
                with contextlib.suppress(OSError):  # no locks on this file system: never seen as abandoned
                    ownership.lock(fd)
                if ownership.still_named(fd, folder / LOCK_FILE):
                    break
                os.close(fd)  # a cleaner took the new folder for an abandoned one: make another
            else:
                raise OSError("no session folder could be made")
        except OSError as exc:
            raise SessionCacheError(f"{root}: cannot make a session cache folder ({exc.strerror or exc})") from exc
        self._finalizer = weakref.finalize(self, _remove_session, folder, fd)
        return folder


def remove_abandoned_sessions(root: str | Path | None = None) -> None:
    """Delete the session folders of processes that no longer run (killed, crashed). Best effort."""
    root = Path(root) if root is not None else sessions_dir()
    try:
        folders = [entry for entry in os.scandir(root) if entry.name.startswith("session-") and entry.is_dir()]
    except OSError:
        return
    for entry in folders:
        folder = Path(entry.path)
        try:
            fd = os.open(folder / LOCK_FILE, os.O_RDWR)
        except FileNotFoundError:
            with contextlib.suppress(OSError):  # made by an owner that died before locking it
                if time.time() - entry.stat().st_mtime > _CREATION_GRACE_SECONDS:
                    shutil.rmtree(folder, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            abandoned = ownership.try_lock(fd)  # None (no locks here): keep it, it may be in use
            if abandoned and ownership.LOCKS_HELD_WHILE_RENAMING:
                # Deleted while we hold the lock: an owner that made this folder an instant ago
                # and waits for the lock finds its lock file gone once it has it, and makes another.
                shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
        if abandoned and not ownership.LOCKS_HELD_WHILE_RENAMING:
            shutil.rmtree(folder, ignore_errors=True)  # Windows deletes no open file: after closing it


def _remove_session(folder: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    shutil.rmtree(folder, ignore_errors=True)


def _copy(src, out) -> None:
    """Copy to the end of ``src``: in the kernel where it can (``copy_file_range``, which also
    clones blocks on file systems that share them), else through a buffer."""
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        try:
            while copy_range(src.fileno(), out.fileno(), _COPY_CHUNK):
                pass
            return
        except OSError:
            # Not supported between these file systems (or by this kernel): go on from where the
            # kernel stopped; both offsets moved together.
            pass
    shutil.copyfileobj(src, out, _COPY_CHUNK)

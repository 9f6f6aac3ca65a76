"""Replace a file atomically: the one way comic_studio writes a file that may already exist.

Whatever is written goes to a temporary file beside the target (same folder, so the final rename
never crosses a file system), is fsynced, takes over the old file's permissions and is renamed over
the target with ``os.replace``. A reader, a crash or a second process therefore sees the complete
old or the complete new file, never half of one; on any failure the temporary file is removed and
the old file is left as it was.

Temporary names are ``.NAME.<8 hex>.tmp``, created with ``O_EXCL``: two writers of the same file
(threads or processes) never share one, and :func:`remove_stale_temporaries` can recognise the ones
that a killed process left behind. On POSIX the writer holds a lock on its temporary file until the
rename (:mod:`comic_studio.core.ownership`), so a killed writer's leftover is recognised at once, by
the next save or open, however young it is; elsewhere a leftover counts as stale after
:data:`STALE_TEMP_SECONDS`.

Resumable downloads (``weights``' ``.part`` files) are the one writer that does not use this: their
partial file must keep a stable name to be resumed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from comic_studio.core import ownership
from comic_studio.core.errors import ComicStudioError

STALE_TEMP_SECONDS = 600
"""Where writers cannot hold a lock on their temporary file (Windows), temporary files older than
this count as leftovers of killed writers."""

_NAME_TRIES = 16  # O_EXCL collisions of 32 random bits are practically impossible; never loop forever


class FileWriteError(ComicStudioError, OSError):
    """A file could not be written; the previous file (if any) is untouched and no temporary is left.

    ``problem`` says what failed ("cannot write the settings (No space left on device)"); as for any
    :class:`OSError`, ``strerror`` holds the operating system's words alone (and ``errno`` its code),
    for callers that phrase their own message. Being an ``OSError`` too, code that treats every I/O
    failure alike (e.g. a cache that is simply recomputed) keeps working.
    """

    def __init__(self, path: str | Path, problem: str, strerror: str, errno: int | None = None):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
        self.strerror = strerror
        self.errno = errno

    def __str__(self) -> str:  # OSError's own would print "[Errno N] strerror" and drop the file name
        return f"{self.path}: {self.problem}"


def real_target(path: str | Path) -> Path:
    """Absolute path; through a symlink to the file it names, so replacing it keeps the link."""
    absolute = Path(path).absolute()
    return Path(os.path.realpath(absolute)) if absolute.is_symlink() else absolute


@contextlib.contextmanager
def atomic_path(target: str | Path, what: str, *, keep_backup: bool = False) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``target`` for the caller to write (by path); when the
    block ends without an error it replaces ``target`` in one rename.

    ``what`` names the content for error messages ("the PDF", "the settings"). ``keep_backup``
    first makes ``TARGET.bak`` a copy of the old file (without ever leaving ``target`` missing).
    ``OSError`` from the block or from the replace becomes :class:`FileWriteError` naming the file;
    any other exception propagates unchanged. In every failing case the temporary file is removed.
    The folder is not created: a missing folder is the caller's error to report.
    """
    shown = Path(target)  # errors name the file as the caller named it
    final = real_target(shown)
    tmp, held = _create_temporary(final, shown)
    try:
        yield tmp
        _fsync_file(tmp)
        _keep_mode_of(final, tmp)
        if keep_backup and final.exists():
            _make_backup(final)
        os.replace(tmp, final)
    except FileWriteError:
        _remove_quietly(tmp)
        raise
    except OSError as exc:
        _remove_quietly(tmp)
        reason = _os_words(exc, tmp)
        raise FileWriteError(shown, f"cannot write {what} ({reason})", reason, exc.errno) from exc
    except BaseException:  # cancel, a bug in the writer, KeyboardInterrupt: clean up, then let it through
        _remove_quietly(tmp)
        raise
    finally:
        _release(held)  # after the rename or the removal: until then the temporary file is ours
    _fsync_directory(final.parent)


def atomic_write_bytes(path: str | Path, data: bytes, what: str) -> Path:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_path`); return the path written."""
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)
    return real_target(path)


def atomic_write_text(path: str | Path, text: str, what: str, *, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically (see :func:`atomic_path`); return the path written."""
    with atomic_path(path, what) as tmp:
        tmp.write_text(text, encoding=encoding)
    return real_target(path)


def remove_stale_temporaries(target: str | Path) -> None:
    """Delete temporary files that earlier writers of ``target`` (or of its backup) left behind when
    they were killed.

    Only our own naming pattern, and only files no living writer holds (see the module's note): a
    writer running right now, in this process or another, keeps its temporary file.
    """
    final = real_target(target)
    _remove_stale(final.parent, re.compile(rf"\.{re.escape(final.name)}(\.bak)?\.[0-9a-f]{{8}}\.tmp"))


def remove_stale_temporaries_in(folder: str | Path) -> None:
    """Delete the leftovers of killed writers of *any* file in ``folder``: for folders that only
    comic_studio writes (the recovery folder), where no one else's ``.NAME.<8 hex>.tmp`` can live."""
    _remove_stale(Path(folder), re.compile(r"\..+\.[0-9a-f]{8}\.tmp"))


def _remove_stale(folder: Path, pattern: re.Pattern[str]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                _remove_if_abandoned(Path(entry.path))
        except OSError:
            pass  # best effort: a leftover is harmless


def _remove_if_abandoned(path: Path) -> None:
    if not ownership.LOCKS_HELD_WHILE_RENAMING:
        _remove_if_old(path)
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        unheld = ownership.try_lock(fd)
        if unheld is None:
            _remove_if_old(path)  # a file system without locks: nobody can tell, age decides
        elif unheld and ownership.still_named(fd, path):
            # Unlinked while we hold the lock: a writer that created this very file an instant
            # ago and waits for the lock finds its name gone once it has it, and starts again.
            os.unlink(path)
    finally:
        os.close(fd)


def _remove_if_old(path: Path) -> None:
    if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
        os.unlink(path)


def _temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def _create_temporary(target: Path, shown: Path) -> tuple[Path, int | None]:
    """A new empty file named for ``target``, and the descriptor holding its lock (``None`` where
    writers cannot hold one). O_EXCL never clobbers anything (another writer's temporary included)
    and mode 0o666 lets the umask decide, as for any normal file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_NAME_TRIES):
        tmp = _temporary_name(target)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            reason = _os_words(exc, tmp)
            raise FileWriteError(
                shown, f"cannot create a file in {target.parent} ({reason})", reason, exc.errno
            ) from exc
        usable, held = _hold(fd, tmp)
        if usable:
            return tmp, held
    raise FileWriteError(
        shown, f"cannot create a file in {target.parent} (no free temporary name)", "no free temporary name"
    )


def _hold(fd: int, path: Path) -> tuple[bool, int | None]:
    """Keep ``fd`` open and locked for as long as ``path`` is being written. Returns whether the
    file may be used and the descriptor held (``None``: this platform or file system keeps no
    locks, so the file is written without one). Not usable when a cleaner removed the name before
    the lock was ours: then the caller makes another file."""
    if not ownership.LOCKS_HELD_WHILE_RENAMING:
        os.close(fd)
        return True, None
    try:
        ownership.lock(fd)
    except OSError:
        os.close(fd)  # no locks on this file system (ENOLCK): its leftovers go by age instead
        return True, None
    if ownership.still_named(fd, path):
        return True, fd
    os.close(fd)
    return False, None


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    """Put the bytes on disk before the rename makes them the file (else a crash right after the
    rename can leave an empty file under the old name). Write access: Windows needs it to flush."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_mode_of(target: Path, tmp: Path) -> None:
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)


def _make_backup(target: Path) -> None:
    """Make ``target.bak`` a copy of ``target`` without ever leaving ``target`` missing."""
    backup = target.with_name(target.name + ".bak")
    for _ in range(_NAME_TRIES):
        staging = _temporary_name(backup)
        try:
            try:
                os.link(target, staging)  # a hard link is instant and costs no space
            except FileExistsError:
                continue
            except OSError:
                shutil.copy2(target, staging)  # file systems without hard links
            usable, held = _hold(os.open(staging, os.O_RDONLY), staging)
            if not usable:
                continue  # a cleaner took it between the link and the lock: make another
            try:
                os.replace(staging, backup)
            finally:
                _release(held)
            return
        except BaseException:
            _remove_quietly(staging)
            raise
    raise OSError(f"no free temporary name for {backup.name}")


def _fsync_directory(folder: Path) -> None:
    """Make the rename durable. Not possible (nor needed) on Windows: errors are ignored."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _os_words(exc: OSError, tmp: Path) -> str:
    """The operating system's reason, naming the file it concerns only when that is another file
    than our temporary one (e.g. a source the writer was reading)."""
    words = exc.strerror or str(exc)
    concerns = exc.filename
    if exc.strerror and concerns and Path(os.fsdecode(concerns)) != tmp and os.fsdecode(concerns) != tmp.name:
        return f"{words}: {os.fsdecode(concerns)}"
    return words

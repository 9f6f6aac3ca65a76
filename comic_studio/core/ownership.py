"""Tell a live process's working files from the leftovers of a killed one.

A process that owns a file (a temporary being written, a session's cache folder) holds an advisory
lock on an open descriptor of it for as long as it needs the file. The operating system drops the
lock when the descriptor is closed or the process dies, SIGKILL and power-cut restarts included, so
whoever can take the lock knows that no living process owns the file any more. Unlike a time-out
("older than ten minutes"), this removes a killed writer's gigabytes at once and never removes the
file of a writer that is merely slow.

POSIX uses ``flock`` (per open file description: another thread of the same process that opens the
file again does not get the lock either). Windows locks the first byte with ``msvcrt.locking``;
callers that must rename or delete a file while they hold it open cannot use a lock there (an open
handle forbids both) and fall back to the file's age: :data:`LOCKS_HELD_WHILE_RENAMING` says which.
"""

from __future__ import annotations

import errno
import os
import sys

LOCKS_HELD_WHILE_RENAMING = os.name == "posix"
"""Whether a file may stay locked (open) while it is renamed or deleted: POSIX yes, Windows no."""

_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}  # "someone else holds it"


def lock(fd: int) -> None:
    """Take the exclusive lock of ``fd``, waiting for another holder to let go."""
    if sys.platform == "win32":
        import msvcrt  # noqa: PLC0415 — Windows only

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
    else:
        import fcntl  # noqa: PLC0415 — POSIX only

        fcntl.flock(fd, fcntl.LOCK_EX)


def try_lock(fd: int) -> bool | None:
    """Take the exclusive lock of ``fd`` if nobody holds it: ``True``; ``False`` when a live owner
    holds it; ``None`` when this file system keeps no locks (some network shares), so nobody can
    tell."""
    try:
        if sys.platform == "win32":
            import msvcrt  # noqa: PLC0415

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl  # noqa: PLC0415

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return False if exc.errno in _HELD else None
    return True


def still_named(fd: int, path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a cleaner may have removed the name
    between our create and our lock: then the lock guards nothing and the caller starts again)."""
    try:
        named, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

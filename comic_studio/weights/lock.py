"""The download lock: what each verified download was, pinned on first use.

``<models folder>/downloads.lock.json`` records, per file, the source, the repo commit, the sha256
and the size of the bytes that were installed, and what they were checked against. A later download
of the same file resolves the same commit and must produce the same sha256: a server that starts
sending other bytes for a file it already served is refused, named, and never installed. Per repo it
also keeps the first commit resolved, so every file of one repo comes from one commit even when the
catalogue pins none. ``comic-studio models pin`` copies these records into the catalogue overlay.

Read with :mod:`comic_studio.core.safe_read`, written with :mod:`comic_studio.core.atomic` under an
advisory lock, so a CLI download and a window download never drop each other's records.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comic_studio.core import ownership
from comic_studio.core.atomic import atomic_write_text
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, read_json
from comic_studio.weights.catalogue import COMMIT_PATTERN, SHA256_PATTERN, ModelEntry, ModelFile

LOCK_FILE = "downloads.lock.json"
MAX_LOCK_BYTES = 16 * 1024 * 1024


class DownloadLockError(ComicStudioError):
    """The lock file cannot be read or written; the message names it and says what to do."""


class LockedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    """Where the bytes came from (the commit's resolve URL for repo files)."""
    revision: str | None = Field(default=None, pattern=COMMIT_PATTERN)
    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)
    checked: list[str] = []
    """What the bytes were checked against: catalogue, lock, hub-sha256, hub-git-sha1, hub-size,
    content-length. Only "content-length" means the first download had nothing else to go by."""


class LockData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    repos: dict[str, str] = {}
    """Repo → the commit its first verified download resolved."""
    files: dict[str, LockedFile] = {}
    """:func:`file_key` → record."""


def file_key(entry: ModelEntry, f: ModelFile) -> str:
    return f"url:{f.url}" if f.url else f"hf:{entry.repo}:{f.path}"


class DownloadLock:
    def __init__(self, models_folder: Path):
        self.path = models_folder / LOCK_FILE

    def read(self) -> LockData:
        if not self.path.exists():
            return LockData()
        try:
            return LockData.model_validate(read_json(self.path, limit=MAX_LOCK_BYTES, what="download lock"))
        except (UnsafeInputError, ValidationError) as exc:
            reason = exc.problem if isinstance(exc, UnsafeInputError) else str(exc.errors()[0]["msg"])
            raise DownloadLockError(
                f"{self.path}: the download lock is damaged ({reason}); delete it to pin downloads afresh"
            ) from exc

    def get(self, entry: ModelEntry, f: ModelFile) -> LockedFile | None:
        return self.read().files.get(file_key(entry, f))

    def record(self, entry: ModelEntry, f: ModelFile, record: LockedFile) -> None:
        with self._exclusive():
            data = self.read()
            data.files[file_key(entry, f)] = record
            if entry.repo and record.revision and f.url is None:
                data.repos.setdefault(entry.repo, record.revision)
            self._write(data)

    def forget(self, entry: ModelEntry) -> int:
        """Drop the records of ``entry``'s files (after an expected upstream change); returns how many."""
        with self._exclusive():
            data = self.read()
            keys = [file_key(entry, f) for f in entry.files if file_key(entry, f) in data.files]
            for key in keys:
                del data.files[key]
            if entry.repo and not any(k.startswith(f"hf:{entry.repo}:") for k in data.files):
                data.repos.pop(entry.repo, None)
            if keys:
                self._write(data)
            return len(keys)

    def _write(self, data: LockData) -> None:
        atomic_write_text(self.path, data.model_dump_json(indent=2, exclude_none=True) + "\n", "the download lock")

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        # A separate guard file: the lock file itself is replaced by rename, so a lock on it would
        # guard a file that no longer has the name.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        guard = self.path.with_name(self.path.name + ".guard")
        fd = os.open(guard, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            ownership.lock(fd)
            yield
        except OSError as exc:
            raise DownloadLockError(f"{self.path}: cannot update the download lock ({exc.strerror or exc})") from exc
        finally:
            os.close(fd)

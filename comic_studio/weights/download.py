"""Download catalogue models into the app's models folder: resumable, verified, with progress.

One HTTPS path serves both kinds of entry: a Hugging Face repo file is fetched from its ``resolve``
URL (``HF_ENDPOINT`` honoured, the user's HF token sent for gated repos), a plain ``url`` as is.
Bytes go to ``<file>.part``; an interrupted download resumes with an HTTP Range request; the
finished file is checked against the catalogue's size and sha256 before it is renamed into place,
so a half-written or corrupted file is never mistaken for an installed model.

Layout: ``<models folder>/<entry id>/<repo path>`` — what :mod:`locate` looks for.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comic_studio.core.errors import ComicStudioError
from comic_studio.weights.catalogue import ModelEntry, ModelFile

CHUNK = 64 * 1024
"""Small enough that a dropped connection loses little (bytes still buffered are not on disk)."""
TIMEOUT = 30


class DownloadError(ComicStudioError):
    """A download failed or its file did not verify; the message says which file and why."""


class DownloadCancelled(DownloadError):
    pass


@dataclass(frozen=True)
class DownloadProgress:
    model_id: str
    file: str
    done: int
    """Bytes of this file on disk so far (resumed bytes included)."""
    total: int | None
    file_index: int
    file_count: int

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressCallback = Callable[[DownloadProgress], None]


def file_url(entry: ModelEntry, f: ModelFile, revision: str = "main") -> str:
    if f.url:
        return f.url
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return f"{endpoint}/{entry.repo}/resolve/{revision}/{f.path}"


def download_entry(
    entry: ModelEntry,
    models_folder: Path,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Fetch every missing file of ``entry``; returns ``models_folder / entry.id``. Files already
    present (and verified when a sha256 is known) are skipped."""
    target = models_folder / entry.id
    for index, f in enumerate(entry.files):
        dest = target / f.path
        if dest.is_file() and _verified(dest, f):
            if progress:
                size = dest.stat().st_size
                progress(DownloadProgress(entry.id, f.path, size, size, index, len(entry.files)))
            continue

        def report(done: int, total: int | None, index: int = index, name: str = f.path) -> None:
            if progress:
                progress(DownloadProgress(entry.id, name, done, total, index, len(entry.files)))

        # The catalogue's sizes are for display (they may be rounded); the server's Content-Length
        # catches truncation and the sha256, when known, catches everything else.
        fetch(file_url(entry, f), dest, sha256=f.sha256, size=None, progress=report, should_stop=should_stop,
              token=_hf_token() if entry.repo and not f.url else None)  # fmt: skip
    return target


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    token: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, rename into place. ``size``:
    the expected byte count when the server does not send one."""
    import requests

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    total: int | None
    headers = {"User-Agent": "comic-studio"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT, allow_redirects=True) as response:
            if response.status_code == 416 and have:  # the part file is already complete
                total = have
            else:
                if response.status_code not in (200, 206):
                    raise DownloadError(f"{dest.name}: the server answered HTTP {response.status_code} for {url}")
                if response.status_code == 200 and have:  # the server ignored Range: start over
                    have = 0
                length = response.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else size
                with open(part, "ab" if have else "wb") as out:
                    done = have
                    if progress:
                        progress(done, total)
                    for chunk in response.iter_content(CHUNK):
                        if should_stop and should_stop():
                            raise DownloadCancelled(f"{dest.name}: download cancelled ({done} bytes kept to resume)")
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
    except requests.RequestException as exc:
        raise DownloadError(
            f"{dest.name}: download failed ({type(exc).__name__}: {exc}); run it again to resume"
        ) from exc
    _check(part, dest.name, sha256, total)
    os.replace(part, dest)
    return dest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(part: Path, name: str, sha256: str | None, size: int | None) -> None:
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        if actual_size > size:
            part.unlink()
        raise DownloadError(
            f"{name}: expected {size} bytes, got {actual_size}"
            + ("; run it again to resume" if actual_size < size else "")
        )
    if sha256 is not None and sha256_of(part) != sha256:
        part.unlink()  # corrupt: resuming would only extend the damage
        raise DownloadError(f"{name}: the sha256 checksum does not match the catalogue; the file was deleted")


def _verified(path: Path, f: ModelFile) -> bool:
    """Files reach their final name only after a complete, checked download (see :func:`fetch`)."""
    return f.sha256 is None or sha256_of(path) == f.sha256


def _hf_token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # no token or an old hub version: public repos need none
        return None

"""Download catalogue models into the app's models folder: resumable, verified, never installed wrong.

One HTTPS path serves both kinds of entry: a Hugging Face repo file is fetched from its ``resolve``
URL (``HF_ENDPOINT`` honoured, read at each download; the user's HF token sent for gated repos), a
plain ``url`` as is. Layout: ``<models folder>/<entry id>/<repo path>`` — what :mod:`locate` looks
for.

What a file must be is gathered before a byte is fetched, from every source that states it:

- the catalogue (with the user's pins applied): sha256, exact size and the commit, when pinned;
- the download lock (:mod:`.lock`): what the first verified download of this file was;
- the Hub itself: a ``HEAD`` of the resolve URL answers, on the redirect it sends, the resolved
  commit (``X-Repo-Commit``), and for an LFS file its sha256 and size (``X-Linked-Etag``,
  ``X-Linked-Size``); a small file kept in git answers its git blob id as ``ETag``, checked too.

Every stated value must agree, or nothing is fetched. The file is then fetched from the commit the
``HEAD`` resolved (a pinned commit, never ``main``, when the catalogue or the lock pins one), so the
bytes cannot move under the check. Bytes go to ``<file>.part`` with ``<file>.part.json`` recording
what they are a prefix of; a resume reuses a partial only for the same file (same URL, same stated
hash and size), and a server that answers a resume with the wrong range, another version (its
``ETag`` changed) or a partial bigger than the file gets the partial discarded and one fresh start.
The finished bytes are checked (size, sha256, git blob id, not a web page) before the rename into
place; a failed check deletes them. What was installed is recorded in the lock.

Every failure is one :class:`DownloadError` line naming the file and URL; an unreachable server is
:class:`DownloadOffline` ("you appear to be offline"); folders a failed download created are removed
when empty.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from comic_studio.core.atomic import atomic_write_text
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, read_json
from comic_studio.weights.catalogue import ModelEntry, ModelFile
from comic_studio.weights.lock import DownloadLock, LockData, LockedFile, file_key

if TYPE_CHECKING:
    import requests

CHUNK = 64 * 1024
"""Small enough that a dropped connection loses little (bytes still buffered are not on disk)."""
TIMEOUT = 30
"""Seconds to wait for a connection or for the next bytes; longer means the server is gone."""
DEFAULT_ENDPOINT = "https://huggingface.co"
# The Hub's header names, as huggingface_hub's file_download reads them (constants.py there).
HEADER_COMMIT = "X-Repo-Commit"
HEADER_LINKED_ETAG = "X-Linked-Etag"
HEADER_LINKED_SIZE = "X-Linked-Size"
WEB_PAGE = "the server sent a web page instead of the model file (a captive portal or login page?)"
_WEB_PAGE_STARTS = (b"<!doctype", b"<html")
_MAX_PARTIAL_NOTE = 64 * 1024
MAX_HUB_REDIRECTS = 10


class DownloadError(ComicStudioError):
    """A download failed or its file did not verify; the message says which file, why, and the URL."""


class DownloadCancelled(DownloadError):
    pass


class DownloadOffline(DownloadError):
    """The server could not be reached at all (no connection, no name, no answer)."""


class VerificationError(DownloadError):
    """The bytes, or what a server states about them, disagree with what the file must be: nothing
    was installed and the bytes were deleted."""


class _Restart(Exception):
    """The partial cannot be resumed (wrong range, changed file): discard it and start from zero."""


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


@dataclass
class Expected:
    """What one file must be, and who said so (for the messages and the lock's ``checked``)."""

    label: str
    url: str
    revision: str | None = None
    sha256: str | None = None
    git_sha1: str | None = None
    size: int | None = None
    said: dict[str, str] = field(default_factory=dict)
    """"sha256"/"size"/"git_sha1" → where the value came from (catalogue, lock, hub-…)."""

    def identity(self) -> dict[str, Any]:
        return {"url": self.url, "sha256": self.sha256, "git_sha1": self.git_sha1, "size": self.size}

    def agree(self, what: str, value: Any, source: str, lock_path: Path | None = None) -> None:
        """Add a stated value; refuse before downloading when it contradicts an earlier one."""
        if value is None:
            return
        current = getattr(self, what)
        if current is not None and current != value:
            earlier = self.said[what]
            hint = ""
            if "lock" in (earlier, source) and lock_path is not None:
                hint = (
                    f"; the first download recorded the other in {lock_path} — if the change is expected, "
                    "run `comic-studio models unpin` for this model"
                )
            raise VerificationError(
                f"{self.label}: the {source} states {_shown(what, value)} but the {earlier} states "
                f"{_shown(what, current)}; refused, nothing was downloaded{hint} ({self.url})"
            )
        if current is None:
            setattr(self, what, value)
            self.said[what] = source

    @property
    def checked(self) -> list[str]:
        return sorted(set(self.said.values()))


def _shown(what: str, value: Any) -> str:
    return f"{value} bytes" if what == "size" else f"{what.replace('_', '-')} {str(value)[:12]}…"


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def resolve_url(repo: str, revision: str, path: str) -> str:
    return f"{hub_endpoint()}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


def file_url(entry: ModelEntry, f: ModelFile, revision: str | None = None) -> str:
    """Where ``f`` is fetched from: its URL, or the repo's resolve URL at ``revision`` (default: the
    catalogue's pinned commit, else ``main``)."""
    if f.url:
        return f.url
    assert entry.repo is not None  # the catalogue guarantees a repo or a url
    return resolve_url(entry.repo, revision or f.revision or "main", f.path)


def download_entry(
    entry: ModelEntry,
    models_folder: Path,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Fetch every missing file of ``entry``; returns ``models_folder / entry.id``. Files already
    present (and matching the sha256 the catalogue or the lock knows) are skipped."""
    import requests

    target = models_folder / entry.id
    lock = DownloadLock(models_folder)
    created: list[Path] = []
    try:
        with requests.Session() as session:
            for index, f in enumerate(entry.files):
                dest = target / f.path
                known = lock.read()
                if dest.is_file() and _installed_ok(dest, f, known.files.get(file_key(entry, f))):
                    if progress:
                        size = dest.stat().st_size
                        progress(DownloadProgress(entry.id, f.path, size, size, index, len(entry.files)))
                    continue

                def report(done: int, total: int | None, index: int = index, name: str = f.path) -> None:
                    if progress:
                        progress(DownloadProgress(entry.id, name, done, total, index, len(entry.files)))

                token = hf_token() if entry.repo and not f.url else None
                expected = expected_for(session, entry, f, known, lock.path, token)
                sha256, size = fetch_verified(session, expected, dest, created, report, should_stop, token)
                checked = (
                    expected.checked if expected.sha256 or expected.git_sha1 else [*expected.checked, "content-length"]
                )
                lock.record(entry, f, LockedFile(url=expected.url, revision=expected.revision, sha256=sha256,
                                                 size=size, checked=sorted(set(checked))))  # fmt: skip
    except BaseException:
        _remove_empty(created)
        raise
    return target


# ------------------------------------------------------------------------------------ what a file must be


def expected_for(
    session: requests.Session, entry: ModelEntry, f: ModelFile, known: LockData, lock_path: Path, token: str | None
) -> Expected:
    label = f"{entry.id}/{f.path}"
    record = known.files.get(file_key(entry, f))
    if f.url:
        exp = Expected(label, f.url)
        if f.pinned:
            exp.agree("sha256", f.sha256, "catalogue")
            exp.agree("size", f.size, "catalogue")
        if record is not None and record.url == f.url:
            exp.agree("sha256", record.sha256, "lock", lock_path)
            exp.agree("size", record.size, "lock", lock_path)
        return exp

    assert entry.repo is not None
    revision = f.revision or (record.revision if record else None) or known.repos.get(entry.repo) or "main"
    head_url = resolve_url(entry.repo, revision, f.path)
    hub = _hub_facts(session, head_url, label, token)
    pinned_commit = revision if revision != "main" else None
    if pinned_commit and hub.commit and hub.commit != pinned_commit:
        raise VerificationError(
            f"{label}: asked for the pinned commit {pinned_commit} but the server answered commit {hub.commit}; "
            f"refused ({head_url})"
        )
    commit = pinned_commit or hub.commit
    exp = Expected(label, resolve_url(entry.repo, commit or revision, f.path), revision=commit)
    if f.pinned:
        exp.agree("sha256", f.sha256, "catalogue")
        exp.agree("size", f.size, "catalogue")
    if record is not None and record.revision == commit:
        exp.agree("sha256", record.sha256, "lock", lock_path)
        exp.agree("size", record.size, "lock", lock_path)
    exp.agree("sha256", hub.sha256, "hub-sha256", lock_path)
    exp.agree("git_sha1", hub.git_sha1, "hub-git-sha1")
    exp.agree("size", hub.size, "hub-size", lock_path)
    return exp


@dataclass(frozen=True)
class HubFacts:
    commit: str | None = None
    sha256: str | None = None
    """An LFS file's sha256 (``X-Linked-Etag``)."""
    git_sha1: str | None = None
    """A file kept in git: its blob id (the plain ``ETag``)."""
    size: int | None = None


def _hub_facts(session: requests.Session, url: str, label: str, token: str | None) -> HubFacts:
    """What the Hub states about the file at ``url``, from a ``HEAD``. Like huggingface_hub, only
    the Hub's own (relative) redirects are followed, such as a renamed repo's: an LFS file is
    answered with a redirect to its storage, and that redirect carries the linked headers (storage
    URLs are signed for ``GET`` and need not answer a ``HEAD``). A server without ``HEAD`` (some
    mirrors) states nothing: the download then goes by the catalogue, the lock and the body's
    length."""
    import requests

    for _hop in range(MAX_HUB_REDIRECTS):
        try:
            response = session.head(url, headers=_headers(token), timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise _unreachable(exc, url, label) from exc
        response.close()
        location = response.headers.get("Location", "")
        if not (response.is_redirect and location and not urlsplit(location).netloc):
            break
        url = urljoin(url, location)
    if response.status_code in (405, 501):
        return HubFacts()
    redirected = response.is_redirect
    if not redirected:
        _check_status(response, label, url)
        _refuse_web_page_type(response, label, url)
    headers = response.headers
    commit = (headers.get(HEADER_COMMIT) or "").lower() or None
    linked = _etag(headers.get(HEADER_LINKED_ETAG))
    plain = _etag(headers.get("ETag")) if not redirected else None
    size_text = headers.get(HEADER_LINKED_SIZE) or (headers.get("Content-Length") if not redirected else None)
    return HubFacts(
        commit=commit if commit and _is_hex(commit, 40) else None,
        sha256=linked if linked and _is_hex(linked, 64) else None,
        git_sha1=plain if linked is None and plain and _is_hex(plain, 40) else None,
        size=int(size_text) if size_text and size_text.isdigit() else None,
    )


def _etag(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    value = value[2:] if value.startswith("W/") else value
    return value.strip('"').lower()


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)


# ------------------------------------------------------------------------------------ fetching


def fetch_verified(
    session: requests.Session,
    exp: Expected,
    dest: Path,
    created: list[Path],
    progress: Callable[[int, int | None], None],
    should_stop: Callable[[], bool] | None,
    token: str | None,
) -> tuple[str, int]:
    """Download to ``dest`` (resuming a matching partial), verify, rename into place; returns the
    sha256 and size installed."""
    part = dest.with_name(dest.name + ".part")
    note = dest.with_name(dest.name + ".part.json")
    have, etag = _usable_partial(part, note, exp)
    while True:
        try:
            resumed = _transfer(session, exp, part, note, have, etag, created, progress, should_stop, token)
        except _Restart as why:
            _discard(part, note)
            if not have:
                raise DownloadError(f"{exp.label}: {why}; nothing was installed ({exp.url})") from None
            have, etag = 0, None
            continue
        except VerificationError:
            _discard(part, note)
            raise
        problem, sha256 = _verify(part, exp)
        if problem is None:
            size = part.stat().st_size
            os.replace(part, dest)
            note.unlink(missing_ok=True)
            return sha256, size
        _discard(part, note)
        if problem == WEB_PAGE or not resumed:
            raise VerificationError(
                f"{exp.label}: {problem}; the download was deleted and nothing was installed ({exp.url})"
            )
        # A resumed file that fails its check may join two versions of the file: start over, once
        # (the fresh attempt is not a resume, so a second failure ends above).
        have, etag = 0, None


def _transfer(
    session: requests.Session,
    exp: Expected,
    part: Path,
    note: Path,
    have: int,
    etag: str | None,
    created: list[Path],
    progress: Callable[[int, int | None], None],
    should_stop: Callable[[], bool] | None,
    token: str | None,
) -> bool:
    """One request; appends to the partial or rewrites it. True when the bytes continue a partial."""
    import requests

    if should_stop and should_stop():
        raise DownloadCancelled(f"{exp.label}: download cancelled")
    headers = _headers(token)
    if have:
        headers["Range"] = f"bytes={have}-"
        if etag and not etag.startswith("W/"):  # If-Range takes a strong validator only
            headers["If-Range"] = etag
    try:
        response = session.get(exp.url, headers=headers, stream=True, timeout=TIMEOUT, allow_redirects=True)
    except requests.RequestException as exc:
        raise _unreachable(exc, exp.url, exp.label) from exc
    with response:
        status = response.status_code
        if status == 416 and have:
            if exp.size is not None and have == exp.size:
                return True  # the partial was already whole; the check decides
            raise _Restart("the server refused to resume the partial download")
        _check_status(response, exp.label, exp.url)
        _refuse_web_page_type(response, exp.label, exp.url)
        length = response.headers.get("Content-Length")
        body = int(length) if length and length.isdigit() else None
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if not have or start != have:
                raise _Restart(f"the server resumed at byte {start}, not at byte {have}")
            new_etag = response.headers.get("ETag")
            if etag and new_etag and new_etag != etag:
                raise _Restart("the file changed on the server since the partial download began")
            total = total if total is not None else (have + body if body is not None else None)
        else:  # 200: the whole file, whatever was asked
            have = 0
            total = body
        if total is not None and exp.size is not None and total != exp.size:
            raise VerificationError(
                f"{exp.label}: the server sends {total} bytes but the {exp.said['size']} states {exp.size}; "
                f"refused, nothing was installed ({exp.url})"
            )
        _make_parents(part.parent, created)
        note_data = {"identity": exp.identity(), "etag": response.headers.get("ETag")}
        atomic_write_text(note, _json(note_data), "the partial download's note")
        done = have
        with open(part, "r+b" if have else "wb") as out:
            out.seek(have)
            out.truncate()
            progress(done, total)
            try:
                for chunk in response.iter_content(CHUNK):
                    if should_stop and should_stop():
                        raise DownloadCancelled(f"{exp.label}: download cancelled ({done} bytes kept to resume)")
                    out.write(chunk)
                    done += len(chunk)
                    progress(done, total)
            except requests.RequestException as exc:
                raise DownloadError(
                    f"{exp.label}: the connection broke after {done} of {total if total is not None else '?'} "
                    f"bytes ({_reason(exc)}); run it again to resume ({exp.url})"
                ) from exc
    if done == 0 and exp.size != 0:
        raise VerificationError(f"{exp.label}: the server sent an empty file; nothing was installed ({exp.url})")
    if total is not None and done < total:
        raise DownloadError(
            f"{exp.label}: the server sent {done} of {total} bytes and closed the connection; "
            f"run it again to resume ({exp.url})"
        )
    return have > 0


def _verify(part: Path, exp: Expected) -> tuple[str | None, str]:
    """What is wrong with the finished bytes (``None`` when nothing is), and their sha256."""
    with open(part, "rb") as fh:
        head = fh.read(512)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_WEB_PAGE_STARTS):
        return WEB_PAGE, ""
    size = part.stat().st_size
    if size == 0 and exp.size != 0:
        return "the server sent an empty file", ""
    if exp.size is not None and size != exp.size:
        return f"got {size} bytes but the {exp.said['size']} states {exp.size}", ""
    sha256, git_sha1 = _digests(part, size)
    if exp.sha256 is not None and sha256 != exp.sha256:
        return f"its sha256 {sha256[:12]}… does not match the {exp.said['sha256']}'s {exp.sha256[:12]}…", sha256
    if exp.git_sha1 is not None and git_sha1 != exp.git_sha1:
        return (
            f"its git blob id {git_sha1[:12]}… does not match the {exp.said['git_sha1']}'s {exp.git_sha1[:12]}…",
            sha256,
        )
    return None, sha256


def _usable_partial(part: Path, note: Path, exp: Expected) -> tuple[int, str | None]:
    """Bytes of a partial that may be resumed for ``exp``, and its ETag; anything else is discarded:
    a partial without its note (an older version's, or a copy), of another file or version, or
    bigger than the file."""
    if not part.is_file():
        note.unlink(missing_ok=True)
        return 0, None
    try:
        data = read_json(note, limit=_MAX_PARTIAL_NOTE, what="partial download's note")
    except UnsafeInputError:
        data = None
    have = part.stat().st_size
    if (
        not isinstance(data, dict)
        or data.get("identity") != exp.identity()
        or (exp.size is not None and have > exp.size)
    ):
        _discard(part, note)
        return 0, None
    etag = data.get("etag")
    return have, etag if isinstance(etag, str) else None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` → (START, TOTAL); ``None`` for what is missing or unreadable."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = span.split("-")[0].strip()
    return (int(start) if start.isdigit() else None, int(total) if total.strip().isdigit() else None)


def _check_status(response: requests.Response, label: str, url: str) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    if status in (401, 403):
        raise DownloadError(
            f"{label}: the server refused access (HTTP {status}); for a gated Hugging Face model, accept its "
            f"licence on its page and log in with `hf auth login` ({url})"
        )
    if status == 404:
        raise DownloadError(f"{label}: the server has no such file (HTTP 404) ({url})")
    raise DownloadError(f"{label}: the server answered HTTP {status} ({url})")


def _refuse_web_page_type(response: requests.Response, label: str, url: str) -> None:
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        raise VerificationError(f"{label}: {WEB_PAGE}; nothing was installed ({url})")


def _headers(token: str | None) -> dict[str, str]:
    # identity: a compressed answer would make the byte counts disagree with the file's size
    headers = {"User-Agent": "comic-studio", "Accept-Encoding": "identity"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


# ------------------------------------------------------------------------------------ errors in words


def _unreachable(exc: Exception, url: str, label: str) -> DownloadError:
    import requests

    host = urlsplit(url).hostname or url
    if isinstance(exc, requests.exceptions.SSLError):
        return DownloadError(
            f"{label}: the secure connection to {host} failed ({_reason(exc)}); a captive portal or a proxy may be "
            f"intercepting it ({url})"
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return DownloadError(f"{label}: the proxy refused the connection to {host} ({_reason(exc)}) ({url})")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return DownloadOffline(
            f"you appear to be offline: {host} cannot be reached ({_reason(exc)}); {label} was not downloaded ({url})"
        )
    return DownloadError(f"{label}: the request failed ({_reason(exc)}) ({url})")


def _reason(exc: BaseException) -> str:
    import requests

    causes = list(_causes(exc))
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError" for e in causes):
        return "its name does not resolve"
    if any(isinstance(e, (requests.Timeout, TimeoutError, socket.timeout)) for e in causes) or any(
        "timed out" in str(e) for e in causes
    ):
        return f"no answer within {TIMEOUT} s"
    if any(type(e).__name__ in ("IncompleteRead", "ProtocolError", "ChunkedEncodingError") for e in causes):
        return "the server closed the connection early"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if isinstance(x, BaseException)]
        todo += [a for a in e.args if isinstance(a, BaseException)]


# ------------------------------------------------------------------------------------ files


def sha256_of(path: Path) -> str:
    return _digests(path, None)[0]


def _digests(path: Path, size: int | None) -> tuple[str, str]:
    """sha256, and the git blob id (sha1 of ``blob <size>\\0`` + bytes) when ``size`` is given."""
    digest = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False) if size is not None else None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
            if blob is not None:
                blob.update(block)
    return digest.hexdigest(), blob.hexdigest() if blob is not None else ""


def _installed_ok(path: Path, f: ModelFile, record: LockedFile | None) -> bool:
    """Files reach their final name only after a complete, checked download (see :func:`fetch_verified`);
    a file that no longer matches what the catalogue or the lock knows is fetched again."""
    expected = f.sha256 or (record.sha256 if record else None)
    return expected is None or sha256_of(path) == expected


def _make_parents(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, remembering which, so a failure removes them."""
    missing = []
    for p in [folder, *folder.parents]:
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        p.mkdir(exist_ok=True)
        created.append(p)


def _remove_empty(created: list[Path]) -> None:
    for folder in reversed(created):  # deepest first
        try:
            folder.rmdir()
        except OSError:  # not empty (a partial kept to resume), or already gone
            pass


def _discard(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2) + "\n"


def hf_token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # no token or an old hub version: public repos need none
        return None

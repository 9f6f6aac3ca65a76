"""A Hugging Face Hub stand-in on 127.0.0.1 for download tests: resolve URLs answer with the Hub's
headers (``X-Repo-Commit``; an LFS file redirects to storage with ``X-Linked-Etag``/``X-Linked-Size``,
a git file carries its blob id as ``ETag``), storage honours ``Range``, and knobs make it misbehave
the ways a real server or network does (ignored or wrong ranges, cut bodies, changed files, web
pages, empty answers)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import dataclass, field

REPO = "org/hub-model"
WEIGHTS = bytes(range(256)) * 2000  # 512 KB: several chunks
CONFIG = b'{"layers": 4}\n'
COMMIT = "c0ffee" * 6 + "c0ff"
OTHER_COMMIT = "beef" * 10


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Hub:
    base: str = ""
    commit: str = COMMIT
    answered_commit: str | None = None
    """Set: the commit the server claims, whatever was asked (a server that moves a pin)."""
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    lfs: set[tuple[str, str]] = field(default_factory=set)
    stated_sha: dict[tuple[str, str], str] = field(default_factory=dict)
    """What the Hub states instead of the real sha256 (a lying or changed server)."""
    plain: dict[str, tuple[bytes, str | None]] = field(default_factory=dict)
    """URL path → (bytes, ETag) for plain URL downloads."""
    ignore_range: bool = False
    wrong_range: bool = False
    cut_once: int | None = None
    """Send only this many bytes of the next body (its Content-Length still says the whole)."""
    web_page: str | None = None
    """"typed": answer everything with a text/html page; "disguised": the page as octet-stream;
    "redirect": redirect everything to a login page."""
    empty: bool = False
    no_head: bool = False
    renamed: dict[str, str] = field(default_factory=dict)
    """Old repo name → new one: the Hub answers the old name with a relative redirect."""
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    def add(self, repo: str, path: str, data: bytes, *, lfs: bool = True) -> None:
        self.files[(repo, path)] = data
        if lfs:
            self.lfs.add((repo, path))


PORTAL = b"<!DOCTYPE html><html><body>Sign in to the hotel Wi-Fi</body></html>"


class Handler(http.server.BaseHTTPRequestHandler):
    hub: Hub

    def log_message(self, *args):
        pass

    def do_HEAD(self):  # noqa: N802
        self._answer(head=True)

    def do_GET(self):  # noqa: N802
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        hub = self.hub
        hub.seen.append(("HEAD" if head else "GET", self.path, self.headers.get("Range")))
        if hub.web_page == "redirect" and self.path != "/portal":
            self.send_response(302)
            self.send_header("Location", f"{hub.base}/portal")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if hub.web_page:
            self._send(200, PORTAL, head, "application/octet-stream" if hub.web_page == "disguised" else "text/html")
            return
        if hub.empty:
            self._send(200, b"", head)
            return
        if head and hub.no_head:
            self._send(405, b"", head)
            return
        if self.path in hub.plain:
            data, etag = hub.plain[self.path]
            self._serve(data, head, {"ETag": etag} if etag else {})
            return
        if self.path.startswith("/cdn/"):
            _, _, repo_a, repo_b, path = self.path.split("/", 4)
            self._serve(hub.files[(f"{repo_a}/{repo_b}", path)], head, {})
            return
        parts = self.path.lstrip("/").split("/", 4)
        if len(parts) == 5 and parts[2] == "resolve":
            repo, rev, path = f"{parts[0]}/{parts[1]}", parts[3], parts[4]
            if repo in hub.renamed:
                self.send_response(307)
                self.send_header("Location", f"/{hub.renamed[repo]}/resolve/{rev}/{path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = hub.files.get((repo, path))
            if data is None or rev not in ("main", hub.commit):
                self._send(404, b"not found", head)
                return
            commit = {"X-Repo-Commit": hub.answered_commit or hub.commit}
            if (repo, path) in hub.lfs:
                stated = hub.stated_sha.get((repo, path), sha(data))
                self.send_response(302)
                for k, v in {**commit, "Location": f"{hub.base}/cdn/{repo}/{path}", "X-Linked-Etag": f'"{stated}"',
                             "X-Linked-Size": str(len(data)), "Content-Length": "0"}.items():  # fmt: skip
                    self.send_header(k, v)
                self.end_headers()
                return
            self._serve(data, head, {**commit, "ETag": f'"{git_blob_id(data)}"'})
            return
        self._send(404, b"not found", head)

    def _serve(self, data: bytes, head: bool, extra: dict[str, str]) -> None:
        hub = self.hub
        rng = self.headers.get("Range")
        start = 0
        status = 200
        headers = dict(extra)
        if rng and not hub.ignore_range and not head:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self._send(416, b"", head, extra={"Content-Range": f"bytes */{len(data)}"})
                return
            if hub.wrong_range:
                start = 0
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(status, data[start:], head, extra=headers)

    def _send(self, status: int, body: bytes, head: bool, kind: str = "application/octet-stream",
              extra: dict[str, str] | None = None) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        if self.hub.cut_once is not None and len(body) > self.hub.cut_once:
            body, self.hub.cut_once = body[: self.hub.cut_once], None
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: fine for a test server
            pass


def start(hub: Hub) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    handler = type("BoundHandler", (Handler,), {"hub": hub})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    hub.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread

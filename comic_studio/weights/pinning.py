"""Turn what was verified into catalogue pins: ``comic-studio models pin`` and ``unpin``.

A pin is a file's sha256, exact size and repo commit. They come from the download lock (files this
machine downloaded and checked) or, with ``from_hub``, from the server itself: an LFS file's ``HEAD``
states its sha256 and size at a commit; a small file kept in git states only its git blob id, so it
is downloaded (into a temporary folder, checked against that id) and hashed, and so is a plain-URL
file (nothing else states its hash). The pins go to the
user's overlay (``models.pins.json``), or into a whole catalogue file: one networked maintainer run
of ``comic-studio models pin --from-hub --write-catalogue comic_studio/resources/models.json`` fills the bundled
catalogue.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from comic_studio.weights.catalogue import Catalogue, FilePin, ModelEntry, Pins, read_pins, write_pins
from comic_studio.weights.lock import DownloadLock, file_key


@dataclass
class PinReport:
    pinned: list[tuple[str, str, FilePin, str]] = field(default_factory=list)
    """(model id, path, pin, where it came from: "lock" or "server")."""
    left: list[tuple[str, str, str]] = field(default_factory=list)
    """(model id, path, why it was not pinned)."""


def collect_pins(
    catalogue: Catalogue, ids: list[str], models_folder: Path, *, from_hub: bool = False
) -> tuple[Pins, PinReport]:
    """Pins for the files of ``ids`` (every model when empty) that the lock or the Hub can state."""
    entries = [catalogue.get(i) for i in ids] if ids else list(catalogue.models)
    lock = DownloadLock(models_folder).read()
    pins = Pins()
    report = PinReport()
    for entry in entries:
        for f in entry.files:
            record = lock.files.get(file_key(entry, f))
            if record is not None:
                pin = FilePin(sha256=record.sha256, size=record.size, revision=record.revision)
                source = "lock"
            elif from_hub:
                pin = _from_hub(entry, f.path)
                source = "server"
            else:
                why = "already pinned in the catalogue" if f.pinned else "not downloaded here (add --from-hub)"
                report.left.append((entry.id, f.path, why))
                continue
            pins.models.setdefault(entry.id, {})[f.path] = pin
            report.pinned.append((entry.id, f.path, pin, source))
    return pins, report


def merge(old: Pins, new: Pins) -> Pins:
    models = {mid: dict(files) for mid, files in old.models.items()}
    for mid, files in new.models.items():
        models.setdefault(mid, {}).update(files)
    return Pins(models=models)


def save_user_pins(path: Path, new: Pins) -> Path:
    return write_pins(path, merge(read_pins(path), new))


def unpin(entry: ModelEntry, pins_file: Path, models_folder: Path) -> int:
    """Forget ``entry``'s pins in the overlay and its records in the download lock (after an
    expected change upstream); returns how many pins and records went. The bundled catalogue's own
    pins stay: changing those is a catalogue update."""
    gone = DownloadLock(models_folder).forget(entry)
    pins = read_pins(pins_file)
    if entry.id in pins.models:
        gone += len(pins.models.pop(entry.id))
        write_pins(pins_file, pins)
    return gone


def _from_hub(entry: ModelEntry, path: str) -> FilePin:
    """What the server states for one file; a file without a published sha256 (a git file, checked
    against its blob id; a plain URL) is downloaded into a temporary folder and hashed."""
    import requests

    from comic_studio.weights.download import expected_for, fetch_verified, hf_token

    f = next(x for x in entry.files if x.path == path)
    token = hf_token() if entry.repo and not f.url else None
    with requests.Session() as session:
        with tempfile.TemporaryDirectory(prefix="comic-studio-pin-") as tmp:
            empty = DownloadLock(Path(tmp))  # no records: ask the server afresh
            exp = expected_for(session, entry, f, empty.read(), empty.path, token)
            if exp.sha256 is not None and exp.size is not None:
                return FilePin(sha256=exp.sha256, size=exp.size, revision=exp.revision)
            sha256, size = fetch_verified(session, exp, Path(tmp) / "file", [], lambda done, total: None, None, token)
            return FilePin(sha256=sha256, size=size, revision=exp.revision)

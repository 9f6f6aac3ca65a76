"""A character's LoRA training samples outside the Train dialog: on its library card (the newest
sample as a badge) and in the editor's LoRA box (the newest steps as a strip), while a run goes on
and after it ended.

The source is the files the run writes beside its checkpoint
(:func:`comic_studio.training.samples.kept_samples`), not the engine's messages: the same pictures
then show for a run of the studio's queue, a run resumed after a restart, and a run of
``comic-studio train lora`` in another process. A :class:`QFileSystemWatcher` on the training folder
and the run's sample folder tells when they change (a new step's files, or a new run clearing the
old ones); the reports are coalesced, since an atomic write is a create and a rename.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal
from PySide6.QtGui import QImage

from comic_studio.core.safe_read import UnsafeInputError, open_image
from comic_studio.training.samples import kept_samples, samples_folder
from comic_studio.ui.images import pil_to_qimage
from comic_studio.workflows.training import checkpoint_path

COALESCE_MS = 150
"""How long to wait after a change in the folders before reading them again."""
THUMB_SIDE = 160
"""Samples are decoded once and kept at this size (a 1024² sample is 3 MB as a QImage)."""


def character_samples(project_id: str, character_id: str) -> list[tuple[int, list[Path]]]:
    """The kept samples of the character's latest (or current) run, oldest step first."""
    return kept_samples(checkpoint_path(project_id, character_id))


class SampleImages:
    """Decoded, shrunk samples keyed by file, size and modification time: a new run rewrites
    ``step-000100-0.png`` under the same name, and must not show the old picture."""

    def __init__(self, limit: int = 256):
        self._items: dict[tuple[str, int, int], QImage | None] = {}
        self._limit = limit

    def get(self, path: Path) -> QImage | None:
        try:
            stat = path.stat()
        except OSError:
            return None  # removed since it was listed (a new run started)
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._items:
            if len(self._items) >= self._limit:
                self._items.clear()
            try:
                image = open_image(path, what="training sample")
                image.thumbnail((THUMB_SIDE, THUMB_SIDE))
                self._items[key] = pil_to_qimage(image.convert("RGB"))
            except (OSError, UnsafeInputError, ValueError):
                self._items[key] = None  # half-gone or damaged: the card just lacks it
        return self._items[key]

    def steps(self, samples: list[tuple[int, list[Path]]]) -> list[tuple[int, list[QImage]]]:
        """``samples`` with their pictures (files that cannot be read are left out)."""
        out = []
        for step, files in samples:
            images = [image for image in (self.get(f) for f in files) if image is not None]
            if images:
                out.append((step, images))
        return out


class SampleWatch(QObject):
    """Emits :attr:`changed` (coalesced) when the samples of the watched characters may have changed."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._watcher = QFileSystemWatcher(self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COALESCE_MS)
        self._timer.timeout.connect(self._fire)
        self._watcher.directoryChanged.connect(lambda _path: self._timer.start())
        self._ids: list[tuple[str, str]] = []

    def watch(self, project_id: str, character_ids: list[str]) -> None:
        """Follow these characters of this project (replacing what was followed)."""
        self._ids = [(project_id, cid) for cid in character_ids]
        self._rewatch()

    def _rewatch(self) -> None:
        wanted = []
        for project_id, character_id in self._ids:
            checkpoint = checkpoint_path(project_id, character_id)
            # The training folder tells when a run's sample folder appears or goes; the sample
            # folder when a step's files arrive. Created here: a watcher needs an existing folder.
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            wanted.append(str(checkpoint.parent))
            folder = samples_folder(checkpoint)
            if folder.is_dir():
                wanted.append(str(folder))
        wanted = list(dict.fromkeys(wanted))
        stale = [p for p in self._watcher.directories() if p not in wanted]
        if stale:
            self._watcher.removePaths(stale)
        new = [p for p in wanted if p not in self._watcher.directories()]
        if new:
            self._watcher.addPaths(new)

    def _fire(self) -> None:
        self._rewatch()  # a sample folder may have appeared (a run's first samples) or gone
        self.changed.emit()

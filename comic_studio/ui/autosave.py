"""Periodic and on-demand recovery copies of the open document (core.autosave does the writing).

A recovery file is written every N minutes while the document has unsaved changes, and right
before risky operations (apply a template, delete a page…) through :meth:`Autosaver.write_now`.
Saving the document discards it.

The snapshot (a deep copy of the project model) is taken on the GUI thread, so it is exactly the
document at that moment; zipping and fsync-ing run on one background thread, because a book of
large renders takes seconds to write and the GUI must not stall. One thread keeps the writes of
the same recovery file in order. Asset bytes are immutable and content-addressed, so the worker
reads the shared store safely.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from comic_studio.core import autosave as core_autosave
from comic_studio.core.errors import ComicStudioError
from comic_studio.ui.context import StudioContext


class Autosaver(QObject):
    written = Signal(object)
    """A recovery file was written (its Path); delivered on the GUI thread."""
    _finished = Signal(object, float, str)  # worker → GUI thread: (path, seconds, error)

    def __init__(self, ctx: StudioContext, minutes: int = 5, parent: QObject | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.timer = QTimer(self)
        self.timer.setObjectName("autosave_timer")
        self.timer.timeout.connect(self._on_timer)
        self.last_path: Path | None = None
        self.last_duration = 0.0
        self._last_error = ""
        self._announce = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autosave")
        self._pending: list[Future] = []
        self.owner = core_autosave.RecoveryOwner()
        """Marks this window's recovery files as a running autosave, never offered to another copy
        of the app as a crash while this process lives."""
        self._finished.connect(self._on_finished, Qt.ConnectionType.QueuedConnection)
        self.set_interval(minutes)

    def set_interval(self, minutes: int) -> None:
        """Minutes between periodic copies; 0 switches the timer off."""
        self.timer.stop()
        if minutes > 0:
            self.timer.start(int(minutes * 60_000))

    @property
    def active(self) -> bool:
        return self.timer.isActive()

    def write_now(self, force: bool = False, wait: bool = False) -> Path | None:
        """Snapshot the document now and write its recovery copy in the background if there is
        unsaved work (or ``force``). Returns the recovery file's path (None when nothing needed
        saving). ``wait=True`` blocks until the file is on disk. Failures become one status
        message, never a dialog: autosave must not interrupt the user."""
        doc = self.ctx.document
        if not force and self.ctx.undo_stack.isClean():
            return None
        snapshot = doc.project.model_copy(deep=True)
        target = core_autosave.recovery_path(snapshot.id, doc.path, owner=self.owner)
        future = self._pool.submit(self._write, snapshot, doc.assets, doc.path)
        self._pending = [f for f in self._pending if not f.done()] + [future]
        if wait:
            self.wait()
        return target

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until every queued recovery write has finished."""
        for future in list(self._pending):
            try:
                future.result(timeout)
            except Exception:  # noqa: BLE001 — already reported through _finished
                pass
        self._pending = [f for f in self._pending if not f.done()]

    def note_saved(self, path: Path) -> None:
        """The document was just saved to ``path`` by this window (call before :meth:`discard`)."""
        core_autosave.note_saved(path, self.owner)

    def discard(self, *, also_for: tuple[Path | None, ...] = ()) -> None:
        """Delete the current document's recovery file (after a save, or on a clean close), and
        those it had under the files in ``also_for`` (where it was opened from, or ``None`` for
        never saved, before a Save As). Pending writes finish first, so none can resurrect the
        file afterwards."""
        self.wait()
        doc = self.ctx.document
        try:
            for source_path in dict.fromkeys((doc.path, *also_for)):
                core_autosave.discard_recovery(doc.project.id, source_path, owner=self.owner)
        except ComicStudioError as exc:
            self.ctx.message.emit(str(exc))
        self.last_path = None

    def shutdown(self) -> None:
        self.timer.stop()
        self.wait()
        self._pool.shutdown(wait=True)
        self.owner.close()

    # ------------------------------------------------------------------ internals
    def _write(self, project, assets, source_path) -> Path:
        started = time.perf_counter()
        try:
            path = core_autosave.write_recovery(project, assets, source_path, owner=self.owner)
        except (ComicStudioError, OSError) as exc:
            self._finished.emit(None, time.perf_counter() - started, f"Autosave failed: {exc}")
            raise
        self._finished.emit(path, time.perf_counter() - started, "")
        return path

    def _on_finished(self, path: Path | None, seconds: float, error: str) -> None:
        if error:
            if error != self._last_error:  # say it once, not every few minutes
                self.ctx.message.emit(error)
                self._last_error = error
            return
        self._last_error = ""
        self.last_duration = seconds
        self.last_path = path
        if self._announce:
            self._announce = False
            self.ctx.message.emit(f"Autosaved a recovery copy ({seconds * 1000:.0f} ms)")
        self.written.emit(path)

    def _on_timer(self) -> None:
        if self.write_now() is not None:
            self._announce = True

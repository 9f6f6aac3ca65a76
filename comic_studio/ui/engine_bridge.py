"""Delivers the engine's :class:`JobMessage` stream on the GUI thread.

The engine calls subscribers on its worker thread. The bridge forwards each message through a
private signal connected with an explicit ``QueuedConnection`` to its own slot, so the hop to the GUI
thread never depends on how a widget connects to :attr:`EngineBridge.message`; once there, the
public signal is emitted on the GUI thread and every connection to it runs there.

PROGRESS messages of renders are coalesced per job: when the GUI thread falls behind (say, a slow repaint of
large previews), only the newest progress of each job is delivered, never a backlog. Every other
message is delivered exactly once, in order.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Qt, Signal, Slot

from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent, JobMessage


class EngineBridge(QObject):
    message = Signal(object)
    """A :class:`JobMessage`, always emitted on the GUI thread (the thread the bridge lives in)."""

    _arrived = Signal(object)  # a JobMessage, or a job id whose newest PROGRESS waits in _progress

    def __init__(self, engine: Engine, parent: QObject | None = None):
        super().__init__(parent)
        self.engine = engine
        self._lock = threading.Lock()
        self._progress: dict[str, JobMessage] = {}
        self._closed = False
        self._arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = engine.subscribe(self._on_engine_message)
        self.destroyed.connect(self._unsubscribe)

    def close(self) -> None:
        """Stop listening to the engine (the app calls this before shutting the engine down)."""
        with self._lock:
            self._closed = True
            self._progress.clear()
        self._unsubscribe()

    # ------------------------------------------------------------------ any thread

    def _on_engine_message(self, msg: JobMessage) -> None:
        with self._lock:
            if self._closed:
                return
            # A task's PROGRESS (a training step: its loss plot needs each) is never coalesced; the
            # engine sends those a few per second at most.
            if msg.event is JobEvent.PROGRESS and not msg.is_task:
                already_posted = msg.job_id in self._progress
                self._progress[msg.job_id] = msg
                if already_posted:
                    return  # the queued token will pick up this newer message
                token: object = msg.job_id
            else:
                token = msg
        try:
            self._arrived.emit(token)
        except RuntimeError:  # the C++ object is gone (window closing): nobody is left to tell
            pass

    # ------------------------------------------------------------------ GUI thread

    @Slot(object)
    def _deliver(self, token: object) -> None:
        if isinstance(token, str):
            with self._lock:
                msg = self._progress.pop(token, None)
            if msg is None:
                return
        else:
            msg = token  # type: ignore[assignment]
        if not self._closed:
            self.message.emit(msg)

"""Run work off the GUI thread and get its result back on the GUI thread, while the widget lives.

Widgets compute on helper threads (pose search, mask previews, pose overlays, lettering) because
the work loads models or takes tens of milliseconds. :class:`BackgroundJobs` is the one way to do
that::

    self.jobs = BackgroundJobs(self, "pose-browser")        # a child of the widget
    self.jobs.submit(search, text, on_result=self._show, on_error=self._report, lane="search")

The rules it keeps, so that no widget has to:

* ``fn`` runs on the helper thread; ``on_result`` / ``on_error`` run later on the GUI thread (always
  queued, never inside ``submit``). ``fn`` must not touch widgets: Qt objects are GUI-thread only.
* The jobs object is a child of its owner: when the owner (a closed window, a rebuilt page) is
  deleted, results still in flight are dropped, not delivered to a deleted widget and not reported
  by ``concurrent.futures`` as "exception calling callback".
* A *lane* keeps the latest job only: submitting on a lane supersedes the lane's earlier jobs (a
  queued one is cancelled, a running one's result is dropped), and :meth:`invalidate` drops a lane's
  result without new work, for a widget whose state moved on.
* An exception raised by ``fn`` reaches ``on_error`` (without one it is logged): a failing job
  never takes the application down and never passes silently.
* After :meth:`shutdown` nothing new starts and nothing more is delivered.

:func:`wait_painting` is for work the caller must have finished before it goes on (opening a
project the caller then shows): it runs on a helper thread while the window keeps painting, and
user input waits until it is done, so nothing the user clicks can run in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, Qt, Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    number: int
    lane: Hashable | None
    on_result: Callable[[Any], None]
    on_error: Callable[[BaseException], None] | None


class BackgroundJobs(QObject):
    """Helper-thread jobs of one owner (``workers`` threads, named after ``name``), with their
    results delivered on the GUI thread while the owner lives."""

    _done = Signal(object, object)  # emitted on the helper thread: (_Job, Future); queued to the GUI thread

    def __init__(self, owner: QObject, name: str, workers: int = 1):
        super().__init__(owner)  # deleted with the owner: results in flight then have nowhere to go
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._numbers = 0
        self._latest: dict[Hashable, int] = {}
        """Per lane, the number of the job whose result is still wanted (0: none)."""
        self._futures: dict[int, Future] = {}
        self._closed = False
        # Queued even when emitted on the GUI thread (a job already done when submitted): results
        # always arrive after ``submit`` returned, never inside it.
        self._done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
        lane: Hashable | None = None,
    ) -> bool:
        """Run ``fn(*args)`` on the helper thread; False (and nothing runs) after :meth:`shutdown`."""
        if self._closed:
            return False  # the window is closing: signals may still arrive, no new work
        self._numbers += 1
        job = _Job(self._numbers, lane, on_result, on_error)
        if lane is not None:
            self.invalidate(lane)
            self._latest[lane] = job.number
        future = self._pool.submit(fn, *args)
        self._futures[job.number] = future
        future.add_done_callback(lambda done: self._emit_done(job, done))
        return True

    def start_worker(self) -> None:
        """Start a helper thread now rather than in the first :meth:`submit`. Starting a thread
        waits until it runs, and while another thread holds the interpreter lock (a render
        importing or running torch) that wait was measured at 66 ms on the GUI thread."""
        if not self._closed:
            self._pool.submit(_nothing)

    def invalidate(self, lane: Hashable) -> None:
        """The lane's pending result is no longer wanted: drop it (cancel the job if not started)."""
        number = self._latest.pop(lane, 0)
        future = self._futures.get(number)
        if future is not None:
            future.cancel()  # only succeeds while queued; a running job finishes and is dropped

    def pending(self) -> int:
        """Jobs submitted whose outcome was not yet delivered or dropped (tests, idle checks)."""
        return len(self._futures)

    def shutdown(self, wait: bool = False) -> None:
        """No new jobs, no more deliveries; queued jobs are cancelled. ``wait``: also wait for the
        running one (a job that must not outlive the caller's resources)."""
        self._closed = True
        self._latest.clear()
        self._futures.clear()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def is_shut_down(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ internals
    def _emit_done(self, job: _Job, future: Future) -> None:
        """Helper thread (or the GUI thread, for a cancelled job)."""
        try:
            self._done.emit(job, future)
        except RuntimeError:
            pass  # this object (and so its owner) was deleted while the job ran: nobody to tell

    def _deliver(self, job: _Job, future: Future) -> None:
        """GUI thread."""
        if self._futures.pop(job.number, None) is None:
            return  # dropped by shutdown
        if job.lane is not None:
            if self._latest.get(job.lane) != job.number:
                return  # superseded or invalidated
            del self._latest[job.lane]
        try:
            error = future.exception()
        except CancelledError:
            return
        if error is None:
            job.on_result(future.result())
        elif job.on_error is not None:
            job.on_error(error)
        else:
            log.error("%s: a background job failed", self.name, exc_info=error)


def _nothing() -> None:
    """What :meth:`BackgroundJobs.start_worker` runs: the thread's start is the point."""


def wait_painting(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a helper thread, returning its result (or raising its exception) on the
    calling GUI thread. Meanwhile the GUI thread keeps painting and running timers and queued
    signals, but takes no user input: the window never freezes ("not responding") during a long
    open, and no click can change state the caller is about to replace."""
    loop = QEventLoop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wait-painting") as pool:
        future = pool.submit(fn, *args)
        relay = _Relay()
        relay.finished.connect(loop.quit, Qt.ConnectionType.QueuedConnection)
        future.add_done_callback(lambda _f: relay.finished.emit())
        if not future.done():
            loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        return future.result()


class _Relay(QObject):
    finished = Signal()

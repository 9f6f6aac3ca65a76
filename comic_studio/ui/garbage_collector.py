"""The GUI thread collects Python's reference cycles, on a timer (``core/garbage.py`` says why:
Qt objects destroyed on a worker thread crash the app later, and a full collection on any thread
freezes the window).

Between timer ticks the collector does what CPython would have done automatically — collect the
youngest generation whose allocation count crossed its threshold — only always here. Once the app has
imported its generation stack, :meth:`GuiThreadCollector.settle` moves every object alive then (modules,
classes, functions: hundreds of thousands, never garbage) out of the collector's sight with
``gc.freeze()``, so even a full collection afterwards takes milliseconds instead of half a second.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal, Slot

from comic_studio.core import garbage

COLLECT_INTERVAL_MS = 200
"""How often the GUI thread looks at the allocation counts (CPython looks at every allocation; a
worker that allocates heavily between ticks only keeps its garbage up to this much longer)."""

FULL_COLLECTION_MIN_INTERVAL_S = 30.0
"""At most one timed full collection per this many seconds. CPython skips a due full collection
until the objects that survived since the last one reach 25 % of the oldest generation (its guard
against quadratic cost while a program builds a large heap — here: the warm-up importing torch); the
counts it uses are not visible from Python, so time stands in for them. Young garbage is collected on
every tick regardless."""


SLOW_FULL_COLLECTION_S = 0.05
"""A full collection slower than this freezes its survivors: they just proved long-lived (a backend's
first import of diffusers after the warm-up, say), and walking them again every 30 s would stall the
window as long each time. Their cycles, should they ever become garbage, are not collected: a bounded
leak traded for a window that never stalls on the collector twice."""


class GuiThreadCollector(QObject):
    _requested = Signal(object)  # a done-callback or None, from any thread
    _settle_requested = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.collections = [0, 0, 0]
        """How many collections of each generation this collector ran (for tests and the benchmark)."""
        self.longest_s = 0.0
        self._last_full = time.monotonic()
        self._give_back = None
        self.timer = QTimer(self)
        self.timer.setInterval(COLLECT_INTERVAL_MS)
        self.timer.timeout.connect(self.collect_due)
        self._requested.connect(self._collect_for, Qt.ConnectionType.QueuedConnection)
        self._settle_requested.connect(self.settle, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        """From now on only this (the GUI) thread collects; call on the GUI thread."""
        if self._give_back is None:
            self._give_back = garbage.hand_collection_to_this_thread(self._requested.emit)
            self.timer.start()

    def uninstall(self) -> None:
        if self._give_back is not None:
            self.timer.stop()
            self._give_back()
            self._give_back = None

    @property
    def installed(self) -> bool:
        return self._give_back is not None

    @Slot()
    def collect_due(self) -> int | None:
        """Collect the oldest generation whose count crossed its threshold, as CPython's automatic
        collection would (a collection of generation n includes the younger ones); returns it."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        due = [g for g in (2, 1, 0) if thresholds[g] and counts[g] > thresholds[g]]
        if due and due[0] == 2 and time.monotonic() - self._last_full < FULL_COLLECTION_MIN_INTERVAL_S:
            due = [1]
        if not due:
            return None
        self._collect(due[0])
        return due[0]

    def request_settle(self) -> None:
        """From any thread (the warm-up when it has imported the generation stack)."""
        self._settle_requested.emit()

    @Slot()
    def settle(self) -> None:
        """Collect the young generations, then freeze every object alive: the program itself, which a
        collection would only walk (cycles among frozen objects are never collected; what is frozen
        here is import-time state, not documents)."""
        self._collect(1)
        gc.freeze()

    @Slot(object)
    def _collect_for(self, done: garbage.Done | None) -> None:
        try:
            self._collect(2)
        finally:
            if done is not None:
                done()

    def _collect(self, generation: int) -> None:
        started = time.perf_counter()
        gc.collect(generation)
        took = time.perf_counter() - started
        if generation == 2:
            self._last_full = time.monotonic()
            if took > SLOW_FULL_COLLECTION_S:
                gc.freeze()
        self.longest_s = max(self.longest_s, took)
        self.collections[generation] += 1


_the_collector: GuiThreadCollector | None = None


def install_gui_thread_collector(app: QCoreApplication) -> GuiThreadCollector:
    """The process' one collector (a child of the application), installed; call on the GUI thread."""
    global _the_collector
    if _the_collector is None:
        _the_collector = GuiThreadCollector(app)
    _the_collector.install()
    return _the_collector


def gui_thread_collector() -> GuiThreadCollector | None:
    return _the_collector

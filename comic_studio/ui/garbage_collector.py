"""The GUI thread collects Python's reference cycles, on a timer (``core/garbage.py`` says why:
Qt objects destroyed on a worker thread crash the app later, and a full collection on any thread
freezes the window).

On each tick the collector does what CPython would have done automatically, only always here: when
an allocation count crossed its threshold it collects the young generations (together: see
:meth:`GuiThreadCollector.collect_due`), and the whole heap by CPython's growth rule. Once the window's
modules are imported, and again once the warm-up has imported the generation stack,
:meth:`GuiThreadCollector.settle` moves every object alive then (modules, classes, functions: hundreds
of thousands, never garbage) out of the collector's sight with ``gc.freeze()``, so a full collection
afterwards walks only what the session built.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal, Slot

from comic_studio.core import garbage

IDLE_INTERVAL_MS = 50
"""How often the GUI thread looks at the allocation counts while little is allocated (CPython looks at
every allocation; a look costs microseconds). It bounds what the first tick of a burst walks."""

BUSY_INTERVAL_MS = 25
"""The next look after a tick that collected: while a thread allocates in bulk (an import, a model
load) a slow tick would find hundreds of thousands of young objects and walk them all at once; short
ticks keep each collection to a few milliseconds, as CPython's per-700-allocations rhythm does."""

FULL_COLLECTION_GROWTH = 0.25
"""A due full collection runs only once the objects that survived into the oldest generation since the
last one are this share of it — CPython's own rule (gc_should_collect_full in its gcmodule.c) against
walking a large, long-lived heap over and over while a program builds it."""


class GuiThreadCollector(QObject):
    _requested = Signal(object, int)  # a done-callback or None, and the generation; from any thread
    _settle_requested = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.collections = [0, 0, 0]
        """How many collections of each generation this collector ran (for tests and the benchmark)."""
        self.longest_s = 0.0
        self._long_lived = len(gc.get_objects(generation=2))
        self._long_lived_pending = 0
        self._settle_pending = False
        self._give_back = None
        self.timer = QTimer(self)
        self.timer.setInterval(IDLE_INTERVAL_MS)
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
        """Collect when an allocation count crossed its threshold, as CPython's automatic collection
        would; returns the generation collected (1 or 2), or None.

        The young generations are always collected together: between ticks a bulk allocation (an
        import) makes generation 0 far larger than CPython's 700 objects, and generation 1 would pile
        up ten such collections' survivors for one long walk; collecting both empties generation 1
        each time, so each walk costs only what is new. A full collection follows CPython's growth
        rule (:data:`FULL_COLLECTION_GROWTH`) and waits while a settle is expected."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        full = (
            counts[2] > thresholds[2]
            and not self._settle_pending
            and self._long_lived_pending >= FULL_COLLECTION_GROWTH * self._long_lived
        )
        young = counts[0] > thresholds[0] or counts[1] > thresholds[1]
        self.timer.setInterval(BUSY_INTERVAL_MS if full or young else IDLE_INTERVAL_MS)
        if not (full or young):
            return None
        generation = 2 if full else 1
        self._collect(generation)
        return generation

    def expect_settle(self) -> None:
        """From any thread, before a burst of imports that :meth:`request_settle` will freeze (the
        warm-up): until then no full collection walks what the burst builds — it would all be frozen
        anyway (at idle it was a 130-190 ms stall during the warm-up)."""
        self._settle_pending = True

    def request_settle(self) -> None:
        """From any thread (the warm-up when it has imported the generation stack)."""
        self._settle_requested.emit()

    @Slot()
    def settle(self) -> None:
        """Freeze every object alive — the program itself (modules, classes, functions: after the
        warm-up ≈ 460,000 objects that a full collection would only walk, for 0.3-0.7 s). Freezing
        scans nothing; cycles among frozen objects are never collected, and what is frozen here is
        import-time state and the pose matcher, which live as long as the process, never documents
        or generation models (a model dropped from the cache must stay collectable)."""
        gc.freeze()
        self._long_lived = len(gc.get_objects(generation=2))
        self._long_lived_pending = 0
        self._settle_pending = False

    @Slot(object, int)
    def _collect_for(self, done: garbage.Done | None, generation: int) -> None:
        try:
            self._collect(generation)
        finally:
            if done is not None:
                done()

    def _collect(self, generation: int) -> None:
        started = time.perf_counter()
        if generation == 1:  # its survivors join the oldest generation: CPython's pending count
            young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
            self._long_lived_pending += max(0, young - gc.collect(1))
        else:
            gc.collect(generation)
        if generation == 2:
            self._long_lived = len(gc.get_objects(generation=2))
            self._long_lived_pending = 0
        self.longest_s = max(self.longest_s, time.perf_counter() - started)
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

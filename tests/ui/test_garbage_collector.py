"""Only the GUI thread collects reference cycles (core/garbage.py, ui/garbage_collector.py).

The crash this prevents: the engine's clean-up after a cancelled render called ``gc.collect()`` on
its worker thread, which destroyed Qt objects of an earlier, dropped context there; their timers stayed
registered and the GUI thread later delivered events to freed memory (an intermittent segmentation
fault late in the test suite). Each test makes such a cycle — a QObject with a running timer that
only the cycle collector can free — and checks which thread finally destroys it.
"""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from PySide6.QtCore import QObject, QTimer
from render_helpers import GateBackend, all_panels, small_document

from comic_studio.core import editing, garbage
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.ui import garbage_collector
from comic_studio.ui.garbage_collector import gui_thread_collector
from comic_studio.ui.render_service import RenderService


def _qt_object_in_a_cycle(destroyed_on: list[int]) -> None:
    """A QObject with a running timer, reachable only through a reference cycle; ``destroyed_on``
    receives the id of the thread that frees it."""
    holder = QObject()
    holder.myself = holder  # the cycle: refcounting alone never frees it
    timer = QTimer(holder)
    timer.start(60_000)
    weakref.finalize(holder, lambda: destroyed_on.append(threading.get_ident()))


def _on_a_worker(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def test_the_collector_is_installed_and_automatic_collection_is_off():
    collector = gui_thread_collector()
    assert collector is not None and collector.installed
    assert garbage.collection_is_handed_over()
    assert not gc.isenabled()


def test_a_worker_s_collect_leaves_qt_objects_to_the_gui_thread(qtbot):
    destroyed_on: list[int] = []
    _qt_object_in_a_cycle(destroyed_on)
    returned: list[bool] = []

    def worker():
        returned.append(garbage.collect())  # what the engine's trim() does after a failed job
        alive = [[i] for i in range(50_000)]  # far past the threshold: still no automatic collection
        del alive

    _on_a_worker(worker)
    assert returned == [False]  # asked the GUI thread, did not collect here
    assert destroyed_on == []
    qtbot.waitUntil(lambda: bool(destroyed_on), timeout=5_000)
    assert destroyed_on == [threading.get_ident()]


def test_a_worker_can_wait_for_the_collection(qtbot):
    destroyed_on: list[int] = []
    _qt_object_in_a_cycle(destroyed_on)
    waited: list[bool] = []
    thread = threading.Thread(target=lambda: waited.append(garbage.collect(wait_s=10)))
    thread.start()
    qtbot.waitUntil(lambda: bool(waited), timeout=10_000)  # the GUI thread runs its event loop meanwhile
    thread.join(5)
    assert waited == [True]
    assert destroyed_on == [threading.get_ident()]


def test_a_worker_waiting_for_a_busy_gui_thread_gives_up_in_time():
    # The GUI thread does not run its event loop here (as when it joins the engine at shutdown).
    waited: list[bool] = []
    _on_a_worker(lambda: waited.append(garbage.collect(wait_s=0.2)))
    assert waited == [False]


def test_the_gui_thread_collects_due_generations_on_its_timer(qtbot):
    collector = gui_thread_collector()
    before = list(collector.collections)
    destroyed_on: list[int] = []
    _qt_object_in_a_cycle(destroyed_on)
    # Past generation 0's threshold (it counts tracked objects allocated minus freed: keep them).
    alive = [[i] for i in range(5_000)]
    assert gc.get_count()[0] > gc.get_threshold()[0]
    qtbot.waitUntil(lambda: bool(destroyed_on), timeout=5_000)  # the timer's tick, not a request
    del alive
    assert destroyed_on == [threading.get_ident()]
    assert sum(collector.collections) > sum(before)


def test_settle_freezes_what_is_alive():
    collector = gui_thread_collector()
    assert gc.get_freeze_count() == 0  # nothing else freezes: models and documents stay collectable
    try:
        collector.settle()
        assert gc.get_freeze_count() > 1000  # the imported program
    finally:
        gc.unfreeze()


@pytest.fixture
def gate():
    GateBackend.release.clear()
    GateBackend.started.clear()
    register_backend("test-gate", GateBackend)
    yield GateBackend
    GateBackend.release.set()
    unregister_backend("test-gate")


def test_cancelling_a_render_does_not_collect_on_the_engine_thread(ctx, gate, qtbot):
    """The path of the suite's crash: a running render is cancelled, the engine's worker trims
    memory; a dropped context's Qt objects must still die on the GUI thread. (The collector's timer
    is held meanwhile, or its tick might collect the cycle before the engine's clean-up runs.)"""
    ctx.set_document(small_document())
    service = RenderService(ctx)
    timer = gui_thread_collector().timer
    timer.stop()
    try:
        panel = all_panels(ctx.document)[0]
        ctx.edit(editing.set_panel_fields, panel.id, "Backend", backend="test-gate", backend_settings={})
        job = service.render_panels([panel.id])[0]
        assert gate.started.wait(10)
        destroyed_on: list[int] = []
        _qt_object_in_a_cycle(destroyed_on)
        assert service.cancel(job)
        qtbot.waitUntil(lambda: service.jobs() == [], timeout=10_000)
        qtbot.waitUntil(lambda: bool(destroyed_on), timeout=5_000)
        assert destroyed_on == [threading.get_ident()]
    finally:
        timer.start()
        service.shutdown()


def test_a_full_collection_waits_for_the_heap_to_grow(monkeypatch):
    """CPython's rule: a full collection that is due by count still waits until a quarter of the
    oldest generation is new survivors (no walking the imported program again and again)."""
    collector = gui_thread_collector()
    for _ in range(gc.get_threshold()[2] + 2):
        gc.collect(1)  # each counts towards the oldest generation's threshold: a full one is due by count
    monkeypatch.setattr(collector, "_long_lived", 1_000_000)
    monkeypatch.setattr(collector, "_long_lived_pending", 0)
    fulls = collector.collections[2]
    alive = [[i] for i in range(5_000)]  # generation 0 is due too
    assert collector.collect_due() == 1  # the young ones only
    monkeypatch.setattr(collector, "_long_lived_pending", 300_000)
    assert collector.collect_due() == 2
    assert collector.collections[2] == fulls + 1
    del alive


def test_ticks_come_quickly_while_a_thread_allocates_in_bulk():
    collector = gui_thread_collector()
    alive = [[i] for i in range(5_000)]  # a burst: past generation 0's threshold
    assert collector.collect_due() is not None
    assert collector.timer.interval() == garbage_collector.BUSY_INTERVAL_MS
    assert collector.collect_due() is None  # nothing new since
    assert collector.timer.interval() == garbage_collector.IDLE_INTERVAL_MS
    del alive

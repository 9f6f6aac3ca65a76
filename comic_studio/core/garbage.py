"""Which thread runs Python's cycle collector, and how other threads ask for memory back.

CPython collects reference cycles in whichever thread happens to allocate when a threshold is
crossed, and an explicit ``gc.collect()`` collects everything, from any thread. In the desktop app
that is a crash waiting to happen: a Qt object caught in a cycle (a closed dialog, a replaced
document's context) is destroyed by the thread that finds it, and PySide destroys it right there. A
QObject destroyed off its own thread leaves its timers and posted events registered ("QObject::
~QObject: Timers cannot be stopped from another thread"), and the GUI thread later delivers them to
freed memory — a segmentation fault far from the cause (the test suite's intermittent crash after a
cancelled render, whose clean-up called ``gc.collect()`` on the engine's worker thread). A full
collection with torch, diffusers and transformers loaded also holds the interpreter lock for
0.3-0.7 s (≈ 460,000 tracked objects), which the GUI thread feels as a frozen window.

So the GUI hands collection to its own thread (``ui/garbage_collector.py``): automatic collection is
switched off, the GUI thread collects on a timer, and code on other threads that wants memory back
(the engine after a failed job or an out-of-memory error) calls :func:`collect`, which asks that
thread instead of collecting here. Without a GUI (the CLI, a cluster worker) nothing is handed over
and :func:`collect` is ``gc.collect()``.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass

Done = Callable[[], None]
Request = Callable[[Done | None, int], None]
"""Asks the collecting thread for one collection of the given generation (2: everything) soon; it
calls ``done`` (when given) after it."""


@dataclass(frozen=True)
class _Collector:
    thread_id: int
    request: Request


_collector: _Collector | None = None
_lock = threading.Lock()


def hand_collection_to_this_thread(request: Request) -> Callable[[], None]:
    """Make the calling thread the only one that collects cycles: automatic collection is switched
    off and :func:`collect` from other threads goes through ``request``. Returns the undo."""
    global _collector
    with _lock:
        previous, was_enabled = _collector, gc.isenabled()
        _collector = _Collector(threading.get_ident(), request)
        gc.disable()

    def give_back() -> None:
        global _collector
        with _lock:
            _collector = previous
            if was_enabled:
                gc.enable()

    return give_back


def collection_is_handed_over() -> bool:
    return _collector is not None


def collect(wait_s: float = 0.0, generation: int = 2) -> bool:
    """Collect reference cycles up to ``generation`` (2: all; 1: what was allocated lately — cheap):
    here when no thread owns collection or this thread does; otherwise ask the owner, waiting up to
    ``wait_s`` seconds for it (0: don't wait — the memory comes back a moment later). Returns whether
    the collection has happened when this returns."""
    collector = _collector
    if collector is None or collector.thread_id == threading.get_ident():
        gc.collect(generation)
        return True
    if wait_s <= 0:
        collector.request(None, generation)
        return False
    done = threading.Event()
    collector.request(done.set, generation)
    # Bounded: the owner may itself be waiting for this thread (a window closing joins the engine).
    return done.wait(wait_s)

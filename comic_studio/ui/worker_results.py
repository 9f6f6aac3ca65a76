"""Handing a helper thread's result back to the GUI thread.

Widgets compute on helper threads (pose search, mask previews, lettering) and get the result
through a queued signal emitted from the future's done-callback, on the helper thread. If the
receiving object was deleted meanwhile (the window closing, a page rebuilt), emitting raises
RuntimeError inside ``concurrent.futures``, which only logs it as "exception calling callback":
the result has nobody left to go to, so that is not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


def emit_when_done(future: Future, signal: Any, payload: Callable[[Future], Any]) -> None:
    """When ``future`` finishes, emit ``signal(payload(future))``; nothing if the receiver is gone."""

    def deliver(done: Future) -> None:
        try:
            signal.emit(payload(done))
        except RuntimeError:
            pass  # the receiving Qt object was deleted while the job ran

    future.add_done_callback(deliver)

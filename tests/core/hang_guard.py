"""Run a call that must not hang (a reader given a FIFO, /dev/zero, a socket) in a thread with a
join timeout: the test fails instead of waiting forever. Shared by the reader tests of every
package (tests/core is on pytest's pythonpath)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

LIMIT_S = 30.0
"""Generous: the calls answer at once when they work; the limit only stops a hung test."""


def outcome_of(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``{"value": …}`` or ``{"error": exc}`` of ``fn(*args, **kwargs)``; fails the test if it hangs."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 — handed to the test to inspect
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="hang-guard", daemon=True)
    thread.start()
    thread.join(LIMIT_S)
    if thread.is_alive():
        _release_fifos(args)
        raise AssertionError(f"{getattr(fn, '__name__', fn)} did not return within {LIMIT_S:g} s (it hung)")
    return outcome


def _release_fifos(args: tuple[Any, ...]) -> None:
    """Open any FIFO argument for writing so a reader blocked on it wakes up and the thread ends."""
    for arg in args:
        for candidate in arg if isinstance(arg, list) else [arg]:
            try:
                fd = os.open(Path(candidate), os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except (OSError, TypeError, ValueError):
                pass

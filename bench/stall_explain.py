"""What every thread was doing while the GUI thread's heartbeat was late (``--explain`` of the benches).

A late tick has two possible causes: the GUI thread itself is busy (our handlers, widget refreshes),
or another thread holds the interpreter lock inside C code (an extension module's ``dlopen`` and
init, a big C call that does not release the lock). A watchdog thread wakes every ``poll_ms``; when
the last tick is more than ``threshold_ms`` overdue it records every thread's stack
(``sys._current_frames``), weighted by the time since its previous wake-up. The watchdog needs the
lock too: after a long C call that held it, the watchdog runs as soon as the holder lets go — at the
next bytecode, still on the line that made the call — so the holder's stack names the culprit and
the weight is how long the watchdog (and so the GUI thread) waited. ``faulthandler``'s lock-free
dump would catch it mid-call, but reading frames of running threads crashed the interpreter here.

Use: call :meth:`StallSampler.tick` from the heartbeat, :meth:`phase` between parts of a run,
:meth:`stop` at the end, and :meth:`report` for the heaviest stacks per phase.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from typing import Any

# A thread whose innermost frame is one of these waits with the lock released: not a cause.
_IDLE_TOPS = {"wait", "_wait_for_tstate_lock", "select", "_worker", "sleep", "poll", "accept", "get", "_run"}


class StallSampler:
    def __init__(self, tick_ms: float, threshold_ms: float = 20.0, poll_ms: float = 5.0, depth: int = 12):
        self.tick_ms = tick_ms
        self.threshold_ms = threshold_ms
        self.poll_ms = poll_ms
        self.depth = depth
        self._last_tick = time.perf_counter()
        self._phase = "start"
        self._weights: dict[str, collections.Counter[tuple[str, tuple[str, ...]]]] = {}
        self._gui_at: dict[str, collections.Counter[str]] = {}
        self._samples: collections.Counter[str] = collections.Counter()
        self._longest: dict[str, list[tuple[float, list[dict[str, Any]]]]] = {}
        """Per phase, the samples that waited longest: (ms, [{thread, stack}])."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self._thread.start()

    def tick(self) -> None:
        self._last_tick = time.perf_counter()

    def phase(self, name: str) -> None:
        """Samples from now on belong to ``name`` (e.g. "warm_up", "render")."""
        self._phase = name
        self._last_tick = time.perf_counter()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        me = threading.get_ident()
        main = threading.main_thread().ident
        previous = time.perf_counter()
        while not self._stop.wait(self.poll_ms / 1000):
            now = time.perf_counter()
            waited_ms, previous = (now - previous) * 1000, now
            if (now - self._last_tick) * 1000 < self.tick_ms + self.threshold_ms:
                continue
            names = {t.ident: t.name for t in threading.enumerate()}
            phase = self._phase
            self._samples[phase] += 1
            weights = self._weights.setdefault(phase, collections.Counter())
            seen: list[dict[str, Any]] = []
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                frames = _frames(frame)
                if ident == main:
                    self._gui_at.setdefault(phase, collections.Counter())[frames[0]] += waited_ms
                elif frames[0].rsplit(" ", 1)[-1] in _IDLE_TOPS:
                    continue
                name = "GUI" if ident == main else names.get(ident, hex(ident))
                weights[(name, tuple(frames[: self.depth]))] += waited_ms
                seen.append({"thread": name, "stack": frames[: self.depth]})
            longest = self._longest.setdefault(phase, [])
            longest.append((waited_ms, seen))
            longest.sort(key=lambda item: -item[0])
            del longest[5:]

    def report(self, top: int = 8) -> dict[str, Any]:
        """Per phase: how many samples, where the GUI thread stood, and the busy stacks weighted by
        the milliseconds they covered (heaviest first; innermost frame first). JSON-ready."""
        return {
            phase: {
                "samples": self._samples[phase],
                "gui_thread_at": [
                    {"frame": f, "approx_ms": round(ms)} for f, ms in self._gui_at.get(phase, {}).most_common(top)
                ],
                "stacks": [
                    {"thread": name, "approx_ms": round(ms), "stack": list(frames)}
                    for (name, frames), ms in weights.most_common(top)
                ],
                # The single longest waits of the watchdog: a lock held in one C call shows here.
                "longest": [{"waited_ms": round(ms), "threads": seen} for ms, seen in self._longest.get(phase, [])],
            }
            for phase, weights in self._weights.items()
        }


def _frames(frame: Any) -> list[str]:
    """A thread's stack, innermost first. The import machinery's own frames are folded into one
    ``import <module>`` line per module being imported (read from ``_load_unlocked``'s ``spec``):
    which extension module or package held the lock is the point."""
    out: list[str] = []
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith("<frozen importlib"):
            if code.co_name == "_load_unlocked":
                spec = frame.f_locals.get("spec")
                out.append(f"import {getattr(spec, 'name', '?')}")
        else:
            out.append(f"{_short(code.co_filename)}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return out


def _short(path: str) -> str:
    """``…/site-packages/torch/__init__.py`` → ``torch/__init__.py``; our files from the package root."""
    path = path.replace(os.sep, "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if "/comic_studio/" in path:
        return "comic_studio/" + path.split("/comic_studio/", 1)[1]
    if "/lib/python3" in path:
        return path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return path

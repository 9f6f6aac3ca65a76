"""Run a story parser off the GUI thread, with progress and cancel.

The parser API (:func:`comic_studio.parsing.parse`) takes a progress callback and a cancel
predicate; here the callback becomes a queued Qt signal (throttled to whole per-cent steps so a
fast parser cannot flood the event loop) and cancel reads a flag the GUI sets. Each run has a
number: results of a run that was cancelled or superseded are dropped, never delivered.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal

from comic_studio.core.model import Character


class _ParseThread(QThread):
    progressed = Signal(int, float)
    described = Signal(int, str)  # LLM parsers: "window 2 of 5, 31 beats so far"
    succeeded = Signal(int, object)
    failed = Signal(int, str)
    was_cancelled = Signal(int)

    def __init__(
        self,
        run_id: int,
        text: str,
        characters: list[Character],
        parser: str,
        parent: QObject | None = None,
        form: str = "auto",
    ):
        super().__init__(parent)
        self._form = form
        self.run_id = run_id
        self._text = text
        self._characters = [c.model_copy(deep=True) for c in characters]  # the GUI may edit the library meanwhile
        self._parser = parser
        self.stop = threading.Event()
        self._last_percent = -1

    def _progress(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent != self._last_percent:
            self._last_percent = percent
            self.progressed.emit(self.run_id, fraction)
        describe = getattr(fraction, "describe", None)  # WindowProgress of the LLM parsers
        if describe is not None:
            self.described.emit(self.run_id, describe())

    def run(self) -> None:  # worker thread
        from comic_studio.core.errors import ComicStudioError
        from comic_studio.parsing import ParseCancelled, parse

        try:
            parser = configured_parser(self._parser, self._form)
            parsed = parse(
                self._text, self._characters, parser=parser, progress=self._progress, cancel=self.stop.is_set
            )
        except ParseCancelled:
            self.was_cancelled.emit(self.run_id)
        except ComicStudioError as exc:
            self.failed.emit(self.run_id, str(exc))
        except Exception as exc:  # a parser plugin's bug must not kill the app: report it
            self.failed.emit(self.run_id, f"the {self._parser} parser failed: {type(exc).__name__}: {exc}")
        else:
            if self.stop.is_set():
                self.was_cancelled.emit(self.run_id)
            else:
                self.succeeded.emit(self.run_id, parsed)


def configured_parser(name: str, form: str = "auto"):
    """The LLM parsers take their model/server from the preferences; the rule parser reads the
    chosen form ("auto", "prose", "comic", "screenplay"); others go by name."""
    if name == "rules":
        from comic_studio.parsing.rules import RuleParser

        return RuleParser(form)
    if name not in ("llama", "openai"):
        return name
    from comic_studio.core.settings import load_settings
    from comic_studio.parsing.llm.files import make_llm_parser

    settings, _problem = load_settings()
    if name == "llama":
        return make_llm_parser("llama", model=settings.llm_model or None)
    return make_llm_parser("openai", model=settings.openai_model or None, base_url=settings.openai_base_url or None)


class ParseWorker(QObject):
    """One parse at a time. Signals arrive on the GUI thread:
    ``progress(fraction)``, then exactly one of ``finished(ParsedStory)``, ``failed(message)``,
    ``cancelled()``; ``running_changed(bool)`` brackets the run."""

    progress = Signal(float)
    progress_text = Signal(str)
    """What the parser is doing, when it says (LLM parsers: window i of n, beats so far)."""
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._run_id = 0
        self._thread: _ParseThread | None = None
        self._old: list[_ParseThread] = []  # cancelled threads still winding down
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, text: str, characters: list[Character], parser: str = "rules", form: str = "auto") -> int:
        """Start parsing ``text`` (read as ``form``: see :class:`~comic_studio.parsing.rules.RuleParser`);
        a parse already running is cancelled first. Returns the run id."""
        if self._thread is not None:
            self.cancel()
        self._run_id += 1
        thread = _ParseThread(self._run_id, text, characters, parser, self, form=form)
        thread.progressed.connect(self._on_progress)
        thread.described.connect(lambda run_id, text: self._current(run_id) and self.progress_text.emit(text))
        thread.succeeded.connect(self._on_succeeded)
        thread.failed.connect(self._on_failed)
        thread.was_cancelled.connect(self._on_cancelled)
        thread.finished.connect(self._reap)  # a bound method of a GUI-thread object: queued
        self._thread = thread
        thread.start()
        self.running_changed.emit(True)
        return self._run_id

    def cancel(self) -> None:
        """Ask the running parse to stop; ``cancelled`` is emitted now (the thread ends on its own
        at the parser's next cancel check and its result, if any, is dropped)."""
        thread = self._thread
        if thread is None:
            return
        thread.stop.set()
        self._old.append(thread)
        self._thread = None
        self.cancelled.emit()
        self.running_changed.emit(False)

    def wait(self, ms: int = 5000) -> bool:
        """Block until every parse thread ended (tests, shutdown). True when all ended in time."""
        ok = True
        for thread in [*self._old, *([self._thread] if self._thread else [])]:
            ok = thread.wait(ms) and ok
        return ok

    def shutdown(self) -> None:
        self.cancel()
        self.wait(10_000)

    # ------------------------------------------------------------------ results (GUI thread)
    def _current(self, run_id: int) -> bool:
        return self._thread is not None and self._thread.run_id == run_id

    def _on_progress(self, run_id: int, fraction: float) -> None:
        if self._current(run_id):
            self.progress.emit(fraction)

    def _end(self) -> None:
        self._old.append(self._thread)
        self._thread = None
        self.running_changed.emit(False)

    def _on_succeeded(self, run_id: int, parsed: object) -> None:
        if self._current(run_id):
            self._end()
            self.finished.emit(parsed)

    def _on_failed(self, run_id: int, message: str) -> None:
        if self._current(run_id):
            self._end()
            self.failed.emit(message)

    def _on_cancelled(self, run_id: int) -> None:
        if self._current(run_id):  # the parser stopped on its own (cancel() already reported ours)
            self._end()
            self.cancelled.emit()

    def _reap(self) -> None:
        for thread in [t for t in self._old if t.isFinished()]:
            self._old.remove(thread)
            thread.deleteLater()

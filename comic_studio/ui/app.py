"""Application start: QApplication, theme, main window, the project to open, crash recovery.

``python -m comic_studio.ui.app --smoke-test`` starts the window, waits until it is shown,
prints the start-up figures as JSON and quits (``--screenshot PATH`` also grabs the window):
used by the benchmark, the start-up test and screenshots under Xvfb.
"""

from __future__ import annotations

import time

_PROCESS_T0 = time.perf_counter()  # before Qt is imported: start-up time includes importing Qt

import argparse
import json
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from comic_studio.core.resources import DESKTOP_APP_ID, resource
from comic_studio.core.settings import load_settings
from comic_studio.ui.garbage_collector import gui_thread_collector, install_gui_thread_collector
from comic_studio.ui.theme import apply_theme
from comic_studio.ui.wheel_guard import install_wheel_guard

APP_NAME = "Comic Studio"
ORG_NAME = "comic-studio"
ORG_DOMAIN = "comic-studio.org"


def create_application(argv: list[str] | None = None) -> QApplication:
    """The process' QApplication (reused when one exists: tests, embedding)."""
    # Hand the interpreter lock back to the GUI thread every 1 ms instead of 5 ms: while the
    # generation worker runs Python, the heartbeat's p99 lateness halved (42 → 21 ms) with this.
    sys.setswitchinterval(0.001)
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setOrganizationDomain(ORG_DOMAIN)
    app.setDesktopFileName(DESKTOP_APP_ID)
    app.setWindowIcon(application_icon())
    install_wheel_guard(app)
    # Only the GUI thread collects reference cycles (core/garbage.py: a Qt object collected on the
    # engine's thread is a crash later).
    install_gui_thread_collector(app)
    return app


def application_icon() -> QIcon:
    """The app icon from its rendered sizes (PNG: no dependence on Qt's SVG icon plugin)."""
    icon = QIcon()
    for png in sorted(resource("icons", "hicolor").glob("*/apps/comic-studio.png")):
        icon.addFile(str(png))
    return icon


class _ShownWatcher(QObject):
    """Records when the window is first exposed (painted on screen), not merely show()n."""

    def __init__(self) -> None:
        super().__init__()
        self.shown_at: float | None = None
        self.on_shown = lambda: None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if self.shown_at is None and event.type() in (QEvent.Type.Expose, QEvent.Type.Paint):
            self.shown_at = time.perf_counter()
            self.on_shown()
        return False


def start_window(paths: list[str], app: QApplication):
    """Build and show the main window, open the first ``.comic`` of ``paths``; recovery is
    offered once the event loop runs (the window is visible behind the question)."""
    from comic_studio.ui.main_window import MainWindow  # heavy: docks, canvas

    # What the imports built is the program (≈90,000 objects the GUI thread's first collection would
    # walk for ~40 ms): freeze it before any document exists (ui/garbage_collector.py).
    collector = gui_thread_collector()
    if collector is not None:
        collector.settle()
    settings, problem = load_settings()
    apply_theme(settings.theme, app)
    window = MainWindow(settings=settings)
    window.show()
    if problem:
        window.ctx.message.emit(problem)
    for raw in paths:
        window.open_project(Path(raw))
        break  # one window, one document
    return window


def run_app(paths: list[str]) -> int:
    """Start the desktop studio; returns the process exit code."""
    app = create_application()
    window = start_window(paths, app)
    QTimer.singleShot(0, window.offer_recoveries)
    QTimer.singleShot(0, window.report_plugin_errors)
    QTimer.singleShot(WARM_UP_DELAY_MS, warm_up_in_background)
    return app.exec()


WARM_UP_DELAY_MS = 1500


def warm_up_in_background():
    """Load the pose matcher of the backends that draw poses (sentence model + torch) on a
    background thread once the window is up; returns the thread. torch's libraries are mapped with
    the interpreter lock released (``core.native_libs``), but its initialisation still holds the lock
    for tens of milliseconds: doing it now, while the author looks around, keeps even that out of
    the first "Render all"."""
    import threading

    from comic_studio.poses.staging.figures import warm_up

    collector = gui_thread_collector()

    if collector is not None:
        collector.expect_settle()

    def warm_up_and_settle() -> None:
        warm_up()
        if collector is not None:  # the imported stack is the program now: out of the collector's way
            collector.request_settle()

    thread = threading.Thread(target=warm_up_and_settle, name="warm-up", daemon=True)
    thread.start()
    return thread


def smoke_test(paths: list[str], screenshot: str | None = None, settle_ms: int = 0) -> dict:
    """Start, wait for the first expose/paint of the window, measure, optionally grab, quit."""
    app = create_application()
    watcher = _ShownWatcher()
    created = time.perf_counter()
    window = start_window(paths, app)
    window.installEventFilter(watcher)
    # One nested event loop, not a processEvents() spin: the loop ends at the first paint (or
    # after 10 s), then optionally runs ``settle_ms`` longer so docks finish their first fill.
    loop = QEventLoop()
    watcher.on_shown = loop.quit
    QTimer.singleShot(10_000, loop.quit)
    if watcher.shown_at is None:
        loop.exec()
    shown = watcher.shown_at or time.perf_counter()
    if settle_ms:
        QTimer.singleShot(settle_ms, loop.quit)
        loop.exec()
    if screenshot:
        window.grab().save(screenshot)
    report = {
        "startup_s": round(shown - _PROCESS_T0, 3),
        "window_s": round(shown - created, 3),
        "visible": window.isVisible(),
        "title": window.windowTitle(),
        "torch_imported": "torch" in sys.modules,
        "pages": len(window.ctx.document.project.pages),
    }
    window.ctx.undo_stack.setClean()  # never ask "save changes?" in a smoke test
    window._restored_unsaved = False
    window.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m comic_studio.ui.app", description="Start the Comic Studio window.")
    parser.add_argument("paths", nargs="*", help="a .comic project to open")
    parser.add_argument("--smoke-test", action="store_true", help="start, print start-up time as JSON, quit")
    parser.add_argument("--screenshot", help="with --smoke-test: save a PNG of the window here")
    parser.add_argument(
        "--settle-ms", type=int, default=0, help="with --smoke-test: run events this long before the grab"
    )
    args = parser.parse_args(argv)
    if args.smoke_test:
        print(json.dumps(smoke_test(args.paths, args.screenshot, args.settle_ms)))
        return 0
    return run_app(args.paths)


if __name__ == "__main__":
    sys.exit(main())

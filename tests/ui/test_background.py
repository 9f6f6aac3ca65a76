"""emit_when_done: a helper thread's result reaches a live receiver, and a receiver deleted while
the job ran is not an error (concurrent.futures would log "exception calling callback")."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal

from comic_studio.ui.worker_results import emit_when_done


class Receiver(QObject):
    done = Signal(object)

    def __init__(self):
        super().__init__()
        self.got = []
        self.done.connect(self.got.append, Qt.ConnectionType.QueuedConnection)


def test_the_result_reaches_a_live_receiver(qtbot):
    receiver = Receiver()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(lambda: 41 + 1)
        with qtbot.waitSignal(receiver.done, timeout=5000):
            emit_when_done(future, receiver.done, lambda f: ("answer", f.result()))
    qtbot.waitUntil(lambda: receiver.got == [("answer", 42)], timeout=5000)


def test_a_receiver_deleted_while_the_job_ran_is_not_an_error(qtbot, caplog):
    receiver = Receiver()
    release = threading.Event()
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"), ThreadPoolExecutor(1) as pool:
        future = pool.submit(release.wait, 5)
        emit_when_done(future, receiver.done, lambda f: f.result())
        shiboken6.delete(receiver)  # the widget goes away (window closed) before the job ends
        release.set()
        future.result(timeout=5)
    assert not [r for r in caplog.records if "exception calling callback" in r.getMessage()]

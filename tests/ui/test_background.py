"""BackgroundJobs: work runs on a helper thread, its result or error reaches the owner on the GUI
thread, superseded results are dropped, and an owner deleted meanwhile is not an error (neither a
crash nor concurrent.futures' "exception calling callback")."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import shiboken6
from PySide6.QtCore import QObject, QThread

from comic_studio.ui.background import BackgroundJobs

WAIT = 5000


class Owner(QObject):
    def __init__(self):
        super().__init__()
        self.jobs = BackgroundJobs(self, "test-jobs")
        self.results: list = []
        self.errors: list[BaseException] = []
        self.threads: list[QThread] = []

    def submit(self, fn, *args, lane=None) -> bool:
        return self.jobs.submit(fn, *args, lane=lane, on_result=self._result, on_error=self.errors.append)

    def _result(self, value) -> None:
        self.threads.append(QThread.currentThread())
        self.results.append(value)


@pytest.fixture
def owner(qtbot):
    made = Owner()
    yield made
    if shiboken6.isValid(made):
        made.jobs.shutdown(wait=True)


def test_the_result_arrives_on_the_gui_thread_after_submit_returned(qtbot, owner):
    worker_thread: list[str] = []

    def compute(a, b):
        worker_thread.append(threading.current_thread().name)
        return a + b

    assert owner.submit(compute, 41, 1)
    assert owner.results == []  # never delivered inside submit
    qtbot.waitUntil(lambda: owner.results == [42], timeout=WAIT)
    assert owner.threads == [owner.thread()] and worker_thread[0].startswith("test-jobs")
    assert owner.jobs.pending() == 0


def test_an_exception_is_delivered_as_an_error(qtbot, owner):
    def fail():
        raise ValueError("no pose fits")

    owner.submit(fail)
    qtbot.waitUntil(lambda: len(owner.errors) == 1, timeout=WAIT)
    assert isinstance(owner.errors[0], ValueError) and str(owner.errors[0]) == "no pose fits"
    assert owner.results == []


def test_an_error_without_a_handler_is_logged_not_raised(qtbot, owner, caplog):
    def fail():
        raise ValueError("lost")

    with caplog.at_level(logging.ERROR, logger="comic_studio.ui.background"):
        owner.jobs.submit(fail, on_result=owner.results.append)
        qtbot.waitUntil(lambda: owner.jobs.pending() == 0, timeout=WAIT)
    assert any("test-jobs: a background job failed" in r.getMessage() for r in caplog.records)


def test_a_lane_delivers_only_its_latest_job(qtbot, owner):
    release = threading.Event()
    owner.submit(release.wait, 5, lane="search")  # running: its result will be dropped
    owner.submit(lambda: "queued", lane="search")  # queued, then superseded: cancelled
    owner.submit(lambda: "other lane", lane="plan")
    owner.submit(lambda: "latest", lane="search")
    release.set()
    qtbot.waitUntil(lambda: owner.jobs.pending() == 0, timeout=WAIT)
    assert sorted(owner.results) == ["latest", "other lane"] and owner.errors == []


def test_invalidate_drops_a_lanes_result(qtbot, owner):
    release = threading.Event()
    owner.submit(release.wait, 5, lane="masks")
    owner.jobs.invalidate("masks")
    release.set()
    qtbot.waitUntil(lambda: owner.jobs.pending() == 0, timeout=WAIT)
    assert owner.results == []


def test_after_shutdown_nothing_runs_or_arrives(qtbot, owner):
    release = threading.Event()
    ran: list[str] = []
    owner.submit(release.wait, 5)
    owner.submit(ran.append, "queued")
    owner.jobs.shutdown()
    release.set()
    assert not owner.submit(ran.append, "late")
    assert owner.jobs.is_shut_down()
    qtbot.wait(100)
    assert owner.results == [] and ran == []


def test_an_owner_deleted_while_the_job_ran_is_not_an_error(qtbot, caplog):
    owner = Owner()
    jobs = owner.jobs
    release, finished = threading.Event(), threading.Event()

    def work():
        release.wait(5)
        return "late"

    with caplog.at_level(logging.ERROR):
        owner.jobs.submit(work, on_result=owner.results.append)
        jobs._pool.submit(finished.set)  # runs after ``work`` (one worker): the result was handed over
        shiboken6.delete(owner)  # the widget goes away (window closed) before the job ends
        assert not shiboken6.isValid(jobs)  # the jobs object went with it
        release.set()
        assert finished.wait(5)
        qtbot.wait(100)  # any queued delivery would run now
    assert owner.results == []
    assert not [r for r in caplog.records if "exception calling callback" in r.getMessage()]


def test_wait_painting_returns_the_result_while_timers_and_painting_go_on(qtbot):
    from PySide6.QtCore import QTimer

    from comic_studio.ui.background import wait_painting

    released = threading.Event()
    QTimer.singleShot(0, released.set)  # runs only if the GUI thread keeps its event loop going

    def job(x):
        assert released.wait(30), "the GUI thread's timers stood still while waiting"
        return x * 2, threading.current_thread() is not threading.main_thread()

    assert wait_painting(job, 21) == (42, True)


def test_wait_painting_raises_the_jobs_error_on_the_caller(qtbot):
    from comic_studio.ui.background import wait_painting

    def job():
        time.sleep(0.05)  # still running when the caller starts waiting
        raise ValueError("broken project")

    with pytest.raises(ValueError, match="broken project"):
        wait_painting(job)


def test_start_worker_starts_the_helper_thread_before_any_job(qtbot, owner):
    jobs = BackgroundJobs(owner, "warm-lane")
    assert not any(t.name.startswith("warm-lane") for t in threading.enumerate())  # lazily, by default
    jobs.start_worker()
    assert any(t.name.startswith("warm-lane") for t in threading.enumerate())
    assert jobs.pending() == 0  # the start is no job: nothing to deliver, idle checks unaffected
    results: list[int] = []
    jobs.submit(lambda: 7, on_result=results.append)
    qtbot.waitUntil(lambda: results == [7], timeout=5000)
    jobs.shutdown(wait=True)
    jobs.start_worker()  # after shutdown: nothing starts, nothing raises

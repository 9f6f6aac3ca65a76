"""Cancel stops a backend that never reports a step: after the grace period the job is reported
CANCELLED naming the backend, its thread is abandoned, and the engine serves later jobs."""

from __future__ import annotations

import threading
import time

import pytest
from engine_fakes import Recorder, register_fakes, solid, unregister_fakes

from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.generation.request import GenerationRequest, GenerationResult

GRACE = 0.2
WAIT = 30.0
"""Only bounds a hang; every assert is on outcomes."""


class SilentBackend(GenerationBackend):
    """Seed 1 blocks on ``release`` and never calls on_step (a plugin stuck in native code); any other
    seed returns at once."""

    name = "test-silent"
    release = threading.Event()
    entered = threading.Event()
    instances: list[SilentBackend] = []

    def __init__(self) -> None:
        SilentBackend.instances.append(self)
        self.threads: list[threading.Thread] = []

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        self.threads.append(threading.current_thread())
        if request.seed == 1:
            SilentBackend.entered.set()
            SilentBackend.release.wait()
        return GenerationResult([solid(request, request.seed)], request.seed, self.name)


@pytest.fixture(autouse=True)
def backends():
    register_fakes()
    register_backend(SilentBackend.name, SilentBackend)
    SilentBackend.release.clear()
    SilentBackend.entered.clear()
    SilentBackend.instances.clear()
    yield
    SilentBackend.release.set()  # lets an abandoned thread end
    unregister_backend(SilentBackend.name)
    unregister_fakes()


def req(backend: str = "test-silent", seed: int = 1, **settings) -> GenerationRequest:
    return GenerationRequest(backend=backend, width=16, height=16, seed=seed, panel_id="p", backend_settings=settings)


def start_stuck_job(engine: Engine) -> str:
    job = engine.submit(req())
    assert SilentBackend.entered.wait(WAIT)
    return job


def test_a_backend_that_never_reports_a_step_is_abandoned_after_the_grace_period():
    with Engine(cancel_grace_s=GRACE) as engine:
        rec = Recorder(engine)
        stuck = start_stuck_job(engine)
        first_worker = engine._thread
        assert engine.cancel(stuck)
        final = rec.wait(stuck, WAIT)
        assert final.event is JobEvent.CANCELLED
        assert "backend 'test-silent' did not stop within 0.2 s of cancel" in final.error
        assert "abandoned" in final.error and "fresh worker" in final.error
        assert engine.running() is None and engine.wait_idle(WAIT)
        # The engine goes on: another backend, and the same one (a fresh instance: the stuck one may
        # still be running on the abandoned thread).
        steps = rec.wait(engine.submit(req("test-steps", seed=5, steps=2)), WAIT)
        again = rec.wait(engine.submit(req(seed=7)), WAIT)
        assert steps.event is JobEvent.FINISHED and again.event is JobEvent.FINISHED
        assert again.result.image.getpixel((0, 0))[0] == 7
        assert len(SilentBackend.instances) == 2 and SilentBackend.instances[1].threads[0] is not first_worker
        assert first_worker.is_alive() and first_worker.daemon
        # The stuck call returns at last: its result is discarded, the job keeps its one final message.
        SilentBackend.release.set()
        first_worker.join(WAIT)
        assert not first_worker.is_alive()
        assert [m.event for m in rec.of(stuck)] == [JobEvent.QUEUED, JobEvent.STARTED, JobEvent.CANCELLED]
        later = rec.wait(engine.submit(req("test-steps", seed=9)), WAIT)
        assert later.event is JobEvent.FINISHED
    assert not engine.is_alive


def test_a_cooperative_cancel_is_not_forced():
    with Engine() as engine:  # the default grace: a backend polling every 10 ms stops long before it
        rec = Recorder(engine)
        job = engine.submit(req("test-steps", steps=1000, delay=0.01))
        while engine.running() != job:
            time.sleep(0.005)
        engine.cancel(job)
        final = rec.wait(job, WAIT)
        worker = engine._thread
        assert final.event is JobEvent.CANCELLED and final.error == ""
        assert rec.wait(engine.submit(req("test-steps", seed=2)), WAIT).event is JobEvent.FINISHED
        assert engine._thread is worker


def test_cancel_all_reaches_a_stuck_backend_too():
    with Engine(cancel_grace_s=GRACE) as engine:
        rec = Recorder(engine)
        stuck = start_stuck_job(engine)
        engine.cancel_all()
        assert "did not stop within" in rec.wait(stuck, WAIT).error
        assert rec.wait(engine.submit(req(seed=4)), WAIT).event is JobEvent.FINISHED


def test_shutdown_is_bounded_by_the_grace_period():
    engine = Engine(cancel_grace_s=GRACE)
    rec = Recorder(engine)
    stuck = start_stuck_job(engine)
    queued = engine.submit(req("test-steps", seed=3))
    done = threading.Event()
    closer = threading.Thread(target=lambda: (engine.shutdown(), done.set()), daemon=True)
    closer.start()
    assert done.wait(WAIT), "shutdown() hung on a backend that never returns"
    assert rec.final(queued).event is JobEvent.CANCELLED
    final = rec.final(stuck)
    assert final.event is JobEvent.CANCELLED and "did not stop within" in final.error
    assert not engine.is_alive


def test_cancel_grace_must_be_positive():
    with pytest.raises(ValueError, match="cancel_grace_s"):
        Engine(cancel_grace_s=0)


def test_the_stall_time_out_stops_a_silent_backend_and_reports_an_error():
    with Engine(cancel_grace_s=GRACE, stall_timeout_s=0.3) as engine:
        rec = Recorder(engine)
        stuck = engine.submit(req())
        final = rec.wait(stuck, WAIT)
        assert final.event is JobEvent.ERROR
        assert "backend 'test-silent' reported no step for 0.3 s (the stall time-out)" in final.error
        assert "did not stop within 0.2 s" in final.error
        assert rec.wait(engine.submit(req(seed=6)), WAIT).event is JobEvent.FINISHED


def test_a_stalled_backend_that_stops_when_asked_is_an_error_without_abandonment():
    with Engine(stall_timeout_s=0.3) as engine:  # the default grace: it stops long before that
        rec = Recorder(engine)
        worker = engine._thread
        final = rec.wait(engine.submit(req("test-steps", steps=50, delay=1.0)), WAIT)
        assert final.event is JobEvent.ERROR and final.error.endswith("(the stall time-out)")
        assert rec.wait(engine.submit(req("test-steps", seed=2)), WAIT).event is JobEvent.FINISHED
        assert engine._thread is worker


def test_steps_keep_a_job_under_the_stall_time_out():
    with Engine(stall_timeout_s=30) as engine:
        rec = Recorder(engine)
        final = rec.wait(engine.submit(req("test-steps", steps=20, delay=0.01)), WAIT)
    assert final.event is JobEvent.FINISHED

"""The engine through its public API with small real backends: order, cancel, errors, messages."""

from __future__ import annotations

import io
import threading
import time

import pytest
from engine_fakes import GateBackend, Recorder, StepsBackend, register_fakes, unregister_fakes
from PIL import Image

from comic_studio.generation.backend_api import BackendSettingsError
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent
from comic_studio.generation.registry import BackendNotFoundError
from comic_studio.generation.request import GenerationError, GenerationRequest


@pytest.fixture(autouse=True)
def fakes():
    register_fakes()
    GateBackend.gate.clear()
    GateBackend.entered.clear()
    yield
    GateBackend.gate.set()
    unregister_fakes()


@pytest.fixture
def engine():
    eng = Engine()
    yield eng
    GateBackend.gate.set()
    eng.shutdown()


def req(backend: str = "test-steps", seed: int = 1, panel: str | None = "p1", **settings) -> GenerationRequest:
    return GenerationRequest(backend=backend, width=24, height=16, seed=seed, panel_id=panel, backend_settings=settings)


def block_worker(engine: Engine) -> str:
    job = engine.submit(req("test-gate"))
    assert GateBackend.entered.wait(5)
    return job


def test_message_sequence_and_finished_payload(engine):
    rec = Recorder(engine)
    job = engine.submit(req(steps=3, seed=42, delay=0.025))
    final = rec.wait(job)
    events = rec.events(job)
    assert events[0] is JobEvent.QUEUED and events[1] is JobEvent.STARTED and events[-1] is JobEvent.FINISHED
    assert set(events[2:-1]) == {JobEvent.PROGRESS}
    progress = [m for m in rec.of(job) if m.event is JobEvent.PROGRESS]
    assert [m.step for m in progress] == [0, 1, 2, 3] and {m.total for m in progress} == {3}
    assert all(m.panel_id == "p1" for m in rec.of(job))
    # The queued and finished messages carry the validated request (defaults filled in).
    queued = rec.of(job)[0]
    assert queued.request.backend_settings == {"steps": 3, "delay": 0.025, "preview": False}
    assert final.request == queued.request
    assert final.result.seed == 42 and final.result.backend == "test-steps"
    decoded = Image.open(io.BytesIO(final.png))
    assert decoded.format == "PNG" and decoded.size == (24, 16)
    assert decoded.convert("RGB").tobytes() == final.result.images[0].tobytes()
    assert final.elapsed > 0 and final.fraction == 1.0
    # Callbacks run on the worker thread, except QUEUED (the submitting thread).
    threads = dict(zip([m.event for m in rec.messages], rec.threads))
    assert threads[JobEvent.QUEUED] == threading.current_thread().name
    assert threads[JobEvent.STARTED] == threads[JobEvent.FINISHED] == "comic-studio-engine"


def test_backend_instance_is_created_once_on_the_worker_thread(engine):
    rec = Recorder(engine)
    for seed in range(3):
        rec.wait(engine.submit(req(seed=seed)))
    backend = engine._backends["test-steps"]
    assert isinstance(backend, StepsBackend)
    assert backend.thread is engine._thread
    assert len(backend.calls) == 3 * 5  # three jobs of 4 steps + step 0, one instance


def test_fast_steps_are_throttled_but_first_last_and_previews_always_sent(engine):
    rec = Recorder(engine)
    job = engine.submit(req(steps=1000))
    rec.wait(job)
    steps = [m.step for m in rec.of(job) if m.event is JobEvent.PROGRESS]
    assert steps[0] == 0 and steps[-1] == 1000 and len(steps) < 200
    job = engine.submit(req(steps=30, preview=True))
    rec.wait(job)
    previews = [m.preview for m in rec.of(job) if m.event is JobEvent.PROGRESS]
    assert len(previews) == 31 and all(p is not None and p.size == (24, 16) for p in previews)


def test_eta_comes_from_the_step_rate(engine):
    rec = Recorder(engine)
    job = engine.submit(req(steps=5, delay=0.03))
    rec.wait(job)
    progress = [m for m in rec.of(job) if m.event is JobEvent.PROGRESS]
    assert progress[0].eta is None  # no rate yet
    mid = next(m for m in progress if m.step == 2)
    # Rate measured from the first reported step: (time for 2 steps / 2) × 3 steps left.
    assert mid.eta == pytest.approx((mid.elapsed - progress[0].elapsed) / 2 * 3, rel=1e-6)
    assert mid.eta >= 3 * 0.03 * 0.9
    assert progress[-1].eta == 0.0
    assert progress[-1].elapsed >= 5 * 0.03


def test_priorities_order_higher_first_fifo_within(engine):
    rec = Recorder(engine)
    gate_job = block_worker(engine)
    low = engine.submit(req(seed=1), priority=0)
    high = engine.submit(req(seed=2), priority=10)
    low2 = engine.submit(req(seed=3), priority=0)
    mid = engine.submit(req(seed=4), priority=5)
    assert engine.pending() == [high, mid, low, low2]
    assert engine.running() == gate_job
    assert engine.reprioritize(low2, 20) is True
    assert engine.pending() == [low2, high, mid, low]
    GateBackend.gate.set()
    assert engine.wait_idle(10)
    assert rec.started_order() == [gate_job, low2, high, mid, low]
    assert engine.reprioritize(low, 3) is False  # already done


def test_cancel_queued_job_drops_it(engine):
    rec = Recorder(engine)
    gate_job = block_worker(engine)
    doomed = engine.submit(req(seed=1))
    kept = engine.submit(req(seed=2))
    assert engine.cancel(doomed) is True
    assert rec.events(doomed) == [JobEvent.QUEUED, JobEvent.CANCELLED]
    assert engine.pending() == [kept]
    GateBackend.gate.set()
    assert rec.wait(kept).event is JobEvent.FINISHED
    assert rec.events(doomed) == [JobEvent.QUEUED, JobEvent.CANCELLED]  # never started
    assert engine.cancel(doomed) is False and engine.cancel("no-such-job") is False
    assert rec.wait(gate_job).event is JobEvent.FINISHED


def test_cancel_running_job_stops_within_one_step(engine):
    rec = Recorder(engine)
    job = engine.submit(req(steps=200, delay=0.01))
    while not any(m.event is JobEvent.PROGRESS and m.step >= 2 for m in rec.of(job)):
        time.sleep(0.005)
    assert engine.cancel(job) is True
    final = rec.wait(job)
    assert final.event is JobEvent.CANCELLED
    backend = engine._backends["test-steps"]
    refused = [i for i, (_, answer) in enumerate(backend.calls) if answer is False]
    assert refused == [len(backend.calls) - 1], "no on_step call after the first False"
    assert backend.calls[-1][0] < 20, "stopped long before the end"
    assert backend.released == 1, "the backend was told to free what the job held"
    # The worker is fine: the next job runs.
    assert rec.wait(engine.submit(req(seed=9))).event is JobEvent.FINISHED


def test_cancel_all_cancels_queued_and_running(engine):
    rec = Recorder(engine)
    gate_job = block_worker(engine)
    queued = [engine.submit(req(seed=s)) for s in range(3)]
    engine.cancel_all()
    assert engine.pending() == []
    GateBackend.gate.set()  # the gate backend ignores on_step: its result is discarded anyway
    assert rec.wait(gate_job).event is JobEvent.CANCELLED
    assert [rec.final(j).event for j in queued] == [JobEvent.CANCELLED] * 3


def test_backend_exception_reports_error_and_the_worker_lives_on(engine):
    rec = Recorder(engine)
    bad = engine.submit(req("test-boom"))
    good = engine.submit(req(seed=5))
    err = rec.wait(bad)
    assert err.event is JobEvent.ERROR
    assert err.error == "the 'test-boom' backend failed: ValueError: the flux capacitor is unplugged"
    assert "Traceback" in err.detail and "engine_fakes.py" in err.detail and "second line" in err.detail
    assert rec.events(bad) == [JobEvent.QUEUED, JobEvent.STARTED, JobEvent.ERROR]
    assert rec.wait(good).event is JobEvent.FINISHED
    assert engine.is_alive


def test_a_backend_returning_no_image_is_an_error(engine):
    rec = Recorder(engine)
    err = rec.wait(engine.submit(req("test-noimage")))
    assert err.event is JobEvent.ERROR and "returned no image" in err.error


def test_a_failing_subscriber_does_not_stop_others_or_the_worker(engine):
    def broken(msg):
        raise RuntimeError("listener bug")

    engine.subscribe(broken)
    rec = Recorder(engine)
    assert rec.wait(engine.submit(req())).event is JobEvent.FINISHED
    assert rec.wait(engine.submit(req(seed=2))).event is JobEvent.FINISHED


def test_unsubscribe_stops_messages(engine):
    rec = Recorder(engine)
    rec.unsubscribe()
    other = Recorder(engine)
    other.wait(engine.submit(req()))
    assert rec.messages == []


def test_invalid_input_raises_synchronously_and_queues_nothing(engine):
    rec = Recorder(engine)
    with pytest.raises(BackendSettingsError, match="'steps'.*above the maximum"):
        engine.submit(req(steps=5000))
    with pytest.raises(BackendSettingsError, match="'stepz'.*unknown setting"):
        engine.submit(req(stepz=3))
    with pytest.raises(GenerationError, match="no backend named 'nope'"):
        engine.submit(req("nope"))
    with pytest.raises(BackendNotFoundError):
        engine.submit(req("nope"))
    with pytest.raises(GenerationError, match="needs a GenerationRequest"):
        engine.submit({"backend": "test-steps"})  # type: ignore[arg-type]
    assert rec.messages == [] and engine.pending() == []


def test_shutdown_joins_the_worker_and_cancels_what_is_left():
    engine = Engine()
    rec = Recorder(engine)
    running = engine.submit(req(steps=500, delay=0.01))
    queued = engine.submit(req(seed=2))
    while engine.running() != running:
        time.sleep(0.005)
    engine.shutdown()  # the running job (5 s of steps) is cancelled, not waited for:
    assert not engine.is_alive and not engine._thread.is_alive()
    assert rec.final(running).event is JobEvent.CANCELLED
    assert rec.final(queued).event is JobEvent.CANCELLED
    with pytest.raises(GenerationError, match="shut down"):
        engine.submit(req())
    engine.shutdown()  # idempotent


def test_settings_change_applies_between_jobs(engine):
    from comic_studio.generation.settings import EngineSettings

    rec = Recorder(engine)
    engine.set_settings(EngineSettings(device="cpu", memory_mode="model-offload"))
    rec.wait(engine.submit(req()))
    assert engine.settings.memory_mode == "model-offload" and engine.settings.device == "cpu"


def test_cancel_from_the_queued_callback_keeps_the_message_order(engine):
    rec = Recorder(engine)

    def cancel_on_queued(msg):
        if msg.event is JobEvent.QUEUED:
            assert engine.cancel(msg.job_id) is True  # the job is cancellable as soon as it is announced

    engine.subscribe(cancel_on_queued)
    job = engine.submit(req())
    assert rec.wait(job).event is JobEvent.CANCELLED
    assert rec.events(job) == [JobEvent.QUEUED, JobEvent.CANCELLED]
    assert engine.wait_idle(5) and engine.pending() == []

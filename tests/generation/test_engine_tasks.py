"""Task jobs of the engine (no torch): a runner registered per kind runs on the worker with the
renders' queue; every progress step and every sample reaches subscribers in order; a task that
needs the device gets the cached models freed; cancel, failure and the task's own cancel grace."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest
from engine_fakes import Recorder, register_fakes, unregister_fakes
from PIL import Image

from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent
from comic_studio.generation.request import Cancelled, GenerationRequest
from comic_studio.generation.tasks import TaskContext


@pytest.fixture(autouse=True)
def fakes():
    register_fakes()
    yield
    unregister_fakes()


@dataclass(frozen=True)
class CountTask:
    steps: int = 5
    sample_every: int = 2
    device: bool = True
    grace: float = 0.0
    kind: str = "count"
    label: str = "Count"

    @property
    def needs_device_memory(self) -> bool:
        return self.device

    @property
    def cancel_grace_s(self) -> float:
        return self.grace

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "sample_every": self.sample_every}


class Runner:
    """Counts to ``steps``; optionally stops at a gate after step 1 until released."""

    def __init__(self, gate: bool = False):
        self.gate = threading.Event() if gate else None
        self.at_gate = threading.Event()
        self.release = threading.Event()
        self.models_seen: int | None = None

    def __call__(self, task: CountTask, context: TaskContext) -> dict[str, int]:
        self.models_seen = len(context.resources.models)
        for step in range(1, task.steps + 1):
            if context.cancelled():
                raise Cancelled(f"counting cancelled at step {step - 1}")
            context.progress(step, task.steps, {"loss": 1.0 / step})
            if task.sample_every and step % task.sample_every == 0:
                context.sample(step, task.steps, [Image.new("RGB", (4, 4), (step, 0, 0))], {"prompts": ["p"]})
            if self.gate is not None and step == 1:
                self.at_gate.set()
                self.release.wait(30)
        return {"counted": task.steps}


def test_a_task_reports_every_step_and_sample_and_finishes_with_its_outcome():
    with Engine() as engine:
        recorder = Recorder(engine)
        engine.resources.models.put("m", "unet", "float32", "cpu", object())  # a render's cached model
        runner = Runner()
        engine.register_runner("count", runner)
        task = CountTask(steps=200, sample_every=50)
        job = engine.submit(task)
        final = recorder.wait(job)
        assert final.event is JobEvent.FINISHED and final.outcome == {"counted": 200} and final.kind == "count"
        messages = recorder.of(job)
        assert messages[0].event is JobEvent.QUEUED and messages[0].task == task and messages[0].request is None
        progress = [m for m in messages if m.event is JobEvent.PROGRESS]
        assert [m.step for m in progress] == list(range(1, 201))  # none thinned out, in order
        assert progress[-1].info == {"loss": 1.0 / 200}
        samples = [m for m in messages if m.event is JobEvent.SAMPLE]
        assert [m.step for m in samples] == [50, 100, 150, 200] and samples[0].samples[0].getpixel((0, 0)) == (50, 0, 0)
        assert runner.models_seen == 0  # the cached render models were freed for the task


def test_a_task_that_does_not_need_the_device_keeps_the_cache():
    with Engine() as engine:
        recorder = Recorder(engine)
        engine.resources.models.put("m", "unet", "float32", "cpu", object())
        runner = Runner()
        engine.register_runner("count", runner)
        assert recorder.wait(engine.submit(CountTask(device=False))).event is JobEvent.FINISHED
        assert runner.models_seen == 1


def test_a_render_queued_while_a_task_runs_waits_for_it_and_cancel_stops_the_task():
    with Engine() as engine:
        recorder = Recorder(engine)
        runner = Runner(gate=True)
        engine.register_runner("count", runner)
        task = engine.submit(CountTask(steps=5), priority=-10)
        try:
            assert runner.at_gate.wait(30)
            render = engine.submit(
                GenerationRequest(backend="test-steps", prompt="x", width=16, height=16), priority=10
            )
            assert engine.pending() == [render]  # a higher priority does not interrupt a running task
            assert engine.cancel(task)
        finally:
            runner.release.set()  # a failed assert must not leave the worker at the gate
        final = recorder.wait(task)
        assert final.event is JobEvent.CANCELLED and final.error == "counting cancelled at step 1"
        assert recorder.wait(render).event is JobEvent.FINISHED
        assert recorder.started_order() == [task, render]


def test_a_failing_task_is_an_error_and_an_unknown_kind_is_refused():
    def boom(task: Any, context: TaskContext) -> None:
        raise RuntimeError("the disk is full")

    with Engine() as engine:
        recorder = Recorder(engine)
        with pytest.raises(Exception, match="no runner is registered for 'count'"):
            engine.submit(CountTask())
        engine.register_runner("count", boom)
        final = recorder.wait(engine.submit(CountTask()))
        assert final.event is JobEvent.ERROR
        assert final.error == "the 'count' job failed: RuntimeError: the disk is full" and "Traceback" in final.detail


def test_a_task_gets_its_own_longer_cancel_grace():
    """The engine would give a render 0.05 s; the task asks for 30 s and is not abandoned while it
    finishes its safe stop."""
    with Engine(cancel_grace_s=0.05) as engine:
        recorder = Recorder(engine)
        runner = Runner(gate=True)
        engine.register_runner("count", runner)
        job = engine.submit(CountTask(steps=3, grace=30.0))
        try:
            assert runner.at_gate.wait(30)
            engine.cancel(job)
            threading.Event().wait(0.5)  # ten times the engine's grace: a render would be abandoned by now
            assert recorder.final(job) is None
        finally:
            runner.release.set()
        final = recorder.wait(job)
        assert final.event is JobEvent.CANCELLED and final.error == "counting cancelled at step 1"

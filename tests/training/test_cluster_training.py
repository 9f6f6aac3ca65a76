"""A LoRA training job on a real local Ray cluster: the runner is registered by import path and
resolved in the worker, the run reports its steps on the client's message stream, gives the same
weights as the local engine, and a cancel from the client stops it with its checkpoint kept.

With workers given their own cache and state folders (``worker_env``), the run keeps its checkpoint
on the worker side only; the result comes back in the job, a cancelled run's checkpoint comes back to
the client's path and a resume ships it out again (the worker's copy deleted in between, as on
another machine)."""

from __future__ import annotations

import shutil
import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
ray = pytest.importorskip("ray")

from anchor_helpers import cid, make_document, tiny_settings  # noqa: E402

from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.settings import STATE_DIR_ENV  # noqa: E402
from comic_studio.generation.cluster import ClusterEngine, runner_path  # noqa: E402
from comic_studio.generation.cluster_assets import (  # noqa: E402
    CACHE_ENV,
    place_checkpoint,
    returned_checkpoint,
    worker_checkpoint,
)
from comic_studio.generation.engine import Engine  # noqa: E402
from comic_studio.generation.messages import JobEvent, JobMessage  # noqa: E402
from comic_studio.generation.request import GenerationError  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.training.checkpoint import load_checkpoint  # noqa: E402
from comic_studio.training.lora import LoraRecipe  # noqa: E402
from comic_studio.training.samples import SampleSettings  # noqa: E402
from comic_studio.workflows.training import plan_training, store_trained_lora  # noqa: E402
from comic_studio.workflows.training_jobs import TRAIN_LORA, submit_training, training_request  # noqa: E402

pytestmark = pytest.mark.slow
WAIT_S = 300


@pytest.fixture
def doc(tiny_kit, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    character_edits.add_reference(doc, ana, "face", character_picture(1, width=64, height=80))
    character_edits.add_reference(doc, ana, "body", character_picture(2, width=64, height=80))
    panel = doc.project.pages[0].panels[0]
    panel.backend = "sdxl"
    panel.backend_settings = {
        k: v for k, v in tiny_settings(tiny_kit).items() if k not in ("anchor_size", "start_step")
    }
    return doc


def _request(doc, kit, steps: int, samples: SampleSettings | None = None, resume: bool = False):
    plan = plan_training(doc, cid(doc, "Ana"), resume=resume)
    return training_request(plan, LoraRecipe(steps=steps, resolution=64), model=str(kit.sdxl),
                            samples=samples or SampleSettings(every=0), device="cpu", resume=resume)  # fmt: skip


class Recorder:
    def __init__(self, engine) -> None:
        self.messages: list[JobMessage] = []
        self.cond = threading.Condition()
        engine.subscribe(self._got)

    def _got(self, message: JobMessage) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def of(self, job: str, event: JobEvent) -> list[JobMessage]:
        with self.cond:
            return [m for m in self.messages if m.job_id == job and m.event is event]

    def wait(self, predicate) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.messages), WAIT_S), [
                (m.job_id, m.event.value) for m in self.messages
            ]

    def final(self, job: str) -> JobMessage:
        self.wait(lambda ms: any(m.job_id == job and m.event.is_final for m in ms))
        return next(m for m in self.messages if m.job_id == job and m.event.is_final)


def _lora(outcome) -> dict:
    from safetensors.torch import load

    return load(outcome.data)


def test_a_runner_must_be_importable_by_name():
    assert runner_path(submit_training) == "comic_studio.workflows.training_jobs:submit_training"
    with pytest.raises(GenerationError, match="module-level function"):
        runner_path(lambda request, context: None)


def test_training_on_a_worker_with_progress_cancel_and_the_local_weights(doc, tiny_kit):
    request = _request(doc, tiny_kit, steps=2, samples=SampleSettings(every=2, steps=2, size=64))
    with Engine() as local:
        recorder = Recorder(local)
        final = recorder.final(submit_training(local, request))
        assert final.event is JobEvent.FINISHED, final.error
        expected = _lora(final.outcome)

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, namespace="cs-train-tests")
    try:
        with ClusterEngine(workers=1) as engine:
            with pytest.raises(GenerationError, match="no runner"):
                engine.submit(request)
            recorder = Recorder(engine)
            job = submit_training(engine, request)  # registers the runner by name in the worker
            final = recorder.final(job)
            assert final.event is JobEvent.FINISHED, final.error
            assert final.kind == TRAIN_LORA
            assert recorder.of(job, JobEvent.QUEUED)[0].task == request
            assert [m.step for m in recorder.of(job, JobEvent.PROGRESS)] == [1, 2]
            assert "loss" in recorder.of(job, JobEvent.PROGRESS)[-1].info
            assert [m.step for m in recorder.of(job, JobEvent.SAMPLE)] == [2]  # the sample images came back
            got = _lora(final.outcome)
            assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)

            long = submit_training(engine, _request(doc, tiny_kit, steps=500))
            recorder.wait(lambda ms: any(m.job_id == long and m.event is JobEvent.PROGRESS for m in ms))
            assert engine.cancel(long)
            final = recorder.final(long)
            assert final.event is JobEvent.CANCELLED and "cancelled at step" in final.error
            assert plan_training(doc, cid(doc, "Ana")).checkpoint.is_file()  # kept for a resume
    finally:
        ray.shutdown()


def _first_progress(recorder: Recorder, job: str) -> int:
    recorder.wait(lambda ms: any(m.job_id == job and m.event is JobEvent.PROGRESS for m in ms))
    return recorder.of(job, JobEvent.PROGRESS)[0].step


def test_a_worker_with_its_own_folders_sends_back_the_result_and_a_cancelled_runs_checkpoint(doc, tiny_kit, tmp_path):
    checkpoint = plan_training(doc, cid(doc, "Ana")).checkpoint  # the client's
    worker_cache, worker_state = tmp_path / "worker-cache", tmp_path / "worker-state"
    env = {CACHE_ENV: str(worker_cache), STATE_DIR_ENV: str(worker_state)}
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, namespace="cs-train-tests")
    try:
        with ClusterEngine(workers=1, worker_env=env) as engine:
            recorder = Recorder(engine)
            final = recorder.final(submit_training(engine, _request(doc, tiny_kit, steps=2)))
            assert final.event is JobEvent.FINISHED, final.error
            assert not checkpoint.exists()  # the run kept its checkpoint on the worker side only
            assert list((worker_cache / "training").iterdir()) == []  # and dropped it: the result came back
            stored = store_trained_lora(doc, plan_training(doc, cid(doc, "Ana")), final.outcome)
            assert doc.project.character(cid(doc, "Ana")).lora_asset == stored.asset
            assert stored.steps == 2

            long = submit_training(engine, _request(doc, tiny_kit, steps=500))
            _first_progress(recorder, long)
            assert not checkpoint.exists()
            assert engine.cancel(long)
            final = recorder.final(long)
            assert final.event is JobEvent.CANCELLED, final.error
            assert final.error.endswith(f"resume from {checkpoint}")  # the client's path, not the worker's
            cancelled_at = int(load_checkpoint(checkpoint)["step"])  # sent back and written here
            assert f"cancelled at step {cancelled_at};" in final.error
            (kept,) = (worker_cache / "training").iterdir()
            shutil.rmtree(kept)  # as if the resume ran on another machine: only the client's copy is left

            resumed = submit_training(engine, _request(doc, tiny_kit, steps=500, resume=True))
            assert _first_progress(recorder, resumed) == cancelled_at + 1  # from the shipped checkpoint
            assert engine.cancel(resumed)
            final = recorder.final(resumed)
            assert final.event is JobEvent.CANCELLED, final.error
            assert int(load_checkpoint(checkpoint)["step"]) > cancelled_at
            assert engine.wait_idle(WAIT_S)
            assert engine._shipper.held() == set()  # no job needs the checkpoint's object any more
    finally:
        ray.shutdown()


def test_a_fresh_run_on_a_worker_drops_an_earlier_runs_checkpoint_there(doc, tiny_kit, tmp_path, monkeypatch):
    """Else a fresh run failing before its first save would send the earlier run's file back over
    the client's (a local run leaves the client's file as it was)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "worker-cache"))
    request = _request(doc, tiny_kit, steps=2)
    stale = worker_checkpoint(request.checkpoint)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier run's")
    placed = place_checkpoint(request, {}, ray.get)
    assert placed.checkpoint == str(stale) and placed.resume is False
    assert placed.with_checkpoint(request.checkpoint) == request  # only the path differs
    assert not stale.exists()
    assert returned_checkpoint(str(stale)) is None  # nothing to send back until the run saves one

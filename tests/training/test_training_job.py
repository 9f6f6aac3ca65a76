"""Training as a job of the generation engine, on the tiny models (CPU): it shares the one worker and
queue with renders without leaking state into them, reports loss/lr/rate and samples every N steps
on the engine's message stream, and a cancel through the engine (also while samples render) keeps
a checkpoint that resumes to bitwise the weights of an uninterrupted run."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from anchor_helpers import cid, make_document, tiny_settings  # noqa: E402

from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.safe_read import open_image  # noqa: E402
from comic_studio.generation.engine import Engine  # noqa: E402
from comic_studio.generation.messages import JobEvent, JobMessage  # noqa: E402
from comic_studio.generation.request import GenerationError  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.training.lora import LoraRecipe  # noqa: E402
from comic_studio.training.samples import SampleSettings, samples_folder  # noqa: E402
from comic_studio.workflows.requests import build_request  # noqa: E402
from comic_studio.workflows.training import plan_training, store_trained_lora  # noqa: E402
from comic_studio.workflows.training_jobs import (  # noqa: E402
    TrainingRequest,
    submit_training,
    training_request,
)

WAIT_S = 240  # a hang fails the test; the tiny runs take seconds
SAMPLES = SampleSettings(every=1, steps=2, size=64)  # a sample after every step, 2 denoising steps


@pytest.fixture
def doc(tiny_kit, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    character_edits.add_reference(doc, ana, "face", character_picture(1, width=64, height=80))
    character_edits.add_reference(doc, ana, "body", character_picture(2, width=64, height=80))
    panel = doc.project.pages[0].panels[0]  # Ana alone
    panel.backend = "sdxl"
    panel.backend_settings = {
        k: v for k, v in tiny_settings(tiny_kit).items() if k not in ("anchor_size", "start_step")
    }
    return doc


class Recorder:
    """Every engine message, in order; ``on`` runs a reaction on the worker thread (deterministic)."""

    def __init__(self, engine: Engine):
        self.messages: list[JobMessage] = []
        self.lock = threading.Lock()
        self.on = lambda msg: None
        engine.subscribe(self._got)

    def _got(self, msg: JobMessage) -> None:
        with self.lock:
            self.messages.append(msg)
        self.on(msg)

    def of(self, job_id: str, event: JobEvent | None = None) -> list[JobMessage]:
        with self.lock:
            return [m for m in self.messages if m.job_id == job_id and (event is None or m.event is event)]

    def final(self, job_id: str) -> JobMessage:
        (last,) = [m for m in self.of(job_id) if m.event.is_final]
        return last


def _request(doc, tiny_kit, steps: int, *, resume: bool = False, samples: SampleSettings | None = None):
    plan = plan_training(doc, cid(doc, "Ana"), resume=resume)
    recipe = LoraRecipe(steps=steps, resolution=64)
    return training_request(plan, recipe, model=str(tiny_kit.sdxl), resume=resume,
                            samples=samples or SampleSettings(every=0), device="cpu")  # fmt: skip


def _render(engine: Engine, recorder: Recorder, doc) -> np.ndarray:
    panel = doc.project.pages[0].panels[0]
    job = engine.submit(build_request(doc.project, panel, assets=doc.assets))
    assert engine.wait_idle(WAIT_S)
    final = recorder.final(job)
    assert final.event is JobEvent.FINISHED, final.error
    return np.asarray(final.result.images[0].convert("RGB"))


def _lora(outcome) -> dict:
    from safetensors.torch import load

    return load(outcome.data)


def test_training_and_renders_share_the_engine_without_leaking_state(doc, tiny_kit):
    with Engine() as engine:
        recorder = Recorder(engine)
        before = _render(engine, recorder, doc)
        frees = engine.resources.frees

        request = _request(doc, tiny_kit, steps=2, samples=SAMPLES)
        assert TrainingRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request  # serialisable
        assert [h for h, _ in request.manifest()] == [p.digest for p in request.plan().pictures]
        panel = doc.project.pages[0].panels[0]
        render_request = build_request(doc.project, panel, assets=doc.assets)
        queued: list[str] = []
        # A render queued while the run is under way (from its STARTED, on the worker: deterministic).
        recorder.on = lambda m: (
            queued.append(engine.submit(render_request)) if m.event is JobEvent.STARTED and not queued else None
        )
        train = submit_training(engine, request)
        assert engine.wait_idle(WAIT_S)
        recorder.on = lambda msg: None
        (render,) = queued

        finished = recorder.final(train)
        assert finished.event is JobEvent.FINISHED, finished.error
        assert recorder.of(train, JobEvent.QUEUED)[0].task == request and finished.kind == "train-lora"
        progress = recorder.of(train, JobEvent.PROGRESS)
        assert [m.step for m in progress] == [1, 2]  # first and last are never thinned out
        assert {"loss", "lr", "steps_per_second"} <= set(progress[-1].info) and progress[-1].info["lr"] == 1e-4
        assert [m.step for m in recorder.of(train, JobEvent.SAMPLE)] == [1, 2]
        assert engine.resources.frees > frees  # the render models were given back for the run
        # The render queued meanwhile waited for the run (it never runs between its steps) …
        order = [(m.job_id, m.event) for m in recorder.messages if m.event in (JobEvent.STARTED, JobEvent.FINISHED)]
        assert order.index((render, JobEvent.STARTED)) > order.index((train, JobEvent.FINISHED))
        # … and equals the render before the run, pixel for pixel: no adapter, mode or RNG leaked.
        assert np.array_equal(np.asarray(recorder.final(render).result.images[0].convert("RGB")), before)

        plan = request.plan()
        stored = store_trained_lora(doc, plan, finished.outcome)
        assert doc.project.character(cid(doc, "Ana")).lora_asset == stored.asset
        with_lora = _render(engine, recorder, doc)
        assert not np.array_equal(with_lora, before)  # the trained LoRA is in Ana's panel now
        character_edits.update_character(doc, cid(doc, "Ana"), lora_enabled=False)
        assert np.array_equal(_render(engine, recorder, doc), before)  # disabled: as before training


def test_cancel_through_the_engine_then_resume_is_bitwise_the_uninterrupted_run(doc, tiny_kit):
    with Engine() as engine:
        recorder = Recorder(engine)
        straight = submit_training(engine, _request(doc, tiny_kit, steps=3))
        assert engine.wait_idle(WAIT_S)
        expected = _lora(recorder.final(straight).outcome)

        cancelled: list[str] = []

        def cancel_after_first_step(msg: JobMessage) -> None:
            if msg.event is JobEvent.PROGRESS and msg.step == 1 and not cancelled:
                cancelled.append(msg.job_id)
                engine.cancel(msg.job_id)  # on the worker, inside step 1's report: deterministic

        recorder.on = cancel_after_first_step
        interrupted = submit_training(engine, _request(doc, tiny_kit, steps=3))
        assert engine.wait_idle(WAIT_S)
        recorder.on = lambda msg: None
        final = recorder.final(interrupted)
        assert final.event is JobEvent.CANCELLED and "cancelled at step 1" in final.error
        assert plan_training(doc, cid(doc, "Ana")).checkpoint.is_file()

        resumed = submit_training(engine, _request(doc, tiny_kit, steps=3, resume=True))
        assert engine.wait_idle(WAIT_S)
        final = recorder.final(resumed)
        assert final.event is JobEvent.FINISHED, final.error
        assert [m.step for m in recorder.of(resumed, JobEvent.PROGRESS)][0] == 2  # went on, not over
        got = _lora(final.outcome)
        assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)


def test_samples_every_n_steps_are_delivered_and_kept_and_change_no_weight(doc, tiny_kit):
    with Engine() as engine:
        recorder = Recorder(engine)
        plain = submit_training(engine, _request(doc, tiny_kit, steps=4))
        assert engine.wait_idle(WAIT_S)
        sampled = submit_training(
            engine, _request(doc, tiny_kit, steps=4, samples=SAMPLES.model_copy(update={"every": 2}))
        )
        assert engine.wait_idle(WAIT_S)

        samples = recorder.of(sampled, JobEvent.SAMPLE)
        assert [m.step for m in samples] == [2, 4] and all(m.total == 4 for m in samples)
        assert samples[0].info["prompts"] == ["a photo of sks person"] and samples[0].info["seed"] == 42
        for msg in samples:
            (image,) = msg.samples
            assert image.size == (64, 64)
            (file,) = msg.info["files"]
            assert np.array_equal(np.asarray(open_image(file).convert("RGB")), np.asarray(image))
        names = sorted(p.name for p in samples_folder(plan_training(doc, cid(doc, "Ana")).checkpoint).iterdir())
        assert names == ["step-000002-0.png", "step-000004-0.png"]  # beside the checkpoint, nothing else
        # Rendering samples draws from no generator the training uses: the same weights as without.
        a, b = _lora(recorder.final(plain).outcome), _lora(recorder.final(sampled).outcome)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_cancel_during_sample_rendering_keeps_a_clean_resumable_checkpoint(doc, tiny_kit):
    with Engine() as engine:
        recorder = Recorder(engine)
        straight = submit_training(engine, _request(doc, tiny_kit, steps=2))
        assert engine.wait_idle(WAIT_S)
        expected = _lora(recorder.final(straight).outcome)

        def cancel_before_the_samples(msg: JobMessage) -> None:
            # Step 1's PROGRESS goes out before its samples render: the cancel lands inside them.
            if msg.event is JobEvent.PROGRESS and msg.step == 1:
                engine.cancel(msg.job_id)

        recorder.on = cancel_before_the_samples
        job = submit_training(engine, _request(doc, tiny_kit, steps=2, samples=SAMPLES))
        assert engine.wait_idle(WAIT_S)
        recorder.on = lambda msg: None
        final = recorder.final(job)
        assert final.event is JobEvent.CANCELLED and "cancelled at step 1" in final.error
        assert recorder.of(job, JobEvent.SAMPLE) == []
        plan = plan_training(doc, cid(doc, "Ana"))
        folder = samples_folder(plan.checkpoint)
        assert not folder.exists() or list(folder.iterdir()) == []  # no half-written sample
        assert plan.checkpoint.is_file()

        resumed = submit_training(engine, _request(doc, tiny_kit, steps=2, resume=True, samples=SAMPLES))
        assert engine.wait_idle(WAIT_S)
        final = recorder.final(resumed)
        assert final.event is JobEvent.FINISHED, final.error
        assert [m.step for m in recorder.of(resumed, JobEvent.SAMPLE)] == [1, 2]  # step 1's rendered on resume
        got = _lora(final.outcome)
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_an_unregistered_task_kind_is_refused_at_submit(doc, tiny_kit):
    with Engine() as engine:
        with pytest.raises(GenerationError, match="no runner is registered for 'train-lora'"):
            engine.submit(_request(doc, tiny_kit, steps=1))
        with pytest.raises(ValueError, match="task kind"):
            engine.register_runner("render", lambda request, context: None)

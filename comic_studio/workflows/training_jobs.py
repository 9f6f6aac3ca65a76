"""Training as a job of the generation engine: the request, the runner, submitting.

The engine (``generation``) may not import ``training`` (layers), so this module registers a runner
for the ``"train-lora"`` kind on the engine (:meth:`Engine.register_runner`) and submits a
:class:`TrainingRequest`: a serialisable snapshot of everything the run needs (base model, the
dataset manifest with each picture's hash, caption and pixels, the recipe with its seed, the sample
settings, resume or not). The runner (:func:`run_training_job`) runs on the engine's worker, the
GPU's one owner, and reports on the engine's message stream: PROGRESS per optimizer step (``info``:
loss, lr, steps_per_second; ``eta``), SAMPLE every ``samples.every`` steps (the images, their
prompts and files), FINISHED with the :class:`~comic_studio.workflows.training.TrainingOutcome`
(stored in the document by whoever follows the job, on its own thread:
:func:`~comic_studio.workflows.training.store_trained_lora`), CANCELLED with the step the checkpoint
was saved at. The engine drops its cached render models before the run and renders queued meanwhile
wait for it (see :meth:`comic_studio.generation.engine.Engine._execute_task`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from comic_studio.generation.request import Cancelled
from comic_studio.training.data import TrainingPicture
from comic_studio.training.lora import LoraRecipe, TrainingCancelled
from comic_studio.training.samples import SampleSettings
from comic_studio.workflows.class_images import ClassImagesCancelled
from comic_studio.workflows.training import TrainingOutcome, TrainingPlan, run_training
from comic_studio.workflows.training_job_base import (
    CANCEL_GRACE_S,
    TRAINING_PRIORITY,
    CharacterTrainingRequest,
    InlinePicture,
    character_fields,
    inline_picture_fields,
    replay_kept_samples,
    report_samples,
    report_step,
)

if TYPE_CHECKING:
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.tasks import TaskContext

__all__ = ["CANCEL_GRACE_S", "TRAINING_PRIORITY", "TRAIN_LORA", "ManifestPicture", "TrainingRequest",
           "replay_kept_samples", "run_training_job", "submit_training", "training_request"]  # fmt: skip

TRAIN_LORA: Literal["train-lora"] = "train-lora"


class ManifestPicture(InlinePicture):
    """One picture of the dataset: its hash (the trainer's manifest entry: pixels and caption), its
    caption and the picture itself (PNG, as a data URI: the request is a self-contained snapshot)."""

    caption: str = Field(min_length=1, max_length=2_000)


class TrainingRequest(CharacterTrainingRequest):
    """A LoRA training job for the engine (a :class:`~comic_studio.generation.tasks.TaskRequest`)."""

    kind: Literal["train-lora"] = TRAIN_LORA
    trigger: str
    class_prompt: str = ""
    """Prior preservation's prompt derived from the character (the recipe's own wins)."""
    pictures: tuple[ManifestPicture, ...] = Field(min_length=1)
    recipe: LoraRecipe = LoraRecipe()
    """The hyper-parameters; ``recipe.seed`` seeds the whole run."""

    @property
    def label(self) -> str:
        return f"Train LoRA · {self.character_name}"

    def manifest(self) -> list[tuple[str, str]]:
        """The dataset manifest without the pixels: (hash, caption) per picture."""
        return [(p.sha256, p.caption) for p in self.pictures]

    def plan(self, *, decode: bool = True) -> TrainingPlan:
        """The run's plan, pictures decoded from the request (on the worker: no document needed).
        ``decode=False``: without the pictures (enough to store the result)."""
        pictures = []
        for i, entry in enumerate(self.pictures if decode else ()):
            image = entry.open(where=f"training picture {i + 1} of {self.character_name!r}",
                               refuse=f"cannot train {self.character_name!r}", digest=_manifest_digest(entry.caption))  # fmt: skip
            pictures.append(TrainingPicture(image, entry.caption))
        return TrainingPlan(self.project_id, self.character_id, self.character_name, self.trigger,
                            tuple(pictures), Path(self.checkpoint), self.class_prompt)  # fmt: skip


def _manifest_digest(caption: str) -> Callable[[bytes, Any], str]:
    """A LoRA picture's hash is the trainer's manifest entry: its pixels and its caption."""
    return lambda _png, image: TrainingPicture(image, caption).digest


def training_request(
    plan: TrainingPlan,
    recipe: LoraRecipe,
    *,
    model: str = "",
    resume: bool = False,
    samples: SampleSettings | None = None,
    device: str = "auto",
) -> TrainingRequest:
    """The engine request of a planned run (:func:`~comic_studio.workflows.training.plan_training`)."""
    pictures = [
        ManifestPicture(sha256=picture.digest, caption=picture.caption, png=inline_picture_fields(picture.image)[1])
        for picture in plan.pictures
    ]
    return TrainingRequest(
        **character_fields(plan, model=model, resume=resume, samples=samples, device=device),
        trigger=plan.trigger,
        class_prompt=plan.class_prompt,
        pictures=tuple(pictures),
        recipe=recipe,
    )


def run_training_job(request: TrainingRequest, context: TaskContext) -> TrainingOutcome:
    """The engine's runner for ``"train-lora"`` jobs (its worker thread)."""
    device, dtype = request.run_device(context)
    plan = request.plan()
    prompts = request.samples.prompts_for(plan.trigger)
    request.replay_samples(context, prompts, request.recipe.steps)
    try:
        return run_training(
            plan,
            request.recipe,
            model=request.base_model,
            resume=request.resume,
            device=device,
            dtype=dtype,
            cancel=context.cancelled,
            on_progress=report_step(context),
            # Prior preservation's class pictures come first: their count, flagged for the dialog.
            on_class_picture=lambda done, total: context.progress(done, total, {"class_pictures": 1.0}),
            samples=request.samples,
            on_samples=report_samples(context, prompts, request.samples.seed),
        )
    except TrainingCancelled as exc:
        raise Cancelled(str(exc)) from exc  # the engine reports it as CANCELLED, with this text
    except ClassImagesCancelled as exc:
        raise Cancelled(
            f"cancelled while making class pictures ({exc.made} of {exc.total} kept; train again to continue)"
        ) from exc


def submit_training(engine: Engine, request: TrainingRequest, priority: int = TRAINING_PRIORITY) -> str:
    """Queue a training run on ``engine`` (registering the runner on first use); returns the job id."""
    engine.register_runner(TRAIN_LORA, run_training_job)
    return engine.submit(request, priority)

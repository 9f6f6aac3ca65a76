"""Learning a character's identity tokens (StableIdentity) as a job of the generation engine, as the
LoRA's training is (:mod:`comic_studio.workflows.training_jobs`): the request, the runner, submitting.

:class:`IdentityTrainingRequest` is a serialisable snapshot of the run: base model, face encoder,
the face photos (each with the project asset it came from and the hash of the pixels carried), the
recipe with its seed, the sample settings, resume or not. The runner (:func:`run_identity_job`),
registered for the ``"train-identity"`` kind, runs on the engine's worker (the GPU's one owner) and
reports PROGRESS per step (loss, lr, steps_per_second; ETA), SAMPLE when samples are due (the images
rendered with the tokens so far), FINISHED with the
:class:`~comic_studio.workflows.identity.IdentityOutcome` (stored by whoever follows the job, on its
own thread: :func:`~comic_studio.workflows.identity.store_trained_identity`, one undoable step),
CANCELLED with the step the checkpoint was saved at.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from comic_studio.generation.request import Cancelled
from comic_studio.training.identity import IdentityRecipe
from comic_studio.training.lora import TrainingCancelled
from comic_studio.training.samples import SampleSettings
from comic_studio.workflows.identity import IdentityOutcome, IdentityPlan, run_identity_training, sample_prompts
from comic_studio.workflows.training_job_base import (
    TRAINING_PRIORITY,
    CharacterTrainingRequest,
    InlinePicture,
    character_fields,
    inline_picture_fields,
    report_samples,
    report_step,
)

if TYPE_CHECKING:
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.tasks import TaskContext

TRAIN_IDENTITY: Literal["train-identity"] = "train-identity"


class IdentityPhoto(InlinePicture):
    """One face photo of the run: the project asset it came from, the PNG carried (a data URI: the
    request is self-contained) and that PNG's hash (checked on the worker)."""

    asset: str = Field(pattern=r"^[0-9a-f]{64}$")


class IdentityTrainingRequest(CharacterTrainingRequest):
    """A StableIdentity run for the engine (a :class:`~comic_studio.generation.tasks.TaskRequest`)."""

    kind: Literal["train-identity"] = TRAIN_IDENTITY
    face_encoder: str = ""
    """A ViT folder; empty: the catalogue's face encoder, else the generic ViT (Hugging Face cache)."""
    photos: tuple[IdentityPhoto, ...] = Field(min_length=1)
    recipe: IdentityRecipe = IdentityRecipe()
    """The hyper-parameters; ``recipe.seed`` seeds the whole run."""

    @property
    def label(self) -> str:
        return f"Train identity · {self.character_name}"

    def plan(self, *, decode: bool = True) -> IdentityPlan:
        """The run's plan, photos decoded from the request and checked against their hashes (on
        the worker: no document needed). ``decode=False``: without the photos (enough to store)."""
        photos = [
            (entry.asset, entry.open(where=f"face photo {i + 1} of {self.character_name!r}",
                                     refuse=f"cannot learn {self.character_name!r}'s identity",
                                     digest=lambda png, _image: hashlib.sha256(png).hexdigest()))
            for i, entry in enumerate(self.photos if decode else ())
        ]  # fmt: skip
        return IdentityPlan(self.project_id, self.character_id, self.character_name, tuple(photos),
                            Path(self.checkpoint))  # fmt: skip


def identity_training_request(
    plan: IdentityPlan,
    recipe: IdentityRecipe,
    *,
    model: str = "",
    face_encoder: str = "",
    resume: bool = False,
    samples: SampleSettings | None = None,
    device: str = "auto",
) -> IdentityTrainingRequest:
    """The engine request of a planned run (:func:`~comic_studio.workflows.identity.plan_identity`)."""
    photos = []
    for asset, image in plan.photos:
        data, uri = inline_picture_fields(image)
        photos.append(IdentityPhoto(asset=asset, sha256=hashlib.sha256(data).hexdigest(), png=uri))
    return IdentityTrainingRequest(
        **character_fields(plan, model=model, resume=resume, samples=samples, device=device),
        face_encoder=face_encoder,
        photos=tuple(photos),
        recipe=recipe,
    )


def run_identity_job(request: IdentityTrainingRequest, context: TaskContext) -> IdentityOutcome:
    """The engine's runner for ``"train-identity"`` jobs (its worker thread)."""
    device, dtype = request.run_device(context)
    plan = request.plan()
    prompts = sample_prompts(request.samples)
    request.replay_samples(context, prompts, request.recipe.steps)
    try:
        return run_identity_training(
            plan,
            request.recipe,
            model=request.base_model,
            face_encoder=request.face_encoder,
            resume=request.resume,
            device=device,
            dtype=dtype,
            cancel=context.cancelled,
            on_progress=report_step(context),
            samples=request.samples,
            on_samples=report_samples(context, prompts, request.samples.seed),
        )
    except TrainingCancelled as exc:
        raise Cancelled(str(exc)) from exc  # the engine reports it as CANCELLED, with this text


def submit_identity_training(
    engine: Engine, request: IdentityTrainingRequest, priority: int = TRAINING_PRIORITY
) -> str:
    """Queue an identity run on ``engine`` (registering the runner on first use); returns the job id."""
    engine.register_runner(TRAIN_IDENTITY, run_identity_job)
    return engine.submit(request, priority)

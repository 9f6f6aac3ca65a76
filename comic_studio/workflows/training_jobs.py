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

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, decode_image
from comic_studio.generation.request import Cancelled, data_uri_bytes, png_data_uri
from comic_studio.training.data import TrainingPicture
from comic_studio.training.lora import LoraRecipe, TrainingCancelled
from comic_studio.training.samples import SampleSettings, kept_samples
from comic_studio.workflows.class_images import ClassImagesCancelled
from comic_studio.workflows.training import TrainingOutcome, TrainingPlan, run_training, training_device

if TYPE_CHECKING:
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.tasks import TaskContext

TRAIN_LORA: Literal["train-lora"] = "train-lora"
TRAINING_PRIORITY = -10
"""Below every render (0, +5 on the page shown): renders queued before a run starts go first; once
it runs, renders wait for it (or for its cancel)."""


CANCEL_GRACE_S = 180.0
"""How long a cancelled run may take to stop before the engine gives its thread up."""


class ManifestPicture(BaseModel):
    """One picture of the dataset: its hash (the trainer's manifest entry: pixels and caption), its
    caption and the picture itself (PNG, as a data URI: the request is a self-contained snapshot)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    caption: str = Field(min_length=1, max_length=2_000)
    png: str = Field(repr=False)


class TrainingRequest(BaseModel):
    """A LoRA training job for the engine (a :class:`~comic_studio.generation.tasks.TaskRequest`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["train-lora"] = TRAIN_LORA
    project_id: str
    character_id: str
    character_name: str
    trigger: str
    class_prompt: str = ""
    """Prior preservation's prompt derived from the character (the recipe's own wins)."""
    base_model: str = ""
    """Catalogue id, folder or checkpoint file; empty: the default SDXL model."""
    pictures: tuple[ManifestPicture, ...] = Field(min_length=1)
    recipe: LoraRecipe = LoraRecipe()
    """The hyper-parameters; ``recipe.seed`` seeds the whole run."""
    samples: SampleSettings = SampleSettings()
    resume: bool = False
    checkpoint: str
    device: str = "auto"
    """"auto": the engine's device (the app's preference); else e.g. "cpu", "cuda"."""

    @property
    def label(self) -> str:
        return f"Train LoRA · {self.character_name}"

    @property
    def needs_device_memory(self) -> bool:
        return True

    @property
    def cancel_grace_s(self) -> float:
        # The run checks for a cancel before every micro-step and denoising step of a sample, but
        # not while it loads the base model (tens of seconds from a slow disk) or writes a checkpoint.
        return CANCEL_GRACE_S

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def with_checkpoint(self, path: str) -> TrainingRequest:
        """The same run keeping its checkpoint at ``path`` (a cluster worker's own folder)."""
        return self.model_copy(update={"checkpoint": path})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRequest:
        return cls.model_validate(data)

    def manifest(self) -> list[tuple[str, str]]:
        """The dataset manifest without the pixels: (hash, caption) per picture."""
        return [(p.sha256, p.caption) for p in self.pictures]

    def plan(self, *, decode: bool = True) -> TrainingPlan:
        """The run's plan, pictures decoded from the request (on the worker: no document needed).
        ``decode=False``: without the pictures (enough to store the result)."""
        pictures = []
        for i, entry in enumerate(self.pictures if decode else ()):
            where = f"training picture {i + 1} of {self.character_name!r}"
            try:
                image = decode_image(data_uri_bytes(entry.png), where=where).convert("RGB")
            except (UnsafeInputError, ValueError) as exc:
                raise ComicStudioError(f"cannot train {self.character_name!r}: {where}: {exc}") from exc
            picture = TrainingPicture(image, entry.caption)
            if picture.digest != entry.sha256:
                raise ComicStudioError(f"cannot train {self.character_name!r}: {where} does not match its hash")
            pictures.append(picture)
        return TrainingPlan(self.project_id, self.character_id, self.character_name, self.trigger,
                            tuple(pictures), Path(self.checkpoint), self.class_prompt)  # fmt: skip


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
    pictures = []
    for picture in plan.pictures:
        buf = io.BytesIO()
        picture.image.convert("RGB").save(buf, format="PNG")
        pictures.append(
            ManifestPicture(sha256=picture.digest, caption=picture.caption, png=png_data_uri(buf.getvalue()))
        )
    return TrainingRequest(
        project_id=plan.project_id,
        character_id=plan.character_id,
        character_name=plan.character_name,
        trigger=plan.trigger,
        class_prompt=plan.class_prompt,
        base_model=model,
        pictures=tuple(pictures),
        recipe=recipe,
        samples=samples or SampleSettings(),
        resume=resume,
        checkpoint=str(plan.checkpoint),
        device=device,
    )


def run_training_job(request: TrainingRequest, context: TaskContext) -> TrainingOutcome:
    """The engine's runner for ``"train-lora"`` jobs (its worker thread)."""
    device, dtype = training_device(context.resources.device if request.device == "auto" else request.device)
    plan = request.plan()
    total = request.recipe.steps

    def progress(p: Any) -> None:
        info = {"loss": p.loss, "lr": p.learning_rate, "steps_per_second": p.steps_per_second}
        context.progress(p.step, p.total, info, eta=p.eta_seconds)

    def samples(step: int, steps: int, images: list[Any], files: list[Path]) -> None:
        prompts = list(request.samples.prompts_for(plan.trigger))
        context.sample(step, steps, images, {"prompts": prompts, "files": [str(f) for f in files],
                                             "seed": request.samples.seed})  # fmt: skip

    if request.resume:
        replay_kept_samples(request.checkpoint, request.samples, request.samples.prompts_for(plan.trigger), context,
                            total)  # fmt: skip
    try:
        return run_training(
            plan,
            request.recipe,
            model=request.base_model,
            resume=request.resume,
            device=device,
            dtype=dtype,
            cancel=context.cancelled,
            on_progress=progress,
            # Prior preservation's class pictures come first: their count, flagged for the dialog.
            on_class_picture=lambda done, total: context.progress(done, total, {"class_pictures": 1.0}),
            samples=request.samples,
            on_samples=samples,
        )
    except TrainingCancelled as exc:
        raise Cancelled(str(exc)) from exc  # the engine reports it as CANCELLED, with this text
    except ClassImagesCancelled as exc:
        raise Cancelled(
            f"cancelled while making class pictures ({exc.made} of {exc.total} kept; train again to continue)"
        ) from exc


def replay_kept_samples(
    checkpoint: str, settings: SampleSettings, prompts: tuple[str, ...], context: TaskContext, total: int
) -> None:
    """A resumed run shows the samples the interrupted one kept beside ``checkpoint`` (the strip
    continues). Shared by the LoRA and the identity runs."""
    from comic_studio.core.safe_read import open_image

    for step, files in kept_samples(checkpoint):
        try:
            images = [open_image(f).convert("RGB") for f in files]
        except (OSError, UnsafeInputError):
            continue  # a sample lost since: the strip just lacks it
        context.sample(step, total, images, {"prompts": list(prompts), "files": [str(f) for f in files],
                                             "seed": settings.seed, "replayed": True})  # fmt: skip


def submit_training(engine: Engine, request: TrainingRequest, priority: int = TRAINING_PRIORITY) -> str:
    """Queue a training run on ``engine`` (registering the runner on first use); returns the job id."""
    engine.register_runner(TRAIN_LORA, run_training_job)
    return engine.submit(request, priority)

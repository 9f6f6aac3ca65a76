"""Training AnimeAdapter as a job of the generation engine (the app's "Train AnimeAdapter…"), as LoRA
training is (:mod:`comic_studio.workflows.training_jobs`): this module registers a runner for the
``"train-anime-adapter"`` kind on the engine and submits an :class:`AnimeTrainingRequest`.

The run is :func:`~comic_studio.workflows.anime_training.train_anime_adapter`, the one the CLI's
``train anime-adapter`` runs, on the engine's worker (the GPU's one owner: the engine frees its
cached render models first and renders queued meanwhile wait). It reports PROGRESS per optimizer
step (``info``: loss, lr, steps_per_second; ``eta``) and, when it builds the dataset from a folder of
pictures first, per picture looked at (``info``: ``{"dataset_pictures": 1.0}``); FINISHED carries an
:class:`AnimeTrainingOutcome`; a cancel saves the checkpoint in the output folder (CANCELLED) and a
run submitted with ``resume`` continues it bit for bit.

Unlike a LoRA run's request, which carries its few pictures, this one names folders: the dataset
(thousands of pictures for real weights) is read where it lies, so the engine must see the same
disk (true of the app's in-process engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from comic_studio.generation.request import Cancelled
from comic_studio.training.anime_adapter import MANIFEST, AnimeAdapterRecipe
from comic_studio.training.lora import TrainingCancelled
from comic_studio.workflows.anime_training import (
    CHECKPOINT,
    DatasetCancelled,
    build_dataset,
    train_anime_adapter,
)
from comic_studio.workflows.training_job_base import TRAINING_PRIORITY, TrainingJobRequest, report_step

if TYPE_CHECKING:
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.tasks import TaskContext

TRAIN_ANIME_ADAPTER: Literal["train-anime-adapter"] = "train-anime-adapter"
DATASET_FOLDER = "dataset"
"""Where a run from a folder of pictures writes the dataset it builds (inside the output folder)."""


class AnimeTrainingRequest(TrainingJobRequest):
    """An AnimeAdapter training job (a :class:`~comic_studio.generation.tasks.TaskRequest`); as a LoRA
    run's, it waits below every render and it checks for a cancel before every micro-step and
    every dataset picture."""

    kind: Literal["train-anime-adapter"] = TRAIN_ANIME_ADAPTER
    data: str = ""
    """A dataset folder with ``metadata.jsonl`` ({image, mask, pose, prompt} rows)..."""
    images: str = ""
    """...or a folder of character pictures, from which the dataset is built (masks and poses
    detected; ``NAME.mask.png`` / ``NAME.pose.png`` / ``NAME.txt`` beside a picture win)."""
    out: str = Field(min_length=1)
    """The weights folder (``anime_adapter.safetensors`` + ``config.json``; the checkpoint too)."""
    base: str = ""
    """The base: an SD 1.5 or SDXL model's catalogue id, folder or checkpoint (empty: the SD 1.5
    default); an SDXL one trains SDXL-family weights."""
    encoder: str = ""
    """The CLIP vision encoder (empty: clip-vit-l-14-vision)."""
    controller_model: str = ""
    """The frozen pose controller's folder or catalogue id (empty: the recipe's controller's default)."""
    recipe: AnimeAdapterRecipe = AnimeAdapterRecipe()
    resume: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> AnimeTrainingRequest:
        if bool(self.data.strip()) == bool(self.images.strip()):
            raise ValueError("give either a dataset folder ('data') or a folder of pictures ('images'), not both")
        return self

    @property
    def label(self) -> str:
        return f"Train AnimeAdapter · {Path(self.out).name}"

    @property
    def checkpoint(self) -> Path:
        return Path(self.out) / CHECKPOINT


@dataclass(frozen=True)
class AnimeTrainingOutcome:
    """What a finished run returns (on the FINISHED message)."""

    folder: str
    steps: int
    final_loss: float
    evaluation_loss: float
    unused: dict[str, str] = field(default_factory=dict)
    """Pictures the dataset builder could not use → why (and what to put beside them)."""


def run_anime_training_job(request: AnimeTrainingRequest, context: TaskContext) -> AnimeTrainingOutcome:
    """The engine's runner for ``"train-anime-adapter"`` jobs (its worker thread)."""
    device, dtype = request.run_device(context)
    out = Path(request.out)
    unused: dict[str, str] = {}
    try:
        if request.data:
            data = Path(request.data)
        elif request.resume and (out / DATASET_FOLDER / MANIFEST).is_file():
            data = out / DATASET_FOLDER  # the dataset the interrupted run trained on
        else:
            built = build_dataset(Path(request.images), out / DATASET_FOLDER, cancel=context.cancelled,
                                  on_picture=lambda done, total: context.progress(done, total, {"dataset_pictures": 1.0}))  # fmt: skip
            data, unused = built.folder, built.problems

        trained = train_anime_adapter(data, out, request.recipe, base=request.base, encoder=request.encoder,
                                      controller=request.controller_model, resume=request.resume, device=device,
                                      dtype=dtype, cancel=context.cancelled, on_progress=report_step(context))  # fmt: skip
    except TrainingCancelled as exc:
        raise Cancelled(f"{exc}; train again with Resume to continue") from exc
    except DatasetCancelled as exc:
        raise Cancelled(str(exc)) from exc
    return AnimeTrainingOutcome(str(trained.folder), trained.steps, trained.final_loss, trained.evaluation_loss, unused)


def submit_anime_training(engine: Engine, request: AnimeTrainingRequest, priority: int = TRAINING_PRIORITY) -> str:
    """Queue a run on ``engine`` (registering the runner on first use); returns the job id."""
    engine.register_runner(TRAIN_ANIME_ADAPTER, run_anime_training_job)
    return engine.submit(request, priority)

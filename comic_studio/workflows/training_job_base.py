"""What the engine's training jobs share (the LoRA's :mod:`~comic_studio.workflows.training_jobs`,
StableIdentity's :mod:`~comic_studio.workflows.identity_jobs`, AnimeAdapter's
:mod:`~comic_studio.workflows.anime_training_jobs`): the request's base (a self-contained, frozen
JSON snapshot that needs the device's memory and may take a while to stop), the pictures a request
carries inline (a PNG data URI and its hash, checked on the worker), the priority below every
render and the progress report of an optimizer step.

The hash differs by trainer, so each says how to compute it (:meth:`InlinePicture.open`): a LoRA
picture's is the trainer's manifest entry (pixels and caption), a face photo's that of the PNG.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, decode_image, open_image
from comic_studio.generation.request import data_uri_bytes, png_data_uri
from comic_studio.training.samples import SampleSettings, kept_samples
from comic_studio.workflows.training import training_device

if TYPE_CHECKING:
    from PIL import Image

    from comic_studio.generation.tasks import TaskContext

TRAINING_PRIORITY = -10
"""Below every render (0, +5 on the page shown): renders queued before a run starts go first; once
it runs, renders wait for it (or for its cancel)."""

CANCEL_GRACE_S = 180.0
"""How long a cancelled run may take to stop before the engine gives its thread up: a run checks
for a cancel before every micro-step, not while it loads its models (tens of seconds from a slow
disk) or writes a checkpoint."""


class TrainingJobRequest(BaseModel):
    """The base of a training job's request (a :class:`~comic_studio.generation.tasks.TaskRequest`);
    a subclass adds its ``kind``, its fields and its ``label`` (the base's ``device`` comes first in
    the JSON; the order of keys does not matter to :meth:`from_dict`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = "auto"
    """"auto": the engine's device (the app's preference); else e.g. "cpu", "cuda"."""

    @property
    def needs_device_memory(self) -> bool:
        return True

    @property
    def cancel_grace_s(self) -> float:
        return CANCEL_GRACE_S

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)

    def run_device(self, context: TaskContext) -> tuple[str, str]:
        """The device and precision the run uses: the request's ``device``, "auto" being the
        engine's (the app's preference)."""
        return training_device(context.resources.device if self.device == "auto" else self.device)


class CharacterTrainingRequest(TrainingJobRequest):
    """The base of a request that trains one character (the LoRA's, the identity tokens'): whose run
    it is, the base model, the sample settings, and the checkpoint it saves to or resumes from."""

    project_id: str
    character_id: str
    character_name: str
    base_model: str = ""
    """Catalogue id, folder or checkpoint file; empty: the default SDXL model."""
    samples: SampleSettings = SampleSettings()
    resume: bool = False
    checkpoint: str

    def with_checkpoint(self, path: str) -> Self:
        """The same run keeping its checkpoint at ``path`` (a cluster worker's own folder:
        ``generation.tasks.CheckpointedTask``)."""
        return self.model_copy(update={"checkpoint": path})

    def replay_samples(self, context: TaskContext, prompts: tuple[str, ...], total: int) -> None:
        """A resumed run first shows the samples the interrupted one kept (:func:`replay_kept_samples`)."""
        if self.resume:
            replay_kept_samples(self.checkpoint, self.samples, prompts, context, total)


def character_fields(
    plan: Any, *, model: str, resume: bool, samples: SampleSettings | None, device: str
) -> dict[str, Any]:
    """The :class:`CharacterTrainingRequest` fields of a planned run (``plan``: a LoRA's
    :class:`~comic_studio.workflows.training.TrainingPlan` or an identity's plan)."""
    return {"project_id": plan.project_id, "character_id": plan.character_id, "character_name": plan.character_name,
            "base_model": model, "samples": samples or SampleSettings(), "resume": resume,
            "checkpoint": str(plan.checkpoint), "device": device}  # fmt: skip


class InlinePicture(BaseModel):
    """A picture a request carries: the PNG as a data URI (the request is a self-contained
    snapshot) and a hash that the worker checks (:meth:`open`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    png: str = Field(repr=False)

    def open(self, *, where: str, refuse: str, digest: Callable[[bytes, Image.Image], str]) -> Image.Image:
        """The picture (RGB), decoded through the safe reader and checked: ``digest(png_bytes,
        image)`` must give :attr:`sha256`. Raises :class:`ComicStudioError` "REFUSE: WHERE: why"."""
        try:
            data = data_uri_bytes(self.png)
            image = decode_image(data, where=where).convert("RGB")
        except (UnsafeInputError, ValueError) as exc:
            raise ComicStudioError(f"{refuse}: {where}: {exc}") from exc
        if digest(data, image) != self.sha256:
            raise ComicStudioError(f"{refuse}: {where} does not match its hash")
        return image


def png_bytes(image: Image.Image) -> bytes:
    """``image`` (as RGB) as PNG: what an :class:`InlinePicture` carries (as ``png_data_uri``)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def inline_picture_fields(image: Image.Image) -> tuple[bytes, str]:
    """``(png bytes, data URI)`` of ``image``: the bytes for the hash, the URI for the request."""
    data = png_bytes(image)
    return data, png_data_uri(data)


def report_step(context: TaskContext) -> Callable[[Any], None]:
    """The trainers' ``on_progress``: a PROGRESS message per optimizer step (``info``: loss, lr,
    steps_per_second; ``eta``)."""

    def progress(p: Any) -> None:
        info = {"loss": p.loss, "lr": p.learning_rate, "steps_per_second": p.steps_per_second}
        context.progress(p.step, p.total, info, eta=p.eta_seconds)

    return progress


def report_samples(context: TaskContext, prompts: tuple[str, ...] | list[str], seed: int) -> Callable[..., None]:
    """The trainers' ``on_samples``: a SAMPLE message with the images, their prompts and files."""

    def samples(step: int, steps: int, images: list[Any], files: list[Path]) -> None:
        context.sample(step, steps, images, {"prompts": list(prompts), "files": [str(f) for f in files],
                                             "seed": seed})  # fmt: skip

    return samples


def replay_kept_samples(
    checkpoint: str, settings: SampleSettings, prompts: tuple[str, ...], context: TaskContext, total: int
) -> None:
    """A resumed run shows the samples the interrupted one kept beside ``checkpoint`` (the strip
    continues). Shared by the LoRA and the identity runs."""
    for step, files in kept_samples(checkpoint):
        try:
            images = [open_image(f).convert("RGB") for f in files]
        except (OSError, UnsafeInputError):
            continue  # a sample lost since: the strip just lacks it
        context.sample(step, total, images, {"prompts": list(prompts), "files": [str(f) for f in files],
                                             "seed": settings.seed, "replayed": True})  # fmt: skip

"""Sample images while a LoRA trains: fixed prompts at a fixed seed, every N steps, rendered with the
weights so far (the training adapter active), so the author sees the character emerge (and stops a
run that overfits).

The seed paper and its script are silent about samples during training (the script the seed ran,
diffusers' ``train_text_to_image_lora_sdxl``, renders "validation" images per epoch); everything
here is therefore a setting, with defaults chosen for a visible but cheap strip: every 100 steps,
the identifier prompt, seed 42 (the seed's training seed), 25 steps at guidance 5.

The samples come from the trainer's own SDXL components through diffusers' stock SDXL pipeline,
with the base model's own scheduler (a fresh copy) and a CPU generator seeded with the sample seed,
inside ``torch.random.fork_rng``: sampling draws nothing from the generators the training uses, so
a run with samples ends with bitwise the same weights as one without. Each picture is written
atomically (:mod:`comic_studio.core.atomic`) into a folder beside the checkpoint, only after the
pipeline finished: a cancel during sampling (asked at every denoising step) leaves no half-written
file, and a resumed run renders the samples of the step it stopped at again.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.errors import ComicStudioError

if TYPE_CHECKING:
    from PIL import Image

    from comic_studio.training.identity import IdentityTrainer
    from comic_studio.training.lora import LoraTrainer

DEFAULT_SAMPLE_EVERY = 100


class SamplesCancelled(ComicStudioError):
    """A cancel arrived while samples were being rendered (none of that step's files was kept)."""


class SampleSettings(BaseModel):
    """When and what to sample. Not part of the recipe: changing it changes no weight, so a run
    may be resumed with other sample settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: int = Field(default=DEFAULT_SAMPLE_EVERY, ge=0, le=100_000)
    """Render samples after every ``every``-th optimizer step (0: never)."""
    prompts: tuple[str, ...] = Field(default=(), max_length=8)
    """The fixed prompts; empty: "a photo of <trigger>" (the identifier prompt of the captions)."""
    seed: int = Field(default=42, ge=0, lt=2**63)
    steps: int = Field(default=25, ge=1, le=200)
    guidance: float = Field(default=5.0, ge=0, le=30)
    size: int = Field(default=0, ge=0, le=2048)
    """Side of the square samples in pixels; 0: the recipe's training resolution."""

    def due(self, step: int) -> bool:
        return self.every > 0 and step > 0 and step % self.every == 0

    def prompts_for(self, trigger: str) -> tuple[str, ...]:
        return self.prompts or (f"a photo of {trigger}",)


def samples_folder(checkpoint: str | Path) -> Path:
    """Where the samples of the run that keeps ``checkpoint`` go: a folder beside it."""
    path = Path(checkpoint)
    return path.with_name(path.stem + ".samples")


def sample_paths(checkpoint: str | Path, step: int, count: int) -> list[Path]:
    folder = samples_folder(checkpoint)
    return [folder / f"step-{step:06d}-{i}.png" for i in range(count)]


def kept_samples(checkpoint: str | Path) -> list[tuple[int, list[Path]]]:
    """The samples a run kept beside ``checkpoint`` so far: ``(step, files in prompt order)``,
    oldest step first ([] when there are none). What the strip shows again on resume, and what the
    character's card and LoRA box show during and after a run (also of a run in another process,
    e.g. ``comic-studio train lora``)."""
    by_step: dict[int, dict[int, Path]] = {}
    folder = samples_folder(checkpoint)
    if not folder.is_dir():
        return []
    for path in folder.glob("step-*-*.png"):  # atomic writes' temporaries (.NAME.x.tmp) never match
        parts = path.stem.split("-")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            by_step.setdefault(int(parts[1]), {})[int(parts[2])] = path
    return [(step, [files[i] for i in sorted(files)]) for step, files in sorted(by_step.items())]


def render_samples(
    trainer: LoraTrainer | IdentityTrainer,
    settings: SampleSettings,
    prompts: tuple[str, ...],
    *,
    cancel: Callable[[], bool] = lambda: False,
) -> list[Image.Image]:
    """Render ``prompts`` with the trainer's UNet as it is now (the LoRA active). Raises
    :class:`SamplesCancelled` when ``cancel()`` turns true during a denoising step. The trainer's
    training mode and every random generator are as they were afterwards."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    components = trainer.components
    scheduler = type(components["scheduler"]).from_config(components["scheduler"].config)
    pipe = StableDiffusionXLPipeline(**{**components, "scheduler": scheduler}, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    size = settings.size or trainer.recipe.resolution
    size = max(pipe.vae_scale_factor, size // pipe.vae_scale_factor * pipe.vae_scale_factor)

    def stop_when_cancelled(_pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if cancel():
            raise SamplesCancelled("sample rendering cancelled")
        return kwargs

    was_training = trainer.unet.training
    images: list[Image.Image] = []
    trainer.unet.eval()
    try:
        # fork_rng: the pipeline (and anything it calls) must not move the global generators the
        # training draws from; the samples' own noise comes from a CPU generator per prompt.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            for prompt in prompts:
                generator = torch.Generator("cpu").manual_seed(settings.seed)
                out = pipe(
                    prompt=prompt,
                    height=size,
                    width=size,
                    num_inference_steps=settings.steps,
                    guidance_scale=settings.guidance,
                    generator=generator,
                    callback_on_step_end=stop_when_cancelled,
                )
                images.append(out.images[0].convert("RGB"))
    finally:
        trainer.unet.train(was_training)
    return images


def keep_samples(checkpoint: str | Path, step: int, images: list[Image.Image]) -> list[Path]:
    """Write the step's samples beside the checkpoint (each file atomically)."""
    paths = sample_paths(checkpoint, step, len(images))
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path, image in zip(paths, images, strict=True):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        atomic_write_bytes(path, buf.getvalue(), f"training sample {path.name}")
    return paths


def remove_samples(checkpoint: str | Path) -> None:
    """Drop a run's sample folder (with its checkpoint, once the LoRA is stored)."""
    folder = samples_folder(checkpoint)
    if folder.is_dir():
        for path in folder.glob("step-*.png"):
            path.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # something else lives there: leave it

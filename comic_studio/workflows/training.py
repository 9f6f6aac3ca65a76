"""Train a character's LoRA from its reference pictures (StoryBooth's DreamBooth-LoRA) and keep it on
the character, shared by the CLI (``comic-studio train lora``) and, later, the studio.

The pictures are the character's face and outfit references; each gets the DreamBooth caption
"a photo of <trigger> <class>" (StoryBooth's identifier prompt, e.g. "a blue sks plush"), the
class word from the character's pronouns. The base model is loaded fresh, not from the engine's
shared cache: training adds an adapter to the UNet and must not touch the one renders use.

A run writes a checkpoint to the state folder (``training/<project>-<character>.safetensors``)
every ``checkpoint_every`` steps and when cancelled, so ``resume=True`` continues it — after a
cancel, a crash or in another process — bit for bit. The finished LoRA (diffusers layout, with
its card in the file's metadata) becomes a project asset and the character's ``lora_asset`` (one
undoable step) — or, over the project's asset limit (a high rank), a file in the user's LoRA library
folder named by its hash (:mod:`comic_studio.core.lora_library`); the checkpoint is then removed.

With prior preservation on (``recipe.prior_preservation``) the run first gets its class pictures
from the same base model (:mod:`comic_studio.workflows.class_images`: made once, cached, reused by
every character) — "a photo of a <class word>" unless the recipe names another class prompt.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comic_studio.core import character_edits
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.lora_library import check_library_writable, read_character_lora, store_library_lora
from comic_studio.core.model import Character, Pronouns, lora_fits_project, lora_project_limit
from comic_studio.core.safe_read import UnsafeInputError, decode_image
from comic_studio.core.settings import state_dir
from comic_studio.training.data import TrainingPicture
from comic_studio.training.export import LoraFiles
from comic_studio.training.lora import LoraRecipe, LoraTrainer, TrainingProgress
from comic_studio.training.samples import SampleSettings
from comic_studio.workflows.class_images import ClassImageSpec, base_model_hash, class_prompt, make_class_pictures

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_TRIGGER = "sks"
"""DreamBooth's rare-token identifier, as StoryBooth's prompts use it ("a photo of sks woman")."""
CLASS_WORDS = {Pronouns.SHE: "woman", Pronouns.HE: "man", Pronouns.THEY: "person"}


@dataclass(frozen=True)
class TrainedLora:
    asset: str
    """sha256 of the LoRA file, now a project asset and the character's ``lora_asset``."""
    size: int
    steps: int
    final_loss: float


def checkpoint_path(project_id: str, character_id: str) -> Path:
    """Where a run for this character of this project keeps its checkpoint."""
    safe = "-".join(re.sub(r"[^A-Za-z0-9_]", "_", part)[:64] for part in (project_id, character_id))
    return state_dir() / "training" / f"{safe}.safetensors"


def character_pictures(doc: Document, character: Character, trigger: str) -> list[TrainingPicture]:
    """The character's references as training pictures with their DreamBooth captions."""
    caption = f"a photo of {trigger} {CLASS_WORDS.get(character.pronouns, 'person')}"
    pictures = []
    for ref in dict.fromkeys([*character.face_refs, *character.body_refs]):
        try:
            image = decode_image(doc.assets.get(ref), where=f"{character.name}'s reference {ref[:12]}…")
        except UnsafeInputError as exc:
            raise ComicStudioError(f"cannot train {character.name!r}: {exc}") from exc
        pictures.append(TrainingPicture(image.convert("RGB"), caption))
    if not pictures:
        raise ComicStudioError(
            f"cannot train {character.name!r}: the character has no face or outfit references — add a few pictures first"
        )
    return pictures


@dataclass(frozen=True)
class TrainingPlan:
    """What a run needs from the document, read on the GUI thread (or the CLI's) so that the run
    itself (:func:`run_training`, on a helper or worker thread) never touches the document."""

    project_id: str
    character_id: str
    character_name: str
    trigger: str
    """The identifier and class word, e.g. "sks woman" (the card's ``trigger``)."""
    pictures: tuple[TrainingPicture, ...]
    checkpoint: Path
    class_prompt: str = ""
    """The prior-preservation prompt derived from the character ("a photo of a woman"); a recipe's
    own ``class_prompt`` replaces it."""


@dataclass(frozen=True)
class TrainingOutcome:
    """A finished run: the LoRA file (diffusers layout, card in its metadata), not stored yet."""

    data: bytes
    steps: int
    final_loss: float


def plan_training(
    doc: Document,
    character_id: str,
    *,
    trigger: str = DEFAULT_TRIGGER,
    resume: bool = False,
    captions: list[str] | None = None,
) -> TrainingPlan:
    """Read the character's pictures (with their captions; ``captions`` replaces them in order, as
    the Train dialog's editable list does) and where its checkpoint lives. Raises
    :class:`ComicStudioError` for a missing character, no pictures, or nothing to resume."""
    character = doc.project.character(character_id)
    if character is None:
        raise ComicStudioError(f"character {character_id!r} does not exist")
    pictures = character_pictures(doc, character, trigger)
    if captions is not None:
        if len(captions) != len(pictures) or not all(c.strip() for c in captions):
            raise ComicStudioError(
                f"cannot train {character.name!r}: every picture needs a caption ({len(pictures)} pictures)"
            )
        pictures = [TrainingPicture(p.image, c.strip()) for p, c in zip(pictures, captions, strict=True)]
    checkpoint = checkpoint_path(doc.project.id, character.id)
    if resume and not checkpoint.is_file():
        raise ComicStudioError(f"nothing to resume for {character.name!r}: no checkpoint at {checkpoint}")
    return TrainingPlan(
        doc.project.id,
        character.id,
        character.name,
        f"{trigger} {CLASS_WORDS.get(character.pronouns, 'person')}",
        tuple(pictures),
        checkpoint,
        class_prompt(CLASS_WORDS.get(character.pronouns, "person")),
    )


def run_training(
    plan: TrainingPlan,
    recipe: LoraRecipe,
    *,
    model: str = "",
    resume: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
    cancel: Callable[[], bool] = lambda: False,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    on_class_picture: Callable[[int, int], None] | None = None,
    samples: SampleSettings | None = None,
    on_samples: Callable[[int, int, list[Image.Image], list[Path]], None] | None = None,
) -> TrainingOutcome:
    """Train (or, with ``resume``, continue from ``plan.checkpoint``) and return the LoRA file.
    Any thread; touches no document. A cancel raises
    :class:`~comic_studio.training.lora.TrainingCancelled` after saving the checkpoint, or
    :class:`~comic_studio.workflows.class_images.ClassImagesCancelled` while the class pictures
    are being made (those made are kept). ``on_class_picture(done, total)`` reports those.

    ``samples``: render the fixed-prompt samples every ``samples.every`` steps with the weights so
    far, keep them beside the checkpoint and hand them to ``on_samples(step, total, images, files)``
    (:mod:`comic_studio.training.samples`; a cancel while they render stops the run like any cancel)."""
    from comic_studio.generation.models.loading import ModelLoadError, load_sdxl_components
    from comic_studio.generation.models.sdxl import resolve_sdxl
    from comic_studio.training.export import save_lora
    from comic_studio.training.samples import remove_samples

    if resume and not plan.checkpoint.is_file():
        raise ComicStudioError(f"nothing to resume for {plan.character_name!r}: no checkpoint at {plan.checkpoint}")
    if not resume:
        remove_samples(plan.checkpoint)  # an earlier run's: a new run's strip starts empty
    try:
        source = resolve_sdxl(model)
        parts = load_sdxl_components(source, dtype=dtype, device=device)  # fresh: not the renders' UNet
    except ModelLoadError as exc:
        raise ComicStudioError(f"cannot train {plan.character_name!r}: {exc}") from exc
    class_pictures, spec = None, None
    if recipe.prior_preservation:
        spec = ClassImageSpec(base_model_hash(source.path), recipe.class_prompt.strip() or plan.class_prompt,
                              recipe.resolution, recipe.seed, recipe.class_steps, recipe.class_guidance,
                              recipe.class_images)  # fmt: skip
        class_pictures = make_class_pictures(parts, spec, device=device, cancel=cancel, on_picture=on_class_picture)
    trainer = LoraTrainer(parts, list(plan.pictures), recipe, class_pictures=class_pictures, device=device)
    try:
        _check_lora_storable(plan, sum(v.numel() * v.element_size() for v in trainer.lora_state().values()))
        if resume:
            trainer.resume(plan.checkpoint)
        on_step_end = (
            step_sampler(plan.checkpoint, samples, samples.prompts_for(plan.trigger), cancel, on_samples)
            if samples is not None and samples.every
            else None
        )
        trainer.train(plan.checkpoint, cancel=cancel, on_progress=on_progress, on_step_end=on_step_end)
        final_loss = trainer.losses[-1] if trainer.losses else None
        card = {
            "method": "storybooth-dreambooth-lora",
            "character": plan.character_name,
            "base_model": source.cache_id,
            "trigger": plan.trigger,
            "steps": trainer.step,
            "recipe": recipe.model_dump(mode="json"),
            "pictures": trainer.manifest,
            "class_pictures": None
            if spec is None
            else {"prompt": spec.prompt, "count": spec.count, "base_model_sha256": spec.base_model},  # fmt: skip
            "final_loss": final_loss,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with tempfile.TemporaryDirectory(prefix="comic-studio-lora-") as folder:
            files = save_lora(folder, "lora", trainer.lora_state(), card)
            data = files.diffusers.read_bytes()
        if not lora_fits_project(len(data)):
            # Written here, on the run's thread: storing it on the GUI thread then only names it.
            store_library_lora(data)
    finally:
        trainer.close()
    return TrainingOutcome(data, trainer.step, final_loss if final_loss is not None else 0.0)


def _check_lora_storable(plan: TrainingPlan, size: int) -> None:
    """Before the first step: a LoRA over the project's asset limit will be kept in the user's LoRA
    library folder, so that folder must be writable — finding out when storing it would lose the
    run. (Size grows linearly with the rank: float32, about 23 MB at StoryBooth's rank 4 on SDXL.)"""
    if lora_fits_project(size):
        return
    try:
        check_library_writable()
    except ComicStudioError as exc:
        raise ComicStudioError(
            f"cannot train {plan.character_name!r}: its LoRA ({size / 2**20:.2f} MB) is over the project's "
            f"{lora_project_limit() / 2**20:.2f} MB file limit and {exc}"
        ) from exc


def step_sampler(
    checkpoint: Path,
    settings: SampleSettings,
    prompts: tuple[str, ...],
    cancel: Callable[[], bool],
    on_samples: Callable[[int, int, list[Image.Image], list[Path]], None] | None,
    render: Callable[..., list[Image.Image]] | None = None,
) -> Callable[[Any], bool]:
    """A trainer's step-end hook that renders, keeps (beside ``checkpoint``) and reports the samples
    when they are due. ``render(trainer, settings, prompts, cancel=…)``: how the trainer renders
    (default :func:`~comic_studio.training.samples.render_samples`; the identity trainer injects
    its rows). Shared by the LoRA and the identity runs."""
    from comic_studio.training.samples import SamplesCancelled, keep_samples, render_samples, sample_paths

    draw = render or render_samples

    def at_step_end(trainer: Any) -> bool:
        step = trainer.step
        if not settings.due(step) or all(p.is_file() for p in sample_paths(checkpoint, step, len(prompts))):
            return True  # not due, or rendered before the run was cancelled and resumed
        try:
            images = draw(trainer, settings, prompts, cancel=cancel)
        except SamplesCancelled:
            return False  # the trainer saves its checkpoint and stops; no file of this step was written
        files = keep_samples(checkpoint, step, images)
        if on_samples is not None:
            on_samples(step, trainer.recipe.steps, images, files)
        return True

    return at_step_end


def store_trained_lora(doc: Document, plan: TrainingPlan, outcome: TrainingOutcome) -> TrainedLora:
    """Make the LoRA a project asset and the character's ``lora_asset`` (one undoable step; on the
    GUI thread in the studio), then drop the finished run's checkpoint."""
    character = doc.project.character(plan.character_id)
    if character is None:
        raise ComicStudioError(f"{plan.character_name!r} was deleted while its LoRA trained; the LoRA is not kept")
    if not lora_fits_project(len(outcome.data)):  # too big for the project: the user's LoRA library, by hash
        asset = store_library_lora(outcome.data)
    else:
        asset = doc.assets.add(outcome.data, validate_image=False, where=f"{character.name}'s LoRA")
    character_edits.update_character(doc, character.id, label=f"Train LoRA of {character.name}", lora_asset=asset,
                                     lora_bytes=len(outcome.data))  # fmt: skip
    plan.checkpoint.unlink(missing_ok=True)
    return TrainedLora(asset, len(outcome.data), outcome.steps, outcome.final_loss)


def train_character_lora(
    doc: Document,
    character_id: str,
    recipe: LoraRecipe,
    *,
    model: str = "",
    trigger: str = DEFAULT_TRIGGER,
    resume: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
    cancel: Callable[[], bool] = lambda: False,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    on_class_picture: Callable[[int, int], None] | None = None,
    samples: SampleSettings | None = None,
    on_samples: Callable[[int, int, list[Image.Image], list[Path]], None] | None = None,
) -> TrainedLora:
    """Train (or, with ``resume``, continue) the character's LoRA and store it on the character:
    :func:`plan_training`, :func:`run_training` and :func:`store_trained_lora` in one go (the CLI).
    A cancel raises :class:`~comic_studio.training.lora.TrainingCancelled` after saving the
    checkpoint; the document is only changed when the run finishes. ``samples``/``on_samples``: as
    :func:`run_training` (the files land where the studio's card looks for them)."""
    plan = plan_training(doc, character_id, trigger=trigger, resume=resume)
    outcome = run_training(
        plan,
        recipe,
        model=model,
        resume=resume,
        device=device,
        dtype=dtype,
        cancel=cancel,
        on_progress=on_progress,
        on_class_picture=on_class_picture,
        samples=samples,
        on_samples=on_samples,
    )
    return store_trained_lora(doc, plan, outcome)


def training_device(choice: str = "auto") -> tuple[str, str]:
    """The device and the frozen model's precision: float16 on CUDA (as the seed trained), float32
    on the CPU. ``auto``: CUDA when available."""
    import torch

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return choice, "float16" if choice.startswith("cuda") else "float32"


def lora_card(data: bytes) -> dict[str, Any]:
    """The card stored in a trained LoRA file's metadata (``{}`` for a LoRA from elsewhere)."""
    from comic_studio.training.export import read_card

    try:
        card = read_card(data)
    except (ValueError, UnsafeInputError):
        return {}
    return card if isinstance(card, dict) else {}


def export_character_lora(doc: Document, character_id: str, folder: str | Path, name: str = "") -> LoraFiles:
    """Write the character's LoRA for other tools into ``folder``: ``NAME.safetensors`` (diffusers
    layout, what the project holds), ``NAME.kohya.safetensors`` (``lora_unet_…`` keys with
    ``.alpha``: what A1111 and ComfyUI load) and ``NAME.json`` (its card). ``name`` defaults to the
    character's name. Raises :class:`ComicStudioError` naming the character or the folder."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from comic_studio.training.export import save_lora

    character = doc.project.character(character_id)
    if character is None:
        raise ComicStudioError(f"character {character_id!r} does not exist")
    if character.lora_asset is None:
        raise ComicStudioError(f"{character.name!r} has no trained LoRA to export — train one first")
    where = f"{character.name}'s LoRA {character.lora_asset[:12]}…"
    data = read_character_lora(doc.assets, character)  # the project's, or the LoRA library's
    try:
        state = load(data)
    except (SafetensorError, ValueError) as exc:
        raise ComicStudioError(f"{where} is not a readable .safetensors file ({exc})") from exc
    prefixes = ("unet.", "text_encoder.", "text_encoder_2.")  # the text encoders' when they were trained
    if not state or not all(k.startswith(prefixes) and ".lora" in k for k in state):
        raise ComicStudioError(f"{where} is not a LoRA trained here (diffusers layout, 'unet.…lora…' keys)")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name or character.name).strip("_") or "character"
    try:
        return save_lora(folder, stem, state, lora_card(data) or {"character": character.name})
    except OSError as exc:
        raise ComicStudioError(f"cannot export {where} to {folder} ({exc.strerror or exc})") from exc

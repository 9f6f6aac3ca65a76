"""Learn a character's identity tokens from its face photos (StableIdentity on SDXL) and keep them on
the character, shared by the CLI (``comic-studio train identity``) and the studio.

The three phases mirror :mod:`comic_studio.workflows.training` (the LoRA's): :func:`plan_identity`
reads the character's face references on the document's thread; :func:`run_identity_training`
aligns the faces, loads a fresh SDXL (training adds tokens to its tokenizers; the renders' shared
copy is never touched) and the face encoder, and trains — on any thread, touching no document;
:func:`store_trained_identity` makes the textual-inversion file a project asset and the character's
``identity_asset`` (one undoable step).

The run's checkpoint (the MLPs, the optimizer, every generator) lives in the state folder beside
the LoRA ones (``training/<project>-<character>-identity.safetensors``): ``resume=True`` continues a
cancelled or crashed run bit for bit, and it is kept after the run as the MLP checkpoint, so a
later run with the same settings picks up where it ended.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comic_studio.core import character_edits
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, decode_image
from comic_studio.training.identity import IDENTITY_METHOD, IdentityRecipe
from comic_studio.training.lora import TrainingProgress
from comic_studio.training.samples import SampleSettings
from comic_studio.workflows.training import checkpoint_path, step_sampler

MAX_PHOTOS = 3
"""StableIdentity learns from one photo; up to three are averaged (the issue's 1–3)."""


@dataclass(frozen=True)
class IdentityPlan:
    """What a run needs from the document (read on its thread)."""

    project_id: str
    character_id: str
    character_name: str
    photos: tuple[tuple[str, Any], ...]
    """(asset hash, PIL image) of the face references used, at most :data:`MAX_PHOTOS`."""
    checkpoint: Path


@dataclass(frozen=True)
class IdentityOutcome:
    """A finished run: the textual-inversion file (card in its metadata), not stored yet."""

    data: bytes
    steps: int
    final_loss: float


@dataclass(frozen=True)
class TrainedIdentity:
    asset: str
    size: int
    steps: int
    final_loss: float


def identity_checkpoint_path(project_id: str, character_id: str) -> Path:
    lora = checkpoint_path(project_id, character_id)
    return lora.with_name(f"{lora.stem}-identity.safetensors")


def plan_identity(doc: Document, character_id: str, *, resume: bool = False) -> IdentityPlan:
    """The character's face references (the first :data:`MAX_PHOTOS`) and its checkpoint. Raises
    :class:`ComicStudioError` for a missing character, no face reference or nothing to resume."""
    character = doc.project.character(character_id)
    if character is None:
        raise ComicStudioError(f"character {character_id!r} does not exist")
    photos = []
    for ref in list(dict.fromkeys(character.face_refs))[:MAX_PHOTOS]:
        try:
            image = decode_image(doc.assets.get(ref), where=f"{character.name}'s face reference {ref[:12]}…")
        except UnsafeInputError as exc:
            raise ComicStudioError(f"cannot learn {character.name!r}'s identity: {exc}") from exc
        photos.append((ref, image.convert("RGB")))
    if not photos:
        raise ComicStudioError(f"cannot learn {character.name!r}'s identity: the character has no face reference — "
                               "add a clear photo of the face first")  # fmt: skip
    checkpoint = identity_checkpoint_path(doc.project.id, character.id)
    if resume and not checkpoint.is_file():
        raise ComicStudioError(f"nothing to resume for {character.name!r}: no checkpoint at {checkpoint}")
    return IdentityPlan(doc.project.id, character.id, character.name, tuple(photos), checkpoint)


def run_identity_training(
    plan: IdentityPlan,
    recipe: IdentityRecipe,
    *,
    model: str = "",
    face_encoder: str = "",
    resume: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
    cancel: Callable[[], bool] = lambda: False,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    samples: SampleSettings | None = None,
    on_samples: Callable[[int, int, list[Any], list[Path]], None] | None = None,
) -> IdentityOutcome:
    """Align the faces, train (or continue from ``plan.checkpoint``) and return the identity file.
    Any thread; touches no document. A cancel raises
    :class:`~comic_studio.training.lora.TrainingCancelled` after saving the checkpoint.
    ``samples``/``on_samples``: the fixed-prompt samples with the tokens so far, as the LoRA run's
    (:func:`~comic_studio.workflows.training.step_sampler`), prompted with :func:`sample_prompts`."""
    from comic_studio.generation.models.loading import ModelLoadError, load_sdxl_components
    from comic_studio.generation.models.sdxl import resolve_sdxl
    from comic_studio.training.identity import IdentityTrainer, load_face_encoder, save_identity
    from comic_studio.training.samples import remove_samples
    from comic_studio.vision.faces import align_face

    if resume and not plan.checkpoint.is_file():
        raise ComicStudioError(f"nothing to resume for {plan.character_name!r}: no checkpoint at {plan.checkpoint}")
    if not resume:
        remove_samples(plan.checkpoint)  # an earlier run's: a new run's strip starts empty
    faces = [align_face(image, recipe.resolution, where=f"{plan.character_name}'s face reference {ref[:12]}…")
             for ref, image in plan.photos]  # fmt: skip
    try:
        source = resolve_sdxl(model)
        parts = load_sdxl_components(source, dtype=dtype, device=device)  # fresh: tokens are added to it
    except ModelLoadError as exc:
        raise ComicStudioError(f"cannot learn {plan.character_name!r}'s identity: {exc}") from exc
    encoder = load_face_encoder(face_encoder, device)
    trainer = IdentityTrainer(parts, faces, encoder, recipe, device=device)
    try:
        if resume:
            trainer.resume(plan.checkpoint)
        on_step_end = None
        if samples is not None and samples.every:
            on_step_end = step_sampler(plan.checkpoint, samples, sample_prompts(samples), cancel, on_samples,
                                       render=IdentityTrainer.render_samples)  # fmt: skip
        trainer.train(plan.checkpoint, cancel=cancel, on_progress=on_progress, on_step_end=on_step_end)
        final_loss = trainer.losses[-1] if trainer.losses else 0.0
        card = {
            "method": IDENTITY_METHOD,
            "character": plan.character_name,
            "base_model": source.cache_id,
            "face_encoder": getattr(encoder.config, "_name_or_path", "") or face_encoder,
            "tokens": 2,
            "steps": trainer.step,
            "recipe": recipe.model_dump(mode="json"),
            "photos": trainer.manifest,
            "final_loss": final_loss,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with tempfile.TemporaryDirectory(prefix="comic-studio-identity-") as folder:
            data = save_identity(Path(folder) / "identity.safetensors", trainer.embeddings(), card).read_bytes()
    finally:
        trainer.close()
    return IdentityOutcome(data, trainer.step, final_loss)


def sample_prompts(settings: SampleSettings) -> tuple[str, ...]:
    """The samples' prompts: the settings' own, else the first training template with the run's
    token pair (the "person" class word of the templates)."""
    from comic_studio.generation.identity import identity_phrase

    return settings.prompts_for(f"{identity_phrase(0)} person")


def store_trained_identity(doc: Document, plan: IdentityPlan, outcome: IdentityOutcome) -> TrainedIdentity:
    """Make the identity file a project asset and the character's ``identity_asset`` (one undoable
    step; on the GUI thread in the studio). The run's checkpoint stays as the MLP checkpoint."""
    character = doc.project.character(plan.character_id)
    if character is None:
        raise ComicStudioError(f"{plan.character_name!r} was deleted while its identity trained; it is not kept")
    asset = doc.assets.add(outcome.data, validate_image=False, where=f"{character.name}'s identity tokens")
    character_edits.update_character(doc, character.id, label=f"Train identity of {character.name}",
                                     identity_asset=asset, identity_enabled=True)  # fmt: skip
    return TrainedIdentity(asset, len(outcome.data), outcome.steps, outcome.final_loss)


def clear_identity(doc: Document, character_id: str) -> None:
    """Take the identity tokens off the character (one undoable step; the asset goes with the next
    clean-up when nothing else uses it)."""
    character = doc.project.character(character_id)
    if character is None:
        raise ComicStudioError(f"character {character_id!r} does not exist")
    character_edits.update_character(doc, character_id, label=f"Clear identity of {character.name}",
                                     identity_asset=None)  # fmt: skip


def train_character_identity(
    doc: Document,
    character_id: str,
    recipe: IdentityRecipe,
    *,
    model: str = "",
    face_encoder: str = "",
    resume: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
    cancel: Callable[[], bool] = lambda: False,
    on_progress: Callable[[TrainingProgress], None] | None = None,
) -> TrainedIdentity:
    """:func:`plan_identity`, :func:`run_identity_training` and :func:`store_trained_identity` in one
    go (the CLI); the document changes only when the run finishes."""
    plan = plan_identity(doc, character_id, resume=resume)
    outcome = run_identity_training(plan, recipe, model=model, face_encoder=face_encoder, resume=resume,
                                    device=device, dtype=dtype, cancel=cancel, on_progress=on_progress)  # fmt: skip
    return store_trained_identity(doc, plan, outcome)


def identity_card(data: bytes) -> dict[str, Any]:
    """The card stored in an identity file's metadata (``{}`` for one from elsewhere)."""
    from comic_studio.workflows.training import lora_card

    return lora_card(data)

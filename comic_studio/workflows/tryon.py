"""Try-on without a window: give a panel's character another outfit and repaint it.

One request builder shared by the app (``RenderService.try_on`` queues it on the engine) and the
command line (``comic-studio tryon`` runs it here, synchronously): the racig backend's try-on mode
(settings ``mode="tryon"``, ``tryon_character``, ``tryon_outfit``, ``tryon_scope``, and the current
image as ``init_image`` for a body repaint). The result lands in the panel's history like any
render, so the old image stays one click (or one undo) away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from comic_studio.core import character_edits, lookup
from comic_studio.core.assets import AssetStore
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character, Panel, PanelResult, Project
from comic_studio.generation.request import GenerationRequest, StepCallback
from comic_studio.workflows.requests import ASSET_PREFIX, REFERENCE_SETTING, build_request, hydrate_request
from comic_studio.workflows.results import record_result

TRYON_BACKEND = "racig"
"""The backend that implements try-on."""
Scope = Literal["body", "panel"]
SCOPES: tuple[str, ...] = ("body", "panel")


def tryon_request(project: Project, assets: AssetStore, panel_id: str, character_id: str, outfit_asset: str,
                  scope: str = "body", settings: dict[str, Any] | None = None) -> GenerationRequest:  # fmt: skip
    """The racig try-on job for ``character_id`` wearing ``outfit_asset`` (an image already in
    ``assets``), hydrated and ready to run. ``scope="body"`` repaints only that character's body
    region of the panel's current image; ``"panel"`` renders the whole panel again with the new
    outfit. ``settings`` override backend settings (e.g. the tiny smoke models). Raises
    :class:`ComicStudioError` saying what is wrong."""
    found = project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} does not exist")
    panel = found[1]
    if outfit_asset not in assets:
        raise ComicStudioError(f"the outfit image {outfit_asset[:12]}… is not in this project's assets")
    if scope not in SCOPES:
        raise ComicStudioError(f"try-on scope must be 'body' or 'panel', not {scope!r}")
    current = panel.result()
    if scope == "body" and current is None:
        raise ComicStudioError("the panel has no image to repaint yet; render it first or try on the whole panel")
    if current is not None and current.backend == TRYON_BACKEND:
        # Repaint the image as it was made: same pose, figures, seed and model settings.
        request = GenerationRequest.from_dict(current.request).model_copy(update={"panel_id": panel.id})
    else:
        request = build_request(project, panel, TRYON_BACKEND)
        if current is not None:
            # Another backend made the image: keep its seed and pose so the figures line up with it.
            stored = current.request or {}
            request = request.model_copy(update={"seed": current.seed, "pose_id": stored.get("pose_id")})
    if request.character(character_id) is None:
        raise ComicStudioError(f"character {character_id!r} is not in this panel")
    # The outfit is the character's body reference for this job (what the backend conditions on).
    characters = [
        c.model_copy(update={"body_refs": [outfit_asset]}) if c.id == character_id else c for c in request.characters
    ]
    job = {k: v for k, v in request.backend_settings.items() if k not in ("init_image", REFERENCE_SETTING)}
    job.update(settings or {})
    job.update(mode="tryon", tryon_character=character_id, tryon_outfit=outfit_asset, tryon_scope=scope)
    if current is not None and scope == "body":
        job["init_image"] = ASSET_PREFIX + current.asset
    request = request.model_copy(update={"characters": characters, "backend_settings": job})
    return hydrate_request(request, assets)


def find_character(project: Project, panel: Panel, name: str) -> Character:
    """The panel's character called ``name`` (its id, name or an alias; case-insensitive)."""
    cast = [c for c in (project.character(p.character_id) for p in panel.characters) if c is not None]
    return lookup.find_character(cast, name, f"this panel (it has: {', '.join(c.name for c in cast) or 'nobody'})")


def try_on(doc: Document, panel_id: str, character_id: str, outfit: bytes | str | Path | Any, scope: str = "body",
           settings: dict[str, Any] | None = None, on_step: StepCallback | None = None) -> PanelResult:  # fmt: skip
    """Synchronously: add ``outfit`` (image bytes, a file or a PIL image) to the character's body
    references (one undo step, as the character library does), run the try-on, and record the
    result in the panel's history (another undo step; the old result stays)."""
    from comic_studio.generation.registry import get_backend

    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} does not exist")
    character = doc.project.character(character_id)
    if character is None or not any(p.character_id == character_id for p in found[1].characters):
        raise ComicStudioError(f"character {character_id!r} is not in this panel")
    before = list(character.body_refs)
    digest = character_edits.add_reference(doc, character_id, "body", outfit)
    try:
        request = tryon_request(doc.project, doc.assets, panel_id, character_id, digest, scope, settings)
        backend = get_backend(request.backend)
        request = request.model_copy(update={"backend_settings": backend.validate_settings(request.backend_settings)})
        generated = backend.generate(request, on_step)
    except BaseException:
        now = doc.project.character(character_id)
        if now is not None and now.body_refs != before:
            doc.undo()  # a try-on that did not happen leaves the character's references as they were
        raise
    return record_result(doc, panel_id, request, generated)


__all__ = ["TRYON_BACKEND", "find_character", "try_on", "tryon_request"]

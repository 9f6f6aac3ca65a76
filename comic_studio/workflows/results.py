"""Recording a generated image: into the panel's history, shown, as one undoable step.

The stored request is the *effective* one, dehydrated (:func:`.requests.dehydrate_request`), so a
replay reproduces the image and the project stays small."""

from __future__ import annotations

from datetime import UTC, datetime

from comic_studio.core.commands import Compound, InsertItem, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import PanelResult
from comic_studio.generation.request import GenerationRequest, GenerationResult
from comic_studio.workflows.requests import dehydrate_request


def record_result(
    doc: Document, panel_id: str, request: GenerationRequest, generated: GenerationResult, png: bytes | None = None
) -> PanelResult:
    """Store a generated image in the panel's history and show it (one undoable step).

    ``png``: the image already encoded (the engine encodes on its worker thread so the GUI thread
    does not spend ~100 ms in the PNG encoder)."""
    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} was deleted while it was rendering")
    panel = found[1]
    asset = doc.assets.add(png, validate_image=False) if png else doc.assets.add_image(generated.image)
    # Store the *effective* request: the pose and figure assignment the backend chose are pinned,
    # so replaying it reproduces this image even after the pose library changes its ranking.
    figures = {p.character_id: p.figure for p in generated.heads}
    effective = request.model_copy(
        update={
            "pose_id": generated.pose_id or request.pose_id,
            "characters": [c.model_copy(update={"figure": figures.get(c.id, c.figure)}) for c in request.characters],
            "backend_settings": generated.settings or request.backend_settings,
        }
    )
    effective = dehydrate_request(effective, doc.assets)
    result = PanelResult(
        asset=asset,
        backend=generated.backend,
        seed=generated.seed,
        request=effective.to_dict(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        heads=generated.heads,
    )
    placements = {p.character_id: p for p in generated.heads}
    characters = [placements.get(p.character_id, p) for p in panel.characters]
    doc.execute(
        Compound(
            "Render panel",
            [
                InsertItem(("results", panel.id), result, text="Add result"),
                SetFields(
                    ("panel", panel.id),
                    "Show result",
                    current_result=result.id,
                    seed=generated.seed,
                    characters=characters,
                ),
            ],
        )
    )
    return result

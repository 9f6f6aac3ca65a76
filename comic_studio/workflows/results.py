"""Recording a generated image: into the panel's history, shown, as one undoable step.

The stored request is the *effective* one, dehydrated (:func:`.requests.dehydrate_request`), so a
replay reproduces the image and the project stays small."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from comic_studio.core.assets import content_hash
from comic_studio.core.commands import Compound, InsertItem, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.lookup import panel_label
from comic_studio.core.model import Panel, PanelResult
from comic_studio.generation.request import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    checked_result_png,
    result_png,
)
from comic_studio.workflows.requests import dehydrate_request


def record_result(
    doc: Document,
    panel_id: str,
    request: GenerationRequest,
    generated: GenerationResult,
    png: bytes | None = None,
    batch: Hashable | None = None,
    step_label: str = "Render panel",
) -> PanelResult:
    """Store a generated image in the panel's history and show it (one undoable step).

    ``batch``: results of one batch ("Render all" of N panels, and the lettering that follows each)
    merge into one undo step named ``step_label`` while nothing else is done in between.

    ``png``: the image already encoded (the engine encodes and checks it on its worker thread so
    the GUI thread does not spend ~100 ms in the PNG encoder; here only its header is re-read).
    Whatever the project loader would refuse — an image too big, empty or of an odd mode, a stored
    request too deep or too large, a seed out of range, too many results — is refused here with
    :class:`GenerationError` naming the backend and the panel, and the document is unchanged."""
    panel, result, png, heads = _panel_result(doc, panel_id, request, generated, png)
    commands = Compound(
        step_label,
        [InsertItem(("results", panel.id), result, text="Add result"), _show(panel, result, heads)],
        merge_key=batch,
        across_breaks=batch is not None,
    )
    doc.assets.add(png, validate_image=False)  # before the step: views read it as soon as it is shown
    doc.execute(commands)  # refused (CommandError) when the panel's history is full: nothing changed
    return result


def record_comparison(
    doc: Document, panel_id: str, renders: Sequence[tuple[GenerationRequest, GenerationResult, bytes | None]], keep: int
) -> list[PanelResult]:
    """Store every render of a method comparison in the panel's history and show ``renders[keep]``:
    one undoable step ("Compare methods"), so one undo takes the whole comparison back. Refused as a
    whole (nothing added) when any render cannot be kept."""
    return record_comparisons(doc, [(panel_id, renders, keep)])[0]


def record_comparisons(
    doc: Document,
    picks: Sequence[tuple[str, Sequence[tuple[GenerationRequest, GenerationResult, bytes | None]], int]],
) -> list[list[PanelResult]]:
    """:func:`record_comparison` over several panels ("Compare on this page / character"): each
    ``(panel_id, renders, keep)`` adds that panel's renders to its history and shows the kept one,
    all panels in ONE undoable step. Refused as a whole when any render cannot be kept."""
    steps: list = []
    made_all = []
    for panel_id, renders, keep in picks:
        if not 0 <= keep < len(renders):
            raise ComicStudioError(f"choose one of the {len(renders)} compared renders (got {keep + 1})")
        made = [_panel_result(doc, panel_id, request, generated, png) for request, generated, png in renders]
        panel = made[keep][0]
        steps += [InsertItem(("results", panel.id), result, text="Add result") for _p, result, _png, _h in made]
        steps.append(_show(panel, made[keep][1], made[keep][3]))
        made_all.append((made, keep))
    if not made_all:
        raise ComicStudioError("no compared panel was picked: choose a method for at least one panel")
    for made, _keep in made_all:
        for _panel, _result, png, _heads in made:
            doc.assets.add(png, validate_image=False)
    if len(made_all) == 1:
        made, keep = made_all[0]
        label = f"Compare methods: keep {made[keep][1].backend}"
    else:
        kept = sorted({made[keep][1].backend for made, keep in made_all})
        label = f"Compare methods on {len(made_all)} panels: keep {', '.join(kept)}"
    doc.execute(Compound(label, steps))
    return [[result for _p, result, _png, _h in made] for made, _keep in made_all]


def effective_request(request: GenerationRequest, generated: GenerationResult) -> GenerationRequest:
    """The request with what the backend chose pinned: pose, figure assignment, settings."""
    figures = {p.character_id: p.figure for p in generated.heads}
    return request.model_copy(
        update={
            "pose_id": generated.pose_id or request.pose_id,
            "characters": [c.model_copy(update={"figure": figures.get(c.id, c.figure)}) for c in request.characters],
            "backend_settings": generated.settings or request.backend_settings,
        }
    )


def _show(panel: Panel, result: PanelResult, heads: list) -> SetFields:
    placements = {p.character_id: p for p in heads}
    characters = [placements.get(p.character_id, p) for p in panel.characters]
    return SetFields(("panel", panel.id), "Show result", current_result=result.id, seed=result.seed,
                     characters=characters)  # fmt: skip


def _panel_result(
    doc: Document, panel_id: str, request: GenerationRequest, generated: GenerationResult, png: bytes | None
) -> tuple[Panel, PanelResult, bytes, list]:
    """The history entry for a generated image (not yet added) and its checked PNG bytes."""
    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} was deleted while it was rendering")
    panel = found[1]
    label = panel_label(doc.project, panel_id)
    backend = generated.backend if isinstance(generated, GenerationResult) else request.backend
    if png is None:
        png = result_png(generated, backend=backend, panel=label)
    else:
        png = checked_result_png(png, backend=backend, panel=label, decode=False)
    # Store the *effective* request: the pose and figure assignment the backend chose are pinned,
    # so replaying it reproduces this image even after the pose library changes its ranking.
    try:
        effective = dehydrate_request(effective_request(request, generated), doc.assets)
        result = PanelResult(
            asset=content_hash(png),
            backend=backend,
            seed=generated.seed,
            request=effective.to_dict(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            heads=generated.heads,
            labels=generated.labels,
        )
    except ValidationError as exc:  # the same model the loader validates with: it would refuse this
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "result"
        raise GenerationError(
            f"the {backend!r} backend's result for {label} cannot be kept in the project ({where}: {error['msg']}); "
            "it was not added"
        ) from exc
    except (TypeError, ValueError) as exc:  # settings that are not JSON at all
        raise GenerationError(
            f"the {backend!r} backend's result for {label} cannot be kept in the project ({exc}); it was not added"
        ) from exc
    return panel, result, png, generated.heads

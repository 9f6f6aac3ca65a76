"""Named, undoable edits of a document: what menus, canvas gestures and the CLI call.

Each function builds the right command(s) and executes them on the document's undo stack, so the
Qt canvas never mutates the model itself (the QUndoStack in the UI mirrors this stack). Layout
operations are pure functions in :mod:`core.layout`; here they become one undo step each.
"""

from __future__ import annotations

from pydantic import ValidationError

from comic_studio.core.changes import Changes
from comic_studio.core.commands import Command, Compound, InsertItem, MoveItem, RemoveItem, ReplaceList, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError
from comic_studio.core.ids import new_id
from comic_studio.core.layout import (
    Border,
    apply_template as template_panels,
    assign_reading_order,
    merge_panels as merged,
    move_border as moved_border,
    split_panel as split,
)
from comic_studio.core.layout.follow import place_balloons_by_position, stretch_balloons
from comic_studio.core.layout.operations import SplitDirection, delete_panel as without_panel
from comic_studio.core.lettering.grow import grow_for_text
from comic_studio.core.model import Balloon, BalloonKind, BalloonStyle, Box, Page, Panel, ReadingDirection, TailTarget


def _page(doc: Document, page_id: str) -> Page:
    page = doc.project.page(page_id)
    if page is None:
        raise CommandError(f"page {page_id!r} does not exist")
    return page


def _page_of_panel(doc: Document, panel_id: str) -> Page:
    found = doc.project.find_panel(panel_id)
    if found is None:
        raise CommandError(f"panel {panel_id!r} does not exist")
    return found[0]


# --------------------------------------------------------------------------- pages


def add_page(doc: Document, template_id: str = "three-tier", index: int | None = None) -> Page:
    project = doc.project
    page = Page(
        panels=template_panels(template_id, project.page_format, project.reading_direction), template_id=template_id
    )
    doc.execute(InsertItem(("pages",), page, index, text="Add page"))
    return page


def delete_page(doc: Document, page_id: str) -> Changes:
    _page(doc, page_id)
    return doc.execute(RemoveItem(("pages",), page_id, text="Delete page"))


def duplicate_page(doc: Document, page_id: str) -> Page:
    """A copy right after the original with fresh ids (results and balloons copied too)."""
    source = _page(doc, page_id)
    copy = source.model_copy(deep=True)
    copy.id = new_id()
    for panel in copy.panels:
        old_current = panel.current_result
        panel.id = new_id()
        for balloon in panel.balloons:
            balloon.id = new_id()
        for result in panel.results:
            new = new_id()
            if result.id == old_current:
                panel.current_result = new
            result.id = new
    index = doc.project.pages.index(source) + 1
    doc.execute(InsertItem(("pages",), copy, index, text="Duplicate page"))
    return copy


def move_page(doc: Document, page_id: str, new_index: int) -> Changes:
    _page(doc, page_id)
    return doc.execute(MoveItem(("pages",), page_id, new_index, text="Move page"))


def apply_template(doc: Document, page_id: str, template_id: str) -> Changes:
    """Replace a page's panels by a template's; beats, images and balloons move to the new panels
    in reading order (extra panels stay empty, surplus content is dropped with the old panels)."""
    page = _page(doc, page_id)
    project = doc.project
    fresh = template_panels(template_id, project.page_format, project.reading_direction)
    for new, old in zip(fresh, page.panels_in_order()):
        keep = old.model_copy(deep=True)
        keep.shape, keep.order = new.shape, new.order
        fresh[fresh.index(new)] = keep
    fresh = stretch_balloons(page.panels, fresh)  # the balloons follow their resized panels
    return doc.execute(
        Compound(
            "Apply template",
            [
                ReplaceList(("panels", page_id), fresh, "Panels"),
                SetFields(("page", page_id), "Template", template_id=template_id),
            ],
        )
    )


# --------------------------------------------------------------------------- panels


def split_panel(
    doc: Document, panel_id: str, direction: SplitDirection = "vertical", ratio: float = 0.5, angle: float | None = None
) -> Changes:
    page = _page_of_panel(doc, panel_id)
    project = doc.project
    panels = split(
        page.panels, panel_id, direction, ratio, project.page_format.gutter, angle, project.reading_direction
    )
    panels = place_balloons_by_position(page.panels, panels)  # each half keeps the balloons over it
    return doc.execute(ReplaceList(("panels", page.id), panels, f"Split panel {direction}"))


def merge_panels(doc: Document, first_id: str, second_id: str) -> Changes:
    page = _page_of_panel(doc, first_id)
    panels = merged(page.panels, first_id, second_id, reading_direction=doc.project.reading_direction)
    panels = place_balloons_by_position(page.panels, panels)  # the vanished panel's balloons stay
    return doc.execute(ReplaceList(("panels", page.id), panels, "Merge panels"))


def delete_panel(doc: Document, panel_id: str) -> Changes:
    page = _page_of_panel(doc, panel_id)
    panels = without_panel(page.panels, panel_id, reading_direction=doc.project.reading_direction)
    return doc.execute(ReplaceList(("panels", page.id), panels, "Delete panel"))


def drag_border(doc: Document, page_id: str, border: Border, delta: float, original: list | None = None) -> Changes:
    """Move a gutter by ``delta`` points. During a mouse drag pass the page's panels as they were
    at the press (``original``) and the cumulative delta: the steps merge into one undo step."""
    page = _page(doc, page_id)
    project = doc.project
    base = original if original is not None else page.panels
    panels = moved_border(base, border, delta, project.page_format, reading_direction=project.reading_direction)
    panels = stretch_balloons(base, panels)  # balloons keep their place in their panel
    return doc.execute(ReplaceList(("panels", page_id), panels, "Move border", merge_key=("border", page_id)))


def set_reading_direction(doc: Document, direction: ReadingDirection) -> Changes:
    """Switch LTR/RTL: every page's reading order is recomputed in the same undo step."""
    commands: list[Command] = [SetFields(("project",), "Reading direction", reading_direction=direction)]
    for page in doc.project.pages:
        commands.append(ReplaceList(("panels", page.id), assign_reading_order(page.panels, direction), "Order"))
    return doc.execute(Compound("Reading direction", commands))


def set_panel_fields(doc: Document, panel_id: str, label: str, merge_key=None, **fields) -> Changes:
    """Prompt, seed, shot, backend and settings edits from the inspector (typing merges)."""
    return doc.execute(SetFields(("panel", panel_id), label, merge_key=merge_key, **fields))


def accept_result(doc: Document, panel_id: str, result_id: str) -> Changes:
    found = doc.project.find_panel(panel_id)
    if found is None or not any(r.id == result_id for r in found[1].results):
        raise CommandError(f"panel {panel_id!r} has no result {result_id!r}")
    panel = found[1]
    commands: list[Command] = [SetFields(("panel", panel_id), "Show result", current_result=result_id)]
    for r in panel.results:
        if r.accepted != (r.id == result_id):
            commands.append(SetFields(("result", r.id), "Accept", accepted=r.id == result_id))
    return doc.execute(Compound("Accept result", commands))


def discard_result(doc: Document, panel_id: str, result_id: str) -> Changes:
    found = doc.project.find_panel(panel_id)
    if found is None:
        raise CommandError(f"panel {panel_id!r} does not exist")
    commands: list[Command] = [RemoveItem(("results", panel_id), result_id, text="Discard result")]
    if found[1].current_result == result_id:
        commands.insert(0, SetFields(("panel", panel_id), "Show result", current_result=None))
    return doc.execute(Compound("Discard result", commands))


# --------------------------------------------------------------------------- balloons


def add_balloon(
    doc: Document,
    panel_id: str,
    kind: BalloonKind,
    box: Box,
    text: str = "",
    speaker_id: str | None = None,
    style: BalloonStyle | None = None,
) -> Balloon:
    try:
        balloon = Balloon(
            kind=kind,
            text=text,
            box=box,
            auto_placed=False,
            tail=TailTarget(character_id=speaker_id) if speaker_id else None,
            style=style.model_copy() if style is not None else BalloonStyle(),
        )
    except ValidationError as exc:  # the model's limits, the loader's too (e.g. MAX_BALLOON_TEXT)
        error = exc.errors(include_url=False)[0]
        raise CommandError(f"balloon.{'.'.join(map(str, error['loc']))}: {error['msg']}") from exc
    doc.execute(InsertItem(("balloons", panel_id), balloon, text=f"Add {kind.value}"))
    return balloon


def move_balloon(doc: Document, balloon_id: str, box: Box) -> Changes:
    """Move or resize; consecutive calls (a drag) merge into one undo step."""
    return doc.execute(
        SetFields(
            ("balloon", balloon_id), "Move balloon", merge_key=("balloon-box", balloon_id), box=box, auto_placed=False
        )
    )


def _balloon_and_panel(doc: Document, balloon_id: str) -> tuple[Balloon, Panel]:
    for page in doc.project.pages:
        for panel in page.panels:
            for balloon in panel.balloons:
                if balloon.id == balloon_id:
                    return balloon, panel
    raise CommandError(f"balloon {balloon_id!r} does not exist")


def edit_balloon_text(doc: Document, balloon_id: str, text: str) -> Changes:
    """Typing merges into one undo step until the edit ends (``doc.undo_stack.break_merge()``).
    The balloon grows to hold the text at its type size (inside its panel); it never shrinks."""
    balloon, panel = _balloon_and_panel(doc, balloon_id)
    box = grow_for_text(text, balloon.kind, balloon.style, balloon.box, panel).box
    return doc.execute(
        SetFields(("balloon", balloon_id), "Edit text", merge_key=("balloon-text", balloon_id), text=text, box=box)
    )


def set_balloon_kind(doc: Document, balloon_id: str, kind: BalloonKind) -> Changes:
    """Another kind has another text area (a thought's cloud holds less than a caption's box): the
    balloon grows when its text would no longer fit."""
    balloon, panel = _balloon_and_panel(doc, balloon_id)
    box = grow_for_text(balloon.text, kind, balloon.style, balloon.box, panel).box
    return doc.execute(SetFields(("balloon", balloon_id), "Balloon kind", kind=kind, box=box))


def set_balloon_type_size(doc: Document, balloon_id: str, size: float) -> Changes:
    """The balloon's type size (its style's size, kept inside the style's min/max so lettering
    draws it at exactly this size); the balloon grows to hold its text at the new size."""
    balloon, panel = _balloon_and_panel(doc, balloon_id)
    style = balloon.style.model_copy(
        update={
            "font_size": size,
            "min_font_size": min(balloon.style.min_font_size, size),
            "max_font_size": max(balloon.style.max_font_size, size),
        }
    )
    box = grow_for_text(balloon.text, balloon.kind, style, balloon.box, panel).box
    return doc.execute(
        SetFields(("balloon", balloon_id), "Type size", merge_key=("balloon-size", balloon_id), style=style, box=box)
    )


def retarget_tail(
    doc: Document, balloon_id: str, character_id: str | None = None, point: tuple[float, float] | None = None
) -> Changes:
    try:
        tail = TailTarget(character_id=character_id, point=point) if (character_id or point) else None
    except ValidationError as exc:
        raise CommandError(f"balloon tail: {exc.errors(include_url=False)[0]['msg']}") from exc
    return doc.execute(SetFields(("balloon", balloon_id), "Retarget tail", tail=tail))


def delete_balloon(doc: Document, balloon_id: str) -> Changes:
    for page in doc.project.pages:
        for panel in page.panels:
            if any(b.id == balloon_id for b in panel.balloons):
                return doc.execute(RemoveItem(("balloons", panel.id), balloon_id, text="Delete balloon"))
    raise CommandError(f"balloon {balloon_id!r} does not exist")

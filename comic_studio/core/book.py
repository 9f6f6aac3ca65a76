"""The book's own settings: metadata (title, authors, series, number, language, summary), reading
direction and page format, changed together as one undo step (the Book dialog, scripts).

A new page format re-lays every page proportionally instead of leaving panels where they were:
each axis is mapped by one monotone piecewise-linear function whose knots are the bleed, the trim,
the margin and every gutter, so

* the live area maps onto the new live area and the bleed onto the new bleed (full-bleed panels
  stay full-bleed),
* every straight gutter keeps exactly the format's gutter width (the canvas finds its drag handles
  by that width), and the panels between gutters share the rest in proportion,
* balloons keep their size (one type size per book) and move with the point under their centre,
  clamped onto the page; explicit tail points move like the art.

Positions relative to a panel (character heads, pose keypoints) need no change. Slanted gutters
are scaled with their panels (their width is measured across, not along an axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from comic_studio.core.changes import Changes
from comic_studio.core.commands import Command, Compound, ReplaceList, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError
from comic_studio.core.layout import assign_reading_order
from comic_studio.core.model import Box, PageFormat, Panel, ReadingDirection

BOOK_FIELDS = ("title", "author", "series", "number", "language", "summary")
"""The metadata the Book dialog edits (``author`` holds one or more names, comma-separated, the
way ComicInfo's Writer and a PDF's Author carry them)."""

_GUTTER_TOLERANCE = 0.5
"""Points: two edges this close to one gutter width apart form a gutter (as find_shared_borders)."""


def _axis_map(coords: Sequence[float], old_len: float, new_len: float, old: PageFormat, new: PageFormat):
    """The monotone map of one axis (x: width, y: height) from ``old`` to ``new``; see the module."""
    m, m2 = old.margin, new.margin
    inside = sorted({round(c, 6) for c in coords if m - 1e-6 <= c <= old_len - m + 1e-6})
    gutters: list[tuple[float, float]] = []
    for a, b in zip(inside, inside[1:]):  # neighbours only: nothing may lie inside a gutter
        if abs((b - a) - old.gutter) <= _GUTTER_TOLERANCE and (not gutters or a >= gutters[-1][1]):
            gutters.append((a, b))
    old_content = (old_len - 2 * m) - sum(b - a for a, b in gutters)
    new_content = (new_len - 2 * m2) - len(gutters) * new.gutter
    if new_content <= 0 or old_content <= 0:
        raise CommandError(
            f"the new page's live area ({new_len - 2 * m2:.0f} pt) is too small for {len(gutters)} gutters of "
            f"{new.gutter:g} pt: choose a larger format or a smaller margin or gutter"
        )
    k = new_content / old_content
    knots_old, knots_new = [-old.bleed, 0.0, m], [-new.bleed, 0.0, m2]
    for a, b in gutters:
        knots_new.append(knots_new[-1] + k * (a - knots_old[-1]))
        knots_old.append(a)
        knots_old.append(b)
        knots_new.append(knots_new[-1] + new.gutter)
    knots_old += [old_len - m, old_len, old_len + old.bleed]
    knots_new += [new_len - m2, new_len, new_len + new.bleed]

    def f(v: float) -> float:
        # Linear inside each knot interval; beyond the bleed, the bleed's scale goes on.
        for i in range(1, len(knots_old)):
            if v <= knots_old[i] or i == len(knots_old) - 1:
                x0, x1, y0, y1 = knots_old[i - 1], knots_old[i], knots_new[i - 1], knots_new[i]
                if v < knots_old[0]:
                    x0, x1, y0, y1 = knots_old[0], knots_old[1], knots_new[0], knots_new[1]
                span = x1 - x0
                return y0 + (v - x0) * ((y1 - y0) / span if span > 1e-9 else 1.0)
        return v  # unreachable: the loop returns at its last interval

    return f


def _relaid(panels: list[Panel], old: PageFormat, new: PageFormat) -> list[Panel]:
    fx = _axis_map([x for p in panels for x, _ in p.shape], old.width, new.width, old, new)
    fy = _axis_map([y for p in panels for _, y in p.shape], old.height, new.height, old, new)
    out = []
    for panel in panels:
        copy = panel.model_copy(deep=True)
        copy.shape = [(fx(x), fy(y)) for x, y in panel.shape]
        for balloon in copy.balloons:
            box = balloon.box
            cx, cy = fx(box.cx), fy(box.cy)
            x = min(max(cx - box.w / 2, -new.bleed), new.width + new.bleed - box.w)
            y = min(max(cy - box.h / 2, -new.bleed), new.height + new.bleed - box.h)
            balloon.box = Box(x=x, y=y, w=box.w, h=box.h)
            if balloon.tail is not None and balloon.tail.point is not None:
                px, py = balloon.tail.point
                balloon.tail = balloon.tail.model_copy(update={"point": (fx(px), fy(py))})
        out.append(copy)
    return out


def set_book(
    doc: Document,
    *,
    info: dict[str, Any] | None = None,
    reading_direction: ReadingDirection | None = None,
    page_format: PageFormat | None = None,
) -> Changes | None:
    """Apply what changed of the book's metadata, reading direction and page format as one
    "Book settings" undo step (None when nothing changed). Unknown metadata fields are refused."""
    project = doc.project
    commands: list[Command] = []
    info = dict(info or {})
    unknown = set(info) - set(BOOK_FIELDS)
    if unknown:
        raise CommandError(f"book settings: unknown field(s) {', '.join(sorted(unknown))}")
    changed = {k: v for k, v in info.items() if getattr(project, k) != v}
    if changed:
        commands.append(SetFields(("project",), "Book info", **changed))
    direction = reading_direction if reading_direction is not None else project.reading_direction
    fmt_changed = page_format is not None and page_format != project.page_format
    if fmt_changed:
        assert page_format is not None
        commands.append(SetFields(("format",), "Page format", **page_format.model_dump()))
    if direction != project.reading_direction:
        commands.append(SetFields(("project",), "Reading direction", reading_direction=direction))
    for page in project.pages:
        panels: list[Panel] = page.panels
        if fmt_changed:
            assert page_format is not None
            panels = _relaid(panels, project.page_format, page_format)
        if direction != project.reading_direction:
            panels = assign_reading_order(panels, direction)
        if panels is not page.panels:
            commands.append(ReplaceList(("panels", page.id), panels, "Panels"))
    if not commands:
        return None
    return doc.execute(Compound("Book settings", commands))


__all__ = ["BOOK_FIELDS", "set_book"]

"""Balloons belong to their panel: after a layout operation they follow it.

Balloon boxes and explicit tail points are in page units, so a panel that moves or changes size
under them would leave them behind (over the gutter, over the neighbour). Two ways to follow, for
two kinds of operation:

* :func:`stretch_balloons` — the same panels, new shapes (a gutter dragged, a template applied):
  each balloon keeps its *relative* position in its panel's bounding box and its size (one type
  size per book); one that was inside its panel is kept inside (clamped); an explicit tail point
  is mapped the same way. Tails aimed at a character follow by themselves (heads are relative).
* :func:`place_balloons_by_position` — panels appear or disappear (a split, a merge): each balloon
  goes to the new panel under its centre, keeping its place on the page (clamped inside); a
  balloon whose panel vanished is never dropped (the merged panel takes it).
"""

from __future__ import annotations

from collections.abc import Sequence

from comic_studio.core.layout.geometry import bbox, point_in_polygon
from comic_studio.core.model import Balloon, Box, Panel


def _clamped(box: Box, area: Box) -> Box:
    """``box`` moved (not resized) to lie inside ``area``; centred on an axis where it is larger."""
    x = area.x + (area.w - box.w) / 2 if box.w > area.w else min(max(box.x, area.x), area.x + area.w - box.w)
    y = area.y + (area.h - box.h) / 2 if box.h > area.h else min(max(box.y, area.y), area.y + area.h - box.h)
    return Box(x=x, y=y, w=box.w, h=box.h)


def _inside(box: Box, area: Box, tol: float = 0.5) -> bool:
    return (
        box.x >= area.x - tol
        and box.y >= area.y - tol
        and box.x + box.w <= area.x + area.w + tol
        and box.y + box.h <= area.y + area.h + tol
    )


def _relative(point: tuple[float, float], old: Box, new: Box) -> tuple[float, float]:
    fx = (point[0] - old.x) / old.w if old.w > 0 else 0.5
    fy = (point[1] - old.y) / old.h if old.h > 0 else 0.5
    return new.x + fx * new.w, new.y + fy * new.h


def stretch_balloons(old_panels: Sequence[Panel], new_panels: list[Panel]) -> list[Panel]:
    """``new_panels`` with every balloon carried from its panel's old shape to its new one."""
    old = {p.id: p for p in old_panels}
    out = []
    for panel in new_panels:
        before = old.get(panel.id)
        if before is None or not panel.balloons:
            out.append(panel)
            continue
        was, now = bbox(before.shape), bbox(panel.shape)
        if was == now:
            out.append(panel)
            continue
        balloons: list[Balloon] = []
        for balloon in panel.balloons:
            box = balloon.box
            cx, cy = _relative((box.cx, box.cy), was, now)
            moved = Box(x=cx - box.w / 2, y=cy - box.h / 2, w=box.w, h=box.h)
            if _inside(box, was):
                moved = _clamped(moved, now)
            update: dict = {"box": moved}
            if balloon.tail is not None and balloon.tail.point is not None:
                update["tail"] = balloon.tail.model_copy(update={"point": _relative(balloon.tail.point, was, now)})
            balloons.append(balloon.model_copy(update=update))
        out.append(panel.model_copy(update={"balloons": balloons}))
    return out


def place_balloons_by_position(old_panels: Sequence[Panel], new_panels: list[Panel]) -> list[Panel]:
    """``new_panels`` with every balloon of ``old_panels`` in the new panel under its centre."""
    new_ids = {p.id for p in new_panels}
    owners: dict[str, list[Balloon]] = {p.id: [] for p in new_panels}
    for before in old_panels:
        for balloon in before.balloons:
            centre = (balloon.box.cx, balloon.box.cy)
            under = [p for p in new_panels if point_in_polygon(centre, p.shape)]
            if any(p.id == before.id for p in under):
                owner = before.id
            elif under:
                owner = under[0].id
            elif before.id in new_ids:
                owner = before.id
            else:  # its panel is gone and nothing is under it: the nearest panel takes it
                owner = min(
                    new_panels,
                    key=lambda p: (bbox(p.shape).cx - centre[0]) ** 2 + (bbox(p.shape).cy - centre[1]) ** 2,
                ).id
            owners[owner].append(balloon)
    out = []
    for panel in new_panels:
        area = bbox(panel.shape)
        balloons = [
            b.model_copy(update={"box": _clamped(b.box, area)}) if not _inside(b.box, area) else b
            for b in owners[panel.id]
        ]
        out.append(panel.model_copy(update={"balloons": balloons}))
    return out


__all__ = ["place_balloons_by_position", "stretch_balloons"]

"""Reading order of the panels on a page.

A recursive cut over the panels' bounding boxes, the way a reader's eye moves:

1. **Tiers** – panels are grouped into tiers when their vertical extents overlap substantially
   (chained, so a tall panel beside a stack joins the stack's tier), then tiers whose spans still
   interleave are merged, so that tiers are separated by a (nearly) horizontal cut. Tiers are
   read top to bottom.
2. **Columns** – inside a tier with more than one panel, panels whose horizontal extents overlap
   form a column. Columns are read left to right (LTR) or right to left (RTL), and a column is
   read completely, top to bottom, before the next one: the manga rule for a stack of panels
   beside a tall one.
3. Each column is again split into tiers, and so on.
4. Panels no axis-aligned cut separates may still be separated by a straight slanted gutter
   (a line through a panel edge that no panel crosses): the side above (or before, in the
   reading direction) is read first, and cuts nearer to level win.
5. Panels that nothing separates (an inset over a big panel, a pinwheel) are read by centroid:
   top to bottom, then in the reading direction.

Every rule is symmetric under a left↔right mirror with the direction flipped, so the RTL order
of a page equals the LTR order of the same page mirrored (tests check it on every template).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from comic_studio.core.layout import geometry as geo
from comic_studio.core.model import Panel, ReadingDirection

OVERLAP_FRACTION = 0.5
"""Two panels share a tier (column) when their vertical (horizontal) extents overlap by more than
this fraction of the smaller one; slanted gutters make neighbouring boxes overlap a little."""

SEPARATION_FRACTION = 0.25
"""Groups whose overall spans still overlap by more than this fraction of the smaller span are
one group: the cut between them would slice through panels."""

_Box = tuple[float, float, float, float]


def _groups(items: list[int], boxes: list[_Box], lo: int, hi: int) -> list[list[int]]:
    """Connected groups of items whose [lo, hi] extents overlap by more than the threshold."""
    parent = {i: i for i in items}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a_pos, a in enumerate(items):
        for b in items[a_pos + 1 :]:
            a0, a1 = boxes[a][lo], boxes[a][hi]
            b0, b1 = boxes[b][lo], boxes[b][hi]
            overlap = min(a1, b1) - max(a0, b0)
            smaller = min(a1 - a0, b1 - b0)
            if overlap > OVERLAP_FRACTION * smaller + 1e-6:
                parent[find(a)] = find(b)
    found: dict[int, list[int]] = {}
    for i in items:
        found.setdefault(find(i), []).append(i)
    groups = list(found.values())
    # Groups must be separable by a (nearly) straight cut: staggered stacks chain into groups
    # whose spans still interleave; merge those so a column is not read in slices.
    merged = True
    while merged and len(groups) > 1:
        merged = False
        spans = [(min(boxes[i][lo] for i in g), max(boxes[i][hi] for i in g)) for g in groups]
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                overlap = min(spans[a][1], spans[b][1]) - max(spans[a][0], spans[b][0])
                smaller = min(spans[a][1] - spans[a][0], spans[b][1] - spans[b][0])
                if overlap > SEPARATION_FRACTION * smaller + 1e-6:
                    groups[a] = groups[a] + groups[b]
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    return groups


def _slanted_cut(items: list[int], shapes: Sequence[Sequence[geo.Point]], rtl: bool) -> list[list[int]] | None:
    """Split panels along a straight line through one of their edges that no panel crosses (a
    slanted gutter), returning the two sides in reading order; ``None`` when there is none.
    Cuts closer to horizontal are preferred, as tiers are read before columns."""
    best: tuple[float, list[list[int]]] | None = None
    for i in items:
        shape = shapes[i]
        for e in range(len(shape)):
            a, b = shape[e], shape[(e + 1) % len(shape)]
            if math.dist(a, b) < 1e-6:
                continue
            nx, ny = geo.outward_normal(shape, e)
            c = nx * a[0] + ny * a[1]
            inside, outside = [], []
            for j in items:
                proj = [nx * x + ny * y for x, y in shapes[j]]
                if max(proj) <= c + 1e-3:
                    inside.append(j)
                elif min(proj) >= c - 1e-3:
                    outside.append(j)
                else:
                    break
            else:
                if not inside or not outside:
                    continue
                horizontal = abs(ny) >= abs(nx)
                # The inside lies towards -normal: above when ny > 0, left when nx > 0.
                inside_first = ny > 0 if horizontal else (nx > 0) != rtl
                parts = [inside, outside] if inside_first else [outside, inside]
                score = abs(nx)  # 0 for a level cut
                if best is None or score < best[0] - 1e-9:
                    best = (score, parts)
    return best[1] if best else None


def _order(
    items: list[int], shapes: Sequence[Sequence[geo.Point]], boxes: list[_Box], centres: list[geo.Point], rtl: bool
) -> list[int]:
    if len(items) <= 1:
        return list(items)
    sign = -1.0 if rtl else 1.0

    def span(group: list[int], axis_lo: int, axis_hi: int) -> tuple[float, float]:
        return min(boxes[i][axis_lo] for i in group), max(boxes[i][axis_hi] for i in group)

    def recurse(group: list[int]) -> list[int]:
        return _order(group, shapes, boxes, centres, rtl)

    tiers = _groups(items, boxes, 1, 3)
    if len(tiers) > 1:
        # Tier key: top edge, then bottom edge; rounding absorbs float noise from mirroring.
        tiers.sort(key=lambda g: tuple(round(v, 4) for v in span(g, 1, 3)))
        return [i for tier in tiers for i in recurse(tier)]
    columns = _groups(items, boxes, 0, 2)
    if len(columns) > 1:
        if rtl:
            columns.sort(key=lambda g: tuple(round(-v, 4) for v in reversed(span(g, 0, 2))))
        else:
            columns.sort(key=lambda g: tuple(round(v, 4) for v in span(g, 0, 2)))
        return [i for col in columns for i in recurse(col)]
    parts = _slanted_cut(items, shapes, rtl)
    if parts:
        return [i for part in parts for i in recurse(part)]

    def key(i: int) -> tuple[float, float]:
        return round(centres[i][1], 4), round(sign * centres[i][0], 4)

    return sorted(items, key=key)


def reading_sequence(shapes: Sequence[Sequence[geo.Point]], direction: ReadingDirection) -> list[int]:
    """Indices of ``shapes`` in reading order."""
    boxes = [geo.bounds(s) for s in shapes]
    centres = [geo.centroid(list(s)) for s in shapes]
    return _order(list(range(len(shapes))), shapes, boxes, centres, direction == ReadingDirection.RTL)


def assign_reading_order(panels: Sequence[Panel], direction: ReadingDirection = ReadingDirection.LTR) -> list[Panel]:
    """Copies of ``panels`` (same list order) with ``order`` renumbered 0..n-1 by reading order."""
    sequence = reading_sequence([p.shape for p in panels], ReadingDirection(direction))
    rank = {index: position for position, index in enumerate(sequence)}
    return [p.model_copy(update={"order": rank[i]}, deep=True) for i, p in enumerate(panels)]

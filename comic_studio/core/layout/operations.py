"""Panel operations: split, merge, move a gutter, delete, insert.

Every function is pure: it takes a list of panels and returns a **new** list of new panel objects
(deep copies), never touching its input, so the caller can wrap it in an undoable command that
simply swaps the page's panel list. Reading order (``Panel.order``) is renumbered every time.

The operations assume convex panels, which is what templates and these operations produce.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from comic_studio.core.errors import LayoutError
from comic_studio.core.layout import geometry as geo
from comic_studio.core.layout.presets import bleed_rect, live_rect
from comic_studio.core.layout.reading_order import assign_reading_order
from comic_studio.core.model import PageFormat, Panel, ReadingDirection

SplitDirection = Literal["horizontal", "vertical", "diagonal"]
DEFAULT_DIAGONAL_ANGLE = 70.0
DEFAULT_MIN_SIZE = 36.0  # half an inch: smaller panels cannot hold a figure or a balloon
_TOL = 1e-3


def _index(panels: Sequence[Panel], panel_id: str) -> int:
    for i, p in enumerate(panels):
        if p.id == panel_id:
            return i
    raise LayoutError(f"no panel with id {panel_id!r} on this page")


def _copies(panels: Sequence[Panel]) -> list[Panel]:
    return [p.model_copy(deep=True) for p in panels]


# --------------------------------------------------------------------------- split


def split_panel(
    panels: Sequence[Panel],
    panel_id: str,
    direction: SplitDirection = "vertical",
    ratio: float = 0.5,
    gutter: float = 12.0,
    angle: float | None = None,
    reading_direction: ReadingDirection = ReadingDirection.LTR,
) -> list[Panel]:
    """Cut a panel in two with a straight gutter of width ``gutter`` (measured perpendicular to
    the cut).

    ``direction`` names the cut line: ``"horizontal"`` gives a top and a bottom panel,
    ``"vertical"`` a left and a right one, ``"diagonal"`` a slanted cut at ``angle`` degrees from
    the horizontal (clockwise on screen, default 70°). ``ratio`` places the cut's centre across
    the panel's extent perpendicular to the cut (0.5 = middle).

    Content rule: the first piece (top, or left) keeps the panel's id and everything on it (beat,
    characters, results, balloons); the second piece is a new, empty panel placed right after it
    in the list.
    """
    if not 0.0 < ratio < 1.0:
        raise LayoutError(f"split ratio must be between 0 and 1 (exclusive), got {ratio}")
    if gutter < 0:
        raise LayoutError(f"gutter must not be negative, got {gutter}")
    if angle is None:
        angle = {"horizontal": 0.0, "vertical": 90.0, "diagonal": DEFAULT_DIAGONAL_ANGLE}.get(direction)
        if angle is None:
            raise LayoutError(f"split direction must be 'horizontal', 'vertical' or 'diagonal', got {direction!r}")
    i = _index(panels, panel_id)
    shape = panels[i].shape
    theta = math.radians(angle)
    nx, ny = -math.sin(theta), math.cos(theta)
    # Orient the normal so the "first" side (smaller n·p) is the left one, or the top one for a
    # level cut.
    if abs(nx) <= 1e-12:
        nx, ny = 0.0, 1.0
    elif nx < 0:
        nx, ny = -nx, -ny
    lo, hi = geo.extent_along(shape, (nx, ny))
    c = lo + ratio * (hi - lo)
    first, second = geo.cut_with_gutter(shape, (nx, ny), c, gutter)
    if not first or not second or min(geo.min_width(first), geo.min_width(second)) < 1.0:
        raise LayoutError(
            f"panel {panel_id!r} is too small to split {direction} at ratio {ratio} with a {gutter:g} pt gutter"
        )
    out = _copies(panels)
    out[i] = out[i].model_copy(update={"shape": geo.canonical(first)})
    out.insert(i + 1, Panel(shape=geo.canonical(second)))
    return assign_reading_order(out, reading_direction)


# --------------------------------------------------------------------------- facing edges


@dataclass(frozen=True)
class _Facing:
    edge_a: int
    edge_b: int
    distance: float
    overlap: float


def _facing_edges(a: Sequence[geo.Point], b: Sequence[geo.Point], max_gap: float) -> list[_Facing]:
    """Pairs of edges (one per polygon) that face each other across a parallel gap of at most
    ``max_gap`` points and overlap along their length."""
    found = []
    edges_a, edges_b = geo.edges(a), geo.edges(b)
    for i, ea in enumerate(edges_a):
        if math.dist(*ea) < geo.EPS:
            continue
        na = geo.outward_normal(a, i)
        for j, eb in enumerate(edges_b):
            if math.dist(*eb) < geo.EPS:
                continue
            nb = geo.outward_normal(b, j)
            if na[0] * nb[0] + na[1] * nb[1] > -0.9999:
                continue  # not antiparallel
            # b's edge must lie on the outside of a's edge, at the gap distance.
            d = (eb[0][0] - ea[0][0]) * na[0] + (eb[0][1] - ea[0][1]) * na[1]
            d2 = (eb[1][0] - ea[0][0]) * na[0] + (eb[1][1] - ea[0][1]) * na[1]
            if abs(d - d2) > 0.01 or d < -_TOL or d > max_gap + _TOL:
                continue
            tx, ty = -na[1], na[0]
            a0, a1 = sorted(p[0] * tx + p[1] * ty for p in ea)
            b0, b1 = sorted(p[0] * tx + p[1] * ty for p in eb)
            overlap = min(a1, b1) - max(a0, b0)
            if overlap > 0.5:
                found.append(_Facing(i, j, d, overlap))
    return found


# --------------------------------------------------------------------------- merge


def _merged_shape(a: Sequence[geo.Point], b: Sequence[geo.Point], max_gap: float) -> geo.Polygon | None:
    """The convex polygon covering ``a``, ``b`` and the gutter between them, or ``None`` when the
    two do not face each other or their union (with the gutter) is not convex."""
    facing = _facing_edges(a, b, max_gap)
    if not facing:
        return None
    best = max(facing, key=lambda f: f.overlap)
    hull = geo.convex_hull(list(a) + list(b))
    # When the two edges line the whole gutter, the gutter is the trapezoid they bound; any other
    # configuration (partial overlap, L shape) makes the hull larger than the three pieces.
    (p0, p1), (q0, q1) = geo.edges(a)[best.edge_a], geo.edges(b)[best.edge_b]
    strip = (math.dist(p0, p1) + math.dist(q0, q1)) / 2 * best.distance
    expected = geo.area(a) + geo.area(b) + strip
    if abs(geo.area(hull) - expected) > 1e-4 * expected + 0.5:
        return None
    return hull


def merge_panels(
    panels: Sequence[Panel],
    a_id: str,
    b_id: str,
    max_gap: float = 200.0,
    reading_direction: ReadingDirection = ReadingDirection.LTR,
) -> list[Panel]:
    """Replace two neighbouring panels by one covering both and the gutter between them. The
    merged panel keeps ``a``'s id and content; ``b`` disappears.

    The two must face each other across a straight gutter (at most ``max_gap`` points wide) and
    together form a convex shape; otherwise (an L shape, panels far apart) it raises
    :class:`LayoutError`.
    """
    if a_id == b_id:
        raise LayoutError(f"cannot merge panel {a_id!r} with itself")
    ia, ib = _index(panels, a_id), _index(panels, b_id)
    a, b = panels[ia].shape, panels[ib].shape
    if not _facing_edges(a, b, max_gap):
        raise LayoutError(
            f"panels {a_id!r} and {b_id!r} are not neighbours across a gutter; only adjacent panels merge"
        )
    hull = _merged_shape(a, b, max_gap)
    if hull is None:
        raise LayoutError(
            f"panels {a_id!r} and {b_id!r} do not make a convex shape together (e.g. an L shape); "
            "move a border first so they line up"
        )
    for k, other in enumerate(panels):
        if (
            k not in (ia, ib)
            and geo.overlap_area(hull, other.shape) > 1.0
            and not geo.polygon_contains(hull, other.shape)
        ):
            raise LayoutError(f"merging {a_id!r} and {b_id!r} would cover panel {other.id!r}")
    out = _copies(panels)
    out[ia] = out[ia].model_copy(update={"shape": geo.canonical(hull)})
    del out[ib]
    return assign_reading_order(out, reading_direction)


# --------------------------------------------------------------------------- borders


@dataclass(frozen=True)
class Border:
    """A gutter between panels: its centre line ``normal·p = offset`` and the panel edges that
    line it. ``side_a`` edges face along ``normal``, ``side_b`` edges face against it; an edge is
    ``(panel_id, edge_index)`` with the edge from vertex ``i`` to ``i+1``."""

    normal: geo.Point
    offset: float
    side_a: tuple[tuple[str, int], ...]
    side_b: tuple[tuple[str, int], ...]
    start: geo.Point
    end: geo.Point
    """End points of the gutter's centre segment (for drawing a drag handle)."""

    @property
    def orientation(self) -> Literal["horizontal", "vertical", "slanted"]:
        nx, ny = self.normal
        if abs(nx) < 1e-6:
            return "horizontal"
        if abs(ny) < 1e-6:
            return "vertical"
        return "slanted"

    @property
    def panel_ids(self) -> set[str]:
        return {pid for pid, _ in self.side_a + self.side_b}


def find_shared_borders(panels: Sequence[Panel], gutter: float, tol: float = 0.5) -> list[Border]:
    """Every gutter of width ``gutter`` (± ``tol``) between facing panel edges. Edges lining the
    same straight, unbroken gutter are grouped into one border, so dragging it moves all of them
    (e.g. the gutter under a wide tier and over a row of three)."""
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(k: tuple[str, int]) -> tuple[str, int]:
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    facing_normal: dict[tuple[str, int], geo.Point] = {}
    for ia, pa in enumerate(panels):
        for pb in panels[ia + 1 :]:
            for f in _facing_edges(pa.shape, pb.shape, gutter + tol):
                if abs(f.distance - gutter) > tol:
                    continue
                ka, kb = (pa.id, f.edge_a), (pb.id, f.edge_b)
                parent[find(ka)] = find(kb)
                facing_normal[ka] = geo.outward_normal(pa.shape, f.edge_a)
                facing_normal[kb] = geo.outward_normal(pb.shape, f.edge_b)
    by_id = {p.id: p for p in panels}
    groups: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for key in facing_normal:
        groups.setdefault(find(key), []).append(key)
    borders = []
    for members in groups.values():
        members.sort()
        # Canonical normal: pointing down, or right for vertical gutters, so borders compare.
        nx, ny = facing_normal[members[0]]
        if ny < -1e-9 or (abs(ny) <= 1e-9 and nx < 0):
            nx, ny = -nx, -ny
        side_a = tuple(k for k in members if facing_normal[k][0] * nx + facing_normal[k][1] * ny > 0)
        side_b = tuple(k for k in members if facing_normal[k][0] * nx + facing_normal[k][1] * ny < 0)
        points = [pt for pid, e in members for pt in geo.edges(by_id[pid].shape)[e]]
        offsets = [nx * x + ny * y for x, y in points]
        offset = (min(offsets) + max(offsets)) / 2
        tx, ty = -ny, nx
        along = [x * tx + y * ty for x, y in points]
        lo, hi = min(along), max(along)
        start = (nx * offset + tx * lo, ny * offset + ty * lo)
        end = (nx * offset + tx * hi, ny * offset + ty * hi)
        borders.append(Border((nx, ny), offset, side_a, side_b, start, end))
    borders.sort(key=lambda b: (b.orientation, round(b.offset, 3), round(b.start[0], 3), round(b.start[1], 3)))
    return borders


def _move_edge(poly: Sequence[geo.Point], index: int, shift: geo.Point) -> geo.Polygon:
    """Translate edge ``index``'s line by ``shift``; its end points slide along the neighbouring
    edges' lines so every other edge keeps its direction."""
    n = len(poly)
    a, b = poly[index], poly[(index + 1) % n]
    prev_line = geo.line_through(poly[index - 1], a)
    next_line = geo.line_through(b, poly[(index + 2) % n])
    moved = geo.line_through((a[0] + shift[0], a[1] + shift[1]), (b[0] + shift[0], b[1] + shift[1]))
    new_a = geo.intersect_lines(prev_line, moved) or (a[0] + shift[0], a[1] + shift[1])
    new_b = geo.intersect_lines(moved, next_line) or (b[0] + shift[0], b[1] + shift[1])
    out = list(poly)
    out[index] = new_a
    out[(index + 1) % n] = new_b
    return out


def _shift_border(panels: Sequence[Panel], border: Border, delta: float) -> list[Panel]:
    shift = (border.normal[0] * delta, border.normal[1] * delta)
    shapes = {p.id: list(p.shape) for p in panels}
    for pid, edge in border.side_a + border.side_b:
        shapes[pid] = _move_edge(shapes[pid], edge, shift)
    return [p.model_copy(update={"shape": shapes[p.id]}, deep=True) for p in panels]


def _allowed_rect(shape: Sequence[geo.Point], fmt: PageFormat) -> tuple[float, float, float, float]:
    """Panels stay in the live area, except those already reaching past it (full-bleed), which
    may use the bleed box."""
    live = live_rect(fmt)
    return live if geo.rect_contains(live, shape, tol=0.01) else bleed_rect(fmt)


def _layout_ok(
    before: Sequence[Panel], after: Sequence[Panel], changed: set[str], fmt: PageFormat, min_size: float
) -> bool:
    old = {p.id: p.shape for p in before}
    for p in after:
        if p.id not in changed:
            continue
        shape, prev = p.shape, old[p.id]
        if not geo.is_convex(shape) or geo.signed_area(shape) * geo.signed_area(prev) <= 0:
            return False
        # An edge shrinking to nothing would change the polygon's edge count (and the edge
        # indices borders refer to); stop before that.
        if _shortest_edge(shape) < min(1.0, _shortest_edge(prev)):
            return False
        if geo.min_width(shape) < min(min_size, geo.min_width(prev)) - 1e-6:
            return False
        if not geo.rect_contains(_allowed_rect(prev, fmt), shape, tol=0.01):
            return False
        for q in after:
            if q.id == p.id:
                continue
            if geo.polygon_contains(prev, old[q.id]) and not _inset_ok(q.shape, shape, old[q.id], prev, fmt.gutter):
                return False  # q is an inset on p: p must keep framing it
            before_overlap = geo.overlap_area(prev, old[q.id])
            if geo.overlap_area(shape, q.shape) > before_overlap + 0.01:
                return False
            if before_overlap <= 0.01:
                gap_before = geo.polygon_distance(prev, old[q.id])
                if geo.polygon_distance(shape, q.shape) < min(gap_before, fmt.gutter) - 1e-4:
                    return False
    return True


def _inset_margin(inner: Sequence[geo.Point], outer: Sequence[geo.Point]) -> float:
    return min(geo.point_segment_distance(v, a, b) for v in inner for a, b in geo.edges(outer))


def _inset_ok(
    inner: Sequence[geo.Point],
    outer: Sequence[geo.Point],
    inner_before: Sequence[geo.Point],
    outer_before: Sequence[geo.Point],
    gutter: float,
) -> bool:
    """An inset stays inside its host, at least a gutter (or its old margin) from the host's edges."""
    if not geo.polygon_contains(outer, inner):
        return False
    return _inset_margin(inner, outer) >= min(gutter, _inset_margin(inner_before, outer_before)) - 1e-4


def _shortest_edge(shape: Sequence[geo.Point]) -> float:
    return min(math.dist(a, b) for a, b in geo.edges(shape))


def clamp_border_delta(
    panels: Sequence[Panel], border: Border, delta: float, fmt: PageFormat, min_size: float = DEFAULT_MIN_SIZE
) -> float:
    """The part of ``delta`` that :func:`move_border` can apply: the largest move towards
    ``delta`` keeping every panel convex, at least ``min_size`` wide (or as wide as it was), inside
    the page and clear of the other panels by a gutter."""
    changed = border.panel_ids
    if _layout_ok(panels, _shift_border(panels, border, delta), changed, fmt, min_size):
        return delta
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if _layout_ok(panels, _shift_border(panels, border, delta * mid), changed, fmt, min_size):
            lo = mid
        else:
            hi = mid
    return delta * lo


def move_border(
    panels: Sequence[Panel],
    border: Border,
    delta: float,
    fmt: PageFormat,
    min_size: float = DEFAULT_MIN_SIZE,
    reading_direction: ReadingDirection = ReadingDirection.LTR,
) -> list[Panel]:
    """Slide a gutter by ``delta`` points along its normal (down/right for positive ``delta``),
    moving the panel edges on both sides together so the gutter keeps its width. The move is
    clamped (see :func:`clamp_border_delta`).

    Vertex order is preserved, so during a drag call it with the *original* panels, the same
    ``border`` and the cumulative ``delta``; afterwards call :func:`find_shared_borders` again
    (the border's ``offset`` describes the old position)."""
    ids = {p.id for p in panels}
    missing = border.panel_ids - ids
    if missing:
        raise LayoutError(f"border refers to panel(s) {sorted(missing)} not on this page; find the borders again")
    applied = clamp_border_delta(panels, border, delta, fmt, min_size)
    moved = _shift_border(panels, border, applied)
    moved = [p.model_copy(update={"shape": [(round(x, 6), round(y, 6)) for x, y in p.shape]}) for p in moved]
    return assign_reading_order(moved, reading_direction)


# --------------------------------------------------------------------------- delete / insert


def delete_panel(
    panels: Sequence[Panel],
    panel_id: str,
    fill: bool = False,
    max_gap: float = 200.0,
    reading_direction: ReadingDirection = ReadingDirection.LTR,
) -> list[Panel]:
    """Remove a panel. With ``fill=True`` the neighbour sharing the longest border grows over
    the freed space (when the result stays convex); otherwise the space is left empty."""
    i = _index(panels, panel_id)
    gone = panels[i].shape
    out = _copies(panels)
    del out[i]
    if fill:
        candidates = []
        for k, p in enumerate(out):
            facing = _facing_edges(p.shape, gone, max_gap)
            if facing:
                candidates.append((-max(f.overlap for f in facing), k))
        for _, k in sorted(candidates):
            hull = _merged_shape(out[k].shape, gone, max_gap)
            if hull is not None:
                out[k] = out[k].model_copy(update={"shape": geo.canonical(hull)})
                break
    return assign_reading_order(out, reading_direction)


def insert_panel(
    panels: Sequence[Panel],
    fmt: PageFormat,
    mode: Literal["split-biggest", "add-row"] = "split-biggest",
    min_size: float = DEFAULT_MIN_SIZE,
    reading_direction: ReadingDirection = ReadingDirection.LTR,
) -> tuple[list[Panel], str]:
    """Add an empty panel; returns the new panel list and the new panel's id.

    * ``"split-biggest"`` halves the largest panel across its longer side.
    * ``"add-row"`` adds a full-width tier at the bottom: everything reaching into the new tier's
      band (plus a gutter) is cut back, so the existing gutters keep their width.

    On an empty page either mode creates one panel filling the live area.
    """
    if not panels:
        x0, y0, x1, y1 = live_rect(fmt)
        panel = Panel(shape=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        return assign_reading_order([panel], reading_direction), panel.id
    if mode == "split-biggest":
        biggest = max(panels, key=lambda p: geo.area(p.shape))
        box = geo.bbox(biggest.shape)
        direction: SplitDirection = "vertical" if box.w >= box.h else "horizontal"
        before = {p.id for p in panels}
        out = split_panel(panels, biggest.id, direction, 0.5, fmt.gutter, reading_direction=reading_direction)
        new_id = next(p.id for p in out if p.id not in before)
        return out, new_id
    if mode != "add-row":
        raise LayoutError(f"insert mode must be 'split-biggest' or 'add-row', got {mode!r}")
    boxes = [geo.bounds(p.shape) for p in panels]
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    tiers = _count_tiers(panels)
    height = (bottom - top - tiers * fmt.gutter) / (tiers + 1)
    cut = bottom - height - fmt.gutter
    out = _copies(panels)
    for k, p in enumerate(out):
        if boxes[k][3] > cut + _TOL:
            clipped = geo.clip_half_plane(p.shape, (0.0, 1.0, cut))
            if not clipped or geo.min_width(clipped) < min(min_size, geo.min_width(p.shape)):
                raise LayoutError(f"no room for a new row: panel {p.id!r} would become too small")
            out[k] = p.model_copy(update={"shape": geo.canonical(clipped)})
    new = Panel(shape=[(left, bottom - height), (right, bottom - height), (right, bottom), (left, bottom)])
    out.append(new)
    return assign_reading_order(out, reading_direction), new.id


def _count_tiers(panels: Sequence[Panel]) -> int:
    """Number of top-level tiers: runs of panels whose vertical extents overlap."""
    spans = sorted((b[1], b[3]) for b in (geo.bounds(p.shape) for p in panels))
    tiers, reach = 0, -math.inf
    for y0, y1 in spans:
        if y0 >= reach - _TOL:
            tiers += 1
        reach = max(reach, y1)
    return max(tiers, 1)

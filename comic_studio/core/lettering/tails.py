"""Balloon tails: where they point, the curved wedge, and the thought-bubble trail.

Lettering convention: a tail points at the speaker's mouth but stops well short of the face, so
the tip ends at ``TIP_FRACTION`` of the way from the balloon's edge to the head.
"""

from __future__ import annotations

import math

from comic_studio.core.errors import LayoutError
from comic_studio.core.lettering._geom import Pt, bbox, circle, point_in_polygon, quad_bezier, ray_hit
from comic_studio.core.lettering.contract import Outline
from comic_studio.core.model import Balloon, BalloonKind, Box, Panel, Project

TIP_FRACTION = 0.55
TAIL_WIDTH = 0.18  # base width as a fraction of the smaller box side
TAIL_BEND = 0.12  # sideways bow of the tail's sides, as a fraction of its length
MIN_TAILED_SIDE = 2.0  # points
_TRAIL_RADII = (0.09, 0.065, 0.045)  # thought-trail bubble radii × the smaller box side


def panel_to_page(panel: Panel, pt: tuple[float, float]) -> tuple[float, float]:
    """Panel-normalised point (0..1 of the panel polygon's bounding box) → page units."""
    x0, y0, x1, y1 = bbox(panel.shape)
    return x0 + pt[0] * (x1 - x0), y0 + pt[1] * (y1 - y0)


def cover_window(image_size: tuple[int, int], panel_box: Box) -> Box:
    """The part of an image (0..1 of its width and height) that a centred *cover* crop shows in
    ``panel_box`` (how the canvas and the exporters fit a panel's image)."""
    iw, ih = image_size
    ia, pa = iw / max(ih, 1), panel_box.w / max(panel_box.h, 1e-9)
    if pa > ia:  # the panel is wider: the image fills the width, top and bottom are cut
        f = ia / pa
        return Box(x=0.0, y=(1 - f) / 2, w=1.0, h=f)
    f = pa / ia
    return Box(x=(1 - f) / 2, y=0.0, w=f, h=1.0)


def image_window(panel: Panel) -> Box:
    """The visible part of the panel's current image (see :func:`cover_window`); the whole image
    when the panel has none or its size is unknown."""
    result = panel.result()
    w, h = (result.request.get("width"), result.request.get("height")) if result else (None, None)
    if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
        return Box(x=0.0, y=0.0, w=1.0, h=1.0)
    x0, y0, x1, y1 = bbox(panel.shape)
    return cover_window((w, h), Box(x=x0, y=y0, w=x1 - x0, h=y1 - y0))


def head_to_page(panel: Panel, pt: tuple[float, float], window: Box | None = None) -> tuple[float, float]:
    """A head (or tag) the panel's image shows, given 0..1 of that image, in page units. Right
    after a render the image fits the panel exactly and this is :func:`panel_to_page`; once a
    gutter drag or a split changed the panel's shape, the image is cropped and heads are drawn
    elsewhere on the page: tails and placement follow where they are drawn."""
    win = window or image_window(panel)
    return panel_to_page(panel, ((pt[0] - win.x) / win.w, (pt[1] - win.y) / win.h))


def target_point(balloon: Balloon, panel: Panel, project: Project | None = None) -> Pt | None:
    """Where the tail aims, in page units, or ``None`` for no tail.

    A targeted character's head comes first: the panel's placement, else the head the current
    generated image reported (``PanelResult.heads``). If the character has no head in this panel
    (off-panel speaker), the explicit ``TailTarget.point`` is used when set.
    """
    tail = balloon.tail
    if tail is None or balloon.kind in (BalloonKind.CAPTION, BalloonKind.SFX):
        return None
    if tail.character_id is not None:
        result = panel.result()
        candidates = list(panel.characters) + (list(result.heads) if result else [])
        for placement in candidates:
            if placement.character_id == tail.character_id and placement.head is not None:
                return head_to_page(panel, placement.head)
    if tail.point is None:
        return None
    if not all(math.isfinite(v) for v in tail.point):
        raise LayoutError(f"balloon {balloon.id!r}: tail.point {tail.point} must be finite page coordinates")
    return float(tail.point[0]), float(tail.point[1])


def edge_point(body: Outline, centre: Pt, target: Pt) -> Pt | None:
    """Where the line from the balloon's centre to the target leaves the body; ``None`` when the
    target lies inside the body (a tail would have nowhere to go)."""
    if point_in_polygon(target, body):
        return None
    d = (target[0] - centre[0], target[1] - centre[1])
    t = ray_hit(centre, d, body)
    if t is None or t >= 1.0:
        return None
    return centre[0] + t * d[0], centre[1] + t * d[1]


def tail_tip(edge: Pt, target: Pt) -> Pt:
    return edge[0] + TIP_FRACTION * (target[0] - edge[0]), edge[1] + TIP_FRACTION * (target[1] - edge[1])


def tail_wedge(box: Box, body: Outline, target: Pt, curved: bool = True) -> Outline | None:
    """A tapering, slightly curved wedge from inside the body to the tip.

    The base sits *inside* the body (pulled toward the centre), so when renderers stroke all
    shapes and then fill them, the body's fill covers the base's stroke and the tail's fill covers
    the body's stroke where they join: body and tail read as one outline.
    """
    centre = (box.cx, box.cy)
    edge = edge_point(body, centre, target)
    if edge is None:
        return None
    tip = tail_tip(edge, target)
    ax, ay = tip[0] - centre[0], tip[1] - centre[1]
    length = math.hypot(ax, ay)
    if length < 1e-6:
        return None
    ux, uy = ax / length, ay / length
    px, py = -uy, ux
    half = TAIL_WIDTH * min(box.w, box.h) / 2
    edge_dist = math.hypot(edge[0] - centre[0], edge[1] - centre[1])
    # Root the base a good way inside the body; never past the centre.
    inset = min(0.6 * edge_dist, max(3 * half, 4.0))
    root = (edge[0] - ux * inset, edge[1] - uy * inset)
    b1 = (root[0] + px * half, root[1] + py * half)
    b2 = (root[0] - px * half, root[1] - py * half)
    # Both sides bow the same way (away from the vertical through the centre) so the tail sweeps
    # like a brush stroke instead of a straight spike.
    bend = (TAIL_BEND if curved else 0.0) * math.hypot(tip[0] - root[0], tip[1] - root[1])
    side = 1.0 if (ux * py - uy * px) * (1 if target[0] >= centre[0] else -1) >= 0 else -1.0
    ctrl_shift = (px * bend * side, py * bend * side)
    c1 = ((b1[0] + tip[0]) / 2 + ctrl_shift[0], (b1[1] + tip[1]) / 2 + ctrl_shift[1])
    c2 = ((b2[0] + tip[0]) / 2 + ctrl_shift[0], (b2[1] + tip[1]) / 2 + ctrl_shift[1])
    up = quad_bezier(b1, c1, tip, 10)
    down = quad_bezier(tip, c2, b2, 10)[1:]
    return tuple(up + down)


def thought_trail(box: Box, body: Outline, target: Pt) -> tuple[Outline, ...]:
    """Three shrinking bubbles from the cloud toward the thinker's head, spread evenly over the
    first ``TIP_FRACTION`` of the gap (where a speech tail's tip would stop)."""
    centre = (box.cx, box.cy)
    edge = edge_point(body, centre, target)
    if edge is None:
        return ()
    gap = math.hypot(target[0] - edge[0], target[1] - edge[1])
    ux, uy = (target[0] - edge[0]) / gap, (target[1] - edge[1]) / gap
    reach = TIP_FRACTION * gap
    radii = [f * min(box.w, box.h) for f in _TRAIL_RADII]
    # Shrink the bubbles when the gap is short so all three, with clear space between them,
    # still end at the tip distance.
    scale = min(1.0, 0.75 * reach / (2 * sum(radii)))
    radii = [r * scale for r in radii]
    spacing = (reach - 2 * sum(radii)) / len(radii)
    bubbles: list[Outline] = []
    d = 0.0
    for r in radii:
        d += spacing + r
        bubbles.append(circle(edge[0] + ux * d, edge[1] + uy * d, r, 20))
        d += r
    return tuple(bubbles)


def tail_shapes(balloon: Balloon, body: Outline | None, panel: Panel, project: Project | None) -> tuple[Outline, ...]:
    """The shapes that join the body to its speaker, per balloon kind (empty when none)."""
    if body is None or min(balloon.box.w, balloon.box.h) < MIN_TAILED_SIDE:
        return ()  # a collapsed balloon (being dragged to size) has nothing to attach a tail to
    target = target_point(balloon, panel, project)
    if target is None:
        return ()
    if balloon.kind is BalloonKind.THOUGHT:
        return thought_trail(balloon.box, body, target)
    wedge = tail_wedge(balloon.box, body, target, curved=balloon.kind is not BalloonKind.SHOUT)
    return (wedge,) if wedge is not None else ()

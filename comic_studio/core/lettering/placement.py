"""Automatic balloon placement inside a panel.

A candidate-grid search, one balloon at a time: every position of the balloon's box on a grid
over the panel's inset bounding box gets a cost, and the cheapest wins. Hard costs (large
constants) forbid covering a face or a name tag (:func:`keep_out_boxes`), overlapping an earlier
balloon, leaving the panel, or breaking reading order; a face or a tag costs twice what the rest of
a head does, so a close-up that fills the panel gets its balloon over the crown, not the face. Three
shapes are tried per balloon (comfortable, narrow, wide), the comfortable one preferred; soft costs pull a balloon toward the reading start (top-left, or top-right for
right-to-left books) and toward its speaker. Everything is computed in a fixed order with strict
comparisons, so the same input always yields the same layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from comic_studio.core.errors import LayoutError
from comic_studio.core.lettering._geom import bbox, point_in_polygon
from comic_studio.core.lettering.grow import house_style
from comic_studio.core.lettering.tails import head_to_page, image_window
from comic_studio.core.lettering.text_fit import box_for_width, fit_box_for_text
from comic_studio.core.model import (
    MAX_BALLOON_TEXT,
    MAX_BALLOONS_PER_PANEL,
    Balloon,
    BalloonKind,
    BalloonStyle,
    Box,
    Panel,
    Project,
    ReadingDirection,
    TailTarget,
)

GRID = 20  # candidate positions per axis
MARGIN = 0.04  # panel inset, × the panel's smaller side (at least MIN_MARGIN points)
MIN_MARGIN = 4.0
BALLOON_GAP = 3.0  # clear space kept between balloons, points
_HARD = 1000.0
_TAIL_CROSSING = 300.0  # bad, but better than covering a face or another balloon
_FACE = 2 * _HARD  # a face or a name tag: worse than anything else, the crown of a head included
_LABEL = 100.0
"""Covering the place label ("KITCHEN · NIGHT"), per unit of (1 + the share covered): above every
preference of position and shape (a few units), so a balloon keeps off the label wherever the
panel has room, and below every hard rule (a tail crossing, a face, another balloon), so in a
close-up that leaves only the label's corner or a face, the label goes under the balloon. It
says where and when, which the page also tells; the face is the acting."""
_TOO_BIG = 600.0
_OTHER_WIDTHS = (0.35, 0.7, 1.0)  # × the inner width: narrow, wide and full-width balloons
_SHAPE = 0.15  # a balloon shaped other than its comfortable width, when that one has room
_MAX_WIDTH = {BalloonKind.CAPTION: 0.6, BalloonKind.SFX: 0.5}  # × inner width; others 0.55
_TAILED = (BalloonKind.SPEECH, BalloonKind.THOUGHT, BalloonKind.SHOUT, BalloonKind.WHISPER)


@dataclass(frozen=True)
class _Head:
    character_id: str
    cx: float
    cy: float
    rx: float
    ry: float


def _as_kind(kind: object) -> BalloonKind:
    """Accept a BalloonKind, a DialogueKind (same values) or the plain string."""
    value = kind.value if isinstance(kind, Enum) else kind
    try:
        return BalloonKind(value)
    except ValueError:
        raise LayoutError(f"balloon kind {kind!r} is not one of {[k.value for k in BalloonKind]}") from None


def _heads(panel: Panel) -> list[_Head]:
    """Head ellipses in page units: a circle of ``head_radius`` in panel-normalised space is an
    ellipse on the page when the panel is not square. (The storyboard reports the radius over the
    image's shorter side; reading it over each side is the larger, safer head.)"""
    x0, y0, x1, y1 = bbox(panel.shape)
    window = image_window(panel)  # where the image's heads are drawn once its crop changed
    w, h = (x1 - x0) / window.w, (y1 - y0) / window.h
    result = panel.result()
    seen: set[str] = set()
    heads = []
    for placement in list(panel.characters) + (list(result.heads) if result else []):
        if placement.head is None or placement.character_id in seen:
            continue
        seen.add(placement.character_id)
        cx, cy = head_to_page(panel, placement.head, window)
        r = placement.head_radius
        heads.append(_Head(placement.character_id, cx, cy, max(r * w, 1e-6), max(r * h, 1e-6)))
    return heads


FACE_TOP = 0.35
"""Where a face starts, as a fraction of the head's radius above its centre: the eyes sit on the
centre line and the brows about a third of the radius above it. The forehead and crown above may
be covered when nothing else is free, as letterers do in close-ups that fill the panel."""


def keep_out_boxes(panel: Panel) -> list[Box]:
    """What automatic placement never covers, in page units: each figure's face (its head box from
    the brow line down to the chin), each name tag the image carries and the other text the
    backend reports drawing on it (the storyboard's place label: ``PanelResult.labels``)."""
    return [box for box, _cost in _keep_out(panel)]


def _keep_out(panel: Panel) -> list[tuple[Box, float]]:
    """:func:`keep_out_boxes` with what covering each costs: faces and name tags :data:`_FACE`,
    place labels :data:`_LABEL`."""
    x0, y0, x1, y1 = bbox(panel.shape)
    window = image_window(panel)
    iw, ih = (x1 - x0) / window.w, (y1 - y0) / window.h  # the whole image's size on the page
    boxes = [
        (Box(x=h.cx - h.rx, y=h.cy - FACE_TOP * h.ry, w=2 * h.rx, h=(1 + FACE_TOP) * h.ry), _FACE)
        for h in _heads(panel)
        if h.rx > 1e-3  # a head outside the image is reported with no size: nothing to cover
    ]
    result = panel.result()
    seen: set[str] = set()
    for placement in list(panel.characters) + (list(result.heads) if result else []):
        tag = placement.name_tag
        if tag is None or placement.character_id in seen:
            continue
        seen.add(placement.character_id)
        tx, ty = head_to_page(panel, (tag.x, tag.y), window)
        boxes.append((Box(x=tx, y=ty, w=tag.w * iw, h=tag.h * ih), _FACE))
    for label in result.labels if result else []:
        lx, ly = head_to_page(panel, (label.x, label.y), window)
        boxes.append((Box(x=lx, y=ly, w=label.w * iw, h=label.h * ih), _LABEL))
    return boxes


def _rect_hits_ellipse(box: Box, head: _Head) -> float:
    """0 when apart, else how deep the box reaches into the ellipse (0..1, scaled space)."""
    # Scaling x by 1/rx and y by 1/ry turns the ellipse into the unit circle and keeps the box a box.
    nx = min(max(head.cx, box.x), box.x + box.w)
    ny = min(max(head.cy, box.y), box.y + box.h)
    d = math.hypot((nx - head.cx) / head.rx, (ny - head.cy) / head.ry)
    return max(0.0, 1.0 - d)


def _overlap_area(a: Box, b: Box, gap: float) -> float:
    w = min(a.x + a.w, b.x + b.w) + gap - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) + gap - max(a.y, b.y)
    return w * h if w > 0 and h > 0 else 0.0


def _outside_points(box: Box, polygon: Sequence[tuple[float, float]]) -> int:
    xs = (box.x, box.cx, box.x + box.w)
    ys = (box.y, box.cy, box.y + box.h)
    return sum(not point_in_polygon((x, y), polygon) for x in xs for y in ys if (x, y) != (box.cx, box.cy))


class _Frame:
    """The panel's inset area and reading-direction-aware coordinates inside it."""

    def __init__(self, panel: Panel, rtl: bool):
        x0, y0, x1, y1 = bbox(panel.shape)
        m = max(MIN_MARGIN, MARGIN * min(x1 - x0, y1 - y0))
        self.x0, self.y0, self.x1, self.y1 = x0 + m, y0 + m, max(x1 - m, x0 + m), max(y1 - m, y0 + m)
        self.w, self.h = self.x1 - self.x0, self.y1 - self.y0
        self.diag = math.hypot(self.w, self.h) or 1.0
        self.rtl = rtl

    def along(self, box: Box) -> float:
        """0 at the reading start side (left, or right in RTL), growing across the row."""
        return (self.x1 - (box.x + box.w)) if self.rtl else (box.x - self.x0)

    def candidates(self, w: float, h: float) -> list[Box]:
        w, h = min(w, self.w), min(h, self.h)
        out = []
        for j in range(GRID + 1):
            y = self.y0 + (self.h - h) * j / GRID
            for i in range(GRID + 1):
                # Walk from the reading start so ties favour the earlier position.
                k = GRID - i if self.rtl else i
                out.append(Box(x=self.x0 + (self.w - w) * k / GRID, y=y, w=w, h=h))
        return out


def reads_after(box: Box, prev: Box, rtl: bool) -> bool:
    """True when ``box`` is read after ``prev``: clearly lower, or in the same band (its top not
    noticeably higher) and entirely past it in the reading direction."""
    band = min(prev.h, box.h)
    if box.y >= prev.y + 0.5 * band:
        return True
    if box.y < prev.y - 0.2 * band:
        return False
    return box.x >= prev.x + prev.w if not rtl else box.x + box.w <= prev.x


def _segment_hits_box(p: tuple[float, float], q: tuple[float, float], box: Box) -> bool:
    """Liang–Barsky clip: does the segment p→q pass through the box?"""
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for edge_p, edge_q in (
        (-dx, p[0] - box.x),
        (dx, box.x + box.w - p[0]),
        (-dy, p[1] - box.y),
        (dy, box.y + box.h - p[1]),
    ):
        if abs(edge_p) < 1e-12:
            if edge_q < 0:
                return False
            continue
        t = edge_q / edge_p
        if edge_p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _cost(
    box: Box,
    kind: BalloonKind,
    frame: _Frame,
    polygon: Sequence[tuple[float, float]],
    heads: list[_Head],
    keep_out: list[tuple[Box, float]],
    placed: list[Box],
    previous: Box | None,
    speaker: _Head | None,
    tails: list[tuple[tuple[float, float], tuple[float, float]]],
) -> float:
    cost = 0.0
    for zone, weight in keep_out:
        area = _overlap_area(box, zone, BALLOON_GAP)
        if area > 0:
            cost += weight * (1 + area / max(zone.w * zone.h, 1e-6))
    for head in heads:
        depth = _rect_hits_ellipse(box, head)
        if depth > 0:
            cost += _HARD * (1 + depth)  # any part of a head: avoided wherever there is room
    for other in placed:
        area = _overlap_area(box, other, BALLOON_GAP)
        if area > 0:
            cost += _HARD * (1 + area / max(box.w * box.h, 1e-6))
    if polygon:  # empty for an upright rectangle, which every candidate lies inside
        cost += _HARD * 0.3 * _outside_points(box, polygon)
    if previous is not None and not reads_after(box, previous, frame.rtl):
        cost += _HARD
    # Keep clear of earlier balloons' tails, and keep this balloon's tail off earlier balloons.
    for p, q in tails:
        # Tails bow sideways and have width: keep a clearance that grows with their length.
        m = 4.0 + 0.1 * math.dist(p, q)
        if _segment_hits_box(p, q, Box(x=box.x - m, y=box.y - m, w=box.w + 2 * m, h=box.h + 2 * m)):
            cost += _TAIL_CROSSING
    if speaker is not None:
        mouth = (speaker.cx, speaker.cy)
        cost += _TAIL_CROSSING * sum(_segment_hits_box((box.cx, box.cy), mouth, other) for other in placed)
    down = (box.y - frame.y0) / max(frame.h, 1e-6)
    across = frame.along(box) / max(frame.w, 1e-6)
    if kind is BalloonKind.CAPTION:
        return cost + 5 * (down + across)  # narration hugs the reading-start corner
    cost += 2.0 * down + 0.7 * across
    if speaker is not None:
        # Ideal spot: just above the speaker's head, so the tail is short and points down.
        ideal_x, ideal_y = speaker.cx, speaker.cy - speaker.ry - BALLOON_GAP - box.h / 2
        cost += 1.2 * math.hypot(box.cx - ideal_x, box.cy - ideal_y) / frame.diag
    return cost


def check_lettering_cost(panel: Panel, lines: Sequence[tuple[object, str, str | None]], where: str) -> None:
    """Refuse, before any layout work, lettering the project could not keep: more balloons than a
    panel holds (counting the hand-placed ones that stay) or a line longer than a balloon holds.
    These are the loader's limits; they also bound the work (65 lines of 5,000 characters took
    minutes to place). Raises :class:`LayoutError` naming ``where``."""
    kept = sum(1 for b in panel.balloons if not b.auto_placed)
    if kept + len(lines) > MAX_BALLOONS_PER_PANEL:
        besides = f" besides {kept} hand-placed balloon(s)" if kept else ""
        raise LayoutError(
            f"{where}: its beat has {len(lines)} lines to letter{besides}; a panel holds at most "
            f"{MAX_BALLOONS_PER_PANEL} balloons. Split the beat over more panels."
        )
    for number, (_, text, _) in enumerate(lines, start=1):
        if len(text) > MAX_BALLOON_TEXT:
            raise LayoutError(
                f"{where}: line {number} of its beat is {len(text):,} characters; a balloon holds at most "
                f"{MAX_BALLOON_TEXT:,}. Shorten it or split it into several lines."
            )


def place_balloons(
    panel: Panel,
    lines: Sequence[tuple[object, str, str | None]],
    project: Project,
    style: BalloonStyle | None = None,
) -> list[Balloon]:
    """New balloons for ``lines`` (``(kind, text, speaker_id or None)`` in reading order),
    positioned inside ``panel``, returned in the same order with ``auto_placed=True``.

    Captions are placed first, in the reading-start corner; the other balloons then follow one
    another in reading order, avoid heads and each other, and sit near their speakers, to whom
    their tails point. ``panel.balloons`` that are not auto-placed (moved by hand) are avoided.
    """
    check_lettering_cost(panel, lines, f"panel {panel.id!r}")
    style = style or house_style(project)  # the book's type size, as the author's own balloons
    frame = _Frame(panel, project.reading_direction is ReadingDirection.RTL)
    heads = _heads(panel)
    keep_out = _keep_out(panel)
    # Candidates stay in the panel's inset bounding box: an upright rectangular panel (most are)
    # contains them all, so only a slanted or odd shape needs the point-in-polygon test.
    x0, y0, x1, y1 = bbox(panel.shape)
    upright = len(panel.shape) == 4 and all(x in (x0, x1) and y in (y0, y1) for x, y in panel.shape)
    outline: Sequence[tuple[float, float]] = () if upright else panel.shape
    head_of = {h.character_id: h for h in heads}
    kinds = [_as_kind(kind) for kind, _, _ in lines]
    placed: list[Box] = [b.box for b in panel.balloons if not b.auto_placed]
    boxes: dict[int, Box] = {}
    order = [i for i, k in enumerate(kinds) if k is BalloonKind.CAPTION]
    order += [i for i, k in enumerate(kinds) if k is not BalloonKind.CAPTION]
    previous: Box | None = None
    tails: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for i in order:
        kind, (_, text, speaker_id) = kinds[i], lines[i]
        comfortable = _MAX_WIDTH.get(kind, 0.55)
        speaker = head_of.get(speaker_id) if speaker_id and kind in _TAILED else None
        chained = kind is not BalloonKind.SFX
        best: Box | None = None
        best_cost = math.inf
        # The comfortable shape first; a narrower or a wider one only when that finds no free spot
        # (beside a close-up's face, over its crown), at a small cost so it wins only then. Most
        # balloons find room at once, so placement costs what it did with one shape.
        for fraction in (None, *_OTHER_WIDTHS):
            if fraction is not None and best_cost < _TAIL_CROSSING:
                break
            if fraction is None:
                w, h = fit_box_for_text(text, kind, style, comfortable * frame.w)
            else:
                w, h = box_for_width(text, kind, style, fraction * frame.w)
            extra = 0.0 if fraction is None else _SHAPE
            if w > frame.w or h > frame.h:
                extra += _TOO_BIG  # squeezed into the panel: its text would not fit at the type size
            for candidate in frame.candidates(w, h):
                c = extra + _cost(
                    candidate, kind, frame, outline, heads, keep_out, placed,
                    previous if chained else None, speaker, tails,
                )  # fmt: skip
                if c < best_cost:
                    best, best_cost = candidate, c
        assert best is not None  # the grid always has at least one candidate
        boxes[i] = best
        placed.append(best)
        if speaker is not None:
            tails.append(((best.cx, best.cy), (speaker.cx, speaker.cy)))
        if chained:
            previous = best
    balloons = []
    for i, (kind, (_, text, speaker_id)) in enumerate(zip(kinds, lines)):
        tail = TailTarget(character_id=speaker_id) if speaker_id and kind in _TAILED else None
        balloons.append(
            Balloon(kind=kind, text=text, box=boxes[i], tail=tail, style=style.model_copy(), auto_placed=True)
        )
    return balloons

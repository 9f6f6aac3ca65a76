"""Canvas tools and the geometry decisions behind gestures: which balloon kind a tool adds, how big
a new balloon is, which character a dropped tail tip lands on, where a point tail must aim so its
tip ends where it was dropped. Plain functions on the model, so they are easy to test and reuse.
"""

from __future__ import annotations

import math

from comic_studio.core.layout import bbox
from comic_studio.core.lettering import fit_box_for_text
from comic_studio.core.lettering.shapes import body_outline
from comic_studio.core.lettering.tails import TIP_FRACTION, edge_point, head_to_page, image_window
from comic_studio.core.model import Balloon, BalloonKind, BalloonStyle, Box, Panel

TOOLS = ("select", "speech", "thought", "shout", "whisper", "caption", "sfx")
"""Tool names accepted by :meth:`PageCanvas.set_tool`: ``select`` plus one per balloon kind."""

TOOL_KINDS = {name: BalloonKind(name) for name in TOOLS if name != "select"}

SAMPLE_TEXT = {
    BalloonKind.SPEECH: "Say something here",
    BalloonKind.THOUGHT: "Think something here",
    BalloonKind.SHOUT: "Shout it!",
    BalloonKind.WHISPER: "whisper here",
    BalloonKind.CAPTION: "Meanwhile, somewhere else…",
    BalloonKind.SFX: "BLAM!",
}
"""What a new balloon is sized for: it starts empty, but at the size a short line needs, so the
author types into a balloon of sensible proportions."""


def tool_kind(tool: str) -> BalloonKind | None:
    """The balloon kind a tool adds (``None`` for the select tool); unknown names raise."""
    if tool not in TOOLS:
        raise ValueError(f"unknown canvas tool {tool!r}; use one of {', '.join(TOOLS)}")
    return TOOL_KINDS.get(tool)


def new_balloon_box(kind: BalloonKind, panel: Panel, at: tuple[float, float], style: BalloonStyle | None = None) -> Box:
    """A box centred on ``at`` sized for the kind's sample text at ``style``'s type size (the
    book's, :func:`~comic_studio.core.lettering.grow.house_style`), no wider than 80 % of the
    panel, shifted to stay inside the panel's bounding box where it fits."""
    pb = bbox(panel.shape)
    w, h = fit_box_for_text(SAMPLE_TEXT[kind], kind, style or BalloonStyle(), max(24.0, 0.8 * pb.w))
    x = min(max(at[0] - w / 2, pb.x), max(pb.x, pb.x + pb.w - w))
    y = min(max(at[1] - h / 2, pb.y), max(pb.y, pb.y + pb.h - h))
    return Box(x=x, y=y, w=w, h=h)


def nearest_speaker(panel: Panel, at: tuple[float, float]) -> str | None:
    """The character whose head is closest to ``at`` in this panel (a new balloon's speaker):
    the panel's placements and the heads its current image reported."""
    window = image_window(panel)  # heads where the (possibly re-cropped) image draws them
    result = panel.result()
    best: tuple[float, str] | None = None
    for placement in list(panel.characters) + (list(result.heads) if result else []):
        if placement.head is None:
            continue
        hx, hy = head_to_page(panel, placement.head, window)
        d = math.hypot(hx - at[0], hy - at[1])
        if best is None or d < best[0]:
            best = (d, placement.character_id)
    return best[1] if best else None


def head_at(heads: list[tuple[str, float, float, float]], point: tuple[float, float]) -> str | None:
    """The character whose head circle ``(id, x, y, radius)`` contains ``point`` (closest wins)."""
    hits = [
        (math.hypot(x - point[0], y - point[1]), cid)
        for cid, x, y, r in heads
        if math.hypot(x - point[0], y - point[1]) <= r
    ]
    return min(hits)[1] if hits else None


def aim_for_tip(balloon: Balloon, tip: tuple[float, float]) -> tuple[float, float]:
    """The tail target that puts the drawn tip at ``tip``.

    Lettering stops a tail at ``TIP_FRACTION`` of the way from the balloon's edge to its target
    (so it never touches a face); a tip dropped on empty art must stay where the author put it,
    so the stored target lies further out on the same ray."""
    body = body_outline(balloon.kind, balloon.box, balloon.id)
    if body is None:
        return tip
    centre = (balloon.box.cx, balloon.box.cy)
    edge = edge_point(body, centre, tip)
    if edge is None:
        return tip  # dropped inside the balloon: lettering draws no tail, as it should
    return (edge[0] + (tip[0] - edge[0]) / TIP_FRACTION, edge[1] + (tip[1] - edge[1]) / TIP_FRACTION)


def moved_box(box: Box, dx: float, dy: float) -> Box:
    return Box(x=box.x + dx, y=box.y + dy, w=box.w, h=box.h)


MIN_BALLOON_SIDE = 12.0


def resized_box(box: Box, dw: float, dh: float) -> Box:
    """Drag of the bottom-right corner; the top-left stays put and sides keep a usable minimum."""
    return Box(x=box.x, y=box.y, w=max(MIN_BALLOON_SIDE, box.w + dw), h=max(MIN_BALLOON_SIDE, box.h + dh))

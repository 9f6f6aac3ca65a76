"""Render one storyboard panel: set, mannequins, name tags, place label; report head positions.

Drawn at ``supersample``× and reduced, for clean antialiased lines without a vector library.
All randomness comes from ``random.Random(request.seed)``, so a seed always gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from comic_studio.backends.storyboard.mannequin import (
    FigureInk,
    Mannequin,
    build_back_bust,
    build_mannequin,
    draw_mannequin,
    primitives_bbox,
)
from comic_studio.backends.storyboard.setting import (
    Palette,
    classify_setting,
    draw_environment,
    draw_label,
    font,
    label_box,
    palette_for,
    place_label,
)
from comic_studio.core.model import Box, CharacterPlacement, ShotType
from comic_studio.generation.request import Cancelled, GenerationError, GenerationRequest, StepCallback
from comic_studio.poses.staging.figures import ResolvedPose, UnknownPoseError, resolve_pose
from comic_studio.poses.staging.framing import Frame, frame_shot
from comic_studio.poses.staging.geometry import FigureGeometry

RGB = tuple[int, int, int]
NEUTRAL_COLOUR = "#8a8a8a"  # figures no character plays (extras in a chosen pose)


@dataclass
class _Placed:
    """One figure as drawn: its primitives and pixel-space geometry."""

    index: int
    mannequin: Mannequin
    geom: FigureGeometry | None
    ink: FigureInk
    bbox: tuple[float, float, float, float]
    character: Any | None


@dataclass
class RenderOutput:
    image: Image.Image
    heads: list[CharacterPlacement]
    pose_id: str | None
    labels: list[Box] = field(default_factory=list)
    """The place label's box, 0..1 of the image (balloon placement keeps off it)."""


def render_panel(
    request: GenerationRequest, settings: dict[str, Any], on_step: StepCallback | None = None
) -> RenderOutput:
    rng = random.Random(request.seed)
    ss = int(settings["supersample"])
    w, h = request.width * ss, request.height * ss
    try:
        pose = resolve_pose(request, settings["pose_matching"])
    except UnknownPoseError as exc:  # a job's failure, like every other bad request
        raise GenerationError(str(exc)) from exc
    total = len(pose.figures) + 2

    def step(i: int, preview: Image.Image | None = None) -> None:
        if on_step is not None and on_step(i, total, preview) is False:
            raise Cancelled(
                f"storyboard render of panel {request.panel_id or '(unsaved)'} cancelled at step {i}/{total}"
            )

    step(0)
    pal = palette_for(request.time_of_day, settings["paper"])
    who = _figure_characters(request, pose)
    geoms = _pose_space(pose, w, h)
    focus = _focus_figure(request, pose)
    if pose.framed:
        frame = _framed(geoms, h)
    else:
        frame = frame_shot(geoms, request.shot, w, h, focus, rng)

    img = Image.new("RGB", (w, h), pal.paper)
    draw = ImageDraw.Draw(img)
    kind = classify_setting(request.setting)
    draw_environment(draw, w, h, kind, request.setting, frame.horizon, frame.vp_x, frame.env_zoom, pal, rng,
                     ss, construction=settings["construction_lines"])  # fmt: skip
    step(1)

    placed = _place_figures(geoms, frame, who, pal, settings, ss, w, h, request.shot)
    show_shadows = request.shot in (ShotType.WIDE, ShotType.ESTABLISHING) or pose.framed
    for n, p in enumerate(placed):
        if show_shadows and p.geom is not None and not p.mannequin.back_view:
            _ground_shadow(draw, p.geom, pal)
        draw_mannequin(draw, p.mannequin, p.ink)
        step(2 + n)
    avoid: list[tuple[float, float, float, float]] = []
    labels: list[Box] = []
    if settings["label"]:
        text = place_label(request.setting, request.time_of_day)
        # Top-left unless a face is there: then the slug moves to the top-right.
        right = _hits_head(label_box(text, w, h, ss), placed) and not _hits_head(
            label_box(text, w, h, ss, True), placed
        )
        box = draw_label(draw, text, w, h, pal, ss, right)
        if box:
            avoid.append(box)
            # Reported like a name tag, so automatic balloon placement keeps off the label too.
            labels.append(_unit_box(box, w, h))
    tags: dict[int, tuple[float, float, float, float]] = {}
    if settings["name_tags"]:
        for p in placed:
            if p.character is not None:
                tag = _name_tag(draw, p, w, h, ss, avoid)
                if tag:
                    avoid.append(tag)
                    tags[p.index] = tag

    out = img.reduce(ss) if ss > 1 else img
    heads = _placements(request, pose, placed, w, h, tags)
    step(total, out)
    return RenderOutput(out, heads, pose.pose_id, labels)


# ---------------------------------------------------------------------------------- figures


def _figure_characters(request: GenerationRequest, pose: ResolvedPose) -> list[Any | None]:
    who: list[Any | None] = [None] * len(pose.figures)
    for char, fig in zip(request.characters, pose.character_figure):
        if 0 <= fig < len(who) and who[fig] is None:
            who[fig] = char
    return who


def _focus_figure(request: GenerationRequest, pose: ResolvedPose) -> int | None:
    """The figure the camera favours: the actor's, else the first character's."""
    ids = [c.id for c in request.characters]
    if not ids:
        return None
    i = ids.index(request.actor_id) if request.actor_id in ids else 0
    return pose.character_figure[i]


def _pose_space(pose: ResolvedPose, w: int, h: int) -> list[FigureGeometry]:
    aspect = w / h if pose.framed else pose.aspect
    out = []
    for f in pose.figures:
        kp = np.asarray(f.keypoints, dtype=float).reshape(-1, 3)
        pts = np.stack([kp[:, 0] * aspect, kp[:, 1]], axis=1)
        out.append(FigureGeometry.from_keypoints(pts, kp[:, 2] > 0.5, float(f.facing)))
    return out


def _framed(geoms: list[FigureGeometry], h: int) -> Frame:
    """User-placed figures: pose space is the panel itself (scale = panel height)."""
    eye = (sum(g.head_c[1] for g in geoms) / len(geoms) if geoms else 0.45) * h
    vp = (sum(g.head_c[0] for g in geoms) / len(geoms) if geoms else 0.5) * h
    return Frame(float(h), 0.0, 0.0, eye, vp, 0.6)


def _to_pixels(g: FigureGeometry, frame: Frame) -> FigureGeometry:
    pts = g.pts * frame.scale + np.array([frame.tx, frame.ty])
    return FigureGeometry.from_keypoints(pts, g.vis, g.facing)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _hex(colour: str) -> RGB:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def figure_ink(colour: str, pal: Palette, torso_px: float, weight: float, ss: int, short_side: int) -> FigureInk:
    base = _hex(colour)
    fill = _mix(base, (255, 255, 255), 0.55 if pal.dark else 0.66)
    outline = _mix(base, (20, 20, 28), 0.55)
    # Line weight follows the figure's size, capped by the panel's: a close-up's huge head still
    # gets a pen line, not a marker stroke.
    ow = max(1.1 * ss, min(0.03 * torso_px, 0.006 * short_side)) * weight
    return FigureInk(fill, outline, _mix(outline, fill, 0.45), pal.halo, ow, 0.9 * ow)


def _place_figures(geoms: list[FigureGeometry], frame: Frame, who: list[Any | None], pal: Palette,
                   settings: dict[str, Any], ss: int, w: int, h: int, shot: ShotType) -> list[_Placed]:  # fmt: skip
    weight = float(settings["line_weight"])
    placed: list[_Placed] = []
    for i, g in enumerate(geoms):
        char = who[i]
        colour = char.colour if char is not None else NEUTRAL_COLOUR
        if i == frame.ots_figure:
            # Big, near and cut by the frame edge: the shoulder we look over.
            ry = 0.24 * h
            cx = w * (0.12 if frame.ots_left else 0.88)
            m = build_back_bust(cx, 0.62 * h, ry, towards_right=frame.ots_left)
            ink = figure_ink(colour, pal, ry / 0.21, weight, ss, min(w, h))
            placed.append(_Placed(i, m, None, ink, primitives_bbox(m, ink.outline_w), char))
            continue
        gp = _to_pixels(g, frame)
        m = build_mannequin(gp)
        ink = figure_ink(colour, pal, gp.torso, weight, ss, min(w, h))
        placed.append(_Placed(i, m, gp, ink, primitives_bbox(m, ink.outline_w), char))

    # Painter's order: figures further back (feet higher) first; the over-the-shoulder back last.
    def depth(p: _Placed) -> tuple[int, float]:
        if p.geom is None:
            return (1, 0.0)
        return (0, p.bbox[3])

    placed.sort(key=depth)
    return placed


def _ground_shadow(draw: ImageDraw.ImageDraw, g: FigureGeometry, pal: Palette) -> None:
    feet = [p for p in (g.point("r_ankle"), g.point("l_ankle")) if p]
    if not feet:
        return
    x = sum(p[0] for p in feet) / len(feet)
    y = max(p[1] for p in feet) + 0.05 * g.torso
    span = max(abs(feet[0][0] - feet[-1][0]) / 2, 0.0)
    rx, ry = span + 0.35 * g.torso, 0.07 * g.torso
    draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=_mix(pal.ground, pal.line, 0.45))


def _name_tag(draw: ImageDraw.ImageDraw, p: _Placed, w: int, h: int, ss: int,
              avoid: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float] | None:  # fmt: skip
    """A small rounded tag with the name near the head, clear of the label and other tags."""
    head = p.mannequin.head
    if head is None or not (0 <= head.c[0] <= w and 0 <= head.c[1] <= h):
        return None
    size = max(9 * ss, round(min(w, h) * 0.038))
    f = font(size)
    name = p.character.name[:24]
    tw = f.getlength(name)
    pad = 0.35 * size
    bw, bh = tw + 2 * pad, size * 1.25
    r = max(head.rx, head.ry)
    margin = 3 * ss
    facing = head.facing
    side = -1.0 if facing > 0.15 else 1.0  # beside the head, behind its look
    candidates = [
        (head.c[0] - bw / 2, head.c[1] - r * 1.15 - bh),  # above the head
        (head.c[0] + side * (r * 1.2) - (bw if side < 0 else 0), head.c[1] - bh / 2),
        (head.c[0] - side * (r * 1.2) - (bw if side > 0 else 0), head.c[1] - bh / 2),
    ]
    candidates.append((head.c[0] - bw / 2, head.c[1] + r * 1.15))  # below the chin, last resort

    def fits(cx: float, cy: float) -> bool:
        inside = margin <= cx and cx + bw <= w - margin and margin <= cy and cy + bh <= h - margin
        return inside and not any(cx < a[2] and a[0] < cx + bw and cy < a[3] and a[1] < cy + bh for a in avoid)

    x, y = next(((cx, cy) for cx, cy in candidates if fits(cx, cy)), candidates[0])
    x = min(max(x, margin), w - margin - bw)
    y = min(max(y, margin), h - margin - bh)
    draw.rounded_rectangle(
        (x, y, x + bw, y + bh), radius=bh * 0.35, fill=p.ink.fill, outline=p.ink.outline, width=max(1, ss)
    )
    draw.text((x + bw / 2, y + bh / 2), name, font=f, fill=p.ink.outline, anchor="mm")
    return (x, y, x + bw, y + bh)


def _hits_head(box: tuple[float, float, float, float] | None, placed: list[_Placed]) -> bool:
    if box is None:
        return False
    for p in placed:
        o = p.mannequin.head
        if o is None:
            continue
        r = max(o.rx, o.ry)
        if box[0] < o.c[0] + r and o.c[0] - r < box[2] and box[1] < o.c[1] + r and o.c[1] - r < box[3]:
            return True
    return False


# ---------------------------------------------------------------------------------- heads


def _unit_box(box: tuple[float, float, float, float], w: int, h: int) -> Box:
    """A pixel box ``(x0, y0, x1, y1)`` of a ``w × h`` image as fractions of the image."""
    return Box(x=box[0] / w, y=box[1] / h, w=(box[2] - box[0]) / w, h=(box[3] - box[1]) / h)


def _placements(
    request: GenerationRequest,
    pose: ResolvedPose,
    placed: list[_Placed],
    w: int,
    h: int,
    tags: dict[int, tuple[float, float, float, float]] | None = None,
) -> list[CharacterPlacement]:
    by_index = {p.index: p for p in placed}
    short = min(w, h)
    out = []
    for char, fig in zip(request.characters, pose.character_figure):
        p = by_index.get(fig)
        if p is None or p.mannequin.head is None:
            out.append(CharacterPlacement(character_id=char.id, figure=min(fig, 16)))
            continue
        hx, hy = p.mannequin.head.c[0] / w, p.mannequin.head.c[1] / h
        inside = 0.0 <= hx <= 1.0 and 0.0 <= hy <= 1.0
        radius = max(p.mannequin.head.rx, p.mannequin.head.ry) / short if inside else 0.0
        x0, y0, x1, y1 = p.bbox
        bx0, by0 = max(0.0, x0 / w), max(0.0, y0 / h)
        bx1, by1 = min(1.0, x1 / w), min(1.0, y1 / h)
        body = Box(x=bx0, y=by0, w=bx1 - bx0, h=by1 - by0) if bx1 > bx0 and by1 > by0 else None
        tag = (tags or {}).get(fig)
        # Reported so that balloon placement keeps off the tag (it is drawn into the image).
        name_tag = _unit_box(tag, w, h) if tag else None
        out.append(
            CharacterPlacement(
                character_id=char.id,
                figure=min(fig, 16),
                body=body,
                # Off-panel head: report the nearest edge point, where a balloon tail should aim.
                head=(min(1.0, max(0.0, hx)), min(1.0, max(0.0, hy))),
                head_radius=min(1.0, radius),
                name_tag=name_tag,
            )
        )
    return out

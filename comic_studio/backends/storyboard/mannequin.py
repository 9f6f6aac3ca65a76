"""Mannequin figures: a pose skeleton's line-art drawing (its measurements are
:class:`~comic_studio.poses.staging.geometry.FigureGeometry`).

A figure is built as groups of simple primitives (capsules and tilted ellipses) sized from the
figure's own torso length, so proportions hold at every scale. Each group is drawn outline-then-
fill, so joints inside a group merge into one smooth shape while separate groups (an arm in front
of the chest) keep a clean dark edge between them. A paper-coloured halo knocks the background's
construction lines away from the figure so it reads first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import ImageDraw

from comic_studio.poses.staging.geometry import FigureGeometry

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Capsule:
    p0: tuple[float, float]
    p1: tuple[float, float]
    r: float


@dataclass(frozen=True)
class Oval:
    c: tuple[float, float]
    rx: float
    ry: float
    up: tuple[float, float]  # unit vector of the oval's local "up" (its ry axis)
    facing: float = 0.0  # yaw cue for a head: -1 left, +1 right


Primitive = Capsule | Oval


# ---------------------------------------------------------------------------------- building


@dataclass
class Mannequin:
    """Primitive groups in draw order, plus the detail lines drawn on top of each group."""

    groups: list[list[Primitive]] = field(default_factory=list)
    joints: list[tuple[tuple[float, float], float]] = field(default_factory=list)
    head: Oval | None = None
    back_view: bool = False


def build_mannequin(g: FigureGeometry, back_view: bool = False) -> Mannequin:
    """Primitives for ``g`` (already in pixel space), sized from its torso length."""
    t = g.torso

    def cap(a: str, b: str, r: float) -> list[Primitive]:
        pa, pb = g.point(a), g.point(b)
        return [Capsule(pa, pb, r * t)] if pa and pb else []

    def hand(elbow: str, wrist: str) -> list[Primitive]:
        pw, pe = g.point(wrist), g.point(elbow)
        if not pw:
            return []
        d = _unit(pw[0] - pe[0], pw[1] - pe[1]) if pe else (0.0, 1.0)
        c = (pw[0] + d[0] * 0.08 * t, pw[1] + d[1] * 0.08 * t)
        return [Oval(c, 0.07 * t, 0.095 * t, (-d[0], -d[1]))]

    def foot(ankle: str, outward: float) -> list[Primitive]:
        pa = g.point(ankle)
        if not pa:
            return []
        # Feet point where the figure looks; a front-facing figure's feet splay outward a little.
        profile = abs(g.facing) > 0.3
        d = _unit(g.facing if profile else 0.5 * outward, 0.3)
        length = (0.2 if profile else 0.1) * t
        return [Capsule(pa, (pa[0] + d[0] * length, pa[1] + d[1] * length), 0.055 * t)]

    def arm(s: str) -> list[Primitive]:
        return (
            cap(f"{s}_shoulder", f"{s}_elbow", 0.085)
            + cap(f"{s}_elbow", f"{s}_wrist", 0.07)
            + hand(f"{s}_elbow", f"{s}_wrist")
        )

    mid_x = g.head_c[0]
    hips = [p for p in (g.point("r_hip"), g.point("l_hip")) if p]
    if hips:
        mid_x = sum(p[0] for p in hips) / len(hips)

    def leg(s: str) -> list[Primitive]:
        ank = g.point(f"{s}_ankle")
        outward = -1.0 if ank and ank[0] < mid_x else 1.0
        return cap(f"{s}_hip", f"{s}_knee", 0.11) + cap(f"{s}_knee", f"{s}_ankle", 0.085) + foot(f"{s}_ankle", outward)

    torso: list[Primitive] = []
    neck, sh_r, sh_l = g.point("neck"), g.point("r_shoulder"), g.point("l_shoulder")
    hip_r, hip_l = g.point("r_hip"), g.point("l_hip")
    pelvis = ((hip_r[0] + hip_l[0]) / 2, (hip_r[1] + hip_l[1]) / 2) if hip_r and hip_l else (hip_r or hip_l)
    if sh_r and sh_l:
        torso.append(Capsule(sh_r, sh_l, 0.1 * t))
    if neck and pelvis:
        chest_end = _lerp(neck, pelvis, 0.55)
        top = _lerp(neck, pelvis, 0.12)
        torso.append(Capsule(top, chest_end, 0.2 * t))
        torso.append(Capsule(chest_end, _lerp(neck, pelvis, 0.85), 0.15 * t))
    if hip_r and hip_l:
        torso.append(Capsule(hip_r, hip_l, 0.13 * t))
    elif pelvis:
        torso.append(Capsule(pelvis, pelvis, 0.14 * t))
    if neck:
        torso.append(Capsule(neck, (neck[0] + g.head_up[0] * 0.2 * t, neck[1] + g.head_up[1] * 0.2 * t), 0.065 * t))

    head = Oval(g.head_c, g.head_rx, g.head_ry, g.head_up, g.facing)
    # Near side drawn last: a figure looking right shows its right side to the viewer.
    if g.facing > 0.15:
        far, near = "l", "r"
    elif g.facing < -0.15:
        far, near = "r", "l"
    else:
        far = near = ""
    groups: list[list[Primitive]] = []
    if far:
        groups += [leg(far), leg(near), arm(far), torso, [head], arm(near)]
    else:
        groups += [leg("r"), leg("l"), torso, [head], arm("r"), arm("l")]
    joints = []
    for j, r in (("r_elbow", 0.05), ("l_elbow", 0.05), ("r_knee", 0.06), ("l_knee", 0.06)):
        p = g.point(j)
        if p:
            joints.append((p, r * t))
    return Mannequin([grp for grp in groups if grp], joints, head, back_view)


def primitives_bbox(m: Mannequin, pad: float) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for grp in m.groups:
        for p in grp:
            if isinstance(p, Capsule):
                for q in (p.p0, p.p1):
                    xs += [q[0] - p.r - pad, q[0] + p.r + pad]
                    ys += [q[1] - p.r - pad, q[1] + p.r + pad]
            else:
                r = max(p.rx, p.ry) * 1.2 + pad  # 1.2: the profile nose tick sticks out
                xs += [p.c[0] - r, p.c[0] + r]
                ys += [p.c[1] - r, p.c[1] + r]
    if not xs:
        return (0.0, 0.0, 0.0, 0.0)
    return (min(xs), min(ys), max(xs), max(ys))


# ---------------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class FigureInk:
    fill: RGB
    outline: RGB
    detail: RGB  # construction marks on the figure (joint rings, head cross)
    halo: RGB
    outline_w: float
    halo_w: float


def draw_mannequin(draw: ImageDraw.ImageDraw, m: Mannequin, ink: FigureInk) -> None:
    for grp in m.groups:
        _draw_group(draw, grp, ink.halo, ink.outline_w + ink.halo_w)
    for grp in m.groups:
        _draw_group(draw, grp, ink.outline, ink.outline_w)
        _draw_group(draw, grp, ink.fill, 0.0)
        if m.head is not None and grp and grp[0] is m.head:
            _draw_head_marks(draw, m.head, m.back_view, ink)
    w = max(1, round(ink.outline_w * 0.45))
    for (x, y), r in m.joints:
        draw.ellipse((x - r, y - r, x + r, y + r), outline=ink.detail, width=w)


def _draw_group(draw: ImageDraw.ImageDraw, grp: list[Primitive], colour: RGB, inflate: float) -> None:
    for p in grp:
        if isinstance(p, Capsule):
            r = p.r + inflate
            if r < 0.6:
                draw.line([p.p0, p.p1], fill=colour, width=1)
                continue
            if p.p0 != p.p1:
                draw.line([p.p0, p.p1], fill=colour, width=max(1, round(2 * r)))
            for x, y in (p.p0, p.p1):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.polygon(_oval_points(p, inflate), fill=colour)


def _oval_points(o: Oval, inflate: float = 0.0, n: int = 32) -> list[tuple[float, float]]:
    ux, uy = o.up
    bx, by = -uy, ux  # local "right"
    rx, ry = o.rx + inflate, o.ry + inflate
    out = []
    for i in range(n):
        a = 2 * math.pi * i / n
        lx, ly = rx * math.cos(a), ry * math.sin(a)
        out.append((o.c[0] + bx * lx + ux * ly, o.c[1] + by * lx + uy * ly))
    return out


def _local(o: Oval, lx: float, ly: float) -> tuple[float, float]:
    ux, uy = o.up
    return (o.c[0] - uy * lx + ux * ly, o.c[1] + ux * lx + uy * ly)


def _draw_head_marks(draw: ImageDraw.ImageDraw, o: Oval, back_view: bool, ink: FigureInk) -> None:
    """Facing cues: meridian + eye line + nose tick (front/profile) or hair strokes (back). Heads
    large on the panel (close-ups) also get eyes and a mouth, so a face reads as a face."""
    w = max(1, round(ink.outline_w * 0.6))
    rx, ry = o.rx, o.ry
    f = max(-1.0, min(1.0, o.facing))
    if back_view:
        # Hair: strokes from the crown fanning down to a hairline, and the ears' bumps.
        for k in (-0.55, -0.2, 0.15, 0.5):
            pts = [_local(o, rx * k * (0.25 + 0.75 * t), ry * (0.95 - 1.25 * t)) for t in np.linspace(0, 1, 8)]
            draw.line(pts, fill=ink.detail, width=w)
        hair = [_local(o, rx * x, -0.3 * ry - 0.12 * ry * (1 - x * x)) for x in np.linspace(-0.9, 0.9, 12)]
        draw.line(hair, fill=ink.detail, width=w)
        return
    yaw = math.asin(f)
    # Central meridian of a sphere turned by ``yaw``: a half-ellipse bulging toward the look.
    merid = [_local(o, rx * f * math.cos(p), ry * math.sin(p)) for p in np.linspace(-1.45, 1.45, 12)]
    draw.line(merid, fill=ink.detail, width=w)

    # Eye line: slightly below centre, bowed down (camera a touch above eye level).
    def eye_y(x: float) -> float:
        return -0.08 * ry - 0.14 * ry * (1 - x * x)

    eye = [_local(o, rx * x, eye_y(x)) for x in np.linspace(-0.97, 0.97, 12)]
    draw.line(eye, fill=ink.detail, width=w)
    wn = max(1, round(ink.outline_w * 0.9))
    if ry > 16 * ink.outline_w:
        for side in (-0.42, 0.42):  # eyes sit ~25° either side of the face's centre line
            a = yaw + side
            if math.cos(a) < 0.2:
                continue  # turned away: hidden behind the head
            x = math.sin(a)
            ex, ey = _local(o, rx * x, eye_y(x) + 0.02 * ry)
            erx, ery = 0.11 * rx * math.cos(a), 0.055 * ry
            draw.polygon(_oval_points(Oval((ex, ey), erx, ery, o.up)), fill=ink.outline)
        mx = math.sin(yaw)
        mouth = [_local(o, rx * (mx + d * math.cos(yaw)), -0.62 * ry - 0.03 * ry * (1 - (d / 0.16) ** 2))
                 for d in np.linspace(-0.16, 0.16, 5)]  # fmt: skip
        draw.line(mouth, fill=ink.outline, width=wn)
    if abs(f) >= 0.5:
        s = 1.0 if f > 0 else -1.0
        tick = [
            _local(o, s * rx * 0.9, -0.05 * ry),
            _local(o, s * rx * 1.2, -0.32 * ry),
            _local(o, s * rx * 0.92, -0.4 * ry),
        ]
    else:
        x = rx * f
        tick = [_local(o, x, -0.22 * ry), _local(o, x + rx * 0.12 * (1 if f >= 0 else -1), -0.45 * ry)]
    draw.line(tick, fill=ink.outline, width=wn)


def _unit(x: float, y: float) -> tuple[float, float]:
    n = math.hypot(x, y)
    return (x / n, y / n) if n > 1e-9 else (0.0, 1.0)


def _lerp(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def build_back_bust(cx: float, cy: float, ry: float, towards_right: bool) -> Mannequin:
    """The over-the-shoulder foreground: back of a head and one shoulder mass, running off the
    bottom of the panel. ``towards_right``: the figure looks into the panel to the right."""
    rx = 0.82 * ry
    s = 1.0 if towards_right else -1.0
    t = ry / 0.21  # the torso length this head implies, so outline weights match other figures
    neck_top = (cx + s * 0.1 * rx, cy + 0.7 * ry)
    shoulder_far = (cx + s * 1.7 * rx, cy + 1.75 * ry)
    shoulder_near = (cx - s * 1.5 * rx, cy + 1.65 * ry)
    torso: list[Primitive] = [
        Capsule(neck_top, (cx, cy + 1.4 * ry), 0.09 * t),
        Capsule(shoulder_near, shoulder_far, 0.16 * t),
        Capsule((cx - s * 0.9 * rx, cy + 2.8 * ry), (cx + s * 1.0 * rx, cy + 2.8 * ry), 0.4 * t),
    ]
    head = Oval((cx, cy), rx, ry, (0.0, -1.0), 0.0)
    return Mannequin([torso, [head]], [], head, back_view=True)

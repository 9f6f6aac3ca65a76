"""Balloon body outlines per kind, polygonised in page units.

Every body stays inside its box (the tail is added separately by :mod:`.tails`), and each kind
reports the ellipse its text must stay inside (``text_ellipse_scale``) so :mod:`.text_fit` can
compute the inscribed text rectangle without looking at the polygon.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random

from comic_studio.core.lettering.contract import Outline
from comic_studio.core.model import BalloonKind, Box

ELLIPSE_POINTS = 72  # smooth at print size without bloating PDFs
_CLOUD_POINTS_PER_BUMP = 10
_BURST_INNER = (0.70, 0.78)  # inner radius range of a burst, as a fraction of the box half-size
_BURST_OUTER = (0.88, 1.0)


def ellipse(box: Box, n: int = ELLIPSE_POINTS) -> Outline:
    rx, ry = box.w / 2, box.h / 2
    return tuple(
        (box.cx + rx * math.cos(2 * math.pi * i / n), box.cy + ry * math.sin(2 * math.pi * i / n)) for i in range(n)
    )


def rectangle(box: Box) -> Outline:
    return ((box.x, box.y), (box.x + box.w, box.y), (box.x + box.w, box.y + box.h), (box.x, box.y + box.h))


def cloud_bump_radius(box: Box) -> float:
    """Height of a thought cloud's scallops; the text ellipse shrinks by this much."""
    return max(1.5, 0.1 * min(box.w, box.h))


def cloud(box: Box) -> Outline:
    """Scalloped thought cloud: round bumps laid along an ellipse inset by the bump height.

    Bumps are spaced by arc length (not by angle), so a wide cloud has even scallops on its long
    sides and its ends alike. Each bump bulges outward along the ellipse's normal; adjacent bumps
    meet in an inward cusp, which is what makes it read as a cloud.
    """
    b = cloud_bump_radius(box)
    rx, ry = max(box.w / 2 - b, 0.5), max(box.h / 2 - b, 0.5)
    dense = 720
    params = [2 * math.pi * i / dense for i in range(dense + 1)]
    arc = [0.0]
    for t0, t1 in zip(params, params[1:]):
        arc.append(arc[-1] + math.hypot(rx * (math.cos(t1) - math.cos(t0)), ry * (math.sin(t1) - math.sin(t0))))
    perimeter = arc[-1]
    bumps = max(8, round(perimeter / (1.8 * b)))
    steps = bumps * _CLOUD_POINTS_PER_BUMP
    out = []
    for i in range(steps):
        s = perimeter * i / steps
        k = min(bisect.bisect_right(arc, s), dense)
        frac = (s - arc[k - 1]) / max(arc[k] - arc[k - 1], 1e-12)
        t = params[k - 1] + frac * (params[k] - params[k - 1])
        # Outward normal of the ellipse at parameter t.
        nx, ny = ry * math.cos(t), rx * math.sin(t)
        norm = math.hypot(nx, ny) or 1.0
        u = (i % _CLOUD_POINTS_PER_BUMP) / _CLOUD_POINTS_PER_BUMP
        lift = b * math.sin(math.pi * u) ** 0.6  # exponent < 1 rounds the bumps' shoulders
        out.append((box.cx + rx * math.cos(t) + lift * nx / norm, box.cy + ry * math.sin(t) + lift * ny / norm))
    return tuple(out)


def seed_for(balloon_id: str) -> int:
    """Stable across runs and machines (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(balloon_id.encode("utf-8")).digest()[:8], "big")


def burst(box: Box, balloon_id: str) -> Outline:
    """Jagged shout burst: alternating outer spikes and inner notches with seeded irregularity.

    Seeding by the balloon id keeps a balloon's silhouette identical between redraws, exports and
    sessions, while two bursts on a page still look hand-drawn and different.
    """
    rng = random.Random(seed_for(balloon_id))
    rx, ry = box.w / 2, box.h / 2
    perimeter = math.pi * (3 * (rx + ry) - math.sqrt((3 * rx + ry) * (rx + 3 * ry)))  # Ramanujan
    spikes = max(10, min(24, round(perimeter / 26)))
    step = math.pi / spikes  # angle between a spike and the next notch
    start = rng.uniform(0, step)
    out = []
    for i in range(2 * spikes):
        angle = start + i * step + rng.uniform(-0.25, 0.25) * step
        lo, hi = _BURST_OUTER if i % 2 == 0 else _BURST_INNER
        f = rng.uniform(lo, hi)
        out.append((box.cx + f * rx * math.cos(angle), box.cy + f * ry * math.sin(angle)))
    return tuple(out)


def body_outline(kind: BalloonKind, box: Box, balloon_id: str) -> Outline | None:
    """The balloon body for ``kind``; ``None`` for SFX, which are bare text."""
    if kind in (BalloonKind.SPEECH, BalloonKind.WHISPER):
        return ellipse(box)
    if kind is BalloonKind.THOUGHT:
        return cloud(box)
    if kind is BalloonKind.SHOUT:
        return burst(box, balloon_id)
    if kind is BalloonKind.CAPTION:
        return rectangle(box)
    return None


def text_ellipse(kind: BalloonKind, box: Box) -> Box | None:
    """The ellipse (as its bounding box) that text must stay inside, or ``None`` when the text
    area is the box itself (captions, SFX)."""
    if kind in (BalloonKind.SPEECH, BalloonKind.WHISPER):
        return box
    if kind is BalloonKind.THOUGHT:
        b = cloud_bump_radius(box)
        return Box(x=box.x + b, y=box.y + b, w=max(box.w - 2 * b, 0.0), h=max(box.h - 2 * b, 0.0))
    if kind is BalloonKind.SHOUT:
        f = _BURST_INNER[0] * 0.97  # notches cut slightly inside their own radius between vertices
        return Box(x=box.cx - f * box.w / 2, y=box.cy - f * box.h / 2, w=f * box.w, h=f * box.h)
    return None

"""Polygon helpers lettering needs beyond the shared ones in ``core.layout.geometry``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from comic_studio.core.layout.geometry import bounds as bbox, point_in_polygon  # noqa: F401 (re-exported)

Pt = tuple[float, float]


def ray_hit(origin: Pt, direction: Pt, poly: Sequence[Pt]) -> float | None:
    """Largest ``t > 0`` where ``origin + t * direction`` crosses the polygon's outline.

    The largest hit is the outer edge as seen from the origin, which is what a tail attaches to
    even on a non-convex outline (cloud scallops, burst spikes).
    """
    ox, oy = origin
    dx, dy = direction
    best: float | None = None
    n = len(poly)
    for i in range(n):
        ax, ay = poly[i]
        bx, by = poly[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        denom = dx * ey - dy * ex
        if abs(denom) < 1e-12:
            continue
        t = ((ax - ox) * ey - (ay - oy) * ex) / denom
        u = ((ax - ox) * dy - (ay - oy) * dx) / denom
        if t > 1e-9 and -1e-9 <= u <= 1 + 1e-9 and (best is None or t > best):
            best = t
    return best


def circle(cx: float, cy: float, r: float, n: int = 24) -> tuple[Pt, ...]:
    return tuple((cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n)) for i in range(n))


def quad_bezier(p0: Pt, c: Pt, p1: Pt, n: int) -> list[Pt]:
    """``n + 1`` points of a quadratic Bézier, both ends included."""
    out = []
    for i in range(n + 1):
        t = i / n
        a, b, d = (1 - t) ** 2, 2 * (1 - t) * t, t * t
        out.append((a * p0[0] + b * c[0] + d * p1[0], a * p0[1] + b * c[1] + d * p1[1]))
    return out

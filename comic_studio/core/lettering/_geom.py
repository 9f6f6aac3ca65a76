"""Small private polygon helpers.

The layout engine's ``comic_studio.core.layout.geometry`` will own the shared versions (bbox,
centroid, point-in-polygon); these stay private so lettering does not wait for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Pt = tuple[float, float]


def bbox(points: Sequence[Pt]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of the points."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def point_in_polygon(pt: Pt, poly: Sequence[Pt]) -> bool:
    """Even-odd ray casting; points exactly on an edge may go either way."""
    x, y = pt
    inside = False
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if xc > x:
                inside = not inside
    return inside


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

"""Plane geometry on panel polygons (page units, y down).

Polygons are lists of ``(x, y)`` vertices without a repeated closing point. The layout engine
produces *convex* polygons; the helpers that need convexity say so. Other modules (lettering,
export, the canvas) use :func:`bbox`, :func:`centroid` and :func:`point_in_polygon`.

Lines and half-planes are written as ``(nx, ny, c)``: the points with ``nx*x + ny*y <= c`` are
"inside". ``(nx, ny)`` is kept a unit vector, so ``c - n·p`` is a signed distance in points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from comic_studio.core.model import Box

Point = tuple[float, float]
Polygon = list[Point]
HalfPlane = tuple[float, float, float]

EPS = 1e-6


# --------------------------------------------------------------------------- measures


def signed_area(poly: Sequence[Point]) -> float:
    """Shoelace area; positive when the vertices run clockwise *on screen* (y down)."""
    total = 0.0
    n = len(poly)
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        total += x0 * y1 - x1 * y0
    return total / 2.0


def area(poly: Sequence[Point]) -> float:
    return abs(signed_area(poly))


def bounds(poly: Iterable[Point]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of the axis-aligned bounding box."""
    xs, ys = zip(*poly, strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def bbox(poly: Iterable[Point]) -> Box:
    """Axis-aligned bounding box as a model :class:`Box` (``x, y`` top-left, ``w, h``)."""
    x0, y0, x1, y1 = bounds(poly)
    return Box(x=x0, y=y0, w=x1 - x0, h=y1 - y0)


def centroid(poly: Sequence[Point]) -> Point:
    """Area centroid; falls back to the vertex mean for degenerate (zero-area) polygons."""
    a = signed_area(poly)
    if abs(a) < EPS:
        n = len(poly)
        return sum(p[0] for p in poly) / n, sum(p[1] for p in poly) / n
    cx = cy = 0.0
    n = len(poly)
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        cross = x0 * y1 - x1 * y0
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    return cx / (6 * a), cy / (6 * a)


def extent_along(poly: Sequence[Point], direction: Point) -> tuple[float, float]:
    """Smallest and largest projection of the vertices on ``direction``."""
    dx, dy = direction
    proj = [x * dx + y * dy for x, y in poly]
    return min(proj), max(proj)


def min_width(poly: Sequence[Point]) -> float:
    """Width of a convex polygon: the smallest extent over its edge normals (rotating calipers
    reduced to the edges, which is exact for convex polygons)."""
    best = math.inf
    for (x0, y0), (x1, y1) in edges(poly):
        length = math.hypot(x1 - x0, y1 - y0)
        if length < EPS:
            continue
        lo, hi = extent_along(poly, ((y1 - y0) / length, (x0 - x1) / length))
        best = min(best, hi - lo)
    return 0.0 if best is math.inf else best


# --------------------------------------------------------------------------- predicates


def edges(poly: Sequence[Point]) -> list[tuple[Point, Point]]:
    n = len(poly)
    return [(poly[i], poly[(i + 1) % n]) for i in range(n)]


def point_in_polygon(point: Point, poly: Sequence[Point]) -> bool:
    """Even-odd test; works for any simple polygon, convex or not. Points exactly on an edge may
    land on either side."""
    x, y = point
    inside = False
    n = len(poly)
    j = n - 1
    for i in range(n):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y):
            x_cross = xi + (y - yi) * (xj - xi) / (yj - yi)
            if x < x_cross:
                inside = not inside
        j = i
    return inside


def is_convex(poly: Sequence[Point], tol: float = 1e-7) -> bool:
    """True when every turn goes the same way (collinear vertices are tolerated)."""
    n = len(poly)
    if n < 3:
        return False
    sign = 0
    for i in range(n):
        ax, ay = poly[i]
        bx, by = poly[(i + 1) % n]
        cx, cy = poly[(i + 2) % n]
        cross = (bx - ax) * (cy - by) - (by - ay) * (cx - bx)
        if abs(cross) <= tol * max(1.0, abs(bx - ax) + abs(by - ay)) ** 2:
            continue
        s = 1 if cross > 0 else -1
        if sign == 0:
            sign = s
        elif s != sign:
            return False
    return sign != 0


def polygon_contains(outer: Sequence[Point], inner: Sequence[Point], tol: float = 1e-6) -> bool:
    """True when every vertex of ``inner`` lies in the convex polygon ``outer`` (within ``tol``).
    For convex ``inner`` that means the whole polygon is inside."""
    planes = half_planes(outer)
    return all(nx * x + ny * y <= c + tol for x, y in inner for nx, ny, c in planes)


def rect_contains(box: tuple[float, float, float, float], poly: Iterable[Point], tol: float = 1e-6) -> bool:
    x0, y0, x1, y1 = box
    return all(x0 - tol <= x <= x1 + tol and y0 - tol <= y <= y1 + tol for x, y in poly)


# --------------------------------------------------------------------------- half-planes and clipping


def line_through(a: Point, b: Point) -> HalfPlane:
    """Half-plane bounded by the line ``a→b``, keeping the side to the *left* of the direction of
    travel as seen on screen (y down). For a screen-clockwise polygon that is the outside."""
    (x0, y0), (x1, y1) = a, b
    length = math.hypot(x1 - x0, y1 - y0)
    if length < EPS:
        raise ValueError("line through two equal points")
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    return nx, ny, nx * x0 + ny * y0


def half_planes(poly: Sequence[Point]) -> list[HalfPlane]:
    """The half-planes whose intersection is the convex polygon ``poly`` (either orientation)."""
    clockwise = signed_area(poly) > 0
    planes = []
    for a, b in edges(poly):
        if math.hypot(b[0] - a[0], b[1] - a[1]) < EPS:
            continue
        nx, ny, c = line_through(a, b)
        # line_through keeps the screen-left side of each edge, which is the inside only for a
        # screen-anticlockwise polygon; flip it for clockwise ones.
        if clockwise:
            planes.append((-nx, -ny, -c))
        else:
            planes.append((nx, ny, c))
    return planes


def outward_normal(poly: Sequence[Point], index: int) -> Point:
    """Unit normal of edge ``index`` (from vertex ``index`` to ``index+1``) pointing out of the
    convex polygon."""
    a = poly[index]
    b = poly[(index + 1) % len(poly)]
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    nx, ny = (b[1] - a[1]) / length, -(b[0] - a[0]) / length
    if signed_area(poly) < 0:
        nx, ny = -nx, -ny
    return nx, ny


def clip_half_plane(poly: Sequence[Point], plane: HalfPlane) -> Polygon:
    """Keep the part of a convex polygon with ``nx*x + ny*y <= c`` (Sutherland–Hodgman, one
    plane). Returns ``[]`` when nothing (or only a sliver of zero area) remains."""
    nx, ny, c = plane
    out: Polygon = []
    n = len(poly)
    for i in range(n):
        p = poly[i]
        q = poly[(i + 1) % n]
        dp = nx * p[0] + ny * p[1] - c
        dq = nx * q[0] + ny * q[1] - c
        if dp <= 0:
            out.append(p)
        if (dp < 0 < dq) or (dq < 0 < dp):
            t = dp / (dp - dq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    out = dedupe(out)
    return out if len(out) >= 3 and area(out) > EPS else []


def clip_convex(subject: Sequence[Point], clip: Sequence[Point]) -> Polygon:
    """Intersection of two convex polygons (``[]`` when they do not overlap)."""
    result: Polygon = list(subject)
    for plane in half_planes(clip):
        result = clip_half_plane(result, plane)
        if not result:
            return []
    return result


def overlap_area(a: Sequence[Point], b: Sequence[Point]) -> float:
    inter = clip_convex(a, b)
    return area(inter) if inter else 0.0


def offset_line(plane: HalfPlane, distance: float) -> HalfPlane:
    """The same line moved ``distance`` points along its normal (the outside direction)."""
    nx, ny, c = plane
    return nx, ny, c + distance


def intersect_lines(a: HalfPlane, b: HalfPlane) -> Point | None:
    """Crossing point of two boundary lines, ``None`` when (nearly) parallel."""
    a1, b1, c1 = a
    a2, b2, c2 = b
    det = a1 * b2 - a2 * b1
    if abs(det) < 1e-9:
        return None
    return (c1 * b2 - c2 * b1) / det, (a1 * c2 - a2 * c1) / det


def dedupe(poly: Sequence[Point], tol: float = 1e-7) -> Polygon:
    """Drop consecutive duplicate vertices (including last == first)."""
    out: Polygon = []
    for p in poly:
        if not out or abs(p[0] - out[-1][0]) > tol or abs(p[1] - out[-1][1]) > tol:
            out.append((p[0], p[1]))
    while len(out) > 1 and abs(out[0][0] - out[-1][0]) <= tol and abs(out[0][1] - out[-1][1]) <= tol:
        out.pop()
    return out


def drop_collinear(poly: Sequence[Point], tol: float = 1e-6) -> Polygon:
    """Remove vertices lying on the straight line through their neighbours."""
    pts = dedupe(poly)
    changed = True
    while changed and len(pts) > 3:
        changed = False
        for i in range(len(pts)):
            a, b, c = pts[i - 1], pts[i], pts[(i + 1) % len(pts)]
            cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])
            scale = math.hypot(c[0] - a[0], c[1] - a[1]) or 1.0
            if abs(cross) / scale <= tol:
                del pts[i]
                changed = True
                break
    return pts


def convex_hull(points: Iterable[Point]) -> Polygon:
    """Convex hull (monotone chain), clockwise on screen starting at the top-left-most vertex,
    without collinear vertices."""
    pts = sorted(set((float(x), float(y)) for x, y in points))
    if len(pts) < 3:
        return list(pts)

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: Polygon = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 1e-9:
            lower.pop()
        lower.append(p)
    upper: Polygon = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 1e-9:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    # Normalise the winding explicitly so callers get the same order as the templates produce.
    if signed_area(hull) < 0:
        hull.reverse()
    return hull


def clockwise(poly: Sequence[Point]) -> Polygon:
    """The polygon with screen-clockwise vertex order (positive :func:`signed_area`)."""
    pts = list(poly)
    return pts if signed_area(pts) >= 0 else pts[::-1]


# --------------------------------------------------------------------------- distances


def point_segment_distance(p: Point, a: Point, b: Point) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 < EPS * EPS:
        return math.hypot(p[0] - ax, p[1] - ay)
    t = max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return math.hypot(p[0] - (ax + t * dx), p[1] - (ay + t * dy))


def polygon_distance(a: Sequence[Point], b: Sequence[Point]) -> float:
    """Smallest distance between the outlines of two polygons that do not overlap (0 when they
    touch or overlap)."""
    if overlap_area(a, b) > EPS:
        return 0.0
    best = math.inf
    for p in a:
        for s, t in edges(b):
            best = min(best, point_segment_distance(p, s, t))
    for p in b:
        for s, t in edges(a):
            best = min(best, point_segment_distance(p, s, t))
    return best


def parallel_edge_distance(e1: tuple[Point, Point], e2: tuple[Point, Point], angle_tol: float = 1e-3) -> float | None:
    """Perpendicular distance between two parallel (or antiparallel) segments' lines; ``None``
    when they are not parallel within ``angle_tol`` radians."""
    (a, b), (c, d) = e1, e2
    ux, uy = b[0] - a[0], b[1] - a[1]
    vx, vy = d[0] - c[0], d[1] - c[1]
    lu, lv = math.hypot(ux, uy), math.hypot(vx, vy)
    if lu < EPS or lv < EPS:
        return None
    sin = abs(ux * vy - uy * vx) / (lu * lv)
    if sin > angle_tol:
        return None
    return abs((c[0] - a[0]) * uy - (c[1] - a[1]) * ux) / lu


def mirror_x(poly: Sequence[Point], page_width: float) -> Polygon:
    """Mirror a polygon left↔right about the page's vertical centre line, keeping the screen
    winding (the vertex order is reversed)."""
    return [(page_width - x, y) for x, y in reversed(poly)]


def cut_with_gutter(poly: Sequence[Point], normal: Point, c: float, gutter: float) -> tuple[Polygon, Polygon]:
    """Cut a convex polygon along the line ``normal·p = c`` leaving a gap of ``gutter`` points
    measured perpendicular to the line: the first piece is the side with ``normal·p < c``.
    Either piece may come back empty when the line misses the polygon."""
    nx, ny = normal
    length = math.hypot(nx, ny)
    nx, ny, c = nx / length, ny / length, c / length
    first = clip_half_plane(poly, (nx, ny, c - gutter / 2))
    second = clip_half_plane(poly, (-nx, -ny, -(c + gutter / 2)))
    return first, second


def canonical(poly: Sequence[Point], digits: int = 6) -> Polygon:
    """Screen-clockwise, without duplicate or collinear vertices, starting at the top-most (then
    left-most) vertex, coordinates rounded: a stable form for shapes stored in the document."""
    pts = drop_collinear(clockwise([(round(x, digits), round(y, digits)) for x, y in poly]))
    start = min(range(len(pts)), key=lambda i: (pts[i][1], pts[i][0]))
    return pts[start:] + pts[:start]

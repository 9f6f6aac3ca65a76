"""Head and body regions of a pose figure, as geometry and as boolean pixel masks.

The head region is a circle around the face keypoints (an ellipse once the pose canvas is
stretched into a panel of another aspect); the body region is the union of thick capsules along the
limbs, the neck and the torso, minus the head. They feed face/body conditioning (masked
IP-Adapters) and balloon placement (avoid the heads, aim tails at them).

Normalised coordinates follow the library: x in canvas widths, y in canvas heights. A radius is in
canvas *heights* (the canvas is isotropic once x is multiplied by the aspect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from comic_studio.poses.library import KP, Figure

# Limb thickness (capsule radius) as a multiple of the head radius: arms are thinner than legs,
# the torso capsule stands in for chest depth in profile views where the shoulder/hip quad collapses.
_ARM = 0.55
_LEG = 0.75
_TORSO = 1.25
_NECK = 0.5
_HEAD_MARGIN = 1.12  # the skull and hair reach a little past the face keypoints' circle
_SEGMENTS: tuple[tuple[str, str, float], ...] = (
    ("r_shoulder", "r_elbow", _ARM), ("r_elbow", "r_wrist", _ARM),
    ("l_shoulder", "l_elbow", _ARM), ("l_elbow", "l_wrist", _ARM),
    ("r_hip", "r_knee", _LEG), ("r_knee", "r_ankle", _LEG),
    ("l_hip", "l_knee", _LEG), ("l_knee", "l_ankle", _LEG),
    ("r_shoulder", "l_shoulder", _ARM), ("r_hip", "l_hip", _LEG),
)  # fmt: skip


class BoxLike(Protocol):
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class HeadRegion:
    cx: float
    """Head centre x, in canvas widths."""
    cy: float
    """Head centre y, in canvas heights."""
    radius: float
    """In canvas heights."""


def _iso(figure: Figure, aspect: float) -> dict[str, tuple[float, float]]:
    return {name: (figure.keypoints[i][0] * aspect, figure.keypoints[i][1]) for name, i in KP.items()}


def head_region(figure: Figure, aspect: float) -> HeadRegion:
    """Centre and radius of the figure's head, estimated from the face keypoints and body scale."""
    p = _iso(figure, aspect)
    face = [p[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear") if figure.visible(n)] or [p["nose"]]
    cx = sum(x for x, _ in face) / len(face)
    cy = sum(y for _, y in face) / len(face)
    nose, neck = p["nose"], p["neck"]
    if figure.visible("r_ear") != figure.visible("l_ear"):
        # Profile: the face points sit on the front of the skull; move the centre back from the nose.
        cx, cy = cx + (cx - nose[0]) * 0.6, cy + (cy - nose[1]) * 0.6
    mid_hip = ((p["r_hip"][0] + p["l_hip"][0]) / 2, (p["r_hip"][1] + p["l_hip"][1]) / 2)
    # Three independent size cues; the largest is the least foreshortened one.
    # (nose→neck is long in profile, where the nose juts forward, hence the small factor.)
    cues = [0.62 * math.dist(nose, neck), 0.21 * math.dist(neck, mid_hip)]
    if figure.visible("r_ear") and figure.visible("l_ear"):
        cues.append(math.dist(p["r_ear"], p["l_ear"]) / 1.8)
    radius = max(cues) * _HEAD_MARGIN
    if radius <= 0:
        radius = 0.02  # degenerate figure (all points equal): keep a small, visible head
    return HeadRegion(cx=cx / aspect, cy=cy, radius=radius)


def figure_bbox(figure: Figure, aspect: float) -> tuple[float, float, float, float]:
    """Normalised ``(x, y, w, h)`` box around the whole figure, head included."""
    head = head_region(figure, aspect)
    pad = head.radius * 0.6
    xs = [x * aspect for x, _, _ in figure.keypoints] + [head.cx * aspect - head.radius, head.cx * aspect + head.radius]
    ys = [y for _, y, _ in figure.keypoints] + [head.cy - head.radius]
    x0, x1 = (min(xs) - pad) / aspect, (max(xs) + pad) / aspect
    y0, y1 = min(ys) - pad * 0.3, max(ys) + pad
    return (x0, y0, x1 - x0, y1 - y0)


def _box(canvas_box: BoxLike | tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if isinstance(canvas_box, tuple):
        x, y, w, h = canvas_box
    else:
        x, y, w, h = canvas_box.x, canvas_box.y, canvas_box.w, canvas_box.h
    if w <= 0 or h <= 0:
        raise ValueError(f"canvas_box must have a positive size, got {w}×{h}")
    return float(x), float(y), float(w), float(h)


def _capsules(mask: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray, float]]) -> None:
    """OR into ``mask`` every capsule (segment a→b with radius r, pixel units), touching only the
    pixels of its bounding box so big masks stay cheap."""
    height, width = mask.shape
    for a, b, r in segments:
        x0 = max(0, int(math.floor(min(a[0], b[0]) - r)))
        x1 = min(width, int(math.ceil(max(a[0], b[0]) + r)) + 1)
        y0 = max(0, int(math.floor(min(a[1], b[1]) - r)))
        y1 = min(height, int(math.ceil(max(a[1], b[1]) + r)) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        # Pixel centres (+0.5) so a capsule covers the pixels whose centre lies inside it.
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
        ab = b - a
        denom = float(ab @ ab)
        t = np.zeros_like(xs) if denom == 0 else np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / denom, 0, 1)
        dx, dy = xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1])
        mask[y0:y1, x0:x1] |= dx * dx + dy * dy <= r * r


def _polygon(mask: np.ndarray, poly: np.ndarray) -> None:
    """OR a convex polygon (pixel coordinates) into ``mask`` (half-plane test over its bbox)."""
    height, width = mask.shape
    x0, y0 = max(0, int(poly[:, 0].min())), max(0, int(poly[:, 1].min()))
    x1, y1 = min(width, int(math.ceil(poly[:, 0].max())) + 1), min(height, int(math.ceil(poly[:, 1].max())) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    signs = []
    for i in range(len(poly)):
        (ax, ay), (bx, by) = poly[i], poly[(i + 1) % len(poly)]
        signs.append((bx - ax) * (ys - ay) - (by - ay) * (xs - ax))
    s = np.stack(signs)
    mask[y0:y1, x0:x1] |= np.all(s >= 0, axis=0) | np.all(s <= 0, axis=0)


def figure_masks(figure: Figure, width: int, height: int,
                 canvas_box: BoxLike | tuple[float, float, float, float],
                 aspect: float | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Boolean ``(head_mask, body_mask)`` arrays of shape ``(height, width)``.

    ``canvas_box`` (``x, y, w, h`` in pixels, or a :class:`~comic_studio.core.model.Box`) is where the
    pose canvas lands in the image; ``aspect`` is the entry's canvas aspect (default: the box's own,
    i.e. no stretching). The two masks are disjoint: the body excludes the head.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"mask size must be positive, got {width}×{height}")
    bx, by, bw, bh = _box(canvas_box)
    aspect = bw / bh if aspect is None else aspect
    sx, sy = bw, bh  # pixels per normalised unit

    def px(name: str) -> np.ndarray:
        x, y, _ = figure.keypoints[KP[name]]
        return np.array([bx + x * sx, by + y * sy])

    head = head_region(figure, aspect)
    # A radius in canvas heights spans bh pixels vertically and bw/aspect pixels horizontally.
    rx, ry = head.radius * bw / aspect, head.radius * bh
    hcx, hcy = bx + head.cx * sx, by + head.cy * sy
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    head_mask = ((xs - hcx) / rx) ** 2 + ((ys - hcy) / ry) ** 2 <= 1.0

    body_mask = np.zeros((height, width), dtype=bool)
    unit = math.sqrt(rx * ry) / _HEAD_MARGIN  # the bare head radius in (geometric-mean) pixels
    segs = [(px(a), px(b), k * unit) for a, b, k in _SEGMENTS]
    mid_hip = (px("r_hip") + px("l_hip")) / 2
    segs.append((px("neck"), mid_hip, _TORSO * unit))
    segs.append((px("neck"), np.array([hcx, hcy]), _NECK * unit))
    _capsules(body_mask, segs)
    _polygon(body_mask, np.array([px("r_shoulder"), px("l_shoulder"), px("l_hip"), px("r_hip")]))
    body_mask &= ~head_mask
    return head_mask, body_mask


def entry_masks(figures: tuple[Figure, ...], width: int, height: int,
                canvas_box: BoxLike | tuple[float, float, float, float],
                aspect: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Masks of every figure; where figures overlap, a head wins over another figure's body
    (a face in front must stay face-conditioned)."""
    masks = [figure_masks(f, width, height, canvas_box, aspect) for f in figures]
    all_heads = np.zeros((height, width), dtype=bool)
    for head, _ in masks:
        all_heads |= head
    return [(head, body & ~all_heads) for head, body in masks]

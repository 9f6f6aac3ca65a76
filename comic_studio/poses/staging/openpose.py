"""OpenPose conditioning images: skeletons drawn in the standard OpenPose-18 colour scheme.

OpenPose ControlNets were trained on the renderer of the original OpenPose/ControlNet annotator:
black background, 17 limbs as filled ellipses in a fixed rainbow (drawn at 60 % opacity over what
is already there), and a dot per keypoint in the keypoint's own colour. A pose drawn in another
palette reads as a different limb to the network, so the colours and the limb order here follow
that scheme exactly. Sizes scale with the image so a 1344×768 panel looks like the training data.

Pure PIL + numpy (no torch): the UI can show the conditioning image without the ML stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

# The pose library's keypoints and limbs are OpenPose-18's, in OpenPose's order (limb j is drawn in
# COLOURS[j]), so library keypoints need no remapping.
from comic_studio.poses.library import LIMBS

COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
"""Keypoint ``i`` is drawn in ``COLOURS[i]``; limb ``j`` in ``COLOURS[j]``."""
LIMB_OPACITY = 0.6
REFERENCE_SIDE = 512
"""The annotator's stick width (4 px) and dot radius (4 px) are for ~512 px images."""

PixelKeypoints = Sequence[tuple[float, float, float]]
"""18 ``(x, y, visible)`` in panel pixels."""


def stroke_sizes(width: int, height: int) -> tuple[float, float]:
    """(limb half-width, keypoint radius) in pixels for an image of this size."""
    k = max(1.0, min(width, height) / REFERENCE_SIDE)
    return 4.0 * k, 4.0 * k


def render_openpose(figures: Sequence[PixelKeypoints], width: int, height: int) -> Image.Image:
    """An RGB image of ``width`` × ``height`` with every figure's skeleton; invisible keypoints
    (``visible <= 0.5``) and limbs touching them are left out."""
    canvas = np.zeros((height, width, 3), dtype=np.float32)
    stick, dot = stroke_sizes(width, height)
    for keypoints in figures:
        if len(keypoints) != len(COLOURS):
            raise ValueError(f"a figure needs {len(COLOURS)} keypoints, got {len(keypoints)}")
        for limb, (a, b) in enumerate(LIMBS):
            (xa, ya, va), (xb, yb, vb) = keypoints[a], keypoints[b]
            if va <= 0.5 or vb <= 0.5:
                continue
            layer = Image.new("L", (width, height), 0)
            ImageDraw.Draw(layer).polygon(_limb_polygon((xa, ya), (xb, yb), stick), fill=255)
            alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255.0 * LIMB_OPACITY
            canvas = canvas * (1.0 - alpha) + np.asarray(COLOURS[limb], dtype=np.float32) * alpha
    image = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for keypoints in figures:
        for i, (x, y, v) in enumerate(keypoints):
            if v > 0.5:
                draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=COLOURS[i])
    return image


def _limb_polygon(
    a: tuple[float, float], b: tuple[float, float], half_width: float, n: int = 24
) -> list[tuple[float, float]]:
    """The annotator's limb: an ellipse spanning a→b with minor semi-axis ``half_width``."""
    cx, cy = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    half_length = max(math.dist(a, b) / 2, half_width)
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    ca, sa = math.cos(angle), math.sin(angle)
    points = []
    for k in range(n):
        t = 2 * math.pi * k / n
        u, v = half_length * math.cos(t), half_width * math.sin(t)
        points.append((cx + u * ca - v * sa, cy + u * sa + v * ca))
    return points

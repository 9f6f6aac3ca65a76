"""OpenPose conditioning images: skeletons drawn in the standard OpenPose-18 colour scheme.

Black background, 17 limbs as filled ellipses in a fixed rainbow (each blended over what is already
there), and a dot per keypoint in the keypoint's own colour. A pose drawn in another palette reads
as a different limb to the network, so the colours and the limb order follow the original OpenPose /
ControlNet annotator exactly.

Line thickness follows what the ControlNet was trained on. xinsir's SDXL OpenPose ControlNet (the
racig backend's) was trained on *thicker* lines than the annotator draws; its model card warns that
control is unstable with the default lines and ships a replacement ``draw_bodypose``. RaCig
(ZulutionAI/RaCig, racig/utils.py::draw_bodypose_openpose) draws with that rule, so the default
style here is RaCig's: half-width and dot radius 4 px × a ratio bucketed by the image's *longer*
side (1 below 500 px, 2 below 1000, then one more per 1000 px up to 7 at 5000 px and beyond — 12 px
at 1344×768), limbs blended at 0.7. The ``annotator`` style keeps the annotator's 4 px at 512 px
scaled by the shorter side, blended at 0.6 (half as thick at 1344×768), for ControlNets trained on
that renderer.

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
LINE_STYLES = ("racig", "annotator")
"""``racig``: RaCig's / xinsir's thickness (the default); ``annotator``: the original annotator's."""
DEFAULT_LINE_STYLE = "racig"
LIMB_OPACITY = {"racig": 0.7, "annotator": 0.6}
REFERENCE_SIDE = 512
"""The annotator's stick width (4 px) and dot radius (4 px) are for ~512 px images."""

PixelKeypoints = Sequence[tuple[float, float, float]]
"""18 ``(x, y, visible)`` in panel pixels."""


def racig_ratio(width: int, height: int) -> int:
    """RaCig's thickness multiplier: bucketed by the longer side — 1 below 500 px, 2 below 1000 px,
    then 3 for 1000–1999, 4 for 2000–2999 … up to 7 from 5000 px on."""
    longest = max(width, height)
    if longest < 500:
        return 1
    if longest < 1000:
        return 2
    return min(7, longest // 1000 + 2)


def stroke_sizes(width: int, height: int, style: str = DEFAULT_LINE_STYLE) -> tuple[float, float]:
    """(limb half-width, keypoint radius) in pixels for an image of this size."""
    if style == "racig":
        ratio = racig_ratio(width, height)
        return 4.0 * ratio, 4.0 * ratio
    if style == "annotator":
        k = max(1.0, min(width, height) / REFERENCE_SIDE)
        return 4.0 * k, 4.0 * k
    raise ValueError(f"unknown OpenPose line style {style!r} (known: {', '.join(LINE_STYLES)})")


def render_openpose(
    figures: Sequence[PixelKeypoints], width: int, height: int, style: str = DEFAULT_LINE_STYLE
) -> Image.Image:
    """An RGB image of ``width`` × ``height`` with every figure's skeleton in line ``style``;
    invisible keypoints (``visible <= 0.5``) and limbs touching them are left out."""
    canvas = np.zeros((height, width, 3), dtype=np.float32)
    stick, dot = stroke_sizes(width, height, style)
    opacity = LIMB_OPACITY[style]
    for keypoints in figures:
        if len(keypoints) != len(COLOURS):
            raise ValueError(f"a figure needs {len(COLOURS)} keypoints, got {len(keypoints)}")
        for limb, (a, b) in enumerate(LIMBS):
            (xa, ya, va), (xb, yb, vb) = keypoints[a], keypoints[b]
            if va <= 0.5 or vb <= 0.5:
                continue
            layer = Image.new("L", (width, height), 0)
            ImageDraw.Draw(layer).polygon(_limb_polygon((xa, ya), (xb, yb), stick), fill=255)
            alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255.0 * opacity
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

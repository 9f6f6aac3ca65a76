"""Camera framing by shot type: where the pose lands in the panel and where the horizon sits.

Pose space is the pose canvas with x multiplied by its aspect (so units are isotropic, one unit =
the canvas height). A :class:`Frame` maps pose space to panel pixels with one uniform scale and an
offset. Shots are framed from the figures' own measurements (head tops, shoulders, waists, feet),
then clamped so that what must be seen (full bodies in wide shots, the focus head in close-ups)
stays inside the panel.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from comic_studio.core.model import ShotType
from comic_studio.poses.library import KP
from comic_studio.poses.staging.geometry import FigureGeometry

UPPER_BODY = [KP[n] for n in ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
                             "r_eye", "l_eye", "r_ear", "l_ear")]  # fmt: skip


@dataclass(frozen=True)
class Frame:
    scale: float
    tx: float
    ty: float
    horizon: float
    """Eye level of the camera, in panel pixels (perspective lines meet on it)."""
    vp_x: float
    """Vanishing point x, in panel pixels."""
    env_zoom: float
    """How close the camera is to the set: 0.3 (establishing) .. 1.6 (extreme close-up)."""
    ots_figure: int | None = None
    """Over-the-shoulder: the figure drawn as a back view in the foreground (not via the pose)."""
    ots_left: bool = True

    def apply(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.scale + self.tx, y * self.scale + self.ty)


def frame_shot(
    geoms: list[FigureGeometry],
    shot: ShotType,
    width: float,
    height: float,
    focus: int | None,
    rng: random.Random,
) -> Frame:
    """Frame ``geoms`` (pose space) for ``shot`` in a ``width`` × ``height`` pixel panel."""
    w, h = float(width), float(height)
    jitter = (rng.random() - 0.5) * 0.03 * w  # small, seeded: thumbnails of one beat vary a little
    if not geoms:
        horizon = {ShotType.ESTABLISHING: 0.5, ShotType.WIDE: 0.45}.get(shot, 0.4) * h
        return Frame(1.0, 0.0, 0.0, horizon, w * (0.5 + (rng.random() - 0.5) * 0.3), _zoom(shot))
    f = geoms[focus if focus is not None and 0 <= focus < len(geoms) else 0]

    if shot in (ShotType.WIDE, ShotType.ESTABLISHING):
        x0, y0, x1, y1 = _union([g.extent() for g in geoms])
        if shot is ShotType.WIDE:
            frac_h, frac_w, feet_at = 0.62, 0.86, 0.86
            centre = 0.5 * w + jitter
        else:
            frac_h, frac_w, feet_at = 0.3, 0.5, 0.84
            # Establishing: the group sits off-centre so the place gets the room.
            centre = w * (0.34 if rng.random() < 0.5 else 0.66) + jitter
        s = min(frac_h * h / max(y1 - y0, 1e-6), frac_w * w / max(x1 - x0, 1e-6))
        ty = feet_at * h - s * y1
        tx = centre - s * (x0 + x1) / 2
        tx = _clamp_span(tx, s * x0, s * x1, w, 0.03 * w)
        heads_y = sum(g.head_c[1] for g in geoms) / len(geoms) * s + ty
        horizon = heads_y if shot is ShotType.WIDE else min(0.5 * h, heads_y - 0.08 * h)
        return Frame(s, tx, ty, horizon, tx + s * (x0 + x1) / 2, _zoom(shot))

    if shot is ShotType.MEDIUM:
        # Cut at the focus figure's waist; figures whose heads are below it (someone lying on
        # the floor) are cropped rather than widening the shot into a wide one.
        bottom = f.waist_y() + 0.04 * f.torso
        upright = [g for g in geoms if g.head_c[1] < bottom] or [f]
        top = min(g.head_top for g in upright) - 0.8 * f.head_ry  # headroom for tags and balloons
        ux0, _, ux1, _ = _union([g.extent(UPPER_BODY) for g in upright])
        s_h = h / max(bottom - top, 1e-6)
        s_w = 0.94 * w / max(ux1 - ux0, 1e-6)
        # A spread-out group may lose a sliver at the sides: medium is about the faces.
        s = min(s_h, 1.12 * s_w)
        ty = -s * top + (0.0 if s_h <= s else 0.05 * h)
        tx = 0.5 * w + jitter - s * (ux0 + ux1) / 2
        return _eye_level(s, tx, ty, upright, _zoom(shot))

    if shot is ShotType.CLOSE_UP:
        top = f.head_top - 0.45 * f.head_ry
        bottom = f.shoulder_y() + 1.1 * f.head_ry
        s = min(h / max(bottom - top, 1e-6), 0.62 * w / (2 * f.head_rx))  # the head never exceeds 62% of the width
        ty = 0.5 * h - s * (top + bottom) / 2
        # Look room: a face looking right sits left of centre.
        tx = w * (0.5 - 0.12 * f.facing) + jitter * 0.5 - s * f.head_c[0]
        return _eye_level(s, tx, ty, [f], _zoom(shot))

    if shot is ShotType.EXTREME_CLOSE_UP:
        s = min(0.98 * h / (2 * f.head_ry), 0.95 * w / (2 * f.head_rx))
        ty = 0.52 * h - s * f.head_c[1]
        tx = w * (0.5 - 0.06 * f.facing) - s * f.head_c[0]
        return _eye_level(s, tx, ty, [f], _zoom(shot))

    # Over the shoulder: the camera stands behind a second figure (its back in the foreground,
    # drawn by the renderer) looking at the focus figure, framed medium-close on the far side.
    others = [i for i in range(len(geoms)) if i != (focus or 0)]
    fi = focus if focus is not None and 0 <= focus < len(geoms) else 0
    if not others:  # one figure: we stand behind it and look at the scene
        return Frame(1.0, 0.0, 0.0, 0.42 * h, w * 0.6, _zoom(shot), ots_figure=fi, ots_left=f.facing >= 0)
    back = min(others, key=lambda i: abs(geoms[i].head_c[0] - f.head_c[0]))
    left = geoms[back].head_c[0] <= f.head_c[0]
    s = 0.24 * h / (2 * f.head_ry)
    ty = 0.34 * h - s * f.head_c[1]
    tx = w * (0.64 if left else 0.36) + jitter * 0.5 - s * f.head_c[0]
    fr = _eye_level(s, tx, ty, [f], _zoom(shot))
    return Frame(fr.scale, fr.tx, fr.ty, fr.horizon, fr.vp_x, fr.env_zoom, ots_figure=back, ots_left=left)


def _eye_level(s: float, tx: float, ty: float, geoms: list[FigureGeometry], zoom: float) -> Frame:
    """Camera at the characters' eye level: the horizon passes through their eyes."""
    eye_y = sum(g.head_c[1] for g in geoms) / len(geoms) * s + ty
    eye_x = sum(g.head_c[0] for g in geoms) / len(geoms) * s + tx
    return Frame(s, tx, ty, eye_y, eye_x, zoom)


def _zoom(shot: ShotType) -> float:
    return {
        ShotType.ESTABLISHING: 0.3,
        ShotType.WIDE: 0.5,
        ShotType.MEDIUM: 0.8,
        ShotType.CLOSE_UP: 1.15,
        ShotType.EXTREME_CLOSE_UP: 1.6,
        ShotType.OVER_THE_SHOULDER: 0.85,
    }[shot]


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _clamp_span(tx: float, a: float, b: float, w: float, margin: float) -> float:
    """Shift ``tx`` so the span ``[a + tx, b + tx]`` stays within ``[margin, w - margin]``."""
    if a + tx < margin:
        tx = margin - a
    if b + tx > w - margin:
        tx = w - margin - b
    return tx

"""A pose figure's measurements: head, torso, shoulder and waist heights, extents.

Framing places figures in a panel by these, the storyboard draws its mannequins from them, and
racig frames its ControlNet pose with the same numbers, so both backends show one composition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comic_studio.poses.library import KP


@dataclass
class FigureGeometry:
    """Derived measurements of one figure, in whatever space its keypoints are in (y down)."""

    pts: np.ndarray  # (18, 2)
    vis: np.ndarray  # (18,) bool
    facing: float
    torso: float  # neck → mid-hip length: the unit every other size derives from
    head_c: tuple[float, float]
    head_rx: float
    head_ry: float
    head_up: tuple[float, float]

    @classmethod
    def from_keypoints(cls, pts: np.ndarray, vis: np.ndarray, facing: float) -> FigureGeometry:
        pts = np.asarray(pts, dtype=float)
        vis = np.asarray(vis, dtype=bool)
        torso = _torso_length(pts, vis)
        ry = 0.21 * torso
        rx = 0.17 * torso
        up = _head_up(pts, vis)
        face = [KP[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear") if vis[KP[n]]]
        if face:
            c = pts[face].mean(axis=0) + np.array(up) * 0.12 * ry
        elif vis[KP["neck"]]:
            c = pts[KP["neck"]] + np.array(up) * 1.15 * ry
        else:
            c = pts[vis].mean(axis=0) if vis.any() else np.zeros(2)
        return cls(pts, vis, float(facing), torso, (float(c[0]), float(c[1])), rx, ry, up)

    def point(self, name: str) -> tuple[float, float] | None:
        i = KP[name]
        return (float(self.pts[i, 0]), float(self.pts[i, 1])) if self.vis[i] else None

    @property
    def head_top(self) -> float:
        return self.head_c[1] - self.head_ry * 1.05

    def y_of(self, *names: str) -> float | None:
        ys = [self.pts[KP[n], 1] for n in names if self.vis[KP[n]]]
        return float(np.mean(ys)) if ys else None

    def shoulder_y(self) -> float:
        y = self.y_of("r_shoulder", "l_shoulder", "neck")
        return y if y is not None else self.head_c[1] + 2 * self.head_ry

    def waist_y(self) -> float:
        y = self.y_of("r_hip", "l_hip")
        return y if y is not None else self.shoulder_y() + self.torso

    def extent(self, rows: list[int] | None = None) -> tuple[float, float, float, float]:
        """Box around the visible keypoints (optionally only ``rows``) and the head, padded by
        the thickest limb so capsules fit."""
        idx = [i for i in (rows if rows is not None else range(len(self.vis))) if self.vis[i]]
        pad = 0.16 * self.torso
        xs = [self.pts[i, 0] for i in idx] + [self.head_c[0] - self.head_rx, self.head_c[0] + self.head_rx]
        ys = [self.pts[i, 1] for i in idx] + [self.head_c[1] - self.head_ry, self.head_c[1] + self.head_ry]
        return (min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad)


def _torso_length(pts: np.ndarray, vis: np.ndarray) -> float:
    hips = [KP["r_hip"], KP["l_hip"]]
    hv = [h for h in hips if vis[h]]
    if vis[KP["neck"]] and hv:
        d = float(np.linalg.norm(pts[KP["neck"]] - pts[hv].mean(axis=0)))
        if d > 1e-6:
            return d
    sh = [KP["r_shoulder"], KP["l_shoulder"]]
    if all(vis[s] for s in sh):
        d = float(np.linalg.norm(pts[sh[0]] - pts[sh[1]]))
        if d > 1e-6:
            return 1.35 * d
    if vis.sum() >= 2:
        span = pts[vis].max(axis=0) - pts[vis].min(axis=0)
        return max(1e-3, 0.3 * float(span.max()))
    return 0.1


def _head_up(pts: np.ndarray, vis: np.ndarray) -> tuple[float, float]:
    """The head's up direction: the spine's direction continued (lying figures tilt their head)."""
    neck = KP["neck"]
    if vis[neck]:
        hv = [h for h in (KP["r_hip"], KP["l_hip"]) if vis[h]]
        if hv:
            v = pts[neck] - pts[hv].mean(axis=0)
            n = float(np.linalg.norm(v))
            if n > 1e-6:
                return (float(v[0] / n), float(v[1] / n))
        if vis[KP["nose"]]:
            v = pts[KP["nose"]] - pts[neck]
            n = float(np.linalg.norm(v))
            if n > 1e-6:
                return (float(v[0] / n), float(v[1] / n))
    return (0.0, -1.0)

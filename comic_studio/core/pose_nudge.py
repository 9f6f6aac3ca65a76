"""Nudging one figure of a panel's pose: move it, or scale it about its feet (pure geometry on the
document model; the canvas runs the gestures).

Everything is in *panel-normalised* units (0..1 of the panel's bounding box, y down), the units of
a framed :class:`~comic_studio.core.model.PoseSpec` and of character placements. A uniform scale in
these units is uniform on the page too (both axes scale by the same factor about the same pivot),
so a nudged figure keeps its proportions.

A nudge becomes the panel's explicit pose: every figure the panel currently shows, in the panel's
own frame (``framed=True``), with the nudged one transformed and roles/facing kept; and the
characters' placements pinned to their figures (a placement with a head is what
``workflows.requests.build_request`` pins), so who plays whom survives the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from comic_studio.core.model import Box, CharacterPlacement, Keypoint, PoseFigure, PoseSpec

R_HIP, L_HIP = 8, 11

MIN_HEIGHT, MAX_HEIGHT = 0.05, 3.0
"""A nudged figure's visible height stays between these fractions of the panel height."""


@dataclass(frozen=True)
class Nudge:
    """Move by ``(dx, dy)`` after scaling by ``scale`` about ``pivot`` (panel-normalised)."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    pivot: tuple[float, float] = (0.0, 0.0)

    def apply(self, x: float, y: float) -> tuple[float, float]:
        px, py = self.pivot
        return px + (x - px) * self.scale + self.dx, py + (y - py) * self.scale + self.dy

    @property
    def is_identity(self) -> bool:
        return abs(self.dx) < 1e-9 and abs(self.dy) < 1e-9 and abs(self.scale - 1.0) < 1e-9


def _unit(v: float) -> float:
    return min(1.0, max(0.0, v))


def _visible(keypoints: Sequence[Keypoint]) -> list[tuple[float, float]]:
    points = [(x, y) for x, y, v in keypoints if v > 0.5]
    return points or [(x, y) for x, y, _v in keypoints]


def visible_bounds(keypoints: Sequence[Keypoint]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of the visible keypoints (all of them when none is marked visible)."""
    points = _visible(keypoints)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def figure_centre(keypoints: Sequence[Keypoint]) -> tuple[float, float]:
    """Where the move handle sits: the middle of the visible hips, else of the visible keypoints."""
    hips = [keypoints[i] for i in (R_HIP, L_HIP) if keypoints[i][2] > 0.5]
    points = [(x, y) for x, y, _v in hips] or _visible(keypoints)
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def figure_feet(keypoints: Sequence[Keypoint]) -> tuple[float, float]:
    """The scale pivot: below the figure's centre, at the bottom of its visible keypoints, so a
    standing figure grows or shrinks without leaving the ground."""
    cx, _cy = figure_centre(keypoints)
    return cx, visible_bounds(keypoints)[3]


def clamp_move(keypoints: Sequence[Keypoint], dx: float, dy: float) -> tuple[float, float]:
    """Limit a move so the figure's centre stays inside the panel (it can be dragged half out of
    frame, never lost outside it). A centre already outside (a close-up's hips below the frame)
    may stay where it is or come in, never go further out."""
    cx, cy = figure_centre(keypoints)
    return min(max(dx, min(0.0, -cx)), max(0.0, 1.0 - cx)), min(max(dy, min(0.0, -cy)), max(0.0, 1.0 - cy))


def clamp_scale(keypoints: Sequence[Keypoint], scale: float) -> float:
    """Limit a scale factor so the visible height stays within ``MIN_HEIGHT``..``MAX_HEIGHT`` (or
    at least does not get further out of that range)."""
    _x0, y0, _x1, y1 = visible_bounds(keypoints)
    height = max(y1 - y0, 1e-6)
    return min(max(scale, min(1.0, MIN_HEIGHT / height)), max(1.0, MAX_HEIGHT / height))


def nudge_keypoints(keypoints: Sequence[Keypoint], nudge: Nudge) -> list[Keypoint]:
    out = []
    for x, y, v in keypoints:
        nx, ny = nudge.apply(x, y)
        out.append((nx, ny, v))
    return out


def nudged_pose(figures: Sequence[PoseFigure], index: int, nudge: Nudge, panel_aspect: float) -> PoseSpec:
    """The panel's new explicit pose: ``figures`` (panel-normalised, as shown) with figure
    ``index`` nudged; roles and facing kept."""
    if not 0 <= index < len(figures):
        raise ValueError(f"figure {index} does not exist (the pose has {len(figures)} figures)")
    out = [
        f.model_copy(update={"keypoints": nudge_keypoints(f.keypoints, nudge)}) if i == index else f.model_copy()
        for i, f in enumerate(figures)
    ]
    return PoseSpec(figures=out, aspect=min(19.9, max(0.06, panel_aspect)), framed=True)


def nudged_placement(placement: CharacterPlacement, nudge: Nudge) -> CharacterPlacement:
    """Move a character's head and body box with its figure (balloon tails follow at once).
    Like the backends report them, both are kept inside the panel: an off-panel head becomes the
    nearest edge point, a body box is cut at the panel's edges."""
    head = None
    if placement.head is not None:
        hx, hy = nudge.apply(*placement.head)
        head = (_unit(hx), _unit(hy))
    body = None
    if placement.body is not None:
        b = placement.body
        x0, y0 = nudge.apply(b.x, b.y)
        x1, y1 = nudge.apply(b.x + b.w, b.y + b.h)
        x0, y0, x1, y1 = _unit(x0), _unit(y0), _unit(x1), _unit(y1)
        body = Box(x=x0, y=y0, w=x1 - x0, h=y1 - y0) if x1 > x0 and y1 > y0 else None
    return placement.model_copy(
        update={"head": head, "body": body, "head_radius": min(1.0, placement.head_radius * nudge.scale)}
    )


def pinned_placements(
    current: Sequence[CharacterPlacement],
    shown: Sequence[CharacterPlacement],
    index: int,
    nudge: Nudge,
) -> list[CharacterPlacement]:
    """The panel's character placements after nudging figure ``index``.

    ``current``: the panel's placements; ``shown``: the placements the overlay computed (figure
    index, head and body for each character drawn). Every shown character is pinned to its figure
    (with the head it has now, so ``build_request`` keeps the assignment); the nudged figure's
    character moves with it. Characters the overlay did not draw are kept as they are."""
    by_id = {p.character_id: p for p in shown}
    out = []
    for placement in current:
        seen = by_id.get(placement.character_id)
        if seen is None:
            out.append(placement)
            continue
        pinned = placement.model_copy(update={"figure": seen.figure, "head": seen.head, "body": seen.body,
                                              "head_radius": seen.head_radius})  # fmt: skip
        if pinned.head is None:  # off-frame figure: still pin the assignment
            pinned = pinned.model_copy(update={"head": (0.5, 0.5), "head_radius": 0.0})
        out.append(nudged_placement(pinned, nudge) if seen.figure == index else pinned)
    return out


__all__ = [
    "Nudge",
    "clamp_move",
    "clamp_scale",
    "figure_centre",
    "figure_feet",
    "nudge_keypoints",
    "nudged_placement",
    "nudged_pose",
    "pinned_placements",
    "visible_bounds",
]

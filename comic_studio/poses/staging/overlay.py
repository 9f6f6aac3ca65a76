"""A panel's figures and masks for the canvas overlay, in panel-normalised units.

The same pose choice, framing and disjoint head/body masks that :func:`build_conditioning` gives a
render (storyboard and racig share retrieval and framing), staged with the options of the panel's
backend (:class:`StagingOptions`), reduced to what the canvas draws over the panel: every
figure's 18 keypoints as fractions of the panel's bounding box, who plays which
figure, and one RGBA layer per character (body in its colour, head lighter) at a small raster
size. Pure numpy/PIL; pose retrieval may load the text embedder (torch), so callers run this on a
worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comic_studio.core.model import CharacterPlacement, PoseFigure, PoseSpec
from comic_studio.poses.staging.conditioning import StagingOptions, build_conditioning, choose_pose
from comic_studio.poses.staging.request import StagedRequest

OVERLAY_SIDE = 320
"""Longest side of the mask layers in pixels: enough to judge the regions, fast to compute."""
BODY_ALPHA, HEAD_ALPHA = 110, 150
"""Opacity of a character's body and head over the panel (0..255)."""


@dataclass(frozen=True)
class PoseOverlay:
    figures: list[PoseFigure]
    """Every drawn figure (bystanders included), keypoints panel-normalised; roles/facing kept."""
    character_ids: tuple[str, ...]
    character_figure: tuple[int, ...]
    """Figure index per character (same order as ``character_ids``)."""
    placements: list[CharacterPlacement]
    """Head centre/radius and body box per character, panel-normalised (what a render reports)."""
    layers: list[np.ndarray]
    """Per character, an ``(height, width, 4)`` uint8 RGBA image covering the panel's bounding box."""
    head_masks: list[np.ndarray]
    body_masks: list[np.ndarray]
    pose_id: str | None
    framed: bool


def mask_layer(head: np.ndarray, body: np.ndarray, colour: str) -> np.ndarray:
    """RGBA: the body in ``colour``, the head in a lighter tint of it, transparent elsewhere."""
    rgb = np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)], dtype=np.float32)
    light = np.rint((rgb + 255) / 2).astype(np.uint8)
    out = np.zeros((*head.shape, 4), dtype=np.uint8)
    out[body, :3] = rgb.astype(np.uint8)
    out[body, 3] = BODY_ALPHA
    out[head, :3] = light
    out[head, 3] = HEAD_ALPHA
    return out


def compute_pose_overlay(request: StagedRequest, options: StagingOptions, side: int = OVERLAY_SIDE) -> PoseOverlay:
    """Figures and masks of ``request`` staged with ``options`` (its backend's), at most ``side``
    pixels on the longest side."""
    pose = choose_pose(request, options.top_k, options.pose_matching, options.use_request_pose)
    # Pin the chosen pose and assignment so the conditioning below draws exactly these figures
    # (and does not retrieve a second time).
    spec = PoseSpec(
        figures=[
            PoseFigure(
                keypoints=[tuple(float(c) for c in kp) for kp in f.keypoints], role=f.role, facing=float(f.facing)
            )
            for f in pose.figures
        ],
        aspect=min(19.9, max(0.06, float(pose.aspect))),
        framed=pose.framed,
    )
    # A library pose with segmentation maps is pinned by its id instead: its masks come from the maps
    # (as in the render), which only the entry itself carries.
    by_id = pose.masks is not None and options.masks_from == "auto"
    pinned = request.model_copy(
        update={
            "pose_id": pose.pose_id if by_id else None,
            "figures_override": None if by_id else spec,
            "characters": [
                c.model_copy(update={"figure": f}) for c, f in zip(request.characters, pose.character_figure)
            ],
        }
    )
    k = min(1.0, side / max(request.width, request.height))
    width, height = max(16, round(request.width * k)), max(16, round(request.height * k))
    cond = build_conditioning(pinned, width, height, dilation=options.mask_dilation, use_request_pose=True,
                              masks_from=options.masks_from, segment_dilation=options.segment_dilation)  # fmt: skip
    figures = [
        PoseFigure(keypoints=[(x / width, y / height, v) for x, y, v in kps], role=f.role, facing=f.facing)
        for kps, f in zip(cond.figure_keypoints, spec.figures)
    ]
    layers = [mask_layer(h, b, c.colour) for h, b, c in zip(cond.head_masks, cond.body_masks, request.characters)]
    return PoseOverlay(
        figures=figures,
        character_ids=tuple(c.id for c in request.characters),
        character_figure=tuple(cond.character_figure),
        placements=list(cond.placements),
        layers=layers,
        head_masks=list(cond.head_masks),
        body_masks=list(cond.body_masks),
        pose_id=pose.pose_id,
        framed=pose.framed,
    )


__all__ = ["OVERLAY_SIDE", "PoseOverlay", "compute_pose_overlay", "mask_layer"]

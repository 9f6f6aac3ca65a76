"""From a request to a panel's spatial conditioning: the pose, who plays which figure, the OpenPose
image and one head mask and one body mask per character, all at the panel size. The racig backend
conditions its ControlNet and IP-Adapters on it; the UI draws it (pose browser, mask preview,
canvas overlay).

Pose choice and framing are the storyboard's too (same retrieval, same assignment, same seeded
camera), so a storyboard thumbnail previews the composition a racig render will get.
Masks come from the pose's segmentation maps when it has them (imported RaCig data, cut as RaCig
does: :mod:`comic_studio.poses.segmentation`), else from the skeleton (:mod:`comic_studio.poses.masks`);
skeleton masks are dilated here (IP-Adapter attention is soft at low resolutions, a little slack
keeps clothes edges conditioned) and then made disjoint: a pixel belongs to at most one
character's head *or* body, so two characters' adapters never write to the same place. Heads win
over bodies; between figures the one nearer the camera (feet lower in the frame) wins.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from comic_studio.core.model import Box, CharacterPlacement
from comic_studio.poses.library import Figure
from comic_studio.poses.masks import figure_masks, head_region
from comic_studio.poses.retrieval import shared_retriever
from comic_studio.poses.segmentation import (
    PAPER_DILATION,
    SegmentationError,
    dilation_pixels,
    read_segments,
    segment_masks,
)
from comic_studio.poses.staging.figures import (
    MAX_FIGURES_FROM_LIBRARY,
    ResolvedPose,
    assign_characters,
    entry_masks_path,
    fallback_pose,
    resolve_pose,
    with_bystanders,
)
from comic_studio.poses.staging.framing import Frame, frame_shot
from comic_studio.poses.staging.geometry import FigureGeometry
from comic_studio.poses.staging.openpose import DEFAULT_LINE_STYLE, render_openpose
from comic_studio.poses.staging.request import StagedRequest

log = logging.getLogger(__name__)

_R_ANKLE, _L_ANKLE = 10, 13

MASKS_FROM = ("auto", "skeleton")
"""Where a panel's head/body masks come from (setting ``masks_from``, see :class:`StagingOptions`)."""


@dataclass(frozen=True)
class StagingOptions:
    """How a backend stages a panel's pose, read from its settings by these names (racig declares
    all four; the storyboard ``pose_matching`` and stages the rest as these defaults do)."""

    top_k: int = 5
    """Retrieval picks among this many best-matching library poses (seeded)."""
    pose_matching: str = "auto"
    """The retriever's text matcher: auto, minilm, overlap or openclip."""
    mask_dilation: float = 0.01
    """Head/body masks grow by this fraction of the panel's shorter side."""
    pose_choice: str = "panel"
    """panel: the pose picked or nudged in the panel wins; retrieved: always retrieve."""
    masks_from: str = "auto"
    """auto: a pose's segmentation maps when it has them (imported RaCig data), else the skeleton;
    skeleton: always the skeleton's head/limb shapes."""
    segment_dilation: int = PAPER_DILATION
    """Segmentation masks grow by a box of this many pixels at 1344 × 768 (RaCig's 30)."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> StagingOptions:
        """The options in a backend's effective ``settings``; the defaults for those it lacks."""
        return cls(**{f.name: settings[f.name] for f in fields(cls) if f.name in settings})

    @property
    def use_request_pose(self) -> bool:
        return self.pose_choice == "panel"


@dataclass
class Conditioning:
    """Everything spatial about one panel (pixel units, panel size)."""

    pose_id: str | None
    control_image: Image.Image
    figure_keypoints: list[list[tuple[float, float, float]]]
    """Every drawn figure's 18 keypoints in pixels (extras included)."""
    character_figure: tuple[int, ...]
    head_masks: list[np.ndarray]
    """One boolean ``(height, width)`` mask per request character, disjoint from every other mask."""
    body_masks: list[np.ndarray]
    placements: list[CharacterPlacement]

    def union(self) -> np.ndarray:
        out = np.zeros_like(self.head_masks[0]) if self.head_masks else np.zeros((1, 1), dtype=bool)
        for mask in [*self.head_masks, *self.body_masks]:
            out |= mask
        return out


# ------------------------------------------------------------------------------------ the pose


def choose_pose(request: StagedRequest, top_k: int, embedder: str, use_request_pose: bool = True) -> ResolvedPose:
    """The figures and the character → figure mapping. A user's pose (``figures_override`` or
    ``pose_id``) wins unless ``use_request_pose`` is off; otherwise the beat's action text retrieves
    an entry among the ``top_k`` best (seeded pick), as in RaCig's draft stage."""
    n = len(request.characters)
    if use_request_pose and (request.figures_override is not None or request.pose_id is not None):
        return resolve_pose(request)
    if n == 0:
        return ResolvedPose(None, 1.5, (), ())
    wanted = min(n, MAX_FIGURES_FROM_LIBRARY)
    # The process-wide retriever over the bundled and imported poses, shared with resolve_pose.
    entry = shared_retriever(embedder).pick(request.action or request.prompt, wanted, request.seed, k=top_k)  # type: ignore[arg-type]
    pose: Any = entry if entry is not None else fallback_pose(wanted)
    if n > len(pose.figures):
        pose = with_bystanders(pose, n)  # a new canvas: the entry's maps no longer fit it
    # The assignment reads the cast only (pinned figures, actor, target), not the panel's pose.
    return ResolvedPose(str(pose.id), float(pose.aspect), tuple(pose.figures), assign_characters(request, pose),
                        masks=entry_masks_path(pose))  # fmt: skip


def _frame(pose: ResolvedPose, request: StagedRequest, width: int, height: int) -> tuple[Frame, float]:
    """The camera (pose space → pixels) and the pose canvas aspect it assumes."""
    aspect = width / height if pose.framed else pose.aspect
    if pose.framed:
        return Frame(float(height), 0.0, 0.0, height * 0.45, width * 0.5, 0.6), aspect
    geoms = []
    for f in pose.figures:
        kp = np.asarray(f.keypoints, dtype=float).reshape(-1, 3)
        geoms.append(
            FigureGeometry.from_keypoints(np.stack([kp[:, 0] * aspect, kp[:, 1]], 1), kp[:, 2] > 0.5, float(f.facing))
        )
    ids = [c.id for c in request.characters]
    focus = None
    if ids:
        focus = pose.character_figure[ids.index(request.actor_id) if request.actor_id in ids else 0]
    # The storyboard draws its first random number for the frame too: same seed, same camera.
    return frame_shot(geoms, request.shot, width, height, focus, random.Random(request.seed)), aspect


# ------------------------------------------------------------------------------------ masks


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean mask by ``pixels`` (elliptical structuring element)."""
    if pixels <= 0 or not mask.any():
        return mask
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def disjoint_masks(
    heads: list[np.ndarray], bodies: list[np.ndarray], front_to_back: list[int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Make per-character masks disjoint: any head beats any body, and among heads (or bodies) the
    character earlier in ``front_to_back`` wins. Returns new masks; the inputs are not changed."""
    if not heads:
        return [], []
    shape = heads[0].shape
    head_owner = np.full(shape, -1, dtype=np.int16)
    body_owner = np.full(shape, -1, dtype=np.int16)
    for i in reversed(front_to_back):  # paint back to front: the front one is painted last, so it wins
        head_owner[heads[i]] = i
        body_owner[bodies[i]] = i
    body_owner[head_owner >= 0] = -1
    n = len(heads)
    return [head_owner == i for i in range(n)], [body_owner == i for i in range(n)]


def _as_library_figure(figure: Any) -> Figure:
    return Figure(tuple(tuple(float(c) for c in kp) for kp in figure.keypoints), figure.role, float(figure.facing))


def build_conditioning(request: StagedRequest, width: int, height: int, *, top_k: int = 5,
                       embedder: str = "auto", dilation: float = 0.01, use_request_pose: bool = True,
                       pose_lines: str = DEFAULT_LINE_STYLE, masks_from: str = "auto",
                       segment_dilation: int = PAPER_DILATION) -> Conditioning:  # fmt: skip
    """The pose, OpenPose image and disjoint head/body masks for ``request`` at ``width`` × ``height``.
    ``dilation`` is a fraction of the panel's shorter side (skeleton masks); ``pose_lines`` the
    OpenPose line style; ``masks_from`` and ``segment_dilation`` as in :class:`StagingOptions`."""
    if masks_from not in MASKS_FROM:
        raise ValueError(f"masks_from must be one of {MASKS_FROM}, got {masks_from!r}")
    pose = choose_pose(request, top_k, embedder, use_request_pose)
    frame, aspect = _frame(pose, request, width, height)
    canvas_box = (frame.tx, frame.ty, aspect * frame.scale, frame.scale)
    figures = [_as_library_figure(f) for f in pose.figures]
    keypoints = [
        [(x * aspect * frame.scale + frame.tx, y * frame.scale + frame.ty, v) for x, y, v in f.keypoints]
        for f in figures
    ]
    segmented = _segmentation_masks(pose, masks_from, width, height, canvas_box, segment_dilation)
    if segmented is not None:
        heads, bodies = segmented
    else:
        grow = int(round(dilation * min(width, height)))
        heads, bodies = [], []
        for fig_index in pose.character_figure:
            head, body = figure_masks(figures[fig_index], width, height, canvas_box, aspect)
            heads.append(dilate(head, grow))
            bodies.append(dilate(body, grow))
        feet = [max(keypoints[f][_R_ANKLE][1], keypoints[f][_L_ANKLE][1]) for f in pose.character_figure]
        order = sorted(range(len(feet)), key=lambda i: (-feet[i], i))
        heads, bodies = disjoint_masks(heads, bodies, order)
    placements = [
        _placement(c.id, f, figures[f], canvas_box, aspect, heads[i] | bodies[i], width, height)
        for i, (c, f) in enumerate(zip(request.characters, pose.character_figure))
    ]
    return Conditioning(
        pose_id=pose.pose_id,
        control_image=render_openpose(keypoints, width, height, pose_lines),
        figure_keypoints=keypoints,
        character_figure=tuple(pose.character_figure),
        head_masks=heads,
        body_masks=bodies,
        placements=placements,
    )


def _segmentation_masks(pose: ResolvedPose, masks_from: str, width: int, height: int,
                        canvas_box: tuple[float, float, float, float],
                        at_paper_size: int) -> tuple[list[np.ndarray], list[np.ndarray]] | None:  # fmt: skip
    """Head and body masks from the pose's segmentation maps, when it has them, ``masks_from``
    allows it and they cover every character's figure; None otherwise (the skeleton's then). A map
    that cannot be read is logged and the skeleton used: a moved file must not fail the render."""
    if masks_from != "auto" or pose.masks is None or pose.framed or not pose.character_figure:
        return None
    try:
        segments = read_segments(Path(pose.masks))
    except SegmentationError as exc:
        log.warning("pose %s: %s; using the skeleton's masks", pose.pose_id, exc)
        return None
    if not set(pose.character_figure) <= segments.figures():
        return None
    return segment_masks(segments, pose.character_figure, width, height, canvas_box,
                         dilation_pixels(width, height, at_paper_size))  # fmt: skip


def _placement(character_id: str, fig_index: int, figure: Figure, box: tuple[float, float, float, float],
               aspect: float, region: np.ndarray, width: int, height: int) -> CharacterPlacement:  # fmt: skip
    """Head centre/radius and visible body box, panel-normalised (what balloons aim at)."""
    bx, by, bw, bh = box
    head = head_region(figure, aspect)
    hx, hy = (bx + head.cx * bw) / width, (by + head.cy * bh) / height
    inside = 0.0 <= hx <= 1.0 and 0.0 <= hy <= 1.0
    radius = head.radius * bh / min(width, height) if inside else 0.0
    body = None
    if region.any():
        ys, xs = np.nonzero(region)
        body = Box(
            x=xs.min() / width,
            y=ys.min() / height,
            w=(xs.max() + 1 - xs.min()) / width,
            h=(ys.max() + 1 - ys.min()) / height,
        )
    return CharacterPlacement(
        character_id=character_id,
        figure=min(fig_index, 16),
        body=body,
        head=(min(1.0, max(0.0, hx)), min(1.0, max(0.0, hy))),
        head_radius=min(1.0, radius),
    )


def mask_preview(conditioning: Conditioning, colours: list[str], base: Image.Image | None = None) -> Image.Image:
    """The masks over ``base`` (or the OpenPose image): each character's body in its colour, its
    head in a lighter tint — the on-demand "show masks" overlay."""
    image = (base or conditioning.control_image).convert("RGB")
    pixels = np.asarray(image, dtype=np.float32).copy()
    for i, colour in enumerate(colours[: len(conditioning.head_masks)]):
        rgb = np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)], dtype=np.float32)
        for mask, tint in ((conditioning.body_masks[i], rgb), (conditioning.head_masks[i], (rgb + 255) / 2)):
            pixels[mask] = pixels[mask] * 0.45 + tint * 0.55
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")

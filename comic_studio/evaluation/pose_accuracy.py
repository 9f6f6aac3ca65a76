"""Pose accuracy: the skeleton a panel asked for against the one a detector finds in the result.

The requested skeleton is the panel's staging (:func:`~comic_studio.poses.staging.conditioning.build_conditioning`
on the stored, effective request: the same pose, figure assignment and camera the backend drew or
conditioned on), in the result's pixels. The detected skeleton comes from one of:

- ``mediapipe``: the offline MediaPipe pose landmarker (:func:`comic_studio.poses.extract.extract_pose`)
  on the character's region of the panel. It is single-person, which is why it runs per character on
  the staging region (grown by :data:`CROP_MARGIN`) rather than on the whole panel. AnimeAdapter
  detects with OpenPose; OpenPose is not installed offline, MediaPipe is the bundled detector.
- ``openpose-drawing``: reads an OpenPose-18 drawing (the standard colours of
  :mod:`comic_studio.poses.staging.openpose`): each keypoint is the centre of the pixels in its own
  colour inside the character's region. For skeleton-like outputs and to check the metric itself.
- ``auto``: mediapipe when installed, else no pose accuracy (reported as unavailable).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from comic_studio.evaluation.metrics import EvaluationError
from comic_studio.poses.extract import MIN_VISIBLE_KEYPOINTS, detector_available, extract_pose
from comic_studio.poses.staging.conditioning import Conditioning, StagingOptions, build_conditioning
from comic_studio.poses.staging.openpose import COLOURS

POSE_DETECTORS = ("auto", "mediapipe", "openpose-drawing", "none")
CROP_MARGIN = 0.1
"""The staging region's box grows by this share of its size on every side before detection: a
figure drawn a little off its requested place is still inside the crop."""
COLOUR_TOLERANCE = 4
"""A pixel within this many levels (each channel) of a keypoint colour is that keypoint's dot: dots
are drawn opaque in their exact colour, limbs blended at 0.6–0.7 opacity."""
MIN_DOT_PIXELS = 3


def resolve_detector(name: str) -> str | None:
    """The detector ``name`` stands for here, or None when pose accuracy cannot be measured."""
    if name not in POSE_DETECTORS:
        raise EvaluationError(f"unknown pose detector {name!r} (known: {', '.join(POSE_DETECTORS)})")
    if name == "none":
        return None
    if name == "auto":
        return "mediapipe" if detector_available() else None
    return name


def requested_staging(request: Any, width: int, height: int) -> Conditioning:
    """The panel's staging at the result's size, with the request's own staging settings."""
    options = StagingOptions.from_settings(request.backend_settings)
    return build_conditioning(request, width, height, top_k=options.top_k, embedder=options.pose_matching,
                              dilation=options.mask_dilation, use_request_pose=options.use_request_pose,
                              masks_from=options.masks_from, segment_dilation=options.segment_dilation)  # fmt: skip


def detect_figure(image: Image.Image, region: np.ndarray, detector: str) -> np.ndarray | None:
    """``[18, 3]`` keypoints (pixels of ``image``, visibility 0/1) of the figure inside ``region``, or
    None when the detector finds none there."""
    if detector == "mediapipe":
        return _mediapipe(image, region)
    if detector == "openpose-drawing":
        return _drawing(image, region)
    raise ValueError(f"unknown pose detector {detector!r}")


def _mediapipe(image: Image.Image, region: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(region)
    if not len(xs):
        return None
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    dx, dy = CROP_MARGIN * (x1 - x0), CROP_MARGIN * (y1 - y0)
    box = (max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(image.width, int(x1 + dx)), min(image.height, int(y1 + dy)))
    crop = image.convert("RGB").crop(box)
    found = extract_pose(crop)
    if found.figure is None:
        return None
    kp = np.asarray(found.figure.keypoints, dtype=np.float64)
    kp[:, 0] = kp[:, 0] * crop.width + box[0]
    kp[:, 1] = kp[:, 1] * crop.height + box[1]
    return kp


def _drawing(image: Image.Image, region: np.ndarray) -> np.ndarray | None:
    import cv2

    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    out = np.zeros((len(COLOURS), 3), dtype=np.float64)
    for i, colour in enumerate(COLOURS):
        hit = (np.abs(rgb - np.asarray(colour, dtype=np.int16)).max(axis=2) <= COLOUR_TOLERANCE) & region
        if hit.sum() < MIN_DOT_PIXELS:
            continue
        # The dot is the largest blob of its colour: stray pixels where blended limbs happen to
        # come close to a keypoint colour are smaller.
        count, _labels, stats, centres = cv2.connectedComponentsWithStats(hit.astype(np.uint8), connectivity=8)
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[best, cv2.CC_STAT_AREA] >= MIN_DOT_PIXELS:
            out[i] = (centres[best][0] + 0.5, centres[best][1] + 0.5, 1.0)  # pixel centres
    return out if int(out[:, 2].sum()) >= MIN_VISIBLE_KEYPOINTS else None


def in_frame(keypoints: Any, width: int, height: int) -> np.ndarray:
    """Requested keypoints with those outside the picture marked hidden: a pose may run past the
    panel's edge (a medium shot cuts the legs), and no detector can find what is not drawn."""
    kp = np.array(keypoints, dtype=np.float64)
    outside = (kp[:, 0] < 0) | (kp[:, 0] >= width) | (kp[:, 1] < 0) | (kp[:, 1] >= height)
    kp[outside, 2] = 0.0
    return kp

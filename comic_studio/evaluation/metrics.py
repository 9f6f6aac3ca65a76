"""The metrics' arithmetic on features and keypoints (numpy only; no model is loaded here).

Definitions follow the seeds:

- **CLIP-T** (prompt fidelity): cosine between the image's and the prompt's CLIP features, raw, as
  AnimeAdapter's Table 1 reports it (0.18-ish for a good match), not CLIPScore's 2.5× rescaling.
- **CLIP-I** (appearance): cosine between the generated figure's and the reference's image features,
  both with the background whitened (SerialGen §4.2, AnimeAdapter §5.1 "masked CLIP-I"). A character
  with several reference pictures scores the mean over them (the seeds use one reference; silent on
  several, so the mean is our choice).
- **AP-CLIP-I** (consistency across panels): the mean CLIP-I over all pairs of a character's panels
  (SerialGen §4.3). With fewer than two panels there is no pair: undefined (None), never 0 or 1.
- **AKD / MKR / failure** (pose control, AnimeAdapter §5.1 after MagicAnimate): average keypoint
  distance over keypoints seen in both skeletons, the fraction of requested keypoints the detector
  missed, and whether the detector found the figure at all. AnimeAdapter gives AKD in pixels of its
  512 px renders; panels here have any size, so distances are divided by the requested figure's size
  (the diagonal of its visible keypoints' box) — our normalisation, as the issue asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from comic_studio.core.errors import ComicStudioError


def cosine(a: Any, b: Any) -> float:
    """Cosine of two feature vectors (they need not be unit length)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def clip_t(image_feature: Any, text_feature: Any) -> float:
    return cosine(image_feature, text_feature)


def clip_i(image_feature: Any, reference_features: Any) -> float | None:
    """Mean cosine against each reference's features; None without a reference."""
    refs = [r for r in reference_features]
    if not refs:
        return None
    return float(np.mean([cosine(image_feature, r) for r in refs]))


def ap_clip_i(features: Any) -> float | None:
    """Mean pairwise CLIP-I over one character's panels; None (undefined) with fewer than two."""
    rows = [f for f in features]
    if len(rows) < 2:
        return None
    return float(np.mean([cosine(a, b) for a, b in combinations(rows, 2)]))


@dataclass(frozen=True)
class PoseScore:
    """One character's pose in one panel: ``found`` False is a detector failure (AKD/MKR undefined)."""

    found: bool
    akd: float | None = None
    """Mean keypoint distance, in requested-figure sizes (0 = exactly the requested pose)."""
    mkr: float | None = None
    """Fraction of the requested visible keypoints the detector did not find."""


def figure_size(keypoints: Any) -> float:
    """The diagonal of the box around a figure's visible keypoints (``[18, 3]`` x, y, visibility)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    seen = kp[kp[:, 2] > 0.5, :2]
    if len(seen) < 2:
        return 0.0
    return float(np.linalg.norm(seen.max(axis=0) - seen.min(axis=0)))


def keypoint_distance(requested: Any, detected: Any | None) -> PoseScore:
    """AKD and MKR of ``detected`` (``[18, 3]`` pixels + visibility, or None: nothing found) against
    ``requested`` (same layout, same pixel space)."""
    if detected is None:
        return PoseScore(found=False)
    want = np.asarray(requested, dtype=np.float64)
    got = np.asarray(detected, dtype=np.float64)
    target = want[:, 2] > 0.5
    both = target & (got[:, 2] > 0.5)
    size = figure_size(want)
    mkr = float(1.0 - both.sum() / target.sum()) if target.any() else None
    if not both.any() or size <= 0:
        return PoseScore(found=True, akd=None, mkr=mkr)
    distances = np.linalg.norm(want[both, :2] - got[both, :2], axis=1) / size
    return PoseScore(found=True, akd=float(distances.mean()), mkr=mkr)


def mean_or_none(values: Any) -> float | None:
    """The mean of the defined values (None entries skipped); None when none is defined."""
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


class EvaluationError(ComicStudioError):
    """An evaluation setting or input is unusable (the message names it and what is accepted)."""

"""A character cut out of a picture, background whitened: what masked CLIP-I compares.

The seeds segment the foreground and paint everything else white before computing CLIP-I (SerialGen
§4.2; AnimeAdapter §5.1 uses SAM 3). Here the *panel's own staging* says where each character is —
the head and body masks the backends condition on (:mod:`comic_studio.poses.staging.conditioning`),
so two characters of one panel are told apart — and, inside that region, the offline person
segmenter (MediaPipe selfie segmentation, :func:`comic_studio.vision.detect.person_mask`) trims it to
the figure's silhouette when it is installed and finds the person there. SAM 3 is not available
offline; the segmenter is the closest installed model, and ``segmentation="none"`` uses the staging
region alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from comic_studio.evaluation.metrics import EvaluationError

SEGMENTATIONS = ("auto", "none")
"""auto: trim by the person segmenter when installed; none: the staging region only."""
MIN_SEGMENT_SHARE = 0.1
"""A silhouette covering less than this share of the staging region is a miss (the segmenter saw a
hand, or nothing): the staging region is kept instead of a scrap."""
WHITE = (255, 255, 255)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a boolean mask's pixels (x1, y1 exclusive), None when it is empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def whitened(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """``image`` with every pixel outside ``mask`` white, cropped to the mask's box (an empty mask
    gives a white 1 × 1 picture)."""
    box = mask_box(mask)
    if box is None:
        return Image.new("RGB", (1, 1), WHITE)
    x0, y0, x1, y1 = box
    rgb = np.array(image.convert("RGB").crop(box))
    rgb[~mask[y0:y1, x0:x1]] = WHITE
    return Image.fromarray(rgb, "RGB")


def _segment(image: Image.Image, segmentation: str) -> np.ndarray | None:
    if segmentation == "none":
        return None
    if segmentation != "auto":
        raise EvaluationError(f"unknown segmentation {segmentation!r} (known: {', '.join(SEGMENTATIONS)})")
    from comic_studio.vision.detect import person_mask

    return person_mask(image)


def figure_cutout(image: Image.Image, region: np.ndarray, segmentation: str = "auto") -> tuple[Image.Image | None, str]:
    """The figure inside ``region`` (a boolean mask of the image's size), background whitened, and
    which mask cut it: ``"segmentation"`` (region ∩ silhouette) or ``"staging"`` (the region). None
    when the region is empty (the character is out of frame)."""
    box = mask_box(region)
    if box is None:
        return None, "empty"
    x0, y0, x1, y1 = box
    crop = image.convert("RGB").crop(box)
    mask = region[y0:y1, x0:x1]
    silhouette = _segment(crop, segmentation)
    if silhouette is not None and (silhouette & mask).sum() >= MIN_SEGMENT_SHARE * mask.sum():
        return whitened(crop, silhouette & mask), "segmentation"
    return whitened(crop, mask), "staging"


def reference_cutout(image: Any, segmentation: str = "auto") -> Image.Image:
    """A reference picture with its background whitened when the segmenter finds the person (a
    reference sheet on a plain background is kept as it is otherwise)."""
    rgb = image.convert("RGB")
    silhouette = _segment(rgb, segmentation)
    if silhouette is None:
        return rgb
    return whitened(rgb, silhouette)

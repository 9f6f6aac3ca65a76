"""The pose library: a parametric skeleton, the authored entries, head/body masks, text→pose
retrieval and character↔figure assignment, and :mod:`.staging` (a panel's pose, framing, OpenPose
image and masks, shared by the backends that draw poses and the UI). Pure Python + numpy; the
MiniLM retriever imports sentence-transformers (and torch) lazily, only when it is used."""

from comic_studio.poses.assign import assign_figures
from comic_studio.poses.library import KEYPOINT_NAMES, LIMBS, Figure, PoseEntry, PoseLibraryError, load_library
from comic_studio.poses.masks import HeadRegion, entry_masks, figure_bbox, figure_masks, head_region
from comic_studio.poses.retrieval import PoseRetrievalError, PoseRetriever

__all__ = [
    "KEYPOINT_NAMES", "LIMBS", "Figure", "PoseEntry", "PoseLibraryError", "load_library",
    "HeadRegion", "entry_masks", "figure_bbox", "figure_masks", "head_region",
    "PoseRetriever", "PoseRetrievalError", "assign_figures",
]  # fmt: skip

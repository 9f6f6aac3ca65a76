"""COCO-17 keypoint skeletons (mmpose's JSON, or NPY/NPZ arrays) → validated pose figures.

Every number is checked (shape, finiteness, score range) before it becomes a
:class:`~comic_studio.poses.library.Figure`; the skeletons are remapped to OpenPose-18.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from comic_studio.poses.extract import COCO_TO_OPENPOSE, PoseExtractionError, figure_from_openpose, remap_to_openpose
from comic_studio.poses.importing.library_writer import PoseImportError
from comic_studio.poses.library import MAX_FIGURES, Figure

MAX_PEOPLE = 64


def people_from_json(raw: Any, where: str) -> list[tuple[Any, np.ndarray]]:
    """[(id, [17, 3] x/y/score)] from RaCig's skeleton JSON."""
    if isinstance(raw, dict) and "skeletons" in raw:
        raw = raw["skeletons"]
    if not isinstance(raw, list):
        raise PoseImportError(f"{where}: expected a list of people")
    if len(raw) > MAX_PEOPLE:
        raise PoseImportError(f"{where}: {len(raw)} people is more than the {MAX_PEOPLE} allowed")
    people = []
    for i, person in enumerate(raw):
        if not isinstance(person, dict) or not isinstance(person.get("skeleton"), dict):
            raise PoseImportError(f"{where}[{i}]: expected {{'id': …, 'skeleton': {{'keypoints', 'keypoint_scores'}}}}")
        pid = person.get("id", i)
        if isinstance(pid, bool) or not isinstance(pid, (int, str)):
            raise PoseImportError(f"{where}[{i}].id: expected an integer or a string, got {pid!r}")
        skel = person["skeleton"]
        people.append((pid, _coco_array(skel.get("keypoints"), skel.get("keypoint_scores"), f"{where}[{i}]")))
    return people


def _coco_array(keypoints: Any, scores: Any, where: str) -> np.ndarray:
    """Validate COCO-17 keypoints ([17, 2] or [17, 3], optionally wrapped in one more list) and scores."""

    def numbers(value: Any, what: str) -> np.ndarray:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise PoseImportError(f"{where}.{what}: not a rectangular list of numbers") from exc
        if arr.dtype.kind not in "iuf":
            raise PoseImportError(f"{where}.{what}: expected numbers, got {arr.dtype} values")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise PoseImportError(f"{where}.{what}: contains NaN or infinity")
        return arr

    kp = numbers(keypoints, "keypoints")
    if kp.ndim == 3 and kp.shape[0] == 1:  # mmpose wraps one instance in a batch of one
        kp = kp[0]
    if kp.shape not in ((17, 2), (17, 3)):
        raise PoseImportError(f"{where}.keypoints: expected 17 COCO keypoints of (x, y), got shape {kp.shape}")
    if kp.shape == (17, 3) and scores is None:
        return kp
    sc = numbers(scores, "keypoint_scores").reshape(-1)
    if sc.shape != (17,):
        raise PoseImportError(f"{where}.keypoint_scores: expected 17 scores, got {sc.size}")
    # mmpose's SimCC scores can exceed 1 a little; anything else outside 0..10 is not a score.
    if (sc < 0).any() or (sc > 10).any():
        raise PoseImportError(f"{where}.keypoint_scores: scores must lie in 0..1")
    return np.column_stack([kp[:, :2], np.minimum(sc, 1.0)])


def people_from_arrays(arrays: dict[str, np.ndarray], where: str) -> list[tuple[Any, np.ndarray]]:
    if "keypoints" in arrays:
        kp, sc = arrays["keypoints"], arrays.get("keypoint_scores")
    elif "arr" in arrays:
        kp, sc = arrays["arr"], None
    else:
        raise PoseImportError(f"{where}: expected arrays 'keypoints' [N, 17, 2] and 'keypoint_scores' [N, 17]")
    if kp.ndim == 2:
        kp = kp[None]
        sc = sc[None] if sc is not None and sc.ndim == 1 else sc
    if kp.ndim != 3 or kp.shape[0] > MAX_PEOPLE:
        raise PoseImportError(f"{where}: expected keypoints of shape [people, 17, 2|3], got {kp.shape}")
    ids = arrays.get("ids")
    return [(int(ids[i]) if ids is not None else i,
             _coco_array(kp[i], None if sc is None else sc[i], f"{where}[{i}]")) for i in range(kp.shape[0])]  # fmt: skip


def figures_for(people: list[tuple[Any, np.ndarray]], clear: set[Any] | None, size: tuple[float, float],
                 where: str, min_visibility: float) -> tuple[list[Figure], list[str], list[Any]]:  # fmt: skip
    """The usable people as figures (roles assigned), notes on those left out, and each kept
    figure's person id (the id its segmentation maps label it with)."""
    figures: list[tuple[float, Figure, Any]] = []
    notes = []
    for pid, coco in people:
        if clear is not None and pid not in clear and str(pid) not in {str(c) for c in clear}:
            continue  # RaCig only uses the people whose segment is clear
        try:
            fig = figure_from_openpose(remap_to_openpose(coco, COCO_TO_OPENPOSE), *size,
                                       min_visibility=min_visibility, where=f"{where} person {pid}")  # fmt: skip
        except PoseExtractionError as exc:
            notes.append(str(exc))
            continue
        pts = np.array([(x, y) for x, y, v in fig.keypoints if v > 0.5])
        figures.append((float(np.ptp(pts[:, 0]) * np.ptp(pts[:, 1])), fig, pid))
    if len(figures) > MAX_FIGURES:
        notes.append(f"{where}: kept the {MAX_FIGURES} largest of {len(figures)} people")
        figures = sorted(figures, key=lambda t: -t[0])[:MAX_FIGURES]
    return _assign_roles([f for _, f, _ in figures]), notes, [pid for _, _, pid in figures]


def _assign_roles(figures: list[Figure]) -> list[Figure]:
    """One person: neutral. Several: the leftmost acts (left-to-right reading puts the doer first),
    the others neutral; who is acted on is unknown, so nobody is marked target."""
    if len(figures) < 2:
        return [Figure(f.keypoints, "neutral", f.facing) for f in figures]
    left = min(range(len(figures)), key=lambda i: figures[i].hip_centre[0])
    return [Figure(f.keypoints, "actor" if i == left else "neutral", f.facing) for i, f in enumerate(figures)]

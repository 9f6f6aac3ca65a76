"""A tiny RaCig retrieval-data sample in RaCig's own layout, for tests of the import and of
segmentation masks: ``json/`` (caption + segments), ``skeleton/`` (mmpose COCO-17), ``seg/`` (dense
person id map, ``.npy``), ``face_seg_npz/`` and ``head_seg_npz/`` (id maps in the file layout
``scipy.sparse.save_npz`` writes for a CSR matrix, built here with NumPy alone).

The people stand on a 1344 × 768 picture; each person's segment is a wide box (a long coat, say)
reaching far past the skeleton's limbs, so masks from the segmentation and from the skeleton differ
where a test can see it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

W, H = 1344, 768


def coco_person(cx: float) -> tuple[list[list[float]], list[float]]:
    """A standing person in COCO-17 order centred at ``x = cx`` (pixels of a W × H picture)."""
    pts = [
        (cx, 150), (cx + 10, 140), (cx - 10, 140), (cx + 22, 145), (cx - 22, 145),  # nose, eyes, ears
        (cx + 50, 220), (cx - 50, 220), (cx + 60, 330), (cx - 60, 330),  # shoulders, elbows (l, r)
        (cx + 65, 430), (cx - 65, 430), (cx + 30, 440), (cx - 30, 440),  # wrists, hips
        (cx + 32, 580), (cx - 32, 580), (cx + 34, 720), (cx - 34, 720),  # knees, ankles
    ]  # fmt: skip
    return [list(p) for p in pts], [0.9] * 17


COAT_HALF_WIDTH = 160
"""Half the width of a person's segment: the skeleton's hips are 30 px from its centre."""


def person_boxes(cx: float) -> dict[str, tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) per map kind for the person centred at ``cx``."""
    x = int(cx)
    return {
        "person": (x - COAT_HALF_WIDTH, 100, x + COAT_HALF_WIDTH, 740),
        "face": (x - 28, 120, x + 28, 185),
        "head": (x - 40, 100, x + 40, 195),
    }


def sparse_csr_npz(path: Path, dense: np.ndarray) -> None:
    """``dense`` saved as ``scipy.sparse.save_npz(path, csr_matrix(dense))`` would save it."""
    rows, cols = np.nonzero(dense)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[0]))]).astype(np.int32)
    np.savez_compressed(path, indices=cols.astype(np.int32), indptr=indptr, format=np.array(b"csr"),
                        shape=np.array(dense.shape, dtype=np.int64), data=dense[rows, cols])  # fmt: skip


def write_racig_sample(root: Path, name: str, people: list[tuple[int, float]], *, maps: tuple[str, ...] = ("seg", "face", "head"),
                       missing_from_head: int | None = None, caption: str = "two people talking on a pier") -> Path:  # fmt: skip
    """One picture's files under ``root`` (``people``: (segment id ≥ 1, centre x) each). ``maps``
    picks which of the three segmentation trees are written; ``missing_from_head`` leaves that
    person out of the head map. Returns the per-image JSON's path."""
    meta = {"caption_detail": caption, "caption_bg": "pier", "width": W, "height": H,
            "segments": [{"id": pid, "bbox": [0, 0, 1, 1], "coco_label": "person", "caption_segs": "", "is_clear": True}
                         for pid, _ in people]}  # fmt: skip
    meta_path = root / "json" / f"{name}.json"
    for tree in ("json", "skeleton", "seg", "face_seg_npz", "head_seg_npz"):
        (root / tree / name).parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta))
    skeletons = [
        {"id": pid, "skeleton": dict(zip(("keypoints", "keypoint_scores"), coco_person(cx)))} for pid, cx in people
    ]
    (root / "skeleton" / f"{name}.json").write_text(json.dumps(skeletons))
    dense = {kind: np.zeros((H, W), dtype=np.int32) for kind in ("person", "face", "head")}
    for pid, cx in people:
        for kind, (x0, y0, x1, y1) in person_boxes(cx).items():
            if kind == "head" and pid == missing_from_head:
                continue
            dense[kind][y0:y1, x0:x1] = pid
    if "seg" in maps:
        np.save(root / "seg" / f"{name}.npy", dense["person"].astype(np.int16))
    if "face" in maps:
        sparse_csr_npz(root / "face_seg_npz" / f"{name}.npz", dense["face"])
    if "head" in maps:
        sparse_csr_npz(root / "head_seg_npz" / f"{name}.npz", dense["head"])
    return meta_path

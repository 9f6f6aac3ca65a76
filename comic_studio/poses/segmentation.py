"""Person, face and head segmentation maps of imported poses, and a panel's masks cut from them.

RaCig's retrieval data (its ``seg/``, ``face_seg_npz/`` and ``head_seg_npz/`` trees, Sapiens
segmentations: paper §3) keeps, per image, an *instance id map* per region kind: each pixel holds the
id of the person it belongs to (the ids of the image JSON's ``segments`` and of the skeleton file).
The person map is a dense ``.npy``; the face and head maps are SciPy sparse matrices saved with
``scipy.sparse.save_npz`` (a plain ``.npz`` of ``format``/``shape``/``data`` and ``indices``/``indptr``
or ``row``/``col``), decoded here with NumPy alone, never unpickling anything.

An import keeps them (:mod:`comic_studio.poses.importing.racig`) as one small ``.npz`` per entry of
three ``uint8`` label maps — 0 nobody, ``k`` the entry's figure ``k - 1`` — at most
:data:`MAX_SIDE` pixels long, and staging (:mod:`comic_studio.poses.staging.conditioning`) uses them
instead of skeleton capsules whenever the panel's pose is that entry as imported. How the masks are
made follows RaCig's code (``racig/pipeline.py``, where the paper is silent): each map resized to the
generation size (nearest), dilated with a 30 × 30 box kernel, the overlap of two people's dilated
person masks given to the nearer mask centroid (``assign_by_nearest``), then each person split into
head (its dilated face ∪ head maps, inside the person) and body (the rest). RaCig handles two
people; the nearest-centroid rule extends to the app's four unchanged.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.core.errors import ComicStudioError
from comic_studio.poses.library import MAX_FIGURES

KINDS = ("person", "face", "head")
MAX_SIDE = 1024
"""Longest side of a stored label map: SDXL's finest attention grid is 1/16 of ~1344 px, so 1024 px
keeps every mask edge the adapters can see, at a few kB per entry compressed."""
MAX_ID_MAP_BYTES = 256 * 1024 * 1024
"""Per id-map file, unpacked (a dense 4K int64 person map is 128 MiB)."""
MAX_MAP_SIDE = 16_384
PAPER_DILATION = 30
"""RaCig's dilation: ``torch.ones((1, 1, 30, 30))`` convolved with each mask at its 1344 × 768
generation size (``racig/pipeline.py``); scaled with the square root of the area at other sizes."""
PAPER_AREA = 1344 * 768


class SegmentationError(ComicStudioError):
    """A segmentation map cannot be read or used (the message names the file and the problem)."""


# ----------------------------------------------------------------------------------- reading


def read_id_map(path: Path, what: str = "segmentation map") -> np.ndarray:
    """A 2-D integer instance-id map from a dense ``.npy`` or a SciPy sparse ``.npz``."""
    from comic_studio.core import safe_read

    try:
        arrays = safe_read.read_arrays(path, limit=MAX_ID_MAP_BYTES, what=what)
    except safe_read.UnsafeInputError as exc:
        raise SegmentationError(str(exc)) from exc
    if set(arrays) == {"arr"}:
        out = arrays["arr"]
    elif {"format", "shape", "data"} <= set(arrays):
        out = _sparse_to_dense(arrays, path)
    else:
        raise SegmentationError(f"{path}: expected a dense .npy id map or a SciPy sparse .npz, got {sorted(arrays)}")
    return _integral(out, path)


def _integral(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 2 or not all(1 <= s <= MAX_MAP_SIDE for s in array.shape):
        raise SegmentationError(f"{path}: expected a 2-D map of at most {MAX_MAP_SIDE} px a side, got {array.shape}")
    if array.dtype.kind in "iub":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        return array.astype(np.int64)
    raise SegmentationError(f"{path}: expected integer person ids, got {array.dtype} values")


def _sparse_to_dense(arrays: dict[str, Any], path: Path) -> np.ndarray:
    """What ``scipy.sparse.load_npz(path).toarray()`` gives, for the csr, csc and coo layouts."""
    raw = arrays["format"]
    fmt = raw.item() if raw.ndim == 0 else None
    fmt = fmt.decode("ascii", "replace") if isinstance(fmt, bytes) else fmt
    shape = arrays["shape"]
    if shape.shape != (2,) or shape.dtype.kind not in "iu":
        raise SegmentationError(f"{path}: the sparse map's shape must be two integers")
    rows, cols = (int(v) for v in shape)
    if not (1 <= rows <= MAX_MAP_SIDE and 1 <= cols <= MAX_MAP_SIDE):
        raise SegmentationError(f"{path}: a {rows}×{cols} map is outside 1..{MAX_MAP_SIDE} px a side")
    data = arrays["data"].reshape(-1)
    if fmt in ("csr", "csc"):
        if not {"indices", "indptr"} <= set(arrays):
            raise SegmentationError(f"{path}: a {fmt} map needs indices and indptr")
        major, minor = (rows, cols) if fmt == "csr" else (cols, rows)
        indptr, indices = arrays["indptr"].reshape(-1).astype(np.int64), arrays["indices"].reshape(-1).astype(np.int64)
        if indptr.shape != (major + 1,) or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != data.size:
            raise SegmentationError(f"{path}: the {fmt} map's indptr does not fit its shape and data")
        outer = np.repeat(np.arange(major), np.diff(indptr))
        r, c = (outer, indices) if fmt == "csr" else (indices, outer)
    elif fmt == "coo":
        if not {"row", "col"} <= set(arrays):
            raise SegmentationError(f"{path}: a coo map needs row and col")
        r, c = arrays["row"].reshape(-1).astype(np.int64), arrays["col"].reshape(-1).astype(np.int64)
    else:
        raise SegmentationError(f"{path}: sparse format {fmt!r} is not one of csr, csc, coo")
    if not (r.size == c.size == data.size):
        raise SegmentationError(f"{path}: the sparse map's index and data lengths differ")
    if r.size and (r.min() < 0 or r.max() >= rows or c.min() < 0 or c.max() >= cols):
        raise SegmentationError(f"{path}: a sparse index lies outside the {rows}×{cols} map")
    if data.dtype.kind not in "iufb":
        raise SegmentationError(f"{path}: expected numeric ids, got {data.dtype} values")
    out = np.zeros((rows, cols), dtype=data.dtype)
    np.add.at(out, (r, c), data)  # duplicates add up, as SciPy's toarray does
    return out


# ----------------------------------------------------------------------------------- stored maps


@dataclass(frozen=True)
class FigureSegments:
    """An entry's label maps, one per kind in :data:`KINDS` (uint8, same shape): 0 nobody, ``k``
    the entry's figure ``k - 1``. The map spans the entry's pose canvas."""

    person: np.ndarray
    face: np.ndarray
    head: np.ndarray

    def figures(self) -> set[int]:
        """Indices of the figures the person map covers."""
        return {int(v) - 1 for v in np.unique(self.person) if v}


def _nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if array.shape == shape:
        return array
    import cv2

    return cv2.resize(array, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def label_maps(maps: dict[str, np.ndarray], segment_ids: Sequence[Any]) -> FigureSegments:
    """Stored label maps from RaCig's id maps (``{"person", "face", "head"}``; face and head are
    resized to the person map's shape) and the segment id of each kept figure, in figure order."""
    shape = maps["person"].shape
    scale = min(1.0, MAX_SIDE / max(shape))
    small = (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale)))
    out = {}
    for kind in KINDS:
        ids = _nearest(maps[kind].astype(np.int32), shape)
        labels = np.zeros(shape, dtype=np.uint8)
        for k, sid in enumerate(segment_ids):
            labels[ids == int(sid)] = k + 1
        out[kind] = _nearest(labels, small)
    return FigureSegments(**out)


def segments_bytes(segments: FigureSegments) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{kind: getattr(segments, kind) for kind in KINDS})
    return buffer.getvalue()


MAX_STORED_BYTES = 16 * 1024 * 1024
_cache: dict[str, tuple[tuple[int, int], FigureSegments]] = {}
_cache_lock = threading.Lock()
MAX_CACHED = 64


def read_segments(path: Path) -> FigureSegments:
    """An entry's stored label maps (cached per file and modification time), validated."""
    from comic_studio.core import safe_read

    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise SegmentationError(f"{path}: cannot read the pose's segmentation ({exc.strerror or exc})") from exc
    stamp, key = (info.st_mtime_ns, info.st_size), str(path)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        arrays = safe_read.read_arrays(path, limit=MAX_STORED_BYTES, what="pose segmentation")
    except safe_read.UnsafeInputError as exc:
        raise SegmentationError(str(exc)) from exc
    if set(arrays) != set(KINDS):
        raise SegmentationError(f"{path}: expected the arrays {list(KINDS)}, got {sorted(arrays)}")
    shape = arrays["person"].shape
    for kind in KINDS:
        a = arrays[kind]
        if (
            a.dtype != np.uint8
            or a.ndim != 2
            or a.shape != shape
            or max(a.shape) > MAX_SIDE
            or int(a.max()) > MAX_FIGURES
        ):
            raise SegmentationError(f"{path}: {kind} must be a uint8 label map (0..{MAX_FIGURES}) like the person map")
    segments = FigureSegments(**{kind: arrays[kind] for kind in KINDS})
    with _cache_lock:
        if len(_cache) >= MAX_CACHED:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (stamp, segments)
    return segments


# ----------------------------------------------------------------------------------- panel masks


def dilation_pixels(width: int, height: int, at_paper_size: int = PAPER_DILATION) -> int:
    """The box kernel's side at a ``width`` × ``height`` generation (RaCig's 30 px at 1344 × 768)."""
    if at_paper_size <= 0:
        return 0
    return max(1, round(at_paper_size * math.sqrt(width * height / PAPER_AREA)))


def _warped(labels: np.ndarray, width: int, height: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """A label map placed where the pose canvas lands in the panel (``box`` = x, y, w, h in pixels),
    nearest-neighbour; outside the canvas is nobody."""
    import cv2

    bx, by, bw, bh = box
    sx, sy = bw / labels.shape[1], bh / labels.shape[0]
    # Pixel centres map to pixel centres: x_dst + 0.5 = bx + (x_src + 0.5) · sx.
    matrix = np.array([[sx, 0.0, bx + 0.5 * sx - 0.5], [0.0, sy, by + 0.5 * sy - 0.5]], dtype=np.float64)
    return cv2.warpAffine(labels, matrix, (width, height), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip


def _dilate(mask: np.ndarray, side: int) -> np.ndarray:
    if side <= 1 or not mask.any():
        return mask
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((side, side), np.uint8)).astype(bool)


def nearest_centroid_split(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Disjoint masks: a pixel several masks cover goes to the one whose centroid (of its pixels
    nobody else covers, RaCig's ``assign_by_nearest``) is nearest; ties to the earlier mask."""
    if len(masks) < 2:
        return [m.copy() for m in masks]
    count = np.sum(np.stack(masks), axis=0)
    shared = count > 1
    own = [m & ~shared for m in masks]
    out = [o.copy() for o in own]
    if not shared.any():
        return out
    ys, xs = np.nonzero(shared)
    best = np.full(ys.shape, np.inf)
    owner = np.full(ys.shape, -1)
    for i, (mask, mine) in enumerate(zip(masks, own)):
        points = np.nonzero(mine if mine.any() else mask)
        if not len(points[0]):
            continue
        cy, cx = points[0].mean(), points[1].mean()
        dist = (ys - cy) ** 2 + (xs - cx) ** 2
        better = mask[ys, xs] & (dist < best)
        best[better], owner[better] = dist[better], i
    for i in range(len(masks)):
        pick = owner == i
        out[i][ys[pick], xs[pick]] = True
    return out


def segment_masks(segments: FigureSegments, figure_indices: Sequence[int], width: int, height: int,
                  canvas_box: tuple[float, float, float, float],
                  dilation: int) -> tuple[list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """Per character (its figure in ``figure_indices``), disjoint boolean ``(height, width)`` head
    and body masks from the stored maps, placed by ``canvas_box`` and dilated by a ``dilation`` px
    box kernel (see the module docstring for RaCig's recipe)."""
    warped = {kind: _warped(getattr(segments, kind), width, height, canvas_box) for kind in KINDS}
    people = nearest_centroid_split([_dilate(warped["person"] == f + 1, dilation) for f in figure_indices])
    heads, bodies = [], []
    for f, person in zip(figure_indices, people):
        head = (_dilate(warped["face"] == f + 1, dilation) | _dilate(warped["head"] == f + 1, dilation)) & person
        heads.append(head)
        bodies.append(person & ~head)
    return heads, bodies

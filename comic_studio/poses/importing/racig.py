"""Import RaCig's public retrieval data layout: per-image JSON (``caption_detail``, ``segments`` with
``is_clear``) and a parallel ``skeleton/`` tree of mmpose COCO-17 skeletons
(``[{"id", "skeleton": {"keypoints", "keypoint_scores"}}]``, or NPY/NPZ arrays), remapped to
OpenPose-18. RaCig's own index is a pickle, which is never read: point the importer at the data
root (``json/`` + ``skeleton/``) or at a JSON index listing the per-image JSON files. RaCig's
stored CLIP image features (``features/fusion_Ncharacter.npy``, one row per index row) come along
when the index names them (``"features"``) or ``features=`` is given: they are kept, normalised,
under the model id they were made with (ViT-bigG-14 for RaCig's data) for OpenCLIP retrieval.

Paths in an index, and every file of the data root (a link included), must stay inside their
folder; every file is read through :mod:`.readers` (regular files only, size-capped, no pickles).

RaCig's segmentation maps come along when the data has them (issue 15 item 9): the parallel
``seg/`` (dense person id map, ``.npy``), ``face_seg_npz/`` and ``head_seg_npz/`` (SciPy sparse id
maps) trees. They are kept per entry as small label maps in ``NAME.masks/STEM.npz`` (see
:mod:`comic_studio.poses.segmentation`) and give the entry's panels segmentation masks instead of
skeleton capsules. As in RaCig's retrieval check, every kept person must appear in all three maps;
an entry whose maps are missing, partial or do not fit keeps its pose with capsule masks, and the
report says why.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.poses.importing.library_writer import (
    ImportReport,
    PoseImportError,
    clip_caption,
    entry_stem,
    library_name,
    write_library,
)  # fmt: skip
from comic_studio.poses.importing.readers import (
    MAX_PHOTO_BYTES,
    confined,
    load_array_file,
    read_json,
    refuse_pickle,
)  # fmt: skip
from comic_studio.poses.importing.skeletons import figures_for, people_from_arrays, people_from_json
from comic_studio.poses.library import PoseEntry
from comic_studio.poses.segmentation import (
    KINDS,
    FigureSegments,
    SegmentationError,
    label_maps,
    read_id_map,
    segments_bytes,
)  # fmt: skip
from comic_studio.poses.stored_features import (
    DEFAULT_FEATURES_MODEL,
    StoredFeaturesError,
    check_model_id,
    features_folder,
    read_feature_matrix,
    store_features,
)  # fmt: skip


def _image_size(meta: dict, image: Path | None, where: str) -> tuple[float, float]:
    for wkey, hkey in (("width", "height"), ("img_width", "img_height"), ("image_width", "image_height")):
        if wkey in meta and hkey in meta:
            w, h = meta[wkey], meta[hkey]
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in (w, h))
            if not ok:
                raise PoseImportError(f"{where}.{wkey}/{hkey}: expected two sizes in pixels, got {w!r}×{h!r}")
            return float(w), float(h)
    if image is not None and image.is_file():
        import io

        from PIL import Image, UnidentifiedImageError

        from comic_studio.core import safe_read

        try:
            data = safe_read.read_bytes(image, limit=MAX_PHOTO_BYTES, what="image")
            with Image.open(io.BytesIO(data)) as im:  # the header only: no pixels are decoded
                return float(im.width), float(im.height)
        except safe_read.UnsafeInputError as exc:
            raise PoseImportError(str(exc)) from exc
        except (OSError, UnidentifiedImageError) as exc:
            raise PoseImportError(f"{image}: cannot read the image size ({exc})") from exc
    raise PoseImportError(f"{where}: no image size (no width/height field and no image in the img/ tree)")


def _clear_ids(meta: dict, where: str) -> set[Any] | None:
    """Ids of the segments marked clear, or None when the JSON has no segment list."""
    segments = meta.get("segments")
    if segments is None:
        return None
    if not isinstance(segments, list):
        raise PoseImportError(f"{where}.segments: expected a list")
    ids = set()
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict) or "id" not in seg:
            raise PoseImportError(f"{where}.segments[{i}]: expected an object with an id")
        if seg.get("is_clear", True) not in (True, False, 0, 1):
            raise PoseImportError(f"{where}.segments[{i}].is_clear: expected true or false")
        if seg.get("is_clear", True):
            ids.add(seg["id"])
    return ids


def _sibling(path: Path, root: Path, tree: str, suffixes: tuple[str, ...]) -> Path | None:
    """The file for ``path`` (under ``root/json/``) in RaCig's parallel ``root/<tree>/`` folder."""
    try:
        rel = path.relative_to(root / "json")
    except ValueError:
        return None
    for suffix in suffixes:
        candidate = (root / tree / rel).with_suffix(suffix)
        if candidate.exists() or candidate.is_symlink():  # a FIFO or a dangling link is reported, not passed over
            return confined(root, candidate.relative_to(root), f"{tree} file")
    return None


SEGMENT_TREES = {"person": "seg", "face": "face_seg_npz", "head": "head_seg_npz"}
"""RaCig's parallel folders of id maps, by region kind."""
MAX_ASPECT_DRIFT = 0.02
"""How far a map's aspect may differ from the image's before it is taken to belong to another
picture (RaCig resizes maps to the generation size, so a few pixels of rounding are normal)."""


def _segments(meta_path: Path, root: Path, label: str, ids: list[Any],
              size: tuple[float, float]) -> tuple[FigureSegments | None, str | None]:  # fmt: skip
    """The entry's label maps from RaCig's seg trees, or None and why not (None, None: no maps)."""
    found = {kind: _sibling(meta_path, root, tree, (".npy", ".npz")) for kind, tree in SEGMENT_TREES.items()}
    if not any(found.values()):
        return None, None
    missing = [SEGMENT_TREES[k] + "/" for k, path in found.items() if path is None]
    if missing:
        return None, f"{label}: no {', '.join(missing)} map beside the others; masks from the skeleton"
    try:
        maps = {kind: read_id_map(found[kind], f"{kind} segmentation map") for kind in KINDS}  # type: ignore[arg-type]
    except (SegmentationError, PoseImportError) as exc:
        return None, f"{exc}; masks from the skeleton"
    h, w = maps["person"].shape
    if abs((w / h) / (size[0] / size[1]) - 1.0) > MAX_ASPECT_DRIFT:
        return (
            None,
            f"{label}: the {w}×{h} person map does not fit the {size[0]:g}×{size[1]:g} image; masks from the skeleton",
        )
    for kind in KINDS:
        present = set(np.unique(maps[kind]).tolist())
        # Id 0 is the maps' background (a sparse map cannot store it), so it names nobody.
        lost = [pid for pid in ids if not isinstance(pid, int) or pid == 0 or pid not in present]
        if lost:
            return None, (f"{label}: person {lost[0]!r} is not in the {SEGMENT_TREES[kind]}/ map "
                          "(RaCig needs every person in all three); masks from the skeleton")  # fmt: skip
    return label_maps(maps, ids), None


@dataclass(frozen=True)
class _Index:
    root: Path
    items: list[tuple[Path, Path | None]]
    """(image JSON, skeleton file or None = look in the parallel tree), in row order."""
    features: Path | None = None
    features_model: str | None = None
    from_folder: bool = False


def _index_paths(source: Path) -> _Index:
    """The items of a data root folder (sorted) or a JSON index (its row order), and the stored
    feature matrix an index names (``{"entries": […], "features": "…npy", "features_model": "…"}``)."""
    refuse_pickle(source)
    if source.is_dir():
        if not (source / "json").is_dir() or not (source / "skeleton").is_dir():
            raise PoseImportError(f"{source}: expected RaCig's data layout with json/ and skeleton/ folders")
        root = source.resolve()
        items = [(p, None) for p in sorted((root / "json").rglob("*.json"))]
        return _Index(root, items, from_folder=True)  # each file is confined as it is read
    raw = read_json(source)
    root = source.parent.resolve()
    items = raw.get("entries") if isinstance(raw, dict) and "entries" in raw else raw
    if isinstance(items, dict):  # the JSON twin of RaCig's pickled {row: path}
        items = [items[k] for k in sorted(items, key=lambda k: (len(str(k)), str(k)))]
    if not isinstance(items, list) or not items:
        raise PoseImportError(f"{source}: expected a non-empty list of per-image JSON paths (or {{'entries': […]}})")

    def inside(rel: Any, what: str, i: int) -> Path:
        if not isinstance(rel, str) or not rel:
            raise PoseImportError(f"{source}: entries[{i}].{what}: expected a relative path")
        try:
            return confined(root, Path(rel), what)
        except PoseImportError:
            raise PoseImportError(
                f"{source}: entries[{i}].{what}: {rel!r} points outside the index's folder (a link or '..')"
            ) from None

    out: list[tuple[Path, Path | None]] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            skel = item.get("skeleton")
            out.append((inside(item.get("json"), "json", i), inside(skel, "skeleton", i) if skel is not None else None))
        else:
            out.append((inside(item, "json", i), None))
    features = model = None
    if isinstance(raw, dict) and raw.get("features") is not None:
        rel = raw["features"]
        try:
            if not isinstance(rel, str) or not rel:
                raise PoseImportError("not a path")
            features = confined(root, Path(rel), "features file")
        except PoseImportError:
            raise PoseImportError(
                f"{source}: features: expected a relative path inside the index's folder, got {rel!r}"
            ) from None
        model = raw.get("features_model")
        if model is not None and not isinstance(model, str):
            raise PoseImportError(f"{source}: features_model: expected a model id such as {DEFAULT_FEATURES_MODEL!r}")
    return _Index(root, out, features, model)


def import_racig(source: Path, name: str | None = None, *, user_dir: Path | None = None,
                 min_visibility: float = 0.3, features: Path | None = None,
                 features_model: str | None = None) -> ImportReport:  # fmt: skip
    """Import RaCig-style retrieval data (a data root folder or a JSON index) into a user library.

    ``min_visibility`` defaults lower than for photos: mmpose's COCO scores run lower than
    MediaPipe's visibilities for the same clearly seen joint. ``features`` (default: the index's
    ``"features"``) is a ``.npy`` of CLIP image features row-aligned with the index, made with
    ``features_model`` (default: the index's ``"features_model"``, else RaCig's ViT-bigG-14)."""
    source = Path(source)
    index = _index_paths(source)
    root, items = index.root, index.items
    features = Path(features).expanduser() if features is not None else index.features
    matrix = None
    try:  # checked before anything is written
        model = check_model_id(features_model or index.features_model or DEFAULT_FEATURES_MODEL)
        if features is not None:
            refuse_pickle(features)
            matrix = read_feature_matrix(features, len(items))
    except StoredFeaturesError as exc:
        raise PoseImportError(str(exc)) from exc
    lib = library_name(name or (source.name if source.is_dir() else source.stem))
    entries: list[PoseEntry] = []
    rows: list[int] = []
    skipped: list[tuple[str, str]] = []
    stored: list[tuple[str, bytes]] = []
    segment_notes: list[tuple[str, str]] = []
    taken: set[str] = set()
    for row, (meta_path, skel_path) in enumerate(items):
        label = str(meta_path.relative_to(root)) if meta_path.is_relative_to(root) else str(meta_path)
        try:
            refuse_pickle(meta_path)
            if index.from_folder:  # a file found in json/ (an index's entries were confined already)
                confined(root, meta_path.relative_to(root), "json file")
            meta = read_json(meta_path)
            if not isinstance(meta, dict):
                raise PoseImportError(f"{label}: expected an object with caption_detail and segments")
            caption = meta.get("caption_detail") or meta.get("caption")
            if not isinstance(caption, str) or not caption.strip():
                raise PoseImportError(f"{label}: no caption_detail text")
            skel_path = skel_path or _sibling(meta_path, root, "skeleton", (".json", ".npz", ".npy"))
            if skel_path is None:
                raise PoseImportError(f"{label}: no skeleton file in the parallel skeleton/ folder")
            if skel_path.suffix.lower() == ".json":
                people = people_from_json(read_json(skel_path), str(skel_path.name))
            else:
                people = people_from_arrays(load_array_file(skel_path), str(skel_path.name))
            image = _sibling(meta_path, root, "img", (".jpg", ".jpeg", ".png", ".webp"))
            size = _image_size(meta, image, label)
            figures, notes, ids = figures_for(people, _clear_ids(meta, label), size, label, min_visibility)
            if not figures:
                raise PoseImportError(f"{label}: no usable person" + (f" ({notes[0]})" if notes else ""))
            segments, why = _segments(meta_path, root, label, ids, size)
        except PoseImportError as exc:
            skipped.append((label, str(exc)))
            continue
        tags = ["imported", "racig"]
        bg = meta.get("caption_bg")
        if isinstance(bg, str) and bg.strip() and len(bg) <= 60:
            tags.append(bg.strip())
        stem = entry_stem(meta_path.relative_to(root / "json").with_suffix("").as_posix()
                           if meta_path.is_relative_to(root / "json") else meta_path.stem, taken)  # fmt: skip
        masks = None
        if segments is not None:
            masks = f"{lib}.masks/{stem}.npz"
            stored.append((masks, segments_bytes(segments)))
        if why:
            segment_notes.append((label, why))
        entries.append(PoseEntry(id=f"{lib}/{stem}", caption=clip_caption(caption), tags=tuple(tags),
                                 figures=tuple(figures), aspect=float(np.clip(size[0] / size[1], 0.2, 5.0)),
                                 masks=masks))  # fmt: skip
        rows.append(row)
    path = write_library(lib, entries, user_dir, skipped)
    shutil.rmtree(features_folder(path), ignore_errors=True)  # never leave another import's features behind
    _store_masks(path, lib, stored)
    report = ImportReport(path, entries, skipped, segmented=len(stored), segment_notes=segment_notes)
    if matrix is not None:
        try:
            report.features_stored = store_features(path, model, [e.id for e in entries], matrix, rows)
        except StoredFeaturesError as exc:
            raise PoseImportError(str(exc)) from exc
        report.features_model = model
    return report


def _store_masks(library: Path, lib: str, stored: list[tuple[str, bytes]]) -> None:
    """Replace the library's ``NAME.masks/`` folder with the label maps of this import."""
    from comic_studio.core.atomic import atomic_write_bytes

    folder = library.with_name(f"{lib}.masks")
    shutil.rmtree(folder, ignore_errors=True)  # a re-import never keeps another import's maps
    if stored:
        folder.mkdir()
    for rel, data in stored:
        atomic_write_bytes(library.parent / rel, data, "a pose's segmentation maps")

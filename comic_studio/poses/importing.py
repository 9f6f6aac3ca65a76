"""Import pose collections into the user's pose library, and merge it with the bundled one.

Two sources:

* a folder of pose photos: one entry per image whose pose the offline detector finds
  (:mod:`comic_studio.poses.extract`); the caption comes from a sidecar ``NAME.txt`` or the file name
  ("two_people-fighting.jpg" → "two people fighting"); the photo is copied next to the library so a
  text→image search can use it later;
* RaCig's public retrieval data layout: per-image JSON (``caption_detail``, ``segments`` with
  ``is_clear``) and a parallel ``skeleton/`` tree of mmpose COCO-17 skeletons
  (``[{"id", "skeleton": {"keypoints", "keypoint_scores"}}]``, or NPY/NPZ arrays), remapped to
  OpenPose-18. RaCig's own index is a pickle, which is never read: point the importer at the data
  root (``json/`` + ``skeleton/``) or at a JSON index listing the per-image JSON files. RaCig's
  stored CLIP image features (``features/fusion_Ncharacter.npy``, one row per index row) come along
  when the index names them (``"features"``) or ``features=`` is given: they are kept, normalised,
  under the model id they were made with (ViT-bigG-14 for RaCig's data) for OpenCLIP retrieval.

Security: only JSON and NPY/NPZ are read, NumPy always with ``allow_pickle=False`` (an object array is
refused), every number is validated, files are size-capped and paths in an index must stay inside
the index's folder.

User libraries live in ``user_data_dir("comic-studio")/poses`` (``$COMIC_STUDIO_POSES_DIR``
overrides), one ``NAME.json`` in the bundled library's format per import, photos in ``NAME.images/``
(each entry's ``image`` field points there), stored CLIP features in ``NAME.features/MODEL-ID.npz``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.core.errors import ComicStudioError
from comic_studio.poses.extract import (
    COCO_TO_OPENPOSE, MIN_VISIBILITY, PoseDetectorUnavailable, PoseExtractionError, extract_pose, figure_from_openpose,
    remap_to_openpose,
)  # fmt: skip
from comic_studio.poses.library import MAX_FIGURES, Figure, PoseEntry, dump_library, load_library
from comic_studio.poses.stored_features import (
    DEFAULT_FEATURES_MODEL, StoredFeaturesError, check_model_id, features_folder, read_feature_matrix, store_features,
)  # fmt: skip

log = logging.getLogger(__name__)

POSES_DIR_ENV = "COMIC_STUDIO_POSES_DIR"
USER_PREFIX = "user:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_ARRAY_BYTES = 64 * 1024 * 1024
MAX_PEOPLE = 64
MAX_CAPTION = 500


class PoseImportError(ComicStudioError):
    """A pose collection cannot be imported (the message names the file and the problem)."""


@dataclass
class ImportReport:
    """What an import did: the library file written, the entries, and each skipped item with why."""

    library: Path
    entries: list[PoseEntry]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    features_model: str | None = None
    """The model id of the stored CLIP image features that came with the data, if any."""
    features_stored: int = 0

    def summary(self) -> str:
        text = f"imported {len(self.entries)} pose(s) into {self.library}"
        if self.features_model:
            text += f" with {self.features_stored} stored image feature row(s) for {self.features_model}"
        return text + (f"; skipped {len(self.skipped)}" if self.skipped else "")


# --------------------------------------------------------------------------- the user library


def user_poses_dir() -> Path:
    """Where user pose libraries live (may not exist yet)."""
    override = os.environ.get(POSES_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("comic-studio", appauthor=False)) / "poses"


def library_name(raw: str) -> str:
    """A safe file stem for a library name ("My Poses!" → "my-poses")."""
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-")[:60]
    if not name:
        raise PoseImportError(f"{raw!r} is not a usable library name (use letters and digits)")
    return name


def load_user_libraries(folder: Path | None = None, errors: list[str] | None = None) -> list[PoseEntry]:
    """Every user library's entries, ids prefixed ``user:``. A broken file is skipped (and its
    problem appended to ``errors`` and logged): one bad import must not hide the bundled poses."""
    folder = Path(folder) if folder is not None else user_poses_dir()
    if not folder.is_dir():
        return []
    out: list[PoseEntry] = []
    seen: set[str] = set()
    for path in sorted(folder.glob("*.json")):
        try:
            entries = load_library(path)
        except ComicStudioError as exc:
            log.warning("skipping user pose library: %s", exc)
            if errors is not None:
                errors.append(str(exc))
            continue
        for e in entries:
            uid = USER_PREFIX + e.id
            if uid in seen:
                problem = f"{path}: entry id {e.id!r} is also in another user library; skipped"
                log.warning(problem)
                if errors is not None:
                    errors.append(problem)
                continue
            seen.add(uid)
            # The file stores the image relative to its folder; in memory it is absolute, so the
            # retriever needs no idea of where the entry came from.
            image = str(path.parent / e.image) if e.image else None
            out.append(PoseEntry(id=uid, caption=e.caption, tags=e.tags, figures=e.figures, aspect=e.aspect, image=image))
    return out


def load_all_libraries(user_dir: Path | None = None, errors: list[str] | None = None) -> list[PoseEntry]:
    """The bundled library first, then every user library (ids prefixed ``user:``)."""
    return load_library() + load_user_libraries(user_dir, errors)


def user_entry_image(entry_id: str, user_dir: Path | None = None) -> Path | None:
    """The photo an imported ``user:LIB/STEM`` entry came from, when it was copied, else None."""
    if not entry_id.startswith(USER_PREFIX) or "/" not in entry_id:
        return None
    lib, stem = entry_id[len(USER_PREFIX) :].split("/", 1)
    folder = (Path(user_dir) if user_dir is not None else user_poses_dir()) / f"{lib}.images"
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _write_library(name: str, entries: list[PoseEntry], user_dir: Path | None) -> Path:
    if not entries:
        raise PoseImportError(f"library {name!r}: nothing to import (no usable pose was found)")
    folder = Path(user_dir) if user_dir is not None else user_poses_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dump_library(entries), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a crash never leaves half a library behind
    load_library(path)  # what we wrote must read back (validates every field once more)
    return path


def _entry_stem(raw: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")[:36] or "pose"
    unique, n = stem, 2
    while unique in taken:
        unique, n = f"{stem}-{n}", n + 1
    taken.add(unique)
    return unique


def _clip_caption(text: str) -> str:
    """At most :data:`MAX_CAPTION` characters, cut at a sentence end when there is one."""
    text = " ".join(text.split())
    if len(text) <= MAX_CAPTION:
        return text
    cut = text[:MAX_CAPTION]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > MAX_CAPTION // 4 else cut.rsplit(" ", 1)[0]


# --------------------------------------------------------------------------- photo folders


def caption_for_photo(image: Path) -> str:
    """A sidecar ``NAME.txt`` when present, else words from the file name."""
    sidecar = image.with_suffix(".txt")
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return _clip_caption(text)
    words = re.sub(r"[_\-.]+", " ", image.stem)
    words = re.sub(r"\s*\d+$", "", words).strip()  # "kick 03" → "kick"
    return _clip_caption(words or image.stem)


def import_photo_folder(folder: Path, name: str | None = None, *, user_dir: Path | None = None,
                        min_visibility: float = MIN_VISIBILITY,
                        progress: Callable[[int, int, str], None] | None = None) -> ImportReport:  # fmt: skip
    """One single-figure entry per photo in ``folder`` whose pose the detector finds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PoseImportError(f"{folder}: not a folder")
    lib = library_name(name or folder.name)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not photos:
        raise PoseImportError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) to import")
    entries: list[PoseEntry] = []
    skipped: list[tuple[str, str]] = []
    kept: list[tuple[Path, str]] = []
    taken: set[str] = set()
    for i, photo in enumerate(photos):
        if progress:
            progress(i, len(photos), photo.name)
        try:
            result = extract_pose(photo, min_visibility=min_visibility)
        except PoseDetectorUnavailable:
            raise  # not this photo's fault: every other photo would fail the same way
        except PoseExtractionError as exc:
            skipped.append((photo.name, str(exc)))
            continue
        if result.figure is None:
            skipped.append((photo.name, result.reason))
            continue
        stem = _entry_stem(photo.stem, taken)
        aspect = float(np.clip(result.aspect, 0.2, 5.0))
        image = f"{lib}.images/{stem}{photo.suffix.lower()}"
        entries.append(PoseEntry(id=f"{lib}/{stem}", caption=caption_for_photo(photo), tags=("imported", "photo"),
                                 figures=(result.figure,), aspect=aspect, image=image))  # fmt: skip
        kept.append((photo, image))
    path = _write_library(lib, entries, user_dir)
    images = path.with_name(f"{lib}.images")
    shutil.rmtree(images, ignore_errors=True)  # a re-import replaces the old photos too
    shutil.rmtree(features_folder(path), ignore_errors=True)  # and features stored by an earlier import
    images.mkdir()
    for photo, image in kept:
        shutil.copyfile(photo, path.parent / image)
    return ImportReport(path, entries, skipped)


# --------------------------------------------------------------------------- RaCig retrieval data


def _read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise PoseImportError(f"{path}: {size} bytes is larger than the {MAX_JSON_BYTES} allowed for a JSON file")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PoseImportError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoseImportError(f"{path}: not valid JSON ({exc})") from exc


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt"):
        raise PoseImportError(f"{path}: refusing to read a pickle-based file (it can run code); "
                              "give the data root folder (json/ + skeleton/) or a JSON index instead")  # fmt: skip


def load_array_file(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a ``.npy`` (as ``{"arr": …}``) or ``.npz``, never unpickling anything."""
    _refuse_pickle(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise PoseImportError(f"{path}: expected a .json, .npy or .npz skeleton file")
    try:
        if path.stat().st_size > MAX_ARRAY_BYTES:
            raise PoseImportError(f"{path}: larger than the {MAX_ARRAY_BYTES} bytes allowed for an array file")
        if path.suffix.lower() == ".npy":
            return {"arr": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:  # numpy's answer to an object array under allow_pickle=False
        raise PoseImportError(f"{path}: refused, it holds Python objects that would need unpickling ({exc})") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise PoseImportError(f"{path}: not a readable NumPy file ({exc})") from exc


def _people_from_json(raw: Any, where: str) -> list[tuple[Any, np.ndarray]]:
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


def _people_from_arrays(arrays: dict[str, np.ndarray], where: str) -> list[tuple[Any, np.ndarray]]:
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


def _image_size(meta: dict, image: Path | None, where: str) -> tuple[float, float]:
    for wkey, hkey in (("width", "height"), ("img_width", "img_height"), ("image_width", "image_height")):
        if wkey in meta and hkey in meta:
            w, h = meta[wkey], meta[hkey]
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in (w, h))
            if not ok:
                raise PoseImportError(f"{where}.{wkey}/{hkey}: expected two sizes in pixels, got {w!r}×{h!r}")
            return float(w), float(h)
    if image is not None and image.is_file():
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(image) as im:  # reads the header only
                return float(im.width), float(im.height)
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
        if candidate.is_file():
            return candidate
    return None


def _figures_for(people: list[tuple[Any, np.ndarray]], clear: set[Any] | None, size: tuple[float, float],
                 where: str, min_visibility: float) -> tuple[list[Figure], list[str]]:  # fmt: skip
    figures: list[tuple[float, Figure]] = []
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
        figures.append((float(np.ptp(pts[:, 0]) * np.ptp(pts[:, 1])), fig))
    if len(figures) > MAX_FIGURES:
        notes.append(f"{where}: kept the {MAX_FIGURES} largest of {len(figures)} people")
        figures = sorted(figures, key=lambda t: -t[0])[:MAX_FIGURES]
    return _assign_roles([f for _, f in figures]), notes


def _assign_roles(figures: list[Figure]) -> list[Figure]:
    """One person: neutral. Several: the leftmost acts (left-to-right reading puts the doer first),
    the others neutral; who is acted on is unknown, so nobody is marked target."""
    if len(figures) < 2:
        return [Figure(f.keypoints, "neutral", f.facing) for f in figures]
    left = min(range(len(figures)), key=lambda i: figures[i].hip_centre[0])
    return [Figure(f.keypoints, "actor" if i == left else "neutral", f.facing) for i, f in enumerate(figures)]


@dataclass(frozen=True)
class _Index:
    root: Path
    items: list[tuple[Path, Path | None]]
    """(image JSON, skeleton file or None = look in the parallel tree), in row order."""
    features: Path | None = None
    features_model: str | None = None


def _index_paths(source: Path) -> _Index:
    """The items of a data root folder (sorted) or a JSON index (its row order), and the stored
    feature matrix an index names (``{"entries": […], "features": "…npy", "features_model": "…"}``)."""
    _refuse_pickle(source)
    if source.is_dir():
        if not (source / "json").is_dir() or not (source / "skeleton").is_dir():
            raise PoseImportError(f"{source}: expected RaCig's data layout with json/ and skeleton/ folders")
        return _Index(source, [(p, None) for p in sorted((source / "json").rglob("*.json"))])
    raw = _read_json(source)
    root = source.parent.resolve()
    items = raw.get("entries") if isinstance(raw, dict) and "entries" in raw else raw
    if isinstance(items, dict):  # the JSON twin of RaCig's pickled {row: path}
        items = [items[k] for k in sorted(items, key=lambda k: (len(str(k)), str(k)))]
    if not isinstance(items, list) or not items:
        raise PoseImportError(f"{source}: expected a non-empty list of per-image JSON paths (or {{'entries': […]}})")

    def inside(rel: Any, what: str, i: int) -> Path:
        if not isinstance(rel, str) or not rel:
            raise PoseImportError(f"{source}: entries[{i}].{what}: expected a relative path")
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise PoseImportError(f"{source}: entries[{i}].{what}: {rel!r} points outside the index's folder")
        return path

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
        if not isinstance(rel, str) or not rel or not (root / rel).resolve().is_relative_to(root):
            raise PoseImportError(f"{source}: features: expected a relative path inside the index's folder, got {rel!r}")
        features, model = (root / rel).resolve(), raw.get("features_model")
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
            _refuse_pickle(features)
            matrix = read_feature_matrix(features, len(items))
    except StoredFeaturesError as exc:
        raise PoseImportError(str(exc)) from exc
    lib = library_name(name or (source.name if source.is_dir() else source.stem))
    entries: list[PoseEntry] = []
    rows: list[int] = []
    skipped: list[tuple[str, str]] = []
    taken: set[str] = set()
    for row, (meta_path, skel_path) in enumerate(items):
        label = str(meta_path.relative_to(root)) if meta_path.is_relative_to(root) else str(meta_path)
        try:
            _refuse_pickle(meta_path)
            meta = _read_json(meta_path)
            if not isinstance(meta, dict):
                raise PoseImportError(f"{label}: expected an object with caption_detail and segments")
            caption = meta.get("caption_detail") or meta.get("caption")
            if not isinstance(caption, str) or not caption.strip():
                raise PoseImportError(f"{label}: no caption_detail text")
            skel_path = skel_path or _sibling(meta_path, root, "skeleton", (".json", ".npz", ".npy"))
            if skel_path is None:
                raise PoseImportError(f"{label}: no skeleton file in the parallel skeleton/ folder")
            if skel_path.suffix.lower() == ".json":
                people = _people_from_json(_read_json(skel_path), str(skel_path.name))
            else:
                people = _people_from_arrays(load_array_file(skel_path), str(skel_path.name))
            image = _sibling(meta_path, root, "img", (".jpg", ".jpeg", ".png", ".webp"))
            size = _image_size(meta, image, label)
            figures, notes = _figures_for(people, _clear_ids(meta, label), size, label, min_visibility)
            if not figures:
                raise PoseImportError(f"{label}: no usable person" + (f" ({notes[0]})" if notes else ""))
        except PoseImportError as exc:
            skipped.append((label, str(exc)))
            continue
        tags = ["imported", "racig"]
        bg = meta.get("caption_bg")
        if isinstance(bg, str) and bg.strip() and len(bg) <= 60:
            tags.append(bg.strip())
        stem = _entry_stem(meta_path.relative_to(root / "json").with_suffix("").as_posix()
                           if meta_path.is_relative_to(root / "json") else meta_path.stem, taken)  # fmt: skip
        entries.append(PoseEntry(id=f"{lib}/{stem}", caption=_clip_caption(caption), tags=tuple(tags),
                                 figures=tuple(figures), aspect=float(np.clip(size[0] / size[1], 0.2, 5.0))))  # fmt: skip
        rows.append(row)
    path = _write_library(lib, entries, user_dir)
    shutil.rmtree(features_folder(path), ignore_errors=True)  # never leave another import's features behind
    report = ImportReport(path, entries, skipped)
    if matrix is not None:
        try:
            report.features_stored = store_features(path, model, [e.id for e in entries], matrix, rows)
        except StoredFeaturesError as exc:
            raise PoseImportError(str(exc)) from exc
        report.features_model = model
    return report


def import_poses(source: Path, name: str | None = None, *, user_dir: Path | None = None,
                 features: Path | None = None, features_model: str | None = None) -> ImportReport:  # fmt: skip
    """Import whatever ``source`` is: RaCig data (a JSON index, or a folder with json/ + skeleton/,
    optionally with stored CLIP features) or a folder of pose photos."""
    source = Path(source)
    if not source.exists():
        raise PoseImportError(f"{source}: no such file or folder")
    if source.is_file() or ((source / "json").is_dir() and (source / "skeleton").is_dir()):
        return import_racig(source, name, user_dir=user_dir, features=features, features_model=features_model)
    if features is not None:
        raise PoseImportError(f"{source}: stored image features go with RaCig data (an index or json/ + skeleton/), "
                              "not with a photo folder, whose photos are encoded when searched")  # fmt: skip
    return import_photo_folder(source, name, user_dir=user_dir)

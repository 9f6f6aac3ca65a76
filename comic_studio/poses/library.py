"""The pose library's data types and its loader.

A :class:`PoseEntry` is one scene composition: 1–4 :class:`Figure` skeletons in OpenPose-18 order on a
pose canvas of a given aspect ratio, with a plain-English caption used for text→pose retrieval.
Coordinates are normalised to the canvas (``x`` in 0..1 of its width, ``y`` in 0..1 of its height,
y pointing down), so the same entry can be fitted into any panel.

The file format (``comic_studio/resources/poses/library.json``) is written by :mod:`comic_studio.poses.authoring`
and validated field by field here, so a corrupt or hand-edited file is rejected with a message that
names the entry and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.resources import resource
from comic_studio.core.safe_read import UnsafeInputError, parse_json, read_text

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)  # fmt: skip
KP: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
"""Keypoint index by name, e.g. ``KP["r_wrist"] == 4``."""

LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7),
    (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
"""The 17 OpenPose-18 limb pairs in OpenPose's drawing order (neck→shoulders, arms, legs, face)."""

# Index pairs that swap when a figure is mirrored (the figure's own right becomes its left).
MIRROR_PERMUTATION: tuple[int, ...] = tuple(
    KP[n.replace("r_", "§").replace("l_", "r_").replace("§", "l_")] for n in KEYPOINT_NAMES
)

Role = Literal["actor", "target", "neutral"]
ROLES: tuple[str, ...] = get_args(Role)

MAX_FIGURES = 4
MAX_LIBRARY_BYTES = 128 * 1024 * 1024
"""The bundled library is 0.25 MB; a large import (tens of thousands of poses) stays well below."""
LIBRARY_VERSION = 1


class PoseLibraryError(ComicStudioError):
    """The pose library file is missing or malformed (the message names the entry and field)."""


@dataclass(frozen=True)
class Figure:
    """One person in a pose entry.

    ``keypoints`` holds 18 ``(x, y, visible)`` triples in :data:`KEYPOINT_NAMES` order; hidden points
    (the far eye and ear in a profile view) have ``visible == 0`` and still carry a plausible position.
    ``facing`` is where the head looks: -1 image-left, 0 towards the viewer, +1 image-right.
    """

    keypoints: tuple[tuple[float, float, float], ...]
    role: Role
    facing: float

    def point(self, name: str) -> tuple[float, float]:
        x, y, _ = self.keypoints[KP[name]]
        return (x, y)

    def visible(self, name: str) -> bool:
        return self.keypoints[KP[name]][2] > 0.5

    @property
    def hip_centre(self) -> tuple[float, float]:
        (rx, ry), (lx, ly) = self.point("r_hip"), self.point("l_hip")
        return ((rx + lx) / 2, (ry + ly) / 2)


@dataclass(frozen=True)
class PoseEntry:
    id: str
    caption: str
    tags: tuple[str, ...]
    figures: tuple[Figure, ...]
    aspect: float
    """Canvas width / height (1.5 for a landscape two-person scene)."""
    image: str | None = None
    """The picture the pose was taken from, for text→image retrieval (OpenCLIP). In a user library
    file: a path relative to the folder holding that file (``dance.images/kick.jpg``);
    :func:`comic_studio.poses.user_library.load_user_libraries` makes it absolute. None for drawn poses."""
    masks: str | None = None
    """The person/face/head label maps the pose came with (imported RaCig data:
    :mod:`comic_studio.poses.segmentation`), a path like ``image``; None: masks from the skeleton."""

    @property
    def n_figures(self) -> int:
        return len(self.figures)

    def figures_left_to_right(self) -> list[int]:
        """Figure indices sorted by horizontal position (hip centre), left first."""
        return sorted(range(len(self.figures)), key=lambda i: (self.figures[i].hip_centre[0], i))


# --------------------------------------------------------------------------- (de)serialisation


def _r(v: float) -> float:
    # 4 decimals is ~0.1 px on a 1000 px canvas; rounding keeps the file compact and diff-friendly.
    return round(float(v), 4) + 0.0  # "+ 0.0" turns -0.0 into 0.0 so output is byte-stable


def entry_to_json(entry: PoseEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": entry.id,
        "caption": entry.caption,
        "tags": list(entry.tags),
        "aspect": _r(entry.aspect),
        "figures": [
            {
                "role": f.role,
                "facing": _r(f.facing),
                # Flat [x, y, v, x, y, v, ...] keeps the file small and still readable.
                "keypoints": [_r(c) if j < 2 else int(c) for kp in f.keypoints for j, c in enumerate(kp)],
            }
            for f in entry.figures
        ],
    }
    if entry.image is not None:  # only imported entries have one; the bundled file stays as it was
        out["image"] = entry.image
    if entry.masks is not None:
        out["masks"] = entry.masks
    return out


def dump_library(entries: list[PoseEntry]) -> str:
    """The library file's exact text (deterministic: same entries → same bytes)."""
    doc = {
        "version": LIBRARY_VERSION,
        "keypoints": list(KEYPOINT_NAMES),
        "entries": [entry_to_json(e) for e in entries],
    }
    # One entry per line: compact, yet a diff shows which entries changed.
    head = json.dumps({k: v for k, v in doc.items() if k != "entries"}, separators=(",", ":"))[:-1]
    lines = [json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in doc["entries"]]
    return head + ',"entries":[\n' + ",\n".join(lines) + "\n]}\n"


def _fail(where: str, problem: str) -> PoseLibraryError:
    return PoseLibraryError(f"{where}: {problem}")


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f"expected a number, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(where, f"{value} is outside [{lo}, {hi}]")
    return float(value)


def figure_from_json(raw: Any, where: str) -> Figure:
    if not isinstance(raw, dict):
        raise _fail(where, "a figure must be an object")
    extra = set(raw) - {"role", "facing", "keypoints"}
    if extra:
        raise _fail(where, f"unknown field(s) {sorted(extra)}")
    role = raw.get("role")
    if role not in ROLES:
        raise _fail(f"{where}.role", f"{role!r} is not one of {ROLES}")
    facing = _number(raw.get("facing"), f"{where}.facing", -1.0, 1.0)
    flat = raw.get("keypoints")
    if not isinstance(flat, list) or len(flat) != 3 * len(KEYPOINT_NAMES):
        raise _fail(f"{where}.keypoints", f"expected {3 * len(KEYPOINT_NAMES)} numbers (18 × x, y, visible)")
    kps = []
    for i, name in enumerate(KEYPOINT_NAMES):
        x = _number(flat[3 * i], f"{where}.keypoints[{name}].x", 0.0, 1.0)
        y = _number(flat[3 * i + 1], f"{where}.keypoints[{name}].y", 0.0, 1.0)
        v = flat[3 * i + 2]
        if v not in (0, 1) or isinstance(v, bool):
            raise _fail(f"{where}.keypoints[{name}].visible", f"expected 0 or 1, got {v!r}")
        kps.append((x, y, float(v)))
    return Figure(keypoints=tuple(kps), role=role, facing=facing)


def entry_from_json(raw: Any, where: str) -> PoseEntry:
    if not isinstance(raw, dict):
        raise _fail(where, "an entry must be an object")
    extra = set(raw) - {"id", "caption", "tags", "aspect", "figures", "image", "masks"}
    if extra:
        raise _fail(where, f"unknown field(s) {sorted(extra)}")
    eid = raw.get("id")
    if not isinstance(eid, str) or not eid or len(eid) > 100:
        raise _fail(f"{where}.id", "expected a non-empty string of at most 100 characters")
    where = f"{where} ({eid})"
    caption = raw.get("caption")
    if not isinstance(caption, str) or not caption.strip() or len(caption) > 500:
        raise _fail(f"{where}.caption", "expected a non-empty string of at most 500 characters")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise _fail(f"{where}.tags", "expected a list of non-empty strings")
    aspect = _number(raw.get("aspect"), f"{where}.aspect", 0.2, 5.0)
    figs = raw.get("figures")
    if not isinstance(figs, list) or not 1 <= len(figs) <= MAX_FIGURES:
        raise _fail(f"{where}.figures", f"expected a list of 1 to {MAX_FIGURES} figures")
    figures = tuple(figure_from_json(f, f"{where}.figures[{i}]") for i, f in enumerate(figs))
    image = _image_path(raw.get("image"), f"{where}.image")
    masks = _image_path(raw.get("masks"), f"{where}.masks")
    return PoseEntry(id=eid, caption=caption, tags=tuple(tags), figures=figures, aspect=aspect, image=image,
                     masks=masks)  # fmt: skip


def _image_path(value: Any, where: str) -> str | None:
    """A relative path that stays inside the library's folder (a hand-edited or downloaded library
    must not point the image reader at arbitrary files)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 300:
        raise _fail(where, "expected a relative image path of at most 300 characters")
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ":" in value or any(p in ("", ".", "..") for p in parts):
        raise _fail(where, f"{value!r} must be a plain relative path inside the library's folder")
    return value


def default_library_path() -> Path:
    return resource("poses", "library.json")


def parse_library(text: str, source: str = "<pose library>") -> list[PoseEntry]:
    try:
        doc = parse_json(text, where=source, limit=MAX_LIBRARY_BYTES)
    except UnsafeInputError as exc:  # not JSON, too deep, an unusable number
        hint = "regenerate it with `python -m comic_studio.poses.authoring`"
        raise _fail(source, f"{exc.problem}; {hint}") from exc
    if not isinstance(doc, dict) or doc.get("version") != LIBRARY_VERSION:
        raise _fail(f"{source}: version", f"expected a library object with version {LIBRARY_VERSION}")
    if doc.get("keypoints") != list(KEYPOINT_NAMES):
        raise _fail(f"{source}: keypoints", "keypoint order differs from OpenPose-18")
    raw_entries = doc.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise _fail(f"{source}: entries", "expected a non-empty list")
    entries = [entry_from_json(e, f"{source}: entries[{i}]") for i, e in enumerate(raw_entries)]
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise _fail(f"{source}: entries", f"duplicate id {e.id!r}")
        seen.add(e.id)
    return entries


_CACHE: dict[str, tuple[tuple[int, int], list[PoseEntry] | PoseLibraryError]] = {}
"""Per resolved path: (modification time, size) and the entries read then, or why they could not
be. A broken file is remembered too, so a render does not re-read it (nor re-report it) until it
changes."""


def load_library(path: Path | None = None) -> list[PoseEntry]:
    """Read and validate a pose library (default: the bundled ``comic_studio/resources/poses/library.json``).

    Only a regular file of at most :data:`MAX_LIBRARY_BYTES` is read (a FIFO in the user's pose
    folder must not hang every render). The parsed list is cached per path, modification time and
    size; callers must not mutate it. Raises :class:`PoseLibraryError` naming the file.
    """
    path = Path(path) if path is not None else default_library_path()
    try:
        info = path.stat()
        key = str(path.resolve())
    except OSError as exc:
        raise _fail(str(path), f"cannot read the pose library ({exc.strerror or exc})") from exc
    stamp = (info.st_mtime_ns, info.st_size)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        if isinstance(cached[1], PoseLibraryError):
            raise PoseLibraryError(str(cached[1]))  # a fresh error: re-raising one would grow its traceback
        return list(cached[1])
    try:
        text = read_text(path, limit=MAX_LIBRARY_BYTES, what="pose library")
        entries: list[PoseEntry] | PoseLibraryError = parse_library(text, str(path))
    except UnsafeInputError as exc:
        entries = _fail(str(path), exc.problem)
    except PoseLibraryError as exc:
        entries = exc
    _CACHE[key] = (stamp, entries)
    if isinstance(entries, PoseLibraryError):
        raise entries
    return list(entries)

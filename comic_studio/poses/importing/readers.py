"""Reading imported files safely, through :mod:`comic_studio.core.safe_read`: only JSON, NPY/NPZ and
images, regular files only (a FIFO or device is refused, never waited on), size-capped before and
after unpacking, NumPy never unpickling (an object array is refused), pickle-based formats refused by
name, and every path confined to the folder it was found in (a link or ``..`` out is refused).
Every problem is one :class:`PoseImportError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.core import safe_read
from comic_studio.poses.extract import MAX_PHOTO_PIXELS
from comic_studio.poses.importing.library_writer import PoseImportError

MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_ARRAY_BYTES = 64 * 1024 * 1024
"""Per skeleton file, after unpacking: a few people's keypoints are kilobytes."""
MAX_PHOTO_BYTES = safe_read.MAX_IMAGE_FILE_BYTES
MAX_SIDECAR_BYTES = 64 * 1024


def read_json(path: Path) -> Any:
    """A JSON file of at most :data:`MAX_JSON_BYTES`; any problem is a :class:`PoseImportError`."""
    try:
        return safe_read.read_json(path, limit=MAX_JSON_BYTES)
    except safe_read.UnsafeInputError as exc:
        raise PoseImportError(str(exc)) from exc


def refuse_pickle(path: Path) -> None:
    """Refuse a pickle-based file by its suffix, before anything opens it."""
    if path.suffix.lower() in (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt"):
        raise PoseImportError(f"{path}: refusing to read a pickle-based file (it can run code); "
                              "give the data root folder (json/ + skeleton/) or a JSON index instead")  # fmt: skip


def load_array_file(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a ``.npy`` (as ``{"arr": …}``) or ``.npz``, never unpickling anything. A truncated
    or damaged file is reported as such, an object array as refused."""
    refuse_pickle(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise PoseImportError(f"{path}: expected a .json, .npy or .npz skeleton file")
    try:
        return safe_read.read_arrays(path, limit=MAX_ARRAY_BYTES, what="skeleton file")
    except safe_read.UnsafeInputError as exc:
        raise PoseImportError(str(exc)) from exc


def read_photo(path: Path) -> tuple[bytes, Any]:
    """A pose photo's bytes (to copy beside the library) and its decoded Pillow image, within the
    byte and pixel caps."""
    try:
        data = safe_read.read_bytes(path, limit=MAX_PHOTO_BYTES, what="photo")
        return data, safe_read.decode_image(data, where=path, max_pixels=MAX_PHOTO_PIXELS, what="photo")
    except safe_read.UnsafeInputError as exc:
        raise PoseImportError(str(exc)) from exc


def read_sidecar(path: Path) -> str:
    """A caption sidecar's text ("" when it cannot be read: the file name gives the caption then)."""
    try:
        return safe_read.read_bytes(path, limit=MAX_SIDECAR_BYTES, what="caption").decode("utf-8", errors="replace")
    except safe_read.UnsafeInputError:
        return ""


def confined(folder: Path, path: Path, what: str) -> Path:
    """``path`` resolved, refused (:class:`PoseImportError`) unless it stays inside ``folder``."""
    try:
        return safe_read.inside(folder, path, what=what)
    except safe_read.UnsafeInputError as exc:
        raise PoseImportError(str(exc)) from exc

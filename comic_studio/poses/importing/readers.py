"""Reading imported files safely: only JSON and NPY/NPZ, size-capped, NumPy always with
``allow_pickle=False`` (an object array is refused), pickle-based formats refused by name.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.poses.importing.library_writer import PoseImportError

MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_ARRAY_BYTES = 64 * 1024 * 1024


def read_json(path: Path) -> Any:
    """A JSON file of at most :data:`MAX_JSON_BYTES`; any problem is a :class:`PoseImportError`."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise PoseImportError(f"{path}: {size} bytes is larger than the {MAX_JSON_BYTES} allowed for a JSON file")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PoseImportError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoseImportError(f"{path}: not valid JSON ({exc})") from exc


def refuse_pickle(path: Path) -> None:
    """Refuse a pickle-based file by its suffix, before anything opens it."""
    if path.suffix.lower() in (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt"):
        raise PoseImportError(f"{path}: refusing to read a pickle-based file (it can run code); "
                              "give the data root folder (json/ + skeleton/) or a JSON index instead")  # fmt: skip


def load_array_file(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a ``.npy`` (as ``{"arr": …}``) or ``.npz``, never unpickling anything."""
    refuse_pickle(path)
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

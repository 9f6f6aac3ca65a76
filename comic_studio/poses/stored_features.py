"""CLIP image features that come with imported pose data (RaCig's retrieval data ships them).

RaCig keeps one feature matrix per index (``retrieve_info/features/fusion_Ncharacter.npy``, one row
per row of the index, made with laion's CLIP ViT-bigG-14 and not normalised). At import the rows of
the entries actually imported are kept, unit length, in ``NAME.features/MODEL-ID.npz`` beside the
user library ``NAME.json`` (arrays ``ids`` and ``features``), so OpenCLIP retrieval with that model
scores them without the pictures and without encoding anything.

Only plain numeric arrays are read (``allow_pickle=False``); the source matrix is memory-mapped,
as RaCig's matrices hold tens of thousands of rows.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from comic_studio.core import safe_read
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, read_arrays
from comic_studio.poses.array_files import save_arrays_atomic

log = logging.getLogger(__name__)

DEFAULT_FEATURES_MODEL = "openclip-vit-bigg-14"
"""RaCig computed its stored image features with laion's CLIP ViT-bigG-14 (laion2B-39B-b160k)."""
MAX_FEATURE_BYTES = 4 * 1024**3
MAX_FEATURE_SIZE = 8192
MAX_STORED_BYTES = 1024**3
"""Stored features of one user library: 50,000 poses of ViT-bigG's 1280 values are 256 MB."""
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
"""Catalogue ids; the id also names the stored file, so nothing else is accepted."""


class StoredFeaturesError(ComicStudioError):
    """A feature matrix cannot be used (the message names the file and the problem)."""


def features_folder(library: Path) -> Path:
    """Where the stored features of the user library file ``library`` (``NAME.json``) live."""
    return library.with_name(f"{library.stem}.features")


def check_model_id(model: str) -> str:
    model = model.strip()
    if not MODEL_ID.match(model):
        raise StoredFeaturesError(
            f"features model {model!r}: expected a catalogue id such as {DEFAULT_FEATURES_MODEL!r}"
        )
    return model


def read_feature_matrix(path: Path, rows: int) -> np.ndarray:
    """A float ``[rows, size]`` ``.npy`` matrix, memory-mapped; anything else is refused unread."""
    if path.suffix.lower() != ".npy":
        raise StoredFeaturesError(f"{path}: expected the image features as a .npy matrix (one row per index entry)")
    try:
        # Checked on a descriptor first: a FIFO named like the features would block np.load forever.
        safe_read.check_regular_file(path, limit=MAX_FEATURE_BYTES, what="image features file")
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except safe_read.UnsafeInputError as exc:
        raise StoredFeaturesError(str(exc)) from exc
    except ValueError as exc:  # an object array (it would need unpickling) or a damaged header
        raise StoredFeaturesError(f"{path}: refused, not a plain numeric .npy matrix ({exc})") from exc
    except OSError as exc:
        raise StoredFeaturesError(f"{path}: cannot read the image features ({exc.strerror or exc})") from exc
    if matrix.ndim != 2 or matrix.dtype.kind != "f" or not 1 <= matrix.shape[1] <= MAX_FEATURE_SIZE:
        raise StoredFeaturesError(
            f"{path}: expected a float matrix [rows, feature size], got {matrix.dtype} {matrix.shape}"
        )
    if matrix.shape[0] != rows:
        raise StoredFeaturesError(f"{path}: {matrix.shape[0]} feature rows for {rows} index entries; "
                                  "the features must be row-aligned with the index they were made for")  # fmt: skip
    return matrix


def store_features(library: Path, model: str, ids: list[str], matrix: np.ndarray, rows: list[int]) -> int:
    """Keep ``matrix[rows]`` (the entries ``ids``, in order) unit length under
    ``NAME.features/MODEL.npz``; rows that are zero or not finite are dropped (those entries then
    match by their picture or caption). Returns how many rows were stored."""
    vectors = np.asarray(matrix[rows], dtype=np.float32).reshape(len(rows), matrix.shape[1])
    norms = np.linalg.norm(vectors, axis=1)
    good = np.isfinite(vectors).all(axis=1) & (norms > 1e-6)
    if not good.all():
        log.warning("%s: %d stored feature row(s) are empty or not finite; those entries match by caption",
                    library, int((~good).sum()))  # fmt: skip
    vectors = vectors[good] / norms[good, None]
    kept = [eid for eid, ok in zip(ids, good) if ok]
    target = features_folder(library) / f"{check_model_id(model)}.npz"
    try:
        save_arrays_atomic(target, {"ids": np.array(kept, dtype=str), "features": vectors})
    except OSError as exc:
        raise StoredFeaturesError(f"{target}: cannot store the image features ({exc.strerror or exc})") from exc
    return len(kept)


def load_stored_features(model_id: str, folder: Path, errors: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every user library's stored features for ``model_id`` in ``folder``, by the entry id as it
    is in its library file (``LIB/STEM``). A damaged file is skipped, its problem logged and
    appended to ``errors``."""
    if not MODEL_ID.match(model_id) or not folder.is_dir():
        return {}
    out: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob(f"*.features/{model_id}.npz")):
        try:
            arrays = read_arrays(path, limit=MAX_STORED_BYTES, what="stored features file")
            ids, features = arrays["ids"], arrays["features"]
            if (
                ids.dtype.kind != "U"
                or ids.ndim != 1
                or features.dtype != np.float32
                or features.shape[:1] != ids.shape
            ):
                raise ValueError("expected 'ids' (strings) and 'features' (float32, one row per id)")
        except UnsafeInputError as exc:
            problem = f"{path}: stored CLIP features skipped ({exc.problem})"
            log.warning(problem)
            if errors is not None:
                errors.append(problem)
            continue
        except (ValueError, KeyError) as exc:
            problem = f"{path}: stored CLIP features skipped ({exc})"
            log.warning(problem)
            if errors is not None:
                errors.append(problem)
            continue
        lib = path.parent.name[: -len(".features")]
        for eid, vec in zip(ids.tolist(), features):
            if eid.startswith(f"{lib}/"):  # a library's file only speaks for its own entries
                out[eid] = vec
    return out

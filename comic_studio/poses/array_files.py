"""NumPy files the pose retrievers keep on disk (embedding caches, stored image features).

Every file is written to a temporary name and renamed into place, so a crash or a second process
never leaves half a file, and read through :func:`comic_studio.core.safe_read.read_arrays` (regular
files only, bounded, never unpickled): a cache folder is writable by other programs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from comic_studio.core.atomic import atomic_path
from comic_studio.core.safe_read import UnsafeInputError, read_arrays


def save_arrays_atomic(path: Path, arrays: np.ndarray | dict[str, np.ndarray]) -> None:
    """Write one array as ``.npy`` or named arrays as ``.npz`` (by ``path``'s suffix), atomically.

    Raises ``OSError`` (:class:`~comic_studio.core.atomic.FileWriteError`) when the folder cannot be
    written; callers decide whether that is fatal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, "the array file") as tmp, open(tmp, "wb") as fh:
        if isinstance(arrays, dict):
            np.savez(fh, **arrays)  # a plain numeric/str array never needs pickling
        else:
            np.save(fh, arrays, allow_pickle=False)


def read_matrix(path: Path, rows: int | None = None, cols: int | None = None) -> np.ndarray | None:
    """A float32 ``.npy`` matrix with ``rows`` × ``cols`` (each checked when given), or None when the
    file is missing, corrupt, pickled or of another shape: the caller recomputes and overwrites it.

    ``rows=None, cols=N`` reads one vector of N values instead of a matrix."""
    try:
        matrix = read_arrays(path, what="cached array").get("arr")
    except UnsafeInputError:  # missing, not a regular file, too big, damaged, pickled
        return None
    if not isinstance(matrix, np.ndarray) or matrix.dtype != np.float32:
        return None
    if rows is None and cols is not None:  # one vector
        return matrix if matrix.shape == (cols,) else None
    if (
        matrix.ndim != 2
        or (rows is not None and matrix.shape[0] != rows)
        or (cols is not None and matrix.shape[1] != cols)
    ):
        return None
    return matrix

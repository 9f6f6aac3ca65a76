"""The one safe reader for files that come from outside: project pieces, LLM answers, character
libraries, pose folders, settings, init images.

Every reader here is bounded: a size cap on the bytes read, a depth cap on JSON, a pixel cap on
images, ``allow_pickle=False`` on NumPy. Only regular files are read: the file is opened
non-blocking and checked with ``fstat`` on the open descriptor (not a ``stat`` before it, which a
swap could race), so a FIFO, ``/dev/zero`` or a socket given as an input is refused at once instead
of hanging the app. Every failure is one :class:`UnsafeInputError` naming the file (and field,
where there is one) and the problem; callers fold it into their own error or show it as it is.

``inside`` keeps a path confined to a folder after resolving symlinks, for libraries whose entries
must not point elsewhere on the disk.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from comic_studio.core.errors import ComicStudioError

MAX_JSON_BYTES = 16 * 1024 * 1024
"""Default cap for a JSON file or answer: far above any settings, library or LLM answer."""
MAX_JSON_DEPTH = 64
"""Deepest nesting accepted: the deepest real document (a project) nests about 12 levels."""
MAX_ARRAY_BYTES = 256 * 1024 * 1024
MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_PIXELS = 16384 * 16384
"""Same pixel limit as the project loader (:data:`comic_studio.core.assets.MAX_IMAGE_PIXELS`)."""


class UnsafeInputError(ComicStudioError):
    """An input file or answer was refused: too big, too deep, not a regular file, or broken."""

    def __init__(self, where: str | Path, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def open_regular(path: str | Path, *, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading, refused unless it is a regular file.

    For readers that cannot take the whole file in memory (a zip archive read member by member):
    the same non-blocking open and ``fstat`` check as :func:`read_bytes`, without a size cap."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise UnsafeInputError(path, f"the {what} does not exist") from exc
    except IsADirectoryError as exc:
        raise UnsafeInputError(path, f"is a folder, not a {what}") from exc
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # what opening a Unix socket (or an absent device) answers
            raise UnsafeInputError(path, f"is not a regular file (a socket or device), refused as a {what}") from exc
        raise UnsafeInputError(path, f"cannot read the {what} ({exc.strerror or exc})") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UnsafeInputError(path, f"is a folder, not a {what}")
        if not stat.S_ISREG(mode):
            raise UnsafeInputError(path, f"is not a regular file (a device, pipe or socket), refused as a {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # regular files never block; undo O_NONBLOCK for plain reads
        return os.fdopen(fd, "rb", closefd=True)
    except UnsafeInputError:
        os.close(fd)
        raise
    except OSError as exc:
        os.close(fd)
        raise UnsafeInputError(path, f"cannot read the {what} ({exc.strerror or exc})") from exc


def read_bytes(path: str | Path, *, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    with open_regular(path, what=what) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise UnsafeInputError(path, f"the {what} is {_mib(size)}, over the {_mib(limit)} limit")
            data = fh.read(limit + 1)
        except OSError as exc:
            raise UnsafeInputError(path, f"cannot read the {what} ({exc.strerror or exc})") from exc
    if len(data) > limit:  # grew while we read
        raise UnsafeInputError(path, f"the {what} is over the {_mib(limit)} limit")
    return data


def check_regular_file(path: str | Path, *, limit: int, what: str = "file") -> int:
    """The size of ``path`` after checking, on an open descriptor, that it is a regular file of at
    most ``limit`` bytes: for readers that must memory-map a file rather than read it whole. (A swap
    after this check is not caught; readers that can take bytes use :func:`read_bytes`.)"""
    with open_regular(path, what=what) as fh:
        size = os.fstat(fh.fileno()).st_size
    if size > limit:
        raise UnsafeInputError(path, f"the {what} is {_mib(size)}, over the {_mib(limit)} limit")
    return size


def read_text(path: str | Path, *, limit: int = MAX_JSON_BYTES, what: str = "text file") -> str:
    """UTF-8 text (a BOM is dropped) of a regular file of at most ``limit`` bytes."""
    data = read_bytes(path, limit=limit, what=what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsafeInputError(path, f"the {what} is not UTF-8 text (bad byte at offset {exc.start})") from exc


def refuse_json_constant(name: str) -> Any:
    """``parse_constant`` hook of ``json.loads``: NaN and Infinity are not JSON numbers."""
    raise ValueError(f"{name} is not a number JSON allows")


def finite_json_float(text: str) -> float:
    """``parse_float`` hook of ``json.loads``: a number too large for a float is refused, not inf."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def parse_json(
    text: str | bytes,
    *,
    where: str | Path,
    limit: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    strict: bool = True,
) -> Any:
    """Parse JSON text from outside (a file's contents, a server's answer) with bounded size and
    depth, refusing NaN/Infinity and numbers too long to convert. ``strict=False`` lets raw control
    characters through inside strings (a language model's answer may hold a raw newline)."""
    if len(text) > limit:
        raise UnsafeInputError(where, f"the JSON is {_mib(len(text))}, over the {_mib(limit)} limit")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnsafeInputError(where, f"the JSON is not UTF-8 text (bad byte at offset {exc.start})") from exc
    _check_bracket_depth(text, where, max_depth)
    try:
        return json.loads(text, parse_constant=refuse_json_constant, parse_float=finite_json_float, strict=strict)
    except json.JSONDecodeError as exc:
        raise UnsafeInputError(where, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except RecursionError as exc:
        raise UnsafeInputError(where, f"the JSON nests more than {max_depth} levels deep") from exc
    except ValueError as exc:  # the number hooks, or an int of thousands of digits
        raise UnsafeInputError(where, f"the JSON has an unusable number ({exc})") from exc


def _check_bracket_depth(text: str, where: str | Path, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` before the parser recurses into it. Brackets inside
    strings are skipped, so a long prose answer with brackets is fine."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeInputError(where, f"the JSON nests more than {max_depth} levels deep")
        elif ch in "]}":
            depth -= 1


def read_json(
    path: str | Path, *, limit: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH, what: str = "JSON file"
) -> Any:
    """A JSON file from outside: regular file, bounded size and depth, finite numbers."""
    return parse_json(read_bytes(path, limit=limit, what=what), where=path, limit=limit, max_depth=max_depth)


def read_arrays(path: str | Path, *, limit: int = MAX_ARRAY_BYTES, what: str = "array file") -> dict[str, Any]:
    """The arrays of a ``.npy`` (as ``{"arr": …}``) or ``.npz`` file, never unpickling anything.

    The file is read into memory within ``limit`` first, so an ``.npz`` whose members decompress
    past the limit is refused too."""
    import numpy as np  # noqa: PLC0415 — numpy is only needed by the callers that read arrays

    path = Path(path)
    data = read_bytes(path, limit=limit, what=what)
    try:
        if data[:6] == b"\x93NUMPY":
            return {"arr": _checked_array(path, np.load(io.BytesIO(data), allow_pickle=False), limit)}
        if data[:4] != b"PK\x03\x04":
            raise UnsafeInputError(path, f"is not a NumPy .npy or .npz {what}")
        arrays: dict[str, Any] = {}
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(info.file_size for info in zf.infolist())
            if total > limit:
                raise UnsafeInputError(path, f"the {what} unpacks to {_mib(total)}, over the {_mib(limit)} limit")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = _checked_array(path, npz[key], limit)
        return arrays
    except UnsafeInputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise UnsafeInputError(path, "refused: it holds Python objects that would need unpickling") from exc
        raise UnsafeInputError(path, f"is a damaged NumPy {what} ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UnsafeInputError(path, f"is a damaged or truncated NumPy {what} ({exc})") from exc


def _checked_array(path: Path, array: Any, limit: int) -> Any:
    if not hasattr(array, "dtype"):  # an .npz member that is not an .npy file comes back as raw bytes
        raise UnsafeInputError(path, "a member is not a NumPy array (a damaged or foreign .npz)")
    if array.dtype.hasobject:
        raise UnsafeInputError(path, "refused: it holds Python objects that would need unpickling")
    if array.nbytes > limit:
        raise UnsafeInputError(path, f"an array of {_mib(array.nbytes)} is over the {_mib(limit)} limit")
    return array


def open_image(
    path: str | Path,
    *,
    limit: int = MAX_IMAGE_FILE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    what: str = "image",
):
    """A fully decoded Pillow image from a regular file, bounded in bytes and pixels."""
    return decode_image(read_bytes(path, limit=limit, what=what), where=path, max_pixels=max_pixels, what=what)


def decode_image(data: bytes, *, where: str | Path, max_pixels: int = MAX_IMAGE_PIXELS, what: str = "image"):
    """Decode image bytes from outside, refusing pixel bombs and broken data before decoding."""
    import warnings  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415 — Pillow is a core dependency; kept off the import path

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise UnsafeInputError(
                    where, f"the {what} is {width}×{height} pixels, over the {max_pixels:,}-pixel limit"
                )
            image.load()
            return image
    except UnsafeInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnsafeInputError(where, f"the {what} is a decompression bomb ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 — Pillow raises many types for broken data
        raise UnsafeInputError(where, f"the {what} is not a readable image ({exc.__class__.__name__}: {exc})") from exc


def inside(folder: str | Path, path: str | Path, *, what: str = "file") -> Path:
    """``path`` resolved (symlinks followed); refused unless it stays within ``folder``."""
    root = Path(folder).resolve()
    target = (root / path).resolve()
    if target != root and root not in target.parents:
        raise UnsafeInputError(path, f"the {what} points outside its folder {root} (a link or '..'), refused")
    return target

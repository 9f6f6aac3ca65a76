"""A ``.safetensors`` file's header (tensor names and shapes), read without any tensor data.

Shared by the SDXL checkpoint check (:mod:`comic_studio.generation.models.sdxl_config`) and the
"is this file in a ComfyUI/A1111 folder usable?" check (:mod:`comic_studio.weights.architecture`),
which must stay below the generation layer: no torch here.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, TypeGuard

from comic_studio.core.safe_read import UnsafeInputError, open_regular, parse_json

MAX_HEADER_BYTES = 100_000_000
"""A real SDXL header is ~0.4 MB; anything near this is not a safetensors file."""

Shapes = dict[str, tuple[int, ...]]


def read_safetensors_shapes(path: Path) -> Shapes:
    """Tensor name → shape from a ``.safetensors`` header, without reading any tensor data.

    Format: an 8-byte little-endian header length, then that many bytes of JSON
    (``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}``), then the data. The
    header is checked the way the safetensors library would (so a file that passes loads, and one
    that does not fails here with a reason instead of deep inside a loader): a regular file, a
    plausible length, bounded JSON, every tensor with a shape and data offsets inside the file.
    Raises ValueError (callers add the file's name)."""
    try:
        fh = open_regular(path, what="weights file")
    except UnsafeInputError as exc:
        raise ValueError(exc.problem) from exc
    with fh:
        size = os.fstat(fh.fileno()).st_size
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise ValueError("the file is too short to be a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if not 2 <= length <= MAX_HEADER_BYTES:
            raise ValueError(f"implausible safetensors header length {length}")
        raw = fh.read(length)
    if len(raw) < length:
        raise ValueError("the safetensors header is cut short (incomplete download?)")
    try:
        header = parse_json(raw, where=path, limit=MAX_HEADER_BYTES)
    except UnsafeInputError as exc:
        raise ValueError(f"the safetensors header is unreadable: {exc.problem}") from exc
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a JSON object")
    shapes: Shapes = {}
    data_end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not is_sizes(shape):
            raise ValueError(f"tensor {name[:80]!r} in the safetensors header has no valid shape")
        if not (is_sizes(offsets) and len(offsets) == 2 and offsets[0] <= offsets[1]):
            raise ValueError(f"tensor {name[:80]!r} in the safetensors header has no valid data_offsets")
        shapes[name] = tuple(shape)
        data_end = max(data_end, offsets[1])
    if 8 + length + data_end > size:
        raise ValueError(
            f"the file is {size:,} bytes but its header describes {8 + length + data_end:,} "
            "(truncated: an incomplete download or copy?)"
        )
    return shapes


def is_sizes(value: Any) -> TypeGuard[list[int]]:
    """A JSON list of non-negative integers (a shape or a pair of offsets)."""
    return isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**63 for n in value
    )

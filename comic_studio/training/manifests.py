"""The JSON-lines dataset manifests two trainers read (AnimeAdapter's ``metadata.jsonl``, SerialGen's
``pairs.jsonl``): one JSON object a line, picture paths relative to the file, everything read
through :mod:`comic_studio.core.safe_read` (bounded, and a path may not leave the folder). Each
problem is a :class:`~comic_studio.training.lora.TrainingError` naming the file, the line and the
field, so the user can fix that line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from comic_studio.core import safe_read
from comic_studio.training.lora import TrainingError

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def manifest_rows(path: Path, what: str, hint: str = "") -> Iterator[tuple[str, Any]]:
    """``(where, row)`` for each non-blank line of the manifest at ``path`` (``where``: "PATH, line
    N", for the caller's own refusals); ``what`` names the file to the safe reader, ``hint`` is
    added to the refusal of a file that cannot be read."""
    try:
        text = safe_read.read_text(path, limit=MAX_MANIFEST_BYTES, what=what)
    except safe_read.UnsafeInputError as exc:
        raise TrainingError(f"{path}: {exc.problem}{f' ({hint})' if hint else ''}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = safe_read.parse_json(line.encode("utf-8"), where=where)
        except safe_read.UnsafeInputError as exc:
            raise TrainingError(f"{where}: not JSON ({exc.problem})") from exc
        yield where, row


def manifest_image(root: Path, name: Any, where: str, field: str) -> Any:
    """The picture ``name`` (relative to ``root``, the manifest's folder) of ``field`` on the line
    ``where``, opened by the safe reader."""
    if not isinstance(name, str):
        raise TrainingError(f"{where}: {field!r} must be a file name")
    try:
        return safe_read.open_image(safe_read.inside(root, root / name, what=field), what=field)
    except safe_read.UnsafeInputError as exc:
        raise TrainingError(f"{where}: {field} {name!r}: {exc.problem}") from exc

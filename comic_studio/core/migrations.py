"""Upgrade ``project.json`` data written by older builds to the current :data:`SCHEMA_VERSION`.

Each migration turns version ``N`` into version ``N + 1`` and is registered in :data:`MIGRATIONS`
under ``N``; :func:`migrate` applies them one after the other, so a file from any older release
walks the whole chain. Migrations work on the raw JSON (dicts and lists), *before* pydantic sees it,
and must tolerate malformed data: they only rename/reshape what has the expected form and leave the
rest for model validation to reject with a precise field path.

Version history
---------------
0 — the pre-release layout. The version lived in a ``"version"`` key; panels described their outline
    with ``"polygon"`` (now ``"shape"``); characters kept their description prompt in ``"prompt"``
    (now ``"description"``).
1 — the first released layout (``"schema_version": 1``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from comic_studio.core.errors import ProjectFileError
from comic_studio.core.model import SCHEMA_VERSION

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _rename_key(obj: Any, old: str, new: str) -> None:
    """Rename ``old`` to ``new`` in ``obj`` if it is a dict that has ``old`` and not ``new``."""
    if isinstance(obj, dict) and old in obj and new not in obj:
        obj[new] = obj.pop(old)


def _dicts_in(value: Any) -> list[dict[str, Any]]:
    """The dict items of ``value`` if it is a list (anything else: none — validation reports it)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _v0_to_v1(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data.pop("version", None)
    data["schema_version"] = 1
    for page in _dicts_in(data.get("pages")):
        for panel in _dicts_in(page.get("panels")):
            _rename_key(panel, "polygon", "shape")
    for character in _dicts_in(data.get("characters")):
        _rename_key(character, "prompt", "description")
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}
"""``{from_version: function}``; each function returns data at ``from_version + 1``."""


def schema_version_of(data: dict[str, Any], path: str | Path) -> int:
    """The schema version ``data`` declares (``schema_version``, or ``version`` for version 0)."""
    if "schema_version" in data:
        key = "schema_version"
    elif "version" in data:
        key = "version"  # only the pre-release (version 0) layout used this key
    else:
        raise ProjectFileError(path, "project.json has no schema_version: this is not a comic_studio project file")
    version = data[key]
    # bool is an int subclass in Python; `true` is not a version number.
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProjectFileError(path, f"project.json: {key} must be a whole number, not {_short_repr(version)}")
    if version < 0:
        raise ProjectFileError(path, f"project.json: {key} {version} is not a valid schema version")
    if key == "version" and version != 0:
        raise ProjectFileError(
            path, f"project.json: 'version': {version} is not a known layout (expected schema_version)"
        )
    return version


def migrate(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Return ``data`` upgraded to :data:`SCHEMA_VERSION` (the input dict may be reused).

    Raises :class:`ProjectFileError` for a file saved by a newer build, an unknown old version, or a
    migration that did not produce the next version (a bug, reported rather than half-applied).
    """
    version = schema_version_of(data, path)
    if version > SCHEMA_VERSION:
        raise ProjectFileError(
            path,
            f"was saved by a newer comic_studio (schema {version}); this build reads up to "
            f"{SCHEMA_VERSION} — update the app to open it",
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectFileError(path, f"schema version {version} is too old: this build cannot upgrade it")
        data = step(data)
        upgraded = data.get("schema_version")
        if upgraded != version + 1:
            raise ProjectFileError(
                path, f"upgrading from schema {version} failed (got {upgraded!r}); please report this"
            )
        version = upgraded
    return data


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

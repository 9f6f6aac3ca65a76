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
2 — lettering is capped (:data:`~comic_studio.core.model.MAX_BALLOONS_PER_PANEL` balloons per panel,
    :data:`~comic_studio.core.model.MAX_BALLOON_TEXT` characters per balloon; version 1 allowed 256
    and 5,000). Nothing an author wrote is dropped: a longer balloon is split at word boundaries into
    continuation balloons of the same kind and style, and the balloons a panel then holds beyond
    the cap move to "lettering overflow" pages inserted after their page, one full-page panel per
    64 balloons, each page's notes saying where they came from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from comic_studio.core.errors import ProjectFileError
from comic_studio.core.ids import new_id
from comic_studio.core.model import MAX_BALLOON_TEXT, MAX_BALLOONS_PER_PANEL, SCHEMA_VERSION

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


def _split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at the last space before the limit
    where there is one (a word longer than ``limit`` is cut where it must)."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit + 1)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text]


def _continued(balloons: list[Any]) -> list[Any]:
    """The panel's balloons with every over-long text split into continuation balloons."""
    out: list[Any] = []
    for balloon in balloons:
        text = balloon.get("text") if isinstance(balloon, dict) else None
        if not isinstance(text, str) or len(text) <= MAX_BALLOON_TEXT:
            out.append(balloon)
            continue
        first, *rest = _split_text(text, MAX_BALLOON_TEXT)
        out.append({**balloon, "text": first})
        # Continuations are placed by the layout engine; the tail stays with the first part.
        out += [{**balloon, "id": new_id(), "text": piece, "tail": None, "auto_placed": True} for piece in rest]
    return out


def _overflow_page(fmt: Any, balloons: list[Any], page_number: int, panel_number: int) -> dict[str, Any]:
    width = fmt.get("width", 612.0) if isinstance(fmt, dict) else 612.0
    height = fmt.get("height", 792.0) if isinstance(fmt, dict) else 792.0
    return {
        "id": new_id(),
        "panels": [
            {
                "id": new_id(),
                "shape": [[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]],
                "order": 0,
                "balloons": balloons,
            }
        ],  # fmt: skip
        "notes": f"Lettering overflow: balloons moved from page {page_number}, panel {panel_number} when this "
        f"project was opened (a panel holds at most {MAX_BALLOONS_PER_PANEL} balloons)",
    }


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data["schema_version"] = 2
    pages = data.get("pages")
    if not isinstance(pages, list):
        return data
    out: list[Any] = []
    for page_number, page in enumerate(pages, start=1):
        out.append(page)
        for panel_number, panel in enumerate(_dicts_in(page.get("panels") if isinstance(page, dict) else None), 1):
            balloons = panel.get("balloons")
            if not isinstance(balloons, list):
                continue
            balloons = _continued(balloons)
            panel["balloons"], surplus = balloons[:MAX_BALLOONS_PER_PANEL], balloons[MAX_BALLOONS_PER_PANEL:]
            for start in range(0, len(surplus), MAX_BALLOONS_PER_PANEL):
                chunk = surplus[start : start + MAX_BALLOONS_PER_PANEL]
                out.append(_overflow_page(data.get("page_format"), chunk, page_number, panel_number))
    data["pages"] = out
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1, 1: _v1_to_v2}
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

"""Page presets (trim, bleed, margin, gutter, dpi) loaded from ``comic_studio/resources/page_presets.json``.

The file states lengths in a human unit (inches, millimetres or points) so it reads like a
printer's spec sheet; everything is converted to points here, the unit of the document model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from comic_studio.core.errors import LayoutError
from comic_studio.core.model import PageFormat, ReadingDirection
from comic_studio.core.resources import resource
from comic_studio.core.safe_read import UnsafeInputError, read_json

POINTS_PER_INCH = 72.0
MM_PER_INCH = 25.4
_UNIT_TO_POINTS = {"pt": 1.0, "in": POINTS_PER_INCH, "mm": POINTS_PER_INCH / MM_PER_INCH}
_LENGTH_FIELDS = ("width", "height", "bleed", "margin", "gutter")
MAX_DATA_FILE_BYTES = 4 * 1024 * 1024
"""Presets and templates files are a few kB; the cap keeps a stray huge file from filling memory."""


def mm(value: float) -> float:
    """Millimetres → points."""
    return value * POINTS_PER_INCH / MM_PER_INCH


def inch(value: float) -> float:
    """Inches → points."""
    return value * POINTS_PER_INCH


def to_mm(points: float) -> float:
    return points * MM_PER_INCH / POINTS_PER_INCH


def to_inch(points: float) -> float:
    return points / POINTS_PER_INCH


@dataclass(frozen=True)
class PagePreset:
    id: str
    name: str
    description: str
    format: PageFormat
    reading_direction: ReadingDirection


def _parse_preset(raw: Any, where: str) -> PagePreset:
    if not isinstance(raw, dict):
        raise LayoutError(f"{where}: a preset must be an object, got {type(raw).__name__}")
    pid = raw.get("id")
    if not isinstance(pid, str) or not pid:
        raise LayoutError(f"{where}: preset without a string 'id'")
    unit = raw.get("unit", "pt")
    if unit not in _UNIT_TO_POINTS:
        raise LayoutError(f"{where} (preset {pid!r}): unknown unit {unit!r}; use one of {sorted(_UNIT_TO_POINTS)}")
    scale = _UNIT_TO_POINTS[unit]
    values: dict[str, Any] = {"preset": pid}
    for name in _LENGTH_FIELDS:
        if name in raw:
            value = raw[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise LayoutError(f"{where} (preset {pid!r}): field {name!r} must be a number, got {value!r}")
            values[name] = float(value) * scale
    if "dpi" in raw:
        values["dpi"] = raw["dpi"]
    try:
        fmt = PageFormat.model_validate(values)
        direction = ReadingDirection(raw.get("reading_direction", "ltr"))
    except (ValidationError, ValueError) as exc:
        raise LayoutError(f"{where} (preset {pid!r}): {exc}") from exc
    _check_live_area(fmt, f"{where} (preset {pid!r})")
    return PagePreset(
        id=pid,
        name=str(raw.get("name", pid)),
        description=str(raw.get("description", "")),
        format=fmt,
        reading_direction=direction,
    )


def _check_live_area(fmt: PageFormat, where: str) -> None:
    if fmt.width - 2 * fmt.margin <= fmt.gutter or fmt.height - 2 * fmt.margin <= fmt.gutter:
        raise LayoutError(
            f"{where}: margin {fmt.margin:.1f} pt leaves no live area on a {fmt.width:.1f} × {fmt.height:.1f} pt page"
        )


def load_presets(path: str | Path | None = None) -> dict[str, PagePreset]:
    """All presets by id, in file order. ``path`` defaults to the bundled file."""
    if path is None:
        # Copies, so a caller editing a format cannot change the cached presets.
        return {pid: replace(p, format=p.format.model_copy()) for pid, p in _bundled_presets()}
    return _read_presets(Path(path))


def read_json_list(path: Path, key: str, what: str) -> list:
    """The list under ``key`` of a JSON data file (presets, templates), or a LayoutError naming the
    file and what is wrong with it."""
    try:
        data = read_json(path, limit=MAX_DATA_FILE_BYTES, what=what)
    except UnsafeInputError as exc:  # unreadable, not a regular file, too big or deep, not JSON
        raise LayoutError(str(exc)) from exc
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise LayoutError(f"{path}: expected an object with a '{key}' list")
    return items


@lru_cache(maxsize=1)
def _bundled_presets() -> tuple[tuple[str, PagePreset], ...]:
    return tuple(_read_presets(resource("page_presets.json")).items())


def _read_presets(path: Path) -> dict[str, PagePreset]:
    items = read_json_list(path, "presets", "page presets")
    presets: dict[str, PagePreset] = {}
    for i, raw in enumerate(items):
        preset = _parse_preset(raw, f"{path}: presets[{i}]")
        if preset.id in presets:
            raise LayoutError(f"{path}: presets[{i}]: duplicate preset id {preset.id!r}")
        presets[preset.id] = preset
    return presets


def page_format(preset_id: str = "us-comic", **overrides: Any) -> PageFormat:
    """A :class:`PageFormat` from a preset, with fields overridden (lengths in points), e.g.
    ``page_format("custom", width=inch(7), height=inch(10))``."""
    presets = load_presets()
    if preset_id not in presets:
        raise LayoutError(f"unknown page preset {preset_id!r}; known presets: {', '.join(presets)}")
    unknown = set(overrides) - set(PageFormat.model_fields)
    if unknown:
        raise LayoutError(f"page_format({preset_id!r}): unknown field(s) {sorted(unknown)}")
    values = presets[preset_id].format.model_dump()
    values.update(overrides)
    try:
        fmt = PageFormat.model_validate(values)
    except ValidationError as exc:
        raise LayoutError(f"page_format({preset_id!r}): {exc}") from exc
    _check_live_area(fmt, f"page_format({preset_id!r})")
    return fmt


def live_rect(fmt: PageFormat) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of the live (safe) area in page units."""
    return fmt.margin, fmt.margin, fmt.width - fmt.margin, fmt.height - fmt.margin


def bleed_rect(fmt: PageFormat) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of the bleed box (trim grown by the bleed) in page units."""
    return -fmt.bleed, -fmt.bleed, fmt.width + fmt.bleed, fmt.height + fmt.bleed

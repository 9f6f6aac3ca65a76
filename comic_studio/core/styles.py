"""Style presets (prompt suffix + negative prompt) bundled as data in ``comic_studio/resources/styles.json``."""

from __future__ import annotations

from functools import lru_cache

from pydantic import ValidationError

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Style
from comic_studio.core.resources import resource
from comic_studio.core.safe_read import UnsafeInputError, read_json


@lru_cache(maxsize=1)
def _load() -> tuple[Style, ...]:
    path = resource("styles.json")
    try:
        items = read_json(path, what="style presets")["styles"]
        return tuple(Style.model_validate(item) for item in items)
    except (UnsafeInputError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ComicStudioError(f"{path}: the bundled style presets are unreadable ({exc})") from exc


def style_presets() -> list[Style]:
    """Fresh copies of the bundled presets (safe to put into a project and edit)."""
    return [style.model_copy(deep=True) for style in _load()]

"""The bundled lettering fonts and text measurement.

Widths are measured with Pillow's *basic* layout (no kerning, no shaping) at a large reference
size and scaled linearly. That is exactly how reportlab measures strings, so the PDF exporter, which
embeds the same TTF, sets each line at the width computed here; the raster exporter draws with
Pillow at the fitted size and agrees to within hinting noise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.resources import resource

log = logging.getLogger(__name__)

BUNDLED_FONTS = ("ComicNeue-Regular", "ComicNeue-Bold", "ComicNeue-Italic", "ComicNeue-BoldItalic")
DEFAULT_FONT = "ComicNeue-Bold"
_BOLD_OF = {
    "ComicNeue-Regular": "ComicNeue-Bold",
    "ComicNeue-Bold": "ComicNeue-Bold",
    "ComicNeue-Italic": "ComicNeue-BoldItalic",
    "ComicNeue-BoldItalic": "ComicNeue-BoldItalic",
}
_REFERENCE_SIZE = 1000  # measure at 1000 units/em, like reportlab's width tables


def font_path(name: str) -> Path:
    """The TTF for a style's font name (``"ComicNeue-Bold"``, with or without ``.ttf``).

    Only bundled fonts are accepted: a project file must not make us open arbitrary paths, and a
    document must letter the same on every machine. An unknown name falls back to the default
    font with a warning rather than failing the whole page.
    """
    stem = name[:-4] if name.lower().endswith(".ttf") else name
    if stem not in BUNDLED_FONTS:
        log.warning("balloon style font %r is not a bundled font; using %s", name, DEFAULT_FONT)
        stem = DEFAULT_FONT
    path = resource("fonts", f"{stem}.ttf")
    if not path.is_file():
        raise ComicStudioError(f"bundled font {path} is missing; reinstall comic_studio or fix COMIC_STUDIO_RESOURCES")
    return path


def bold_font_path(name: str) -> Path:
    """The bold face of the style's family (SFX are always lettered bold)."""
    stem = name[:-4] if name.lower().endswith(".ttf") else name
    return font_path(_BOLD_OF.get(stem, DEFAULT_FONT))


@lru_cache(maxsize=64)
def load_font(path: Path, size: float) -> ImageFont.FreeTypeFont:
    """A Pillow font for ``path`` at ``size``, cached per (file, size)."""
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise ComicStudioError(f"font {path} cannot be read: {exc}") from exc


@dataclass(frozen=True)
class FontMetrics:
    """Vertical metrics at 1 pt; multiply by the font size."""

    ascent: float
    descent: float


@lru_cache(maxsize=16)
def font_metrics(path: Path) -> FontMetrics:
    ascent, descent = load_font(path, _REFERENCE_SIZE).getmetrics()
    return FontMetrics(ascent / _REFERENCE_SIZE, descent / _REFERENCE_SIZE)


@lru_cache(maxsize=20_000)
def _unit_width(path: Path, text: str) -> float:
    return load_font(path, _REFERENCE_SIZE).getlength(text) / _REFERENCE_SIZE


def text_width(path: Path, text: str, size: float) -> float:
    """Advance width of ``text`` at ``size`` points."""
    return _unit_width(path, text) * size

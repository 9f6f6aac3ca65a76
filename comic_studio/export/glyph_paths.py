"""Glyph outlines as vector paths, for drawing a text *outline* in a PDF without a second copy of
the text.

An SFX's white outline is naturally a stroke-only text pass under the filled text, but then the
PDF holds the word twice and search / copy / screen readers see "BOOMBOOM". Drawing the outline
pass as plain paths built from the font's glyphs keeps exactly one real text run. Uses fontTools
when it is installed; :func:`glyph_outline_paths` returns ``None`` otherwise and the caller falls
back to a stroked text pass.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

PathOp = tuple[str, tuple[float, ...]]
"""``("M", (x, y))``, ``("L", (x, y))``, ``("C", (x1, y1, x2, y2, x, y))`` or ``("Z", ())``."""


def glyph_outline_paths(text: str, font_file: Path, font_size: float) -> list[PathOp] | None:
    """Outline of ``text`` set at ``font_size`` with its baseline origin at (0, 0), **y up**, in
    the same units as ``font_size``; advances follow the font's horizontal metrics without
    kerning (as reportlab sets text). ``None`` when fontTools is not available."""
    loaded = _load_font(str(font_file))
    if loaded is None:
        return None
    glyph_set, cmap, hmtx, units_per_em = loaded
    scale = font_size / units_per_em
    ops: list[PathOp] = []
    advance = 0.0
    for char in text:
        name = cmap.get(ord(char), ".notdef")
        if name not in glyph_set:
            name = ".notdef"
        pen = _pen_class()(glyph_set, lambda x, y, dx=advance: (dx + x * scale, y * scale), ops)
        glyph_set[name].draw(pen)
        advance += hmtx[name][0] * scale
    return ops


@lru_cache(maxsize=8)
def _load_font(font_file: str):
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        return None
    font = TTFont(font_file, lazy=True)
    return font.getGlyphSet(), font.getBestCmap() or {}, font["hmtx"].metrics, font["head"].unitsPerEm


@lru_cache(maxsize=1)
def _pen_class():
    """The recording pen, defined on first use so this module imports without fontTools."""
    from fontTools.pens.basePen import BasePen

    class RecordingPen(BasePen):
        """Collects a glyph's contours as M/L/C/Z ops; BasePen turns TrueType quadratic curves
        into the cubic segments PDF paths use."""

        def __init__(self, glyph_set, transform: Callable[[float, float], tuple[float, float]], ops: list[PathOp]):
            super().__init__(glyph_set)
            self.transform = transform
            self.ops = ops

        def _moveTo(self, pt):
            self.ops.append(("M", self.transform(*pt)))

        def _lineTo(self, pt):
            self.ops.append(("L", self.transform(*pt)))

        def _curveToOne(self, p1, p2, p3):
            self.ops.append(("C", (*self.transform(*p1), *self.transform(*p2), *self.transform(*p3))))

        def _closePath(self):
            self.ops.append(("Z", ()))

    return RecordingPen

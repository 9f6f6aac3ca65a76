"""What lettering hands to renderers: plain, frozen geometry in page units.

The exporters (raster and PDF) and the canvas code against exactly these two classes; they are
re-exported from :mod:`comic_studio.core.lettering`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from comic_studio.core.model import BalloonKind

Outline = tuple[tuple[float, float], ...]
"""A closed outline: the last point connects back to the first (it is not repeated)."""


@dataclass(frozen=True)
class TextLine:
    text: str
    x: float
    """Left end of the line's baseline, page units."""
    y: float
    """Baseline y, page units."""
    width: float
    """Advance width at ``BalloonGeometry.font_size`` (no kerning, as reportlab measures it)."""


@dataclass(frozen=True)
class BalloonGeometry:
    balloon_id: str
    kind: BalloonKind
    shapes: tuple[Outline, ...]
    """Closed outlines in page units: body first, then the tail or the thought-trail bubbles.

    Renderers draw them *united*: first stroke every shape with ``2 * stroke_width`` (dashed if
    ``dashed``), then fill every shape with ``fill`` without stroke. The fill hides the inner half
    of each stroke, so body and tail read as one outline. Empty for SFX (text only)."""
    dashed: bool
    fill: str | None
    """``'#rrggbb'`` or ``None`` (no fill, e.g. SFX)."""
    stroke: str
    stroke_width: float
    """Points; the visible outline width once the fill has covered the inner half."""
    text_colour: str
    text_outline: float
    """Points of outline around the glyphs (SFX get a white one), 0 for none."""
    font_file: Path
    font_size: float
    lines: tuple[TextLine, ...]
    fits: bool
    """False: the text does not fit even at ``style.min_font_size``; ``lines`` then hold the best
    attempt at the minimum size (overflowing the text area) and the UI shows an error state."""


def text_clip(geometry: BalloonGeometry) -> tuple[Outline, ...]:
    """The outlines a renderer clips the balloon's text to: its shapes when the text is overset
    (``fits`` is False: the lines run past the text area, as in a layout program's overset frame),
    else none, so fitting text (and SFX, which have no shapes) is drawn whole. Clip to the *union*
    of the outlines (body, tail, thought bubbles). The canvas and every exporter apply this one
    rule, so an overset balloon looks the same on screen, in the PDF and in the page images."""
    return () if geometry.fits else tuple(geometry.shapes)

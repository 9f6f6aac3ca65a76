"""Assembles one balloon's complete geometry: body, tail, colours and fitted text."""

from __future__ import annotations

import math

from comic_studio.core.errors import LayoutError
from comic_studio.core.lettering.contract import BalloonGeometry
from comic_studio.core.lettering.shapes import body_outline
from comic_studio.core.lettering.tails import tail_shapes
from comic_studio.core.lettering.text_fit import (
    alignment,
    fit_text,
    font_file_for,
    position_lines,
    size_range,
    text_area,
)
from comic_studio.core.model import Balloon, BalloonKind, Panel, Project

DEFAULT_FILL = "#ffffff"
CAPTION_FILL = "#fff6c4"
"""Captions whose style keeps the default white fill are drawn pale yellow, the classic
narration-box colour that tells narration from speech at a glance; any other fill is honoured."""
SFX_OUTLINE = 0.08  # SFX glyph outline, × font size (white, so the lettering reads over art)


def balloon_geometry(balloon: Balloon, panel: Panel, project: Project | None = None) -> BalloonGeometry:
    """Everything a renderer needs to draw ``balloon`` (which belongs to ``panel``), in page units."""
    kind, style, box = balloon.kind, balloon.style, balloon.box
    for name in ("x", "y", "w", "h"):
        if not math.isfinite(getattr(box, name)):
            raise LayoutError(f"balloon {balloon.id!r}: box.{name} is {getattr(box, name)}; it must be a finite number")
    body = body_outline(kind, box, balloon.id)
    shapes = () if body is None else (body, *tail_shapes(balloon, body, panel, project))

    font = font_file_for(kind, style)
    area = text_area(kind, box, style)
    lo, hi = size_range(kind, style, area)
    fit = fit_text(balloon.text, font, area.w, area.h, lo, hi)
    lines = position_lines(fit, font, area, alignment(kind, style))

    if kind is BalloonKind.SFX:
        fill, outline = None, max(1.0, SFX_OUTLINE * fit.font_size)
    elif kind is BalloonKind.CAPTION and style.fill.lower() == DEFAULT_FILL:
        fill, outline = CAPTION_FILL, 0.0
    else:
        fill, outline = style.fill, 0.0
    return BalloonGeometry(
        balloon_id=balloon.id,
        kind=kind,
        shapes=shapes,
        dashed=kind is BalloonKind.WHISPER,
        fill=fill,
        stroke=style.stroke,
        stroke_width=style.stroke_width,
        text_colour=style.text_colour,
        text_outline=outline,
        font_file=font,
        font_size=fit.font_size,
        lines=lines,
        fits=fit.fits,
    )

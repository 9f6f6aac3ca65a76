"""Lettering: balloon shapes, tails, text fitting and automatic balloon placement.

The contract the exporters and the canvas code against::

    balloon_geometry(balloon, panel, project) -> BalloonGeometry   # shapes, colours, fitted lines
    panel_to_page(panel, (u, v)) -> (x, y)                          # panel-normalised → page units
    place_balloons(panel, [(kind, text, speaker_id | None), ...], project) -> list[Balloon]
    fit_box_for_text(text, kind, style, max_width) -> (w, h)

Renderers draw ``BalloonGeometry.shapes`` united: stroke every shape with ``2 * stroke_width``
(dashed if ``dashed``), then fill every shape with ``fill``; then draw ``lines`` with
``font_file`` at ``font_size`` (SFX with a white outline of ``text_outline`` points), clipped to
the union of ``text_clip(geometry)`` when that is not empty (overset text stays in its balloon).
"""

from comic_studio.core.lettering.compose import CAPTION_FILL, balloon_geometry
from comic_studio.core.lettering.contract import BalloonGeometry, Outline, TextLine, text_clip
from comic_studio.core.lettering.placement import place_balloons
from comic_studio.core.lettering.tails import panel_to_page
from comic_studio.core.lettering.text_fit import fit_box_for_text, text_area

__all__ = [
    "CAPTION_FILL",
    "BalloonGeometry",
    "Outline",
    "TextLine",
    "balloon_geometry",
    "fit_box_for_text",
    "panel_to_page",
    "place_balloons",
    "text_area",
    "text_clip",
]

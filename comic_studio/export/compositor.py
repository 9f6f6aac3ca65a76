"""The page compositor: one comic page → a renderer-neutral :class:`PageDrawing`.

This is the single place that decides what a printed page looks like; the PNG, CBZ and PDF writers
(and a print preview) only draw the ops it returns. Drawing order, back to front:

1. white page background over the whole output area (bleed included);
2. panels in reading order: the panel's current result image (scaled to *cover* the panel's
   bounding box, centre-cropped, clipped to the polygon) or, with no image, a white panel — or a
   light grey *placeholder frame* with the panel number and the beat's action, so a storyboard
   page without images still reads;
3. every panel border (after all fills, so a neighbour's image never covers a border);
4. balloons, after all panels, because balloons overlap borders as in print comics;
5. optional guides: the trim line and the safe (live) area.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import AssetError
from comic_studio.core.model import Balloon, Page, Panel, Project
from comic_studio.export.drawing import (
    BalloonDrawing,
    DrawOp,
    FillPolygon,
    PageDrawing,
    PlacedImage,
    Rect,
    StrokePolygon,
    TextRun,
    bounding_box,
    rect_polygon,
)

BORDER_WIDTH = 1.5
"""Panel border width in points: a common print weight, visible at 150 dpi and crisp at 600."""
BORDER_COLOUR = "#000000"
PAGE_COLOUR = "#ffffff"
EMPTY_PANEL_COLOUR = "#ffffff"
PLACEHOLDER_COLOUR = "#e6e6e6"
PLACEHOLDER_TEXT_COLOUR = "#555555"
TRIM_GUIDE_COLOUR = "#ff00ff"
SAFE_GUIDE_COLOUR = "#00a0ff"
GUIDE_WIDTH = 0.5

BalloonGeometryFn = Callable[[Balloon, Panel, Project], Any]
"""``balloon_geometry(balloon, panel, project)`` from :mod:`comic_studio.core.lettering`, or a
stand-in with the same result attributes (``shapes``, ``lines``, ``font_file``...)."""


def placeholder_font_file() -> Path:
    from comic_studio.core.resources import resource

    return resource("fonts", "ComicNeue-Regular.ttf")


def default_balloon_geometry() -> BalloonGeometryFn:
    """The lettering engine's geometry function, imported only when a page has balloons."""
    from comic_studio.core.lettering import balloon_geometry

    return balloon_geometry


def compose_page(
    project: Project,
    page: Page,
    assets: AssetStore,
    *,
    include_bleed: bool = True,
    guides: bool = False,
    placeholder: bool = True,
    balloon_geometry: BalloonGeometryFn | None = None,
) -> PageDrawing:
    """Build the drawing of ``page``. Raises :class:`AssetError` naming the page and panel when a
    panel's image is missing or unreadable."""
    fmt = project.page_format
    page_index = _page_index(project, page)
    drawing = PageDrawing(
        width=fmt.width,
        height=fmt.height,
        bleed=fmt.bleed,
        include_bleed=include_bleed,
        page_index=page_index,
        page_id=page.id,
    )
    x0, y0, x1, y1 = drawing.view_box
    drawing.ops.append(FillPolygon(rect_polygon(x0, y0, x1, y1), PAGE_COLOUR))

    panels = page.panels_in_order()
    for number, panel in enumerate(panels, start=1):
        where = f"page {page_index + 1}, panel {number}"
        drawing.ops.extend(_panel_content(project, panel, assets, number, placeholder, where))
    for panel in panels:
        drawing.ops.append(StrokePolygon(_points(panel.shape), BORDER_COLOUR, BORDER_WIDTH))

    geometry_fn = balloon_geometry
    for number, panel in enumerate(panels, start=1):
        for balloon in panel.balloons:
            if not balloon.text.strip():
                continue  # an empty balloon is an unfinished edit, not page content
            if geometry_fn is None:
                geometry_fn = default_balloon_geometry()
            balloon_op = balloon_drawing(geometry_fn(balloon, panel, project))
            if not balloon_op.fits:
                where = f"page {page_index + 1} panel {number}"
                drawing.overset.append(where)
                drawing.warnings.append(
                    f"{where}: the text of balloon {balloon.id!r} does not fit its box; it is cut at the "
                    "balloon's outline"
                )
            drawing.ops.append(balloon_op)

    if guides:
        drawing.ops.extend(_guides(project))
    return drawing


def balloon_drawing(geometry: Any) -> BalloonDrawing:
    """Convert the lettering engine's ``BalloonGeometry`` into the compositor's own op.

    Duck-typed on the contract's attribute names so export does not depend on lettering's classes;
    which outlines clip the text is lettering's one rule (:func:`text_clip`), the canvas's too.
    """
    from comic_studio.core.lettering.contract import text_clip

    kind = geometry.kind.value if hasattr(geometry.kind, "value") else str(geometry.kind)
    lines = tuple(
        TextRun(
            text=line.text,
            x=float(line.x),
            y=float(line.y),
            font_file=Path(geometry.font_file),
            font_size=float(geometry.font_size),
            colour=geometry.text_colour,
            outline=float(geometry.text_outline),
        )
        for line in geometry.lines
        if line.text
    )
    return BalloonDrawing(
        balloon_id=geometry.balloon_id,
        kind=kind,
        shapes=tuple(tuple((float(x), float(y)) for x, y in shape) for shape in geometry.shapes),
        dashed=bool(geometry.dashed),
        fill=geometry.fill,
        stroke=geometry.stroke,
        stroke_width=float(geometry.stroke_width),
        lines=lines,
        fits=bool(geometry.fits),
        text_clip=tuple(tuple((float(x), float(y)) for x, y in shape) for shape in text_clip(geometry)),
    )


def cover_crop(source_size: tuple[int, int], dest: Rect) -> Rect:
    """The centred rectangle of a ``source_size`` image that, scaled up or down uniformly,
    exactly covers ``dest`` (CSS ``object-fit: cover``)."""
    sw, sh = source_size
    dw, dh = dest[2] - dest[0], dest[3] - dest[1]
    if sw <= 0 or sh <= 0 or dw <= 0 or dh <= 0:
        return (0.0, 0.0, float(max(sw, 0)), float(max(sh, 0)))
    scale = max(dw / sw, dh / sh)
    cw, ch = min(sw, dw / scale), min(sh, dh / scale)
    # Clamp: float rounding can push the crop a hair outside the image, which Pillow rejects.
    left = max(0.0, (sw - cw) / 2)
    top = max(0.0, (sh - ch) / 2)
    return (left, top, min(float(sw), left + cw), min(float(sh), top + ch))


def visible_placement(dest: Rect, crop: Rect, view: Rect) -> tuple[Rect, Rect] | None:
    """``dest`` cut to ``view``, with ``crop`` (the source pixels mapped onto ``dest``) cut to
    match; None when nothing is visible. Renderers resample the source to the size of ``dest`` at
    the export DPI: a panel outline reaching a million points off the page (a file may hold one)
    would otherwise ask for a picture of gigapixels, now it costs no more than the page."""
    left, top = max(dest[0], view[0]), max(dest[1], view[1])
    right, bottom = min(dest[2], view[2]), min(dest[3], view[3])
    if right <= left or bottom <= top or dest[2] <= dest[0] or dest[3] <= dest[1]:
        return None
    sx = (crop[2] - crop[0]) / (dest[2] - dest[0])
    sy = (crop[3] - crop[1]) / (dest[3] - dest[1])
    cut = (
        crop[0] + (left - dest[0]) * sx,
        crop[1] + (top - dest[1]) * sy,
        crop[0] + (right - dest[0]) * sx,
        crop[1] + (bottom - dest[1]) * sy,
    )
    return (left, top, right, bottom), cut


# --------------------------------------------------------------------------- panels


def _panel_content(
    project: Project, panel: Panel, assets: AssetStore, number: int, placeholder: bool, where: str
) -> list[DrawOp]:
    shape = _points(panel.shape)
    result = panel.result()
    if result is not None:
        size = _image_size(assets, result.asset, where)
        dest = bounding_box(shape)
        fmt = project.page_format
        bleed_box = (-fmt.bleed, -fmt.bleed, fmt.width + fmt.bleed, fmt.height + fmt.bleed)
        visible = visible_placement(dest, cover_crop(size, dest), bleed_box)
        if visible is None:
            return []  # the whole panel lies off the page
        return [PlacedImage(result.asset, shape, visible[0], visible[1], size, where)]
    if not placeholder:
        return [FillPolygon(shape, EMPTY_PANEL_COLOUR)]
    return [FillPolygon(shape, PLACEHOLDER_COLOUR), *_placeholder_text(project, panel, number, shape)]


def _placeholder_text(project: Project, panel: Panel, number: int, shape: tuple) -> list[TextRun]:
    """Panel number, large, then the beat's action (or the prompt) wrapped small beneath it."""
    left, top, right, bottom = bounding_box(shape)
    width, height = right - left, bottom - top
    if width < 12 or height < 12:
        return []  # too small for legible text; the grey frame alone marks it
    font = placeholder_font_file()
    pad = min(6.0, width * 0.08, height * 0.08)
    number_size = max(6.0, min(18.0, height / 4, width / 3))
    runs = [TextRun(str(number), left + pad, top + pad + number_size * 0.8, font, number_size, PLACEHOLDER_TEXT_COLOUR)]

    beat = project.story.beat(panel.beat_id) if panel.beat_id else None
    text = (beat.action if beat and beat.action else panel.prompt).strip()
    if not text:
        return runs
    size = max(4.0, min(7.0, height / 8))
    leading = size * 1.2
    y = top + pad + number_size + leading
    lines = wrap_text(text, font, size, width - 2 * pad)
    for line in lines:
        if y > bottom - pad:
            break
        runs.append(TextRun(line, left + pad, y, font, size, PLACEHOLDER_TEXT_COLOUR))
        y += leading
    return runs


def wrap_text(text: str, font_file: Path, size: float, max_width: float) -> list[str]:
    """Greedy word wrap to ``max_width`` page units; a word longer than the line stands alone."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and text_width(candidate, font_file, size) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def text_width(text: str, font_file: Path, size: float) -> float:
    # Measure at a fixed 100-unit size and scale: advance widths scale linearly, and one cached
    # font object serves every size.
    return _measuring_font(str(font_file)).getlength(text) * size / 100.0


@lru_cache(maxsize=8)
def _measuring_font(font_file: str):
    from PIL import ImageFont

    return ImageFont.truetype(font_file, 100)


def _image_size(assets: AssetStore, digest: str, where: str) -> tuple[int, int]:
    """Pixel size from the image header only (no decode: composing a page stays cheap)."""
    from PIL import Image

    try:
        data = assets.get(digest)
    except AssetError as exc:
        raise AssetError(f"{where}: {exc}") from exc
    except OSError as exc:  # a lazily read asset whose project file went away or broke
        raise AssetError(f"{where}: the panel's image {digest[:12]}… cannot be read ({exc})") from exc
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception as exc:  # Pillow raises many types for broken data
        raise AssetError(f"{where}: the panel's image {digest[:12]}… cannot be read ({exc})") from exc


# --------------------------------------------------------------------------- helpers


def _guides(project: Project) -> list[DrawOp]:
    fmt = project.page_format
    live = fmt.live_box()
    return [
        StrokePolygon(rect_polygon(0, 0, fmt.width, fmt.height), TRIM_GUIDE_COLOUR, GUIDE_WIDTH),
        StrokePolygon(
            rect_polygon(live.x, live.y, live.x + live.w, live.y + live.h), SAFE_GUIDE_COLOUR, GUIDE_WIDTH, dashed=True
        ),
    ]


def _points(shape: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in shape)


def _page_index(project: Project, page: Page) -> int:
    for i, p in enumerate(project.pages):
        if p.id == page.id:
            return i
    return 0  # a page being previewed before it is added to the project

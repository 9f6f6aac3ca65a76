"""Draw a :class:`PageDrawing` with Pillow: one RGB image per page at a chosen DPI.

Antialiasing: Pillow's ``ImageDraw`` draws hard-edged polygons and lines, so every vector shape
(panel clip masks, borders, balloon outlines) is first rasterised as a *coverage mask* at
``SUPERSAMPLE``× resolution and box-reduced to 1× (``Image.reduce`` averages each block: exact area
coverage with no ringing, which a LANCZOS downsample of a hard mask would add). The colour (or
image) is then pasted through that mask. Masks are rendered in horizontal bands so a full-page
shape at 600 dpi never needs a 16× full-page buffer. Text is drawn at 1× by FreeType, which
antialiases glyphs itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import AssetError, ExportError
from comic_studio.export.drawing import (
    BalloonDrawing,
    FillPolygon,
    PageDrawing,
    PlacedImage,
    Point,
    StrokePolygon,
    TextRun,
    dash_pattern,
    parse_colour,
)

SUPERSAMPLE = 4
BAND_HEIGHT = 128
"""Height (output pixels) of one band of a supersampled mask: bounds the scratch buffer."""
MAX_PAGE_PIXELS = 20_000 * 20_000
"""Refuse outputs larger than this (a 2 m page at 600 dpi): almost surely a wrong DPI."""

_Painter = Callable[[ImageDraw.ImageDraw, Callable[[Point], Point], float], None]


def render_page(drawing: PageDrawing, assets: AssetStore, dpi: float) -> Image.Image:
    """Render ``drawing`` at ``dpi`` to an RGB image of the drawing's view box (bleed or trim)."""
    width, height = drawing.pixel_size(dpi)
    if width * height > MAX_PAGE_PIXELS:
        raise ExportError(
            f"page {drawing.page_index + 1}: {width}×{height} pixels at {dpi} dpi is too large to render; lower the DPI"
        )
    renderer = _PageRenderer(drawing, assets, dpi, Image.new("RGB", (width, height), (255, 255, 255)))
    for op in drawing.ops:
        renderer.draw(op)
    return renderer.canvas


class _PageRenderer:
    def __init__(self, drawing: PageDrawing, assets: AssetStore, dpi: float, canvas: Image.Image):
        self.drawing = drawing
        self.assets = assets
        self.scale = dpi / 72.0  # pixels per point
        self.origin = drawing.view_box[:2]
        self.canvas = canvas
        self.text_draw = ImageDraw.Draw(canvas)

    def to_px(self, p: Point) -> Point:
        return ((p[0] - self.origin[0]) * self.scale, (p[1] - self.origin[1]) * self.scale)

    # ------------------------------------------------------------------ dispatch
    def draw(self, op) -> None:
        if isinstance(op, FillPolygon):
            self.fill(op.points, op.colour)
        elif isinstance(op, StrokePolygon):
            self.stroke(op.points, op.colour, op.width, dashed=op.dashed, closed=op.closed)
        elif isinstance(op, PlacedImage):
            self.image(op)
        elif isinstance(op, TextRun):
            self.text(op)
        elif isinstance(op, BalloonDrawing):
            self.balloon(op)
        else:  # a new op type must be taught to every renderer
            raise ExportError(f"page {self.drawing.page_index + 1}: raster renderer cannot draw {type(op).__name__}")

    # ------------------------------------------------------------------ primitives
    def fill(self, points: tuple[Point, ...], colour: str) -> None:
        px = [self.to_px(p) for p in points]

        def paint(draw, to_ss, _k):
            draw.polygon([to_ss(p) for p in px], fill=255)

        self._paste_colour(colour, _bounds(px, 1), paint)

    def stroke(self, points, colour: str, width: float, *, dashed: bool = False, closed: bool = True) -> None:
        if width <= 0:
            return
        px = [self.to_px(p) for p in points]
        width_px = width * self.scale
        if dashed:
            on, off = dash_pattern(width)
            runs = dash_polyline(px, closed, on * self.scale, off * self.scale)
        else:
            runs = [px + px[:2]] if closed else [px]

        def paint(draw, to_ss, k):
            line_width = max(1, round(width_px * k))
            for run in runs:
                draw.line([to_ss(p) for p in run], fill=255, width=line_width, joint="curve")

        self._paste_colour(colour, _bounds(px, width_px / 2 + 2), paint)

    def image(self, op: PlacedImage) -> None:
        left, top = self.to_px((op.dest[0], op.dest[1]))
        right, bottom = self.to_px((op.dest[2], op.dest[3]))
        box = (math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom))
        size = (box[2] - box[0], box[3] - box[1])
        if size[0] <= 0 or size[1] <= 0:
            return
        pixels = placed_pixels(self.assets, op, size, self.drawing.page_index)
        clip = [self.to_px(p) for p in op.clip]
        mask = self._coverage(box, lambda draw, to_ss, _k: draw.polygon([to_ss(p) for p in clip], fill=255))
        self.canvas.paste(pixels, box[:2], mask)

    def text(self, run: TextRun, draw: ImageDraw.ImageDraw | None = None, offset: Point = (0.0, 0.0)) -> None:
        """Draw ``run`` on the page, or on ``draw``'s image whose top-left is page pixel ``offset``."""
        font = _font(str(run.font_file), run.font_size * self.scale)
        colour = parse_colour(run.colour)
        kwargs = {}
        if run.outline > 0:
            kwargs = {"stroke_width": run.outline * self.scale, "stroke_fill": (255, 255, 255)}
        x, y = self.to_px((run.x, run.y))
        target = draw or self.text_draw
        target.text((x - offset[0], y - offset[1]), run.text, font=font, fill=colour, anchor="ls", **kwargs)

    def balloon(self, op: BalloonDrawing) -> None:
        # United outline: the doubled stroke's inner half is hidden by the fill that follows, so
        # overlapping shapes (body + tail, thought bubbles) read as one balloon.
        if op.stroke_width > 0:
            for shape in op.shapes:
                self.stroke(shape, op.stroke, 2 * op.stroke_width, dashed=op.dashed)
        if op.fill:
            for shape in op.shapes:
                self.fill(shape, op.fill)
        if op.text_clip:
            self.clipped_text(op)
            return
        for line in op.lines:
            self.text(line)

    def clipped_text(self, op: BalloonDrawing) -> None:
        """Overset text, cut at the union of ``op.text_clip``: the lines are drawn on a copy of the
        region under the balloon, which is pasted back through the outline's antialiased mask."""
        clip = [[self.to_px(p) for p in shape] for shape in op.text_clip]
        box = _clip_box(_bounds([p for shape in clip for p in shape], 1), self.canvas.size)
        if box is None:
            return

        def paint(draw, to_ss, _k):
            for shape in clip:  # filled one by one: the mask is their union whatever the winding
                draw.polygon([to_ss(p) for p in shape], fill=255)

        mask = self._coverage(box, paint)
        layer = self.canvas.crop(box)
        draw = ImageDraw.Draw(layer)
        for line in op.lines:
            self.text(line, draw, (float(box[0]), float(box[1])))
        self.canvas.paste(layer, box[:2], mask)

    # ------------------------------------------------------------------ masks
    def _paste_colour(self, colour: str, box: tuple[int, int, int, int], paint: _Painter) -> None:
        box = _clip_box(box, self.canvas.size)
        if box is None:
            return
        mask = self._coverage(box, paint)
        self.canvas.paste(parse_colour(colour), box, mask)

    def _coverage(self, box: tuple[int, int, int, int], paint: _Painter) -> Image.Image:
        """Antialiased coverage mask (mode L) of ``box`` (output pixels), painted in bands."""
        x0, y0, x1, y1 = box
        width, height = x1 - x0, y1 - y0
        mask = Image.new("L", (width, height), 0)
        k = SUPERSAMPLE
        for band_top in range(0, height, BAND_HEIGHT):
            band_h = min(BAND_HEIGHT, height - band_top)
            band = Image.new("L", (width * k, band_h * k), 0)
            oy = y0 + band_top

            def to_ss(p: Point, ox=x0, oy=oy) -> Point:
                return ((p[0] - ox) * k, (p[1] - oy) * k)

            paint(ImageDraw.Draw(band), to_ss, k)
            mask.paste(band.reduce(k), (0, band_top))
        return mask


def placed_pixels(assets: AssetStore, op: PlacedImage, size: tuple[int, int], page_index: int) -> Image.Image:
    """``op``'s image decoded and fitted to ``size``; a missing or broken asset is an
    :class:`AssetError` naming the page and panel and the asset (a header can read fine while the
    pixels are truncated, so decoding is checked here too)."""
    where = op.where or f"page {page_index + 1}"
    try:
        source = assets.open_image(op.asset)
        try:
            return fit_image(source, op.crop, size)
        finally:
            source.close()
    except AssetError as exc:
        raise AssetError(f"{where}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 — Pillow and a vanished project file raise many types
        raise AssetError(
            f"{where}: the panel's image {op.asset[:12]}… cannot be read ({type(exc).__name__}: {exc}); "
            "render the panel again or pick another result"
        ) from exc


def fit_image(source: Image.Image, crop: tuple[float, float, float, float], size: tuple[int, int]) -> Image.Image:
    """The ``crop`` region of ``source`` resampled to exactly ``size`` pixels, as opaque RGB
    (transparent areas composited over white, the colour of paper)."""
    # reducing_gap lets Pillow shrink large sources by integer steps first: much faster, same look.
    resized = source.resize(size, Image.Resampling.LANCZOS, box=crop, reducing_gap=3.0)
    if resized.mode in ("RGBA", "LA") or (resized.mode == "P" and "transparency" in resized.info):
        rgba = resized.convert("RGBA")
        flat = Image.new("RGB", size, (255, 255, 255))
        flat.paste(rgba, (0, 0), rgba)
        return flat
    return resized.convert("RGB")


def dash_polyline(points: list[Point], closed: bool, on: float, off: float) -> list[list[Point]]:
    """Split a polyline into dash runs of length ``on`` separated by gaps of ``off``; a dash may
    turn corners (it carries the corner vertex) like a PDF dash pattern does."""
    path = points + [points[0]] if closed else list(points)
    runs: list[list[Point]] = []
    current: list[Point] = [path[0]]
    drawing = True
    left = on
    for a, b in zip(path, path[1:]):
        seg = math.dist(a, b)
        pos = 0.0
        while seg - pos > left:
            pos += left
            t = pos / seg
            p = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
            if drawing:
                current.append(p)
                runs.append(current)
            current = [p]
            drawing = not drawing
            left = on if drawing else off
        left -= seg - pos
        if drawing:
            current.append(b)
        else:
            current = [b]
    if drawing and len(current) > 1:
        runs.append(current)
    return runs


@lru_cache(maxsize=32)
def _font(font_file: str, size_px: float) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(font_file, max(1.0, size_px))
    except OSError as exc:
        raise ExportError(f"font {font_file}: cannot be loaded ({exc})") from exc


def _bounds(points: list[Point], pad: float) -> tuple[int, int, int, int]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (
        math.floor(min(xs) - pad),
        math.floor(min(ys) - pad),
        math.ceil(max(xs) + pad),
        math.ceil(max(ys) + pad),
    )


def _clip_box(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(size[0], box[2]), min(size[1], box[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def render_project_page(
    project,
    page,
    assets: AssetStore,
    dpi: float,
    *,
    include_bleed: bool,
    placeholder: bool = True,
    guides: bool = False,
    overset: list[str] | None = None,
) -> Image.Image:
    """Compose and render one page of ``project`` (what the PNG and CBZ writers do per page);
    ``overset`` collects where a balloon's text is cut at its outline."""
    from comic_studio.export.compositor import compose_page

    drawing = compose_page(project, page, assets, include_bleed=include_bleed, guides=guides, placeholder=placeholder)
    if overset is not None:
        overset.extend(drawing.overset)
    return render_page(drawing, assets, dpi)

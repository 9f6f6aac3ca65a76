"""Renderer-neutral drawing operations for one comic page.

The compositor turns a :class:`~comic_studio.core.model.Page` into a :class:`PageDrawing`: a flat,
ordered list of ops in **page units** (points, origin top-left of the trim box, y down). The raster
and PDF writers only interpret these ops, so both outputs come from one decision about what a
page looks like (what is clipped where, what covers what, which text sits on which baseline).

Images are referenced by asset hash plus a crop rectangle rather than holding decoded pixels: a
drawing for a 300-page book can be built page by page without keeping any bitmap alive longer
than the renderer needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

Point = tuple[float, float]
Rect = tuple[float, float, float, float]
"""``(left, top, right, bottom)``."""


@dataclass(frozen=True)
class FillPolygon:
    """A polygon filled with a flat colour (page background, empty panels, placeholders)."""

    points: tuple[Point, ...]
    colour: str


@dataclass(frozen=True)
class StrokePolygon:
    """The closed outline of a polygon (panel borders, guides when ``closed``)."""

    points: tuple[Point, ...]
    colour: str
    width: float
    dashed: bool = False
    closed: bool = True


@dataclass(frozen=True)
class PlacedImage:
    """An asset drawn to *cover* ``dest`` (the clip polygon's bounding box, cut to the page's bleed
    box), clipped to ``clip``.

    ``crop`` is the rectangle of the source image, in source pixels, that maps onto ``dest``: it
    has the aspect ratio of ``dest`` and is centred in the source (cover scaling, centre crop).
    """

    asset: str
    clip: tuple[Point, ...]
    dest: Rect
    crop: Rect
    source_size: tuple[int, int]
    where: str = ""
    """Whose image it is, for messages: ``page 2, panel 3``."""


@dataclass(frozen=True)
class TextRun:
    """One line of text; ``(x, y)`` is the left end of its baseline."""

    text: str
    x: float
    y: float
    font_file: Path
    font_size: float
    colour: str = "#000000"
    outline: float = 0.0
    """Width of a white glyph outline drawn under the text (SFX); 0 for none."""


@dataclass(frozen=True)
class BalloonDrawing:
    """A lettered balloon: outlines drawn *united*, then its text lines.

    Renderers stroke every shape at ``2 * stroke_width`` first and then fill every shape without a
    stroke, so where a tail overlaps the body (or two bubbles of a thought balloon overlap) the
    inner strokes disappear under the fill and only the outer outline shows.
    """

    balloon_id: str
    kind: str
    shapes: tuple[tuple[Point, ...], ...]
    dashed: bool
    fill: str | None
    stroke: str
    stroke_width: float
    lines: tuple[TextRun, ...]
    fits: bool = True
    text_clip: tuple[tuple[Point, ...], ...] = ()
    """Outlines whose union the lines are clipped to (overset text stays inside its balloon, as on
    the canvas: :func:`comic_studio.core.lettering.text_clip`); empty: the lines are drawn whole."""


DrawOp = FillPolygon | StrokePolygon | PlacedImage | TextRun | BalloonDrawing


@dataclass
class PageDrawing:
    """Everything a renderer needs to draw one page, in drawing order."""

    width: float
    height: float
    bleed: float
    include_bleed: bool
    page_index: int
    page_id: str
    ops: list[DrawOp] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Things worth telling the author (text that does not fit a balloon) — not errors."""
    overset: list[str] = field(default_factory=list)
    """Where a balloon holds more text than fits, one ``page P panel N`` per balloon (the
    exporters collect these for :func:`comic_studio.export.common.overset_message`)."""

    @property
    def view_box(self) -> Rect:
        """The part of the page that is output: the bleed box, or the trim box without bleed."""
        b = self.bleed if self.include_bleed else 0.0
        return (-b, -b, self.width + b, self.height + b)

    @property
    def view_size(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.view_box
        return (x1 - x0, y1 - y0)

    def pixel_size(self, dpi: float) -> tuple[int, int]:
        """Output size in pixels at ``dpi`` (rounded to whole pixels, at least one)."""
        w, h = self.view_size
        return (max(1, round(w * dpi / 72.0)), max(1, round(h * dpi / 72.0)))

    def images(self) -> list[PlacedImage]:
        return [op for op in self.ops if isinstance(op, PlacedImage)]

    def balloons(self) -> list[BalloonDrawing]:
        return [op for op in self.ops if isinstance(op, BalloonDrawing)]


def rect_polygon(left: float, top: float, right: float, bottom: float) -> tuple[Point, ...]:
    return ((left, top), (right, top), (right, bottom), (left, bottom))


def bounding_box(points: tuple[Point, ...] | list[Point]) -> Rect:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def parse_colour(colour: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` → ``(r, g, b)``; the model validates the form, this guards hand-built ops."""
    if len(colour) != 7 or not colour.startswith("#"):
        raise ValueError(f"colour {colour!r} is not of the form #rrggbb")
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def dash_pattern(stroke_width: float) -> tuple[float, float]:
    """Dash and gap lengths (page units) for a dashed stroke of ``stroke_width`` (whispers, the
    safe-area guide); shared by the raster and PDF renderers so both look the same."""
    on = max(2.0, 3.0 * stroke_width)
    return (on, on * 0.75)

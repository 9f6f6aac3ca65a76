"""Print PDF export with reportlab: vector borders and balloons, real text, images at page DPI.

Each comic page becomes one PDF page whose MediaBox is the bleed box (or the trim box without
bleed), grown by a slug of ``SLUG`` points on every side when crop marks are asked for so the marks
sit outside the bleed. TrimBox and BleedBox are always set, which is what print shops and
imposition software read.

Panel images are resampled to exactly the pixel size of their placement at the export DPI (a
print shop gets what it asked for; a 4096-px render for a 2-inch panel does not bloat the file)
and embedded as JPEG q92 by default: on painted/photographic panels it is ~5–10× smaller than
lossless Flate and visually identical in print. ``lossless=True`` embeds Flate instead (flat
colour art, or an archive copy).

Streaming: one page is composed, drawn and finished before the next; decoded bitmaps are dropped
after each image is encoded. reportlab keeps the *encoded* image streams until ``save``, which
bounds memory by the size of the output file rather than of the decoded pages.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import ExportError
from comic_studio.core.layout.geometry import clockwise
from comic_studio.core.model import Project
from comic_studio.export.common import CancelFn, PageLoop, ProgressFn, atomic_export_file, require_pages, resolve_dpi
from comic_studio.export.compositor import compose_page, placeholder_font_file
from comic_studio.export.drawing import (
    BalloonDrawing,
    FillPolygon,
    PageDrawing,
    PlacedImage,
    Point,
    StrokePolygon,
    TextRun,
    dash_pattern,
)
from comic_studio.export.glyph_paths import glyph_outline_paths
from comic_studio.export.raster import MAX_PAGE_PIXELS, placed_pixels

SLUG = 18.0
"""Extra margin (points, 0.25 in) around the bleed box that holds the crop marks."""
CROP_MARK_WIDTH = 0.25
CROP_MARK_LENGTH = 12.0
CROP_MARK_GAP = 3.0
"""Distance between the bleed edge and the start of a crop mark, so marks never print in the bleed."""
JPEG_QUALITY = 92
FILL_NON_ZERO = 1
"""reportlab's fillMode for the nonzero winding rule, the rule Pillow's polygon fill follows."""

_registered_fonts: dict[str, str] = {}  # font file path -> reportlab font name


def export_pdf(
    project: Project,
    assets: AssetStore,
    path: str | Path,
    *,
    dpi: float | None = None,
    bleed: bool = True,
    trim_marks: bool = False,
    lossless: bool = False,
    placeholder: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    overset: list[str] | None = None,
) -> Path:
    """Write ``project`` as a print PDF at ``path`` (replaced atomically) and return it.
    ``overset``, when given, collects a ``page P panel N`` for every balloon whose text is cut at
    its outline (:func:`~comic_studio.export.common.overset_message` words it)."""
    from reportlab.pdfgen import canvas as rl_canvas

    require_pages(project)
    resolved_dpi = resolve_dpi(project, dpi)
    target = Path(path)
    loop = PageLoop(len(project.pages), progress, cancel)
    with atomic_export_file(target, "the PDF") as tmp, _binary_streams():
        # The initial font of every page's preamble would otherwise be Helvetica: never used for a
        # glyph, but listed unembedded, which print preflight checks flag. Use an embedded one.
        pdf = rl_canvas.Canvas(
            str(tmp), pageCompression=1, invariant=1, initialFontName=_font_name(placeholder_font_file())
        )
        pdf.setTitle(project.title)
        pdf.setAuthor(project.author)
        issue = " #".join(p for p in (project.series, project.number) if p)
        pdf.setSubject(project.summary[:500] or issue)
        # Series, number and language have no field of their own in a PDF's document information.
        pdf.setKeywords([k for k in (project.series, f"#{project.number}" if project.number else "",
                                     f"lang:{project.language}") if k])  # fmt: skip
        pdf.setCreator("Comic Studio")
        for page in project.pages:
            loop.check_cancel()
            drawing = compose_page(project, page, assets, include_bleed=bleed, placeholder=placeholder)
            _PdfPage(pdf, drawing, assets, resolved_dpi, trim_marks, lossless).draw()
            if overset is not None:
                overset.extend(drawing.overset)
            pdf.showPage()
            loop.page_done()
        loop.check_cancel()
        pdf.save()
    return target


class _PdfPage:
    """Draws one PageDrawing onto the current reportlab page (page units → PDF user space)."""

    def __init__(self, pdf, drawing: PageDrawing, assets: AssetStore, dpi: float, trim_marks: bool, lossless: bool):
        self.pdf = pdf
        self.lossless = lossless
        self.drawing = drawing
        self.assets = assets
        self.dpi = dpi
        self.trim_marks = trim_marks
        self.slug = SLUG if trim_marks else 0.0
        view_w, view_h = drawing.view_size
        self.media = (view_w + 2 * self.slug, view_h + 2 * self.slug)
        self.view_x0, self.view_y0 = drawing.view_box[:2]

    def pt(self, p: Point) -> Point:
        """Page units (y down, trim origin) → PDF user space (y up, MediaBox origin)."""
        return (p[0] - self.view_x0 + self.slug, self.media[1] - (p[1] - self.view_y0 + self.slug))

    def draw(self) -> None:
        d = self.drawing
        self.pdf.setPageSize(self.media)
        trim_left, trim_top = self.pt((0.0, 0.0))
        trim_right, trim_bottom = self.pt((d.width, d.height))
        self.pdf.setTrimBox((trim_left, trim_bottom, trim_right, trim_top))
        bleed_left, bleed_top = self.pt(d.view_box[:2])
        bleed_right, bleed_bottom = self.pt(d.view_box[2:])
        self.pdf.setBleedBox((bleed_left, bleed_bottom, bleed_right, bleed_top))
        for op in d.ops:
            if isinstance(op, FillPolygon):
                self.fill(op.points, op.colour)
            elif isinstance(op, StrokePolygon):
                self.stroke(op.points, op.colour, op.width, op.dashed, op.closed)
            elif isinstance(op, PlacedImage):
                self.image(op)
            elif isinstance(op, TextRun):
                self.text(op)
            elif isinstance(op, BalloonDrawing):
                self.balloon(op)
            else:
                raise ExportError(f"page {d.page_index + 1}: PDF writer cannot draw {type(op).__name__}")
        if self.trim_marks:
            self.crop_marks(
                (trim_left, trim_bottom, trim_right, trim_top), (bleed_left, bleed_bottom, bleed_right, bleed_top)
            )

    # ------------------------------------------------------------------ primitives
    def path(self, points, closed: bool = True):
        p = self.pdf.beginPath()
        first, *rest = [self.pt(q) for q in points]
        p.moveTo(*first)
        for q in rest:
            p.lineTo(*q)
        if closed:
            p.close()
        return p

    def fill(self, points, colour: str) -> None:
        self.pdf.setFillColor(colour)
        self.pdf.drawPath(self.path(points), stroke=0, fill=1, fillMode=FILL_NON_ZERO)

    def stroke(self, points, colour: str, width: float, dashed: bool = False, closed: bool = True) -> None:
        if width <= 0:
            return
        self.pdf.saveState()
        self.pdf.setStrokeColor(colour)
        self.pdf.setLineWidth(width)
        self.pdf.setLineJoin(1)  # round joins, matching the raster renderer's curved joints
        if dashed:
            self.pdf.setDash(list(dash_pattern(width)))
        self.pdf.drawPath(self.path(points, closed), stroke=1, fill=0)
        self.pdf.restoreState()

    def image(self, op: PlacedImage) -> None:
        from reportlab.lib.utils import ImageReader

        left, top, right, bottom = op.dest
        size = (max(1, round((right - left) * self.dpi / 72)), max(1, round((bottom - top) * self.dpi / 72)))
        if size[0] * size[1] > MAX_PAGE_PIXELS:  # the raster exporters' page limit, for one image
            raise ExportError(
                f"page {self.drawing.page_index + 1}: a panel image of {size[0]}×{size[1]} pixels at {self.dpi:g} dpi "
                "is too large to embed; lower the DPI"
            )
        pixels = placed_pixels(self.assets, op, size, self.drawing.page_index)
        if self.lossless:
            reader = ImageReader(pixels)  # reportlab Flate-encodes the raw RGB
        else:
            buf = io.BytesIO()
            pixels.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
            pixels.close()
            buf.seek(0)
            reader = ImageReader(buf)  # JPEG data is embedded as-is (DCTDecode)
        x, y = self.pt((left, bottom))
        self.pdf.saveState()
        self.pdf.clipPath(self.path(op.clip), stroke=0, fill=0, fillMode=FILL_NON_ZERO)
        self.pdf.drawImage(reader, x, y, width=right - left, height=bottom - top)
        self.pdf.restoreState()

    def text(self, run: TextRun) -> None:
        font = _font_name(run.font_file)
        x, y = self.pt((run.x, run.y))
        if run.outline > 0:
            self.text_outline(run, font, x, y)
        self.pdf.setFillColor(run.colour)
        self.pdf.setFont(font, run.font_size)
        self.pdf.drawString(x, y, run.text)

    def text_outline(self, run: TextRun, font: str, x: float, y: float) -> None:
        """White outline under the glyphs (SFX), stroked at twice its width so the fill pass on
        top leaves ``outline`` points visible. Drawn as paths, so the PDF holds the text once."""
        self.pdf.saveState()
        self.pdf.setStrokeColor("#ffffff")
        self.pdf.setLineWidth(2 * run.outline)
        self.pdf.setLineJoin(1)
        ops = glyph_outline_paths(run.text, run.font_file, run.font_size)
        if ops is None:  # no fontTools: a stroke-only text pass (the text then appears twice)
            outline = self.pdf.beginText(x, y)
            outline.setFont(font, run.font_size)
            outline.setTextRenderMode(1)
            outline.textOut(run.text)
            self.pdf.drawText(outline)
        elif ops:
            path = self.pdf.beginPath()
            for kind, coords in ops:
                shifted = [c + (x if i % 2 == 0 else y) for i, c in enumerate(coords)]
                if kind == "M":
                    path.moveTo(*shifted)
                elif kind == "L":
                    path.lineTo(*shifted)
                elif kind == "C":
                    path.curveTo(*shifted)
                else:
                    path.close()
            self.pdf.drawPath(path, stroke=1, fill=0)
        self.pdf.restoreState()

    def balloon(self, op: BalloonDrawing) -> None:
        # United outline: every shape stroked at double width, then every shape filled on top, so
        # only the outer half of the strokes of overlapping shapes remains.
        if op.stroke_width > 0:
            for shape in op.shapes:
                self.stroke(shape, op.stroke, 2 * op.stroke_width, op.dashed)
        if op.fill:
            for shape in op.shapes:
                self.fill(shape, op.fill)
        if op.text_clip:
            # Overset text is cut at the balloon's outline (the canvas's rule). One clip path of
            # every outline, each wound the same way, so the nonzero rule makes it their union.
            self.pdf.saveState()
            clip = self.pdf.beginPath()
            for shape in op.text_clip:
                points = [self.pt(p) for p in clockwise(shape)]
                clip.moveTo(*points[0])
                for point in points[1:]:
                    clip.lineTo(*point)
                clip.close()
            self.pdf.clipPath(clip, stroke=0, fill=0, fillMode=FILL_NON_ZERO)
        for line in op.lines:
            self.text(line)
        if op.text_clip:
            self.pdf.restoreState()

    def crop_marks(self, trim: tuple[float, float, float, float], bleed_box: tuple[float, float, float, float]) -> None:
        """Short lines continuing each trim edge into the slug, starting just outside the bleed."""
        left, bottom, right, top = trim
        b_left, b_bottom, b_right, b_top = bleed_box
        pdf = self.pdf
        pdf.saveState()
        pdf.setStrokeColor("#000000")
        pdf.setLineWidth(CROP_MARK_WIDTH)
        for x, outward_x in ((left, b_left - CROP_MARK_GAP), (right, b_right + CROP_MARK_GAP)):
            direction = -1 if x == left else 1
            for y, outward_y in ((bottom, b_bottom - CROP_MARK_GAP), (top, b_top + CROP_MARK_GAP)):
                vertical = -1 if y == bottom else 1
                # horizontal mark on the trim line y, out beyond the bleed's side edge
                pdf.line(outward_x, y, outward_x + direction * CROP_MARK_LENGTH, y)
                # vertical mark on the trim line x, out beyond the bleed's top/bottom edge
                pdf.line(x, outward_y, x, outward_y + vertical * CROP_MARK_LENGTH)
        pdf.restoreState()


@contextlib.contextmanager
def _binary_streams() -> Iterator[None]:
    """Turn off reportlab's ASCII85 stream encoding for this export: it only makes a PDF 25 %
    larger (images included), a leftover from 7-bit mail transport. Restored afterwards."""
    from reportlab import rl_config

    saved = rl_config.useA85
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = saved


def _font_name(font_file: Path) -> str:
    """Register a TrueType file with reportlab once (embedded, subset) and return its name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    key = str(Path(font_file).resolve())
    name = _registered_fonts.get(key)
    if name is None:
        name = f"CS-{Path(font_file).stem}-{len(_registered_fonts)}"
        try:
            pdfmetrics.registerFont(TTFont(name, key))
        except (OSError, TTFError) as exc:
            raise ExportError(f"font {font_file}: cannot be embedded in the PDF ({exc})") from exc
        _registered_fonts[key] = name
    return name

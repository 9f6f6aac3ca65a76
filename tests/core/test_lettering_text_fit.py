"""Text fitting: wrap, size search, positions, and that rendered ink stays in the text area."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from comic_studio.core.lettering import balloon_geometry, fit_box_for_text, text_area
from comic_studio.core.lettering.fonts import font_metrics, font_path, text_width
from comic_studio.core.lettering.text_fit import LINE_HEIGHT, wrap_text
from comic_studio.core.model import Balloon, BalloonKind, BalloonStyle, Box, PageFormat, Panel, Project

PROJECT = Project(page_format=PageFormat(width=612, height=792))
PANEL = Panel(shape=[(0, 0), (600, 0), (600, 600), (0, 600)])
LONG = (
    "I told you a hundred times, the lighthouse keeper never leaves before midnight, and tonight "
    "of all nights he would not leave the lamp unattended."
)
DIALOGUE_KINDS = [BalloonKind.SPEECH, BalloonKind.THOUGHT, BalloonKind.SHOUT, BalloonKind.WHISPER, BalloonKind.CAPTION]


def geometry(kind, text, box, **style):
    balloon = Balloon(id="t", kind=kind, text=text, box=box, style=BalloonStyle(**style))
    return balloon, balloon_geometry(balloon, PANEL, PROJECT)


def assert_lines_inside_area(balloon, g):
    area = text_area(balloon.kind, balloon.box, balloon.style)
    m = font_metrics(g.font_file)
    for line in g.lines:
        assert line.width <= area.w + 1e-6
        assert area.x - 1e-6 <= line.x and line.x + line.width <= area.x + area.w + 1e-6
        assert line.y - m.ascent * g.font_size >= area.y - 1e-6
        assert line.y + m.descent * g.font_size <= area.y + area.h + 1e-6


@pytest.mark.parametrize("kind", DIALOGUE_KINDS)
def test_text_fits_inside_the_inscribed_area(kind):
    balloon, g = geometry(kind, LONG, Box(x=30, y=40, w=260, h=200))
    assert g.fits
    assert_lines_inside_area(balloon, g)
    assert " ".join(line.text for line in g.lines) == " ".join(LONG.split())


def test_area_is_the_inscribed_rectangle_of_the_ellipse():
    box = Box(x=0, y=0, w=200, h=100)
    style = BalloonStyle(stroke_width=0)
    area = text_area(BalloonKind.SPEECH, box, style)
    pad = 1.5
    assert area.w == pytest.approx(200 / 2**0.5 - 2 * pad)
    assert area.h == pytest.approx(100 / 2**0.5 - 2 * pad)
    assert (area.cx, area.cy) == pytest.approx((100, 50))
    # The area's corners lie inside the ellipse.
    for x, y in [(area.x, area.y), (area.x + area.w, area.y + area.h)]:
        assert ((x - 100) / 100) ** 2 + ((y - 50) / 50) ** 2 < 1


def test_centred_and_left_alignment():
    balloon, g = geometry(BalloonKind.SPEECH, LONG, Box(x=0, y=0, w=260, h=160))
    area = text_area(balloon.kind, balloon.box, balloon.style)
    for line in g.lines:
        assert line.x + line.width / 2 == pytest.approx(area.cx)
    balloon, g = geometry(BalloonKind.CAPTION, LONG, Box(x=0, y=0, w=260, h=100))
    area = text_area(balloon.kind, balloon.box, balloon.style)
    assert all(line.x == pytest.approx(area.x) for line in g.lines)
    balloon, g = geometry(BalloonKind.SPEECH, LONG, Box(x=0, y=0, w=260, h=160), align="left")
    area = text_area(balloon.kind, balloon.box, balloon.style)
    assert all(line.x == pytest.approx(area.x) for line in g.lines)


def test_lines_are_stacked_at_the_line_height_and_centred_vertically():
    balloon, g = geometry(BalloonKind.SPEECH, LONG, Box(x=0, y=0, w=260, h=160))
    steps = {round(b.y - a.y, 6) for a, b in zip(g.lines, g.lines[1:])}
    assert steps == {round(LINE_HEIGHT * g.font_size, 6)}
    area = text_area(balloon.kind, balloon.box, balloon.style)
    m = font_metrics(g.font_file)
    top = g.lines[0].y - m.ascent * g.font_size
    bottom = g.lines[-1].y + m.descent * g.font_size
    assert (top + bottom) / 2 == pytest.approx(area.cy, abs=0.01)


def test_one_type_size_whatever_the_text_length():
    # A letterer's rule: one type size per book (the style's); text is never shrunk or enlarged.
    box = Box(x=0, y=0, w=160, h=110)
    _, short = geometry(BalloonKind.SPEECH, "Hi!", box)
    _, long = geometry(BalloonKind.SPEECH, LONG, box)
    assert short.font_size == long.font_size == 10.0
    assert short.fits and not long.fits
    _, styled = geometry(BalloonKind.SPEECH, "Hi!", box, font_size=11.5)
    assert styled.font_size == 11.5
    # Clamped to the style's own bounds.
    _, clamped = geometry(BalloonKind.SPEECH, "Hi!", box, font_size=20.0, max_font_size=12.0)
    assert clamped.font_size == 12.0


def test_impossible_text_reports_not_fitting_at_the_type_size():
    _, g = geometry(BalloonKind.SPEECH, LONG * 3, Box(x=0, y=0, w=80, h=50))
    assert not g.fits
    assert g.font_size == 10.0
    assert len(g.lines) > 3  # the best attempt is still there for the error-state preview


def test_over_long_words_are_broken_and_newlines_respected():
    font = font_path("ComicNeue-Bold")
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    lines = wrap_text(f"Say {word}!", font, 10, 60)
    assert "".join(t for t, _ in lines).replace(" ", "") == f"Say{word}!"
    assert all(w <= 60 + 1e-6 for _, w in lines) and len(lines) >= 4
    assert [t for t, _ in wrap_text("One\nTwo  three", font, 10, 500)] == ["One", "Two three"]


def test_empty_text_has_no_lines_and_fits():
    _, g = geometry(BalloonKind.SPEECH, "   ", Box(x=0, y=0, w=100, h=60))
    assert g.lines == () and g.fits


def test_widths_agree_with_reportlab():
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = font_path("ComicNeue-Bold")
    pdfmetrics.registerFont(TTFont("LetteringTestBold", str(path)))
    for text in ["Hello there!", "WAIT... what?", "Quiet, quiet."]:
        assert text_width(path, text, 11.5) == pytest.approx(
            pdfmetrics.stringWidth(text, "LetteringTestBold", 11.5), rel=1e-3
        )


def test_rendered_ink_stays_inside_the_text_area():
    """Draw the fitted lines with Pillow at 4× and check where the ink actually landed."""
    scale = 4
    box = Box(x=10, y=10, w=200, h=130)
    balloon, g = geometry(BalloonKind.SPEECH, LONG, box)
    image = Image.new("L", (int(240 * scale), int(170 * scale)), 0)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(g.font_file), g.font_size * scale)
    for line in g.lines:
        draw.text((line.x * scale, line.y * scale), line.text, font=font, fill=255, anchor="ls")
    ys, xs = np.nonzero(np.asarray(image))
    area = text_area(balloon.kind, box, balloon.style)
    tol = 1.0  # points: glyph side bearings and hinting
    assert xs.min() / scale >= area.x - tol and xs.max() / scale <= area.x + area.w + tol
    assert ys.min() / scale >= area.y - tol and ys.max() / scale <= area.y + area.h + tol


@pytest.mark.parametrize("kind", [*DIALOGUE_KINDS, BalloonKind.SFX])
@pytest.mark.parametrize("text", ["Hi!", "Where were you last night?", LONG])
def test_fit_box_for_text_gives_a_box_that_fits_at_the_preferred_size(kind, text):
    style = BalloonStyle()
    w, h = fit_box_for_text(text, kind, style, max_width=240)
    if kind is not BalloonKind.SFX:
        assert w <= 240
    balloon, g = geometry(kind, text, Box(x=0, y=0, w=w, h=h))
    assert g.fits
    assert g.font_size >= (style.font_size if kind is not BalloonKind.SFX else 24)
    if kind is not BalloonKind.SFX and text == LONG:
        assert w > h  # comfortable balloons are wider than tall


def test_short_phrase_stays_on_one_line():
    w, h = fit_box_for_text("GET DOWN!", BalloonKind.SHOUT, BalloonStyle(), 300)
    _, g = geometry(BalloonKind.SHOUT, "GET DOWN!", Box(x=0, y=0, w=w, h=h))
    assert [line.text for line in g.lines] == ["GET DOWN!"]

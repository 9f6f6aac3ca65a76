"""One type size per book: a balloon grows for its text (never shrinks, stays in its panel), and
new or automatically placed balloons take the book's type size."""

from __future__ import annotations

from comic_studio.core.lettering import balloon_geometry, place_balloons
from comic_studio.core.lettering.grow import fit_problem, grow_for_text, house_style, text_fits
from comic_studio.core.model import Balloon, BalloonKind, BalloonStyle, Box, Page, PageFormat, Panel, Project

PANEL = Panel(shape=[(0.0, 0.0), (300.0, 0.0), (300.0, 200.0), (0.0, 200.0)])
LINE = "The lighthouse keeper never leaves before midnight, and tonight of all nights he would not."


def test_text_that_fits_keeps_the_box_and_longer_text_grows_it_about_its_centre():
    style = BalloonStyle()
    box = Box(x=100, y=80, w=60, h=30)
    assert grow_for_text("Hi", BalloonKind.SPEECH, style, box, PANEL).box == box
    grown = grow_for_text(LINE, BalloonKind.SPEECH, style, box, PANEL)
    assert grown.fits and text_fits(LINE, BalloonKind.SPEECH, style, grown.box)
    assert grown.box.w >= box.w and grown.box.h >= box.h
    assert abs(grown.box.cx - box.cx) < 1e-6 and abs(grown.box.cy - box.cy) < 1e-6  # room all round
    # A bigger box than needed (the author's) is kept as it is.
    roomy = Box(x=10, y=10, w=280, h=180)
    assert grow_for_text(LINE, BalloonKind.SPEECH, style, roomy, PANEL).box == roomy


def test_growth_stays_inside_the_panel_and_reports_what_cannot_fit():
    corner = Box(x=250, y=170, w=40, h=20)
    grown = grow_for_text(LINE, BalloonKind.THOUGHT, BalloonStyle(), corner, PANEL)
    b = grown.box
    assert b.x >= 0 and b.y >= 0 and b.x + b.w <= 300 + 1e-6 and b.y + b.h <= 200 + 1e-6
    too_much = " ".join([LINE] * 9)
    crammed = grow_for_text(too_much, BalloonKind.SPEECH, BalloonStyle(), corner, PANEL)
    assert not crammed.fits and crammed.box.h == 200
    balloon = Balloon(kind=BalloonKind.SPEECH, text=too_much, box=crammed.box)
    assert not balloon_geometry(balloon, PANEL).fits
    assert "needs more room than the panel has" in fit_problem(balloon, PANEL)
    small = Balloon(kind=BalloonKind.SPEECH, text=LINE, box=corner)
    assert "Drag the balloon's corner" in fit_problem(small, PANEL)
    assert fit_problem(Balloon(kind=BalloonKind.SPEECH, text="Hi", box=Box(x=0, y=0, w=60, h=30)), PANEL) == ""


def test_sfx_keep_their_box():
    box = Box(x=10, y=10, w=30, h=20)
    assert grow_for_text("KA-BOOOOOM", BalloonKind.SFX, BalloonStyle(), box, PANEL).box == box


def test_the_book_style_is_the_one_most_balloons_have():
    assert house_style(Project(page_format=PageFormat(width=612, height=792))) == BalloonStyle()
    big, small = BalloonStyle(font_size=11.0), BalloonStyle(font_size=9.0)
    balloons = [
        Balloon(kind=BalloonKind.SPEECH, text="a", box=Box(x=0, y=0, w=40, h=20), style=big, auto_placed=False),
        Balloon(kind=BalloonKind.CAPTION, text="b", box=Box(x=50, y=0, w=40, h=20), style=big, auto_placed=False),
        Balloon(kind=BalloonKind.SPEECH, text="c", box=Box(x=100, y=0, w=40, h=20), style=small, auto_placed=False),
        # SFX are display lettering: they do not vote.
        *(
            Balloon(kind=BalloonKind.SFX, text="Z", box=Box(x=10 * i, y=100, w=9, h=9), style=small, auto_placed=False)
            for i in range(5)
        ),
    ]
    panel = PANEL.model_copy(update={"balloons": balloons})
    project = Project(page_format=PageFormat(width=612, height=792), pages=[Page(panels=[panel])])
    assert house_style(project).font_size == 11.0
    # Automatic placement letters new lines at that size too.
    [placed] = place_balloons(panel, [(BalloonKind.SPEECH, "Hello there", None)], project)
    assert placed.style.font_size == 11.0
    assert balloon_geometry(placed, panel, project).font_size == 11.0

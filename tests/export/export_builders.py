"""Builders for the export tests: small projects made straight from the model classes, and a
stand-in for the lettering engine's balloon geometry (same attributes as its BalloonGeometry)."""

from __future__ import annotations

import io
import math

from PIL import Image

from comic_studio.core.assets import AssetStore
from comic_studio.core.lettering import BalloonGeometry, TextLine
from comic_studio.core.model import (
    Balloon,
    BalloonKind,
    Beat,
    Box,
    Character,
    Page,
    PageFormat,
    Panel,
    PanelResult,
    Project,
    Scene,
    Story,
)
from comic_studio.core.resources import resource

# A small page keeps rendering fast: 288 × 432 pt (4 × 6 in) with 9 pt bleed.
PAGE_W, PAGE_H, BLEED = 288.0, 432.0, 9.0
RED_PANEL = (18.0, 18.0, 270.0, 200.0)  # left, top, right, bottom (page units)
BLUE_PANEL = (18.0, 212.0, 270.0, 414.0)
BALLOON_BOX = Box(x=60, y=60, w=120, h=60)
BALLOON_TEXT = "HELLO THERE FRIEND"


def solid_png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def rect_shape(r: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    left, top, right, bottom = r
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def make_result(asset: str) -> PanelResult:
    return PanelResult(asset=asset, backend="test", seed=1, created_at="2026-01-01T00:00:00Z")


def make_project(
    assets: AssetStore,
    pages: int = 1,
    *,
    balloon: bool = True,
    rtl: bool = False,
    dpi: int = 72,
) -> Project:
    """``pages`` pages, each: a red panel (with a speech balloon) above an image-less panel whose
    beat reads "Ada runs"; page 1's second panel shows a blue image when ``pages`` > 1 so image
    placement is exercised on more than one page."""
    red = assets.add(solid_png((255, 0, 0)))
    blue = assets.add(solid_png((0, 0, 255), (40, 90)))
    beat = Beat(action="Ada runs across the rooftop")
    ada = Character(name="Ada")
    bo = Character(name="Bo")
    page_list = []
    for i in range(pages):
        top = Panel(shape=rect_shape(RED_PANEL), order=0, results=[make_result(red)])
        if balloon:
            top.balloons.append(Balloon(kind=BalloonKind.SPEECH, text=BALLOON_TEXT, box=BALLOON_BOX))
        bottom = Panel(shape=rect_shape(BLUE_PANEL), order=1, beat_id=beat.id)
        if i == 1:
            bottom.results.append(make_result(blue))
        page_list.append(Page(panels=[bottom, top]))  # stored out of order on purpose
    return Project(
        title="Test Comic",
        series="Tests",
        number="7",
        author="Ada Writer",
        summary="Two panels & a balloon <escaped>.",
        language="en",
        page_format=PageFormat(width=PAGE_W, height=PAGE_H, bleed=BLEED, margin=18, dpi=dpi),
        reading_direction="rtl" if rtl else "ltr",
        pages=page_list,
        characters=[ada, bo],
        story=Story(scenes=[Scene(beats=[beat])]),
    )


# --------------------------------------------------------------------------- balloon stand-in
# Fixed, simple geometry in lettering's real types, so compositor tests do not depend on how
# lettering fits text.


def ellipse(box: Box, n: int = 48) -> tuple[tuple[float, float], ...]:
    return tuple(
        (box.cx + box.w / 2 * math.cos(2 * math.pi * i / n), box.cy + box.h / 2 * math.sin(2 * math.pi * i / n))
        for i in range(n)
    )


def fake_balloon_geometry(balloon: Balloon, panel: Panel, project: Project) -> BalloonGeometry:
    """An ellipse filling the box and one centred line of 10 pt text on the box's middle."""
    from PIL import ImageFont

    font_file = resource("fonts", "ComicNeue-Bold.ttf")
    size = 10.0
    width = ImageFont.truetype(str(font_file), 100).getlength(balloon.text) * size / 100
    line = TextLine(balloon.text, balloon.box.cx - width / 2, balloon.box.cy + size * 0.35, width)
    return BalloonGeometry(
        balloon_id=balloon.id,
        kind=balloon.kind,
        shapes=(ellipse(balloon.box),),
        dashed=balloon.kind == BalloonKind.WHISPER,
        fill=balloon.style.fill,
        stroke=balloon.style.stroke,
        stroke_width=balloon.style.stroke_width,
        text_colour=balloon.style.text_colour,
        text_outline=1.0 if balloon.kind == BalloonKind.SFX else 0.0,
        font_file=font_file,
        font_size=size,
        lines=(line,),
        fits=True,
    )

"""The Pillow renderer: sizes, colours where they must be, antialiased edges, clipping, cover crop."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from export_builders import BALLOON_BOX, BLEED, PAGE_H, PAGE_W, fake_balloon_geometry, make_project, rect_shape
from PIL import Image

from comic_studio.core.model import Panel
from comic_studio.core.resources import resource
from comic_studio.export.compositor import compose_page
from comic_studio.export.drawing import (
    BalloonDrawing,
    FillPolygon,
    PageDrawing,
    StrokePolygon,
    TextRun,
    rect_polygon,
)
from comic_studio.export.raster import dash_polyline, render_page

DPI = 144  # 2 px per point: small pages, still room for several pixels per feature


def px(x: float, y: float, bleed: float = BLEED, dpi: float = DPI) -> tuple[int, int]:
    """Page units → pixel of the rendered image (px = (x + bleed) * dpi / 72)."""
    return (int((x + bleed) * dpi / 72), int((y + bleed) * dpi / 72))


def render(project, assets, page=0, **kwargs):
    drawing = compose_page(project, project.pages[page], assets, balloon_geometry=fake_balloon_geometry, **kwargs)
    return render_page(drawing, assets, DPI)


def test_page_size_follows_dpi_and_bleed(assets):
    project = make_project(assets)
    with_bleed = render(project, assets)
    assert with_bleed.mode == "RGB"
    assert with_bleed.size == (round((PAGE_W + 2 * BLEED) * 2), round((PAGE_H + 2 * BLEED) * 2))
    trim = render(project, assets, include_bleed=False)
    assert trim.size == (PAGE_W * 2, PAGE_H * 2)


def test_panel_image_gutter_balloon_and_text_colours(assets):
    image = render(make_project(assets), assets)
    assert image.getpixel(px(200, 150)) == (255, 0, 0)  # inside the red panel, away from the balloon
    assert image.getpixel(px(144, 206)) == (255, 255, 255)  # gutter between the two panels
    assert image.getpixel(px(5, 5)) == (255, 255, 255)  # page margin
    assert image.getpixel(px(18, 100)) == (0, 0, 0)  # on the panel border (1.5 pt wide)
    # inside the balloon, above the text line: white paper over the red image
    assert image.getpixel(px(BALLOON_BOX.cx, BALLOON_BOX.y + 10)) == (255, 255, 255)
    # the text row through the balloon's middle holds dark glyph pixels and no red
    row_y = px(0, BALLOON_BOX.cy)[1]
    row = [image.getpixel((x, row_y)) for x in range(px(BALLOON_BOX.x + 15, 0)[0], px(BALLOON_BOX.x + 105, 0)[0])]
    assert min(sum(p) for p in row) < 150
    assert all(p[0] >= p[1] - 5 for p in row) and not any(p == (255, 0, 0) for p in row)
    # the balloon's outline is black just outside its leftmost point (the visible half of the
    # doubled stroke lies outside the shape; the inner half is covered by the fill)
    assert sum(image.getpixel(px(BALLOON_BOX.x - 0.5, BALLOON_BOX.cy))) < 200


def test_placeholder_panel_is_light_grey_with_dark_number(assets):
    image = render(make_project(assets, balloon=False), assets)
    assert image.getpixel(px(200, 380)) == (230, 230, 230)
    number_area = image.crop((*px(22, 216), *px(40, 236)))
    assert min(sum(p) for p in number_area.get_flattened_data()) < 400  # the "2" is drawn in dark grey


def test_polygon_clip_keeps_image_inside_a_triangle(assets):
    project = make_project(assets, balloon=False)
    red_panel = project.pages[0].panels_in_order()[0]
    red_panel.shape = [(18.0, 18.0), (270.0, 18.0), (18.0, 200.0)]  # triangle: upper-left half
    image = render(project, assets)
    assert image.getpixel(px(40, 40)) == (255, 0, 0)
    assert image.getpixel(px(250, 180)) == (255, 255, 255)  # in the bounding box, outside the triangle


def test_edges_are_antialiased(assets):
    drawing = PageDrawing(width=100, height=100, bleed=0, include_bleed=False, page_index=0, page_id="p")
    drawing.ops.append(FillPolygon(((10.0, 10.0), (90.0, 30.0), (30.0, 90.0)), "#000000"))
    image = render_page(drawing, assets, 72)
    values = [p[0] for p in image.get_flattened_data()]
    assert 0 in values and 255 in values
    assert len([v for v in values if 0 < v < 255]) > 100  # intermediate greys along the slanted edges
    assert len({v for v in values if 0 < v < 255}) >= 8  # several coverage levels, not just one


def test_cover_scaling_fills_the_panel_with_the_centre_of_the_image(assets):
    project = make_project(assets, balloon=False)
    stripes = Image.new("RGB", (300, 100), (0, 0, 255))
    stripes.paste((255, 0, 0), (100, 0, 200, 100))  # blue | red | blue
    panel = project.pages[0].panels_in_order()[0]
    panel.shape = rect_shape((18, 18, 118, 118))  # square: only the red middle third shows
    buf = io.BytesIO()
    stripes.save(buf, format="PNG")
    panel.results[0].asset = assets.add(buf.getvalue())
    image = render(project, assets)
    for x, y in ((22, 22), (68, 68), (114, 114), (22, 114)):
        r, g, b = image.getpixel(px(x, y))
        assert r > 240 and b < 15, (x, y)


def test_transparent_result_is_composited_on_white(assets):
    project = make_project(assets, balloon=False)
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    buf = io.BytesIO()
    clear.save(buf, format="PNG")
    project.pages[0].panels_in_order()[0].results[0].asset = assets.add(buf.getvalue())
    image = render(project, assets)
    assert image.getpixel(px(200, 150)) == (255, 255, 255)


def test_full_bleed_panel_reaches_the_bleed_edge(assets):
    project = make_project(assets, balloon=False)
    results = project.pages[0].panels_in_order()[0].results
    project.pages[0].panels = [
        Panel(shape=rect_shape((-BLEED, -BLEED, PAGE_W + BLEED, PAGE_H + BLEED)), results=results)
    ]
    image = render(project, assets)
    # the image reaches the bleed edge; only the 1.5 pt border (3 px at 144 dpi, half outside) sits on it
    assert image.getpixel((3, 3)) == (255, 0, 0)
    assert image.getpixel((image.width - 4, image.height - 4)) == (255, 0, 0)
    assert image.getpixel((image.width // 2, image.height // 2)) == (255, 0, 0)
    # trim-only output of the same page: the image starts left of/above the canvas and still covers it
    trim = render_page(compose_page(project, project.pages[0], assets, include_bleed=False), assets, 72)
    assert trim.getpixel((0, 0)) == trim.getpixel((trim.width - 1, trim.height - 1)) == (255, 0, 0)


def test_united_balloon_hides_inner_strokes_and_dashes_have_gaps(assets):
    drawing = PageDrawing(width=200, height=100, bleed=0, include_bleed=False, page_index=0, page_id="p")
    body = rect_polygon(20, 20, 100, 80)
    tail = rect_polygon(90, 40, 150, 60)  # overlaps the body's right edge
    drawing.ops.append(BalloonDrawing("b", "speech", (body, tail), False, "#ffffff", "#000000", 1.0, ()))
    drawing.ops.append(StrokePolygon(rect_polygon(160, 10, 190, 90), "#000000", 2.0, dashed=True))
    image = render_page(drawing, assets, 72)
    assert image.getpixel((100, 50)) == (255, 255, 255)  # body's edge inside the tail: filled over
    assert image.getpixel((95, 40)) == (255, 255, 255)  # tail's edge inside the body: filled over
    assert image.getpixel((19, 50)) == (0, 0, 0)  # outer half of the doubled outline stays
    assert image.getpixel((150, 50))[0] < 128
    left_edge = [image.getpixel((160, y))[0] for y in range(15, 85)]
    assert min(left_edge) < 60 and max(left_edge) > 200  # dashes and gaps


def test_text_outline_draws_white_under_dark_glyphs(assets):
    drawing = PageDrawing(width=120, height=60, bleed=0, include_bleed=False, page_index=0, page_id="p")
    drawing.ops.append(FillPolygon(rect_polygon(0, 0, 120, 60), "#ff0000"))
    font = resource("fonts", "ComicNeue-Bold.ttf")
    drawing.ops.append(TextRun("BOOM", 10, 45, Path(font), 36, "#000000", outline=3))
    image = render_page(drawing, assets, 72)
    colours = set(image.get_flattened_data())
    assert (255, 255, 255) in colours and (0, 0, 0) in colours


def test_dash_polyline_splits_lengths():
    runs = dash_polyline([(0, 0), (10, 0)], closed=False, on=2, off=1)
    assert [r[0][0] for r in runs] == pytest.approx([0, 3, 6, 9])
    assert runs[0][-1][0] == pytest.approx(2)
    around = dash_polyline([(0, 0), (4, 0), (4, 4), (0, 4)], closed=True, on=3, off=1)
    assert around[1] == [pytest.approx((4, 0)), pytest.approx((4, 3))]
    # a dash that turns a corner carries the corner vertex
    turning = dash_polyline([(0, 0), (4, 0), (4, 4), (0, 4)], closed=True, on=5, off=1)
    assert turning[0] == [(0, 0), (4, 0), pytest.approx((4, 1))]

"""The page compositor: what goes on a page, in which order, with which crop."""

from __future__ import annotations

import pytest
from export_builders import (
    BALLOON_TEXT,
    BLEED,
    PAGE_H,
    PAGE_W,
    RED_PANEL,
    fake_balloon_geometry,
    make_project,
    solid_png,
)

from comic_studio.core.errors import AssetError
from comic_studio.core.model import Balloon, Box, Panel, PanelResult
from comic_studio.export.compositor import BORDER_WIDTH, compose_page, cover_crop
from comic_studio.export.drawing import BalloonDrawing, FillPolygon, PlacedImage, StrokePolygon, TextRun


def test_ops_order_background_panels_borders_balloons(assets):
    project = make_project(assets)
    drawing = compose_page(project, project.pages[0], assets, balloon_geometry=fake_balloon_geometry)
    kinds = [type(op).__name__ for op in drawing.ops]
    # background, panel 1 image, panel 2 placeholder (fill + number + beat text), 2 borders, balloon
    assert kinds == [
        "FillPolygon",
        "PlacedImage",
        "FillPolygon",
        "TextRun",
        "TextRun",
        "StrokePolygon",
        "StrokePolygon",
        "BalloonDrawing",
    ]
    background = drawing.ops[0]
    assert isinstance(background, FillPolygon) and background.colour == "#ffffff"
    assert background.points[0] == (-BLEED, -BLEED) and background.points[2] == (PAGE_W + BLEED, PAGE_H + BLEED)
    # panels come in reading order even though the page stores the second panel first
    image = drawing.ops[1]
    assert isinstance(image, PlacedImage) and image.dest == RED_PANEL
    borders = [op for op in drawing.ops if isinstance(op, StrokePolygon)]
    assert all(b.width == BORDER_WIDTH and b.colour == "#000000" for b in borders)
    balloon = drawing.ops[-1]
    assert isinstance(balloon, BalloonDrawing)
    assert [line.text for line in balloon.lines] == [BALLOON_TEXT]
    assert balloon.fill == "#ffffff" and balloon.stroke_width == 1.0


def test_placeholder_shows_panel_number_and_beat_action(assets):
    project = make_project(assets, balloon=False)
    drawing = compose_page(project, project.pages[0], assets)
    texts = [op.text for op in drawing.ops if isinstance(op, TextRun)]
    assert texts == ["2", "Ada runs across the rooftop"]
    grey = [op for op in drawing.ops if isinstance(op, FillPolygon) and op.colour == "#e6e6e6"]
    assert len(grey) == 1

    plain = compose_page(project, project.pages[0], assets, placeholder=False)
    assert not [op for op in plain.ops if isinstance(op, TextRun)]
    assert [op.colour for op in plain.ops if isinstance(op, FillPolygon)] == ["#ffffff", "#ffffff"]


def test_long_beat_text_wraps_inside_the_panel(assets):
    project = make_project(assets, balloon=False)
    beat = project.story.beats()[0]
    beat.action = "word " * 200
    drawing = compose_page(project, project.pages[0], assets)
    runs = [op for op in drawing.ops if isinstance(op, TextRun)][1:]
    assert len(runs) > 3
    left, top, right, bottom = 18.0, 212.0, 270.0, 414.0
    from comic_studio.export.compositor import text_width

    for run in runs:
        assert run.x >= left and run.x + text_width(run.text, run.font_file, run.font_size) <= right
        assert top < run.y <= bottom


def test_trim_only_view_box_and_guides(assets):
    project = make_project(assets, balloon=False)
    drawing = compose_page(project, project.pages[0], assets, include_bleed=False, guides=True)
    assert drawing.view_box == (0, 0, PAGE_W, PAGE_H)
    guides = drawing.ops[-2:]
    assert [g.colour for g in guides] == ["#ff00ff", "#00a0ff"]
    assert guides[1].points[0] == (18.0, 18.0)  # the safe area starts at the margin
    assert drawing.pixel_size(144) == (576, 864)


@pytest.mark.parametrize(
    ("source", "dest", "expected"),
    [
        ((300, 100), (0, 0, 100, 100), (100, 0, 200, 100)),  # wide image in a square: centre third
        ((100, 300), (0, 0, 200, 100), (0, 125, 100, 175)),  # tall image in a wide panel
        ((64, 48), (10, 10, 74, 58), (0, 0, 64, 48)),  # same aspect: whole image
    ],
)
def test_cover_crop_is_centred_and_matches_panel_aspect(source, dest, expected):
    crop = cover_crop(source, dest)
    assert crop == pytest.approx(expected)
    dw, dh = dest[2] - dest[0], dest[3] - dest[1]
    assert (crop[2] - crop[0]) / (crop[3] - crop[1]) == pytest.approx(dw / dh)


def test_missing_asset_error_names_page_and_panel(assets):
    project = make_project(assets, balloon=False)
    ghost = "ab" * 32
    project.pages[0].panels.append(
        Panel(
            shape=[(0, 0), (10, 0), (10, 10)],
            order=2,
            results=[PanelResult(asset=ghost, backend="t", seed=0, created_at="now")],
        )
    )
    with pytest.raises(AssetError, match=r"page 1, panel 3: asset abababababab"):
        compose_page(project, project.pages[0], assets)


def test_current_result_is_the_image_shown(assets):
    project = make_project(assets, balloon=False)
    panel = project.pages[0].panels_in_order()[0]
    green = assets.add(solid_png((0, 255, 0)))
    newer = PanelResult(asset=green, backend="t", seed=2, created_at="now")
    panel.results.append(newer)
    panel.current_result = panel.results[0].id
    drawing = compose_page(project, project.pages[0], assets)
    assert drawing.images()[0].asset == panel.results[0].asset
    panel.current_result = None
    assert compose_page(project, project.pages[0], assets).images()[0].asset == green


def test_balloon_fit_warning_and_empty_balloons_skipped(assets):
    project = make_project(assets, balloon=False)
    panel = project.pages[0].panels_in_order()[0]
    panel.balloons.append(Balloon(text="", box=Box(x=10, y=10, w=20, h=20)))
    panel.balloons.append(Balloon(text="TOO MUCH", box=Box(x=10, y=10, w=20, h=20)))

    def not_fitting(balloon, panel, project):
        from dataclasses import replace

        return replace(fake_balloon_geometry(balloon, panel, project), fits=False)

    drawing = compose_page(project, project.pages[0], assets, balloon_geometry=not_fitting)
    assert len(drawing.balloons()) == 1
    assert len(drawing.warnings) == 1 and "does not fit" in drawing.warnings[0]


def test_export_imports_without_qt_or_torch():
    # export runs headless (CLI, worker threads): importing it must not pull in PySide6 or torch.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'torch'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import comic_studio.export, comic_studio.export.pdf, comic_studio.export.cbz\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_a_panel_reaching_far_off_the_page_costs_no_more_than_the_page():
    """A file may hold a panel outline a million points wide (the model bounds the count of
    points, not their values): its image placement is cut to the bleed box, so exporters never
    resample to gigapixels (before: 23 GB allocated for one PNG page)."""
    from comic_studio.export.compositor import visible_placement

    assert visible_placement((-1e6, 0, 1e6, 100), (0, 0, 2000, 100), (0, 0, 500, 800)) == (
        (0, 0, 500, 100),
        (1000.0, 0.0, 1000.5, 100.0),  # the source pixels that fall on the visible half-millimetre band
    )
    assert visible_placement((600, 0, 700, 100), (0, 0, 10, 10), (0, 0, 500, 800)) is None

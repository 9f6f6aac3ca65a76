"""Stale crops: which panel shapes cut a rendered figure (cover crop), from the result's own data."""

from __future__ import annotations

import pytest

from comic_studio.core.model import Box, CharacterPlacement, Panel, PanelResult
from comic_studio.workflows.stale import stale_crop, visible_window

STANDING = Box(x=0.4, y=0.15, w=0.2, h=0.8)


def _panel(w: float, h: float, head=(0.5, 0.3), radius=0.1, body=STANDING) -> Panel:
    result = PanelResult(
        asset="0" * 64,
        backend="storyboard",
        seed=7,
        request={"width": 400, "height": 400},
        created_at="2026-01-01T00:00:00",
        heads=[CharacterPlacement(character_id="mara", head=head, head_radius=radius, body=body)],
    )
    return Panel(shape=[(0, 0), (w, 0), (w, h), (0, h)], results=[result])


def test_visible_window_is_the_centred_cover_crop():
    assert visible_window((400, 400), Box(x=0, y=0, w=200, h=100)) == Box(x=0, y=0.25, w=1, h=0.5)
    assert visible_window((400, 200), Box(x=0, y=0, w=100, h=100)) == Box(x=0.25, y=0, w=0.5, h=1)
    assert visible_window((300, 300), Box(x=5, y=5, w=50, h=50)) == Box(x=0, y=0, w=1, h=1)


def test_same_proportions_or_a_mild_change_is_not_stale():
    assert stale_crop(_panel(200, 200)) is None  # as rendered
    assert stale_crop(_panel(220, 200)) is None  # 5 % off the top and bottom: the figure stays whole


def test_a_crop_that_cuts_the_head_or_the_body_is_stale():
    # Twice as wide: only the middle half of the height shows; head at v=0.3 is cut.
    stale = stale_crop(_panel(400, 200))
    assert stale is not None and stale.cut == ("mara",) and stale.image_size == (400, 400)
    # The head stays whole when it sits in the middle, but 80 % of the body's height is lost.
    assert stale_crop(_panel(400, 200, head=(0.5, 0.5))) is not None
    # A narrow panel cuts the sides: a figure at the edge is cut, one in the middle is not.
    assert stale_crop(_panel(100, 200, head=(0.1, 0.5), body=Box(x=0.02, y=0.3, w=0.16, h=0.6))) is not None
    assert stale_crop(_panel(100, 200, head=(0.5, 0.5), body=Box(x=0.45, y=0.3, w=0.1, h=0.6))) is None


@pytest.mark.parametrize("request_data", [{}, {"width": "x", "height": 3}, {"width": 0, "height": 10}])
def test_unknown_image_size_is_never_stale(request_data):
    panel = _panel(400, 100)
    panel.results[0].request = request_data
    assert stale_crop(panel) is None


def test_gutter_drag_and_template_change_make_a_panel_stale_and_undo_restores_it():
    from comic_studio.core import editing
    from comic_studio.core.document import Document
    from comic_studio.core.layout import find_shared_borders
    from comic_studio.workflows.requests import panel_pixel_size

    doc = Document.new("Stale")
    page = doc.project.page(editing.add_page(doc, "grid-2x2").id)
    panel = page.panels_in_order()[0]
    width, height = panel_pixel_size(doc.project, panel)
    # A figure standing at the image's left third, as rendered for the panel's present shape.
    panel.results.append(
        PanelResult(
            asset="0" * 64,
            backend="storyboard",
            seed=3,
            request={"width": width, "height": height},
            created_at="2026-01-01T00:00:00",
            heads=[
                CharacterPlacement(
                    character_id="mara", head=(0.3, 0.25), head_radius=0.08, body=Box(x=0.2, y=0.17, w=0.2, h=0.8)
                )
            ],
        )
    )
    assert stale_crop(panel) is None
    border = next(
        b for b in find_shared_borders(page.panels, doc.project.page_format.gutter)
        if b.orientation == "vertical" and any(pid == panel.id for pid, _ in b.side_a)
    )  # fmt: skip
    editing.drag_border(doc, page.id, border, -120.0)  # the panel gets much narrower
    assert stale_crop(doc.project.find_panel(panel.id)[1]) is not None
    doc.undo()
    assert stale_crop(doc.project.find_panel(panel.id)[1]) is None
    editing.apply_template(doc, page.id, "three-tier")  # a wide tier: the top and bottom are cut
    assert stale_crop(doc.project.find_panel(panel.id)[1]) is not None
    doc.undo()
    assert stale_crop(doc.project.find_panel(panel.id)[1]) is None


def test_tails_and_placement_follow_heads_where_the_recropped_image_draws_them():
    from comic_studio.core.lettering import place_balloons
    from comic_studio.core.lettering.placement import keep_out_boxes
    from comic_studio.core.lettering.tails import head_to_page, target_point
    from comic_studio.core.model import Balloon, BalloonKind, PageFormat, Project, TailTarget

    # Rendered square; the panel is now twice as wide as tall: the middle half of the height shows.
    panel = _panel(400, 200, head=(0.5, 0.4), radius=0.05)
    assert head_to_page(panel, (0.5, 0.4)) == pytest.approx((200.0, 60.0))
    balloon = Balloon(
        kind=BalloonKind.SPEECH, text="Hi", box=Box(x=10, y=10, w=60, h=30), tail=TailTarget(character_id="mara")
    )
    assert target_point(balloon, panel) == pytest.approx((200.0, 60.0))
    # The face is as big as the image draws it: the image is 400 pt tall on the page now.
    [face] = keep_out_boxes(panel)
    assert face.w == pytest.approx(0.05 * 2 * 400) and abs(face.cy - 60.0) < 0.05 * 400
    project = Project(page_format=PageFormat(width=612, height=792))
    [placed] = place_balloons(panel, [(BalloonKind.SPEECH, "Where is the key?", "mara")], project)
    assert not (placed.box.x < face.x + face.w and face.x < placed.box.x + placed.box.w
                and placed.box.y < face.y + face.h and face.y < placed.box.y + placed.box.h)  # fmt: skip

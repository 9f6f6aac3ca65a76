"""Book settings: metadata, reading direction and page format as one undo step; a new page format
re-lays every page proportionally, keeping gutters exact, the bleed and the live area."""

from __future__ import annotations

import pytest
from undo_helpers import assert_undoable

from comic_studio.core import editing
from comic_studio.core.book import set_book
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError
from comic_studio.core.layout import bbox, find_shared_borders, page_format
from comic_studio.core.model import BalloonKind, Box, PageFormat, ReadingDirection


def _book() -> Document:
    doc = Document.new()
    for template in ("grid-2x2", "three-tier"):
        editing.add_page(doc, template)
    panel = doc.project.pages[0].panels_in_order()[0]
    pb = bbox(panel.shape)
    balloon = editing.add_balloon(doc, panel.id, BalloonKind.SPEECH, Box(x=pb.x + 20, y=pb.y + 20, w=90, h=40), "Hi")
    editing.retarget_tail(doc, balloon.id, point=(pb.x + 60, pb.y + 120))
    return doc


def test_metadata_and_direction_are_one_step_and_nothing_changed_is_no_step():
    doc = _book()
    info = {"title": "The Lighthouse Key", "author": "Ana Ruiz, Theo Lind", "series": "Harbour", "number": "2",
            "language": "fr", "summary": "A key, a storm."}  # fmt: skip
    assert_undoable(doc, lambda: set_book(doc, info=info, reading_direction=ReadingDirection.RTL))
    assert doc.project.title == "The Lighthouse Key" and doc.project.reading_direction is ReadingDirection.RTL
    steps = len(doc.undo_stack)
    assert set_book(doc, info=info, reading_direction=ReadingDirection.RTL) is None
    assert len(doc.undo_stack) == steps
    with pytest.raises(CommandError, match="unknown field"):
        set_book(doc, info={"publisher": "x"})


@pytest.mark.parametrize("preset", ["a4", "manga-b5", "webtoon"])
def test_a_new_page_format_relays_pages_proportionally(preset):
    doc = _book()
    old = doc.project.page_format.model_copy()
    new = page_format(preset)
    before = [[(p.id, bbox(p.shape)) for p in page.panels] for page in doc.project.pages]
    borders_before = [len(find_shared_borders(page.panels, old.gutter)) for page in doc.project.pages]
    assert_undoable(doc, lambda: set_book(doc, page_format=new))
    assert doc.project.page_format == new
    for page, was, n_borders in zip(doc.project.pages, before, borders_before):
        # Every gutter is still exactly one (new) gutter wide: the canvas finds all its handles.
        assert len(find_shared_borders(page.panels, new.gutter)) == n_borders
        live = new.live_box()
        for panel, (pid, _old_box) in zip(page.panels, was):
            assert panel.id == pid
            box = bbox(panel.shape)
            assert live.x - 1e-6 <= box.x and box.x + box.w <= live.x + live.w + 1e-6
            assert live.y - 1e-6 <= box.y and box.y + box.h <= live.y + live.h + 1e-6
    # Proportional: on the grid page (no panel spans a gutter) every panel scales by one factor
    # per axis.
    grid = doc.project.pages[0]
    old_boxes = dict(before[0])
    sx = {round(bbox(p.shape).w / old_boxes[p.id].w, 9) for p in grid.panels}
    sy = {round(bbox(p.shape).h / old_boxes[p.id].h, 9) for p in grid.panels}
    assert len(sx) == 1 and len(sy) == 1
    panel = doc.project.pages[0].panels_in_order()[0]
    balloon = panel.balloons[0]
    pb = bbox(panel.shape)
    assert (balloon.box.w, balloon.box.h) == (90, 40)  # one type size per book: the balloon keeps its size
    assert pb.x <= balloon.box.cx <= pb.x + pb.w and pb.y <= balloon.box.cy <= pb.y + pb.h
    tx, ty = balloon.tail.point
    assert pb.x <= tx <= pb.x + pb.w and pb.y <= ty <= pb.y + pb.h


def test_a_format_too_small_for_its_gutters_is_refused_and_changes_nothing():
    doc = _book()
    before = doc.project.model_dump()
    tiny = PageFormat(width=50, height=200, margin=20, gutter=12)
    with pytest.raises(CommandError, match="too small"):
        set_book(doc, page_format=tiny)
    assert doc.project.model_dump() == before

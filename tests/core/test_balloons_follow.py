"""Balloons belong to their panel: a gutter drag, a template, a split and a merge carry them along
(relative place kept, clamped inside, never dropped), each still one undo step."""

from __future__ import annotations

import pytest
from undo_helpers import assert_undoable

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.core.layout import bbox, find_shared_borders
from comic_studio.core.model import BalloonKind, Box


def _grid():
    doc = Document.new()
    page = editing.add_page(doc, "grid-2x2")
    return doc, page


def _inside(box: Box, area: Box) -> bool:
    return area.x - 0.5 <= box.x and box.x + box.w <= area.x + area.w + 0.5 and \
        area.y - 0.5 <= box.y and box.y + box.h <= area.y + area.h + 0.5  # fmt: skip


def _panel(doc, panel_id):
    return doc.project.find_panel(panel_id)[1]


def test_a_gutter_drag_carries_the_balloons_of_both_panels():
    doc, page = _grid()
    border = next(b for b in find_shared_borders(page.panels, doc.project.page_format.gutter)
                  if b.orientation == "vertical" and len(b.side_a) == 1)  # fmt: skip
    left_id, right_id = border.side_a[0][0], border.side_b[0][0]
    lb, rb = bbox(_panel(doc, left_id).shape), bbox(_panel(doc, right_id).shape)
    # Near the gutter on the left, with a tail to a point; one in the middle of the right panel.
    near = editing.add_balloon(doc, left_id, BalloonKind.SPEECH, Box(x=lb.x + lb.w - 95, y=lb.y + 30, w=90, h=40), "Hi")
    editing.retarget_tail(doc, near.id, point=(lb.x + lb.w - 50, lb.y + 150))
    mid = editing.add_balloon(doc, right_id, BalloonKind.SPEECH, Box(x=rb.cx - 30, y=rb.cy - 15, w=60, h=30), "Yo")
    assert_undoable(doc, lambda: editing.drag_border(doc, page.id, border, -80.0))
    left, right = _panel(doc, left_id), _panel(doc, right_id)
    lb2, rb2 = bbox(left.shape), bbox(right.shape)
    assert lb2.w == pytest.approx(lb.w - 80, abs=0.5)
    [b] = left.balloons
    assert _inside(b.box, lb2) and (b.box.w, b.box.h) == (90, 40)  # moved in, same size
    assert lb2.x <= b.tail.point[0] <= lb2.x + lb2.w
    [m] = right.balloons
    assert (m.box.cx - rb2.x) / rb2.w == pytest.approx((rb.cx - rb.x) / rb.w, abs=1e-6)  # same relative place
    assert m.id == mid.id


def test_split_gives_each_half_its_balloons_and_merge_keeps_them_all():
    doc, page = _grid()
    first = page.panels_in_order()[0]
    fb = bbox(first.shape)
    left = editing.add_balloon(doc, first.id, BalloonKind.SPEECH, Box(x=fb.x + 10, y=fb.y + 10, w=50, h=30), "L")
    right = editing.add_balloon(
        doc, first.id, BalloonKind.SPEECH, Box(x=fb.x + fb.w - 70, y=fb.y + 10, w=50, h=30), "R"
    )
    assert_undoable(doc, lambda: editing.split_panel(doc, first.id, "vertical"))
    pieces = [p for p in doc.project.pages[0].panels if bbox(p.shape).y == pytest.approx(fb.y) and
              bbox(p.shape).x < fb.x + fb.w]  # fmt: skip
    owner = {b.id: p.id for p in pieces for b in p.balloons}
    assert owner[left.id] != owner[right.id]  # each half has the balloon over it
    for p in pieces:
        for b in p.balloons:
            assert _inside(b.box, bbox(p.shape))
    a, b = sorted(pieces, key=lambda p: bbox(p.shape).x)
    assert_undoable(doc, lambda: editing.merge_panels(doc, a.id, b.id))
    merged = _panel(doc, a.id)
    assert {x.id for x in merged.balloons} == {left.id, right.id}  # the vanished half's balloon stayed

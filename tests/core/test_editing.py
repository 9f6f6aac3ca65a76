"""Every named edit is one undo step that restores the document exactly, and redo re-applies it."""

import pytest
from undo_helpers import assert_undoable

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError, LayoutError
from comic_studio.core.layout import find_shared_borders
from comic_studio.core.layout.geometry import bbox
from comic_studio.core.model import BalloonKind, Box, PanelResult, ReadingDirection


def _doc() -> Document:
    doc = Document.new("Edits")
    editing.add_page(doc, "grid-2x2")
    editing.add_page(doc, "three-tier")
    doc.undo_stack.clear()
    return doc


def test_page_edits():
    doc = _doc()
    first, second = (p.id for p in doc.project.pages)
    copy = assert_undoable(doc, lambda: editing.duplicate_page(doc, first))
    assert [p.id for p in doc.project.pages] == [first, copy.id, second]
    assert len(copy.panels) == 4 and {p.id for p in copy.panels}.isdisjoint({p.id for p in doc.project.pages[0].panels})
    assert_undoable(doc, lambda: editing.move_page(doc, second, 0))
    assert doc.project.pages[0].id == second
    assert_undoable(doc, lambda: editing.delete_page(doc, copy.id))
    assert_undoable(doc, lambda: editing.add_page(doc, "splash", index=1))
    assert_undoable(doc, lambda: editing.apply_template(doc, first, "grid-3x3"))
    assert len(doc.project.page(first).panels) == 9


def test_panel_edits_keep_gutters():
    doc = _doc()
    page = doc.project.pages[0]
    panel_id = page.panels_in_order()[0].id
    assert_undoable(doc, lambda: editing.split_panel(doc, panel_id, "horizontal"))
    assert len(page.panels) == 5
    pieces = sorted(
        (p for p in page.panels if bbox(p.shape).x < 100 and bbox(p.shape).y < 300), key=lambda p: bbox(p.shape).y
    )
    gap = bbox(pieces[1].shape).y - (bbox(pieces[0].shape).y + bbox(pieces[0].shape).h)
    assert gap == pytest.approx(doc.project.page_format.gutter, abs=1e-6)
    assert_undoable(doc, lambda: editing.merge_panels(doc, pieces[0].id, pieces[1].id))
    assert len(page.panels) == 4
    assert_undoable(doc, lambda: editing.delete_panel(doc, page.panels[0].id))
    with pytest.raises(LayoutError):
        editing.merge_panels(doc, page.panels[0].id, page.panels[0].id)


def test_border_drag_merges_into_one_step_and_keeps_the_gutter():
    doc = _doc()
    page = doc.project.pages[0]
    gutter = doc.project.page_format.gutter
    border = next(b for b in find_shared_borders(page.panels, gutter) if b.orientation == "vertical")
    original = [p.model_copy(deep=True) for p in page.panels]
    before = doc.project.model_dump()
    for delta in (5, 10, 20, 30):
        editing.drag_border(doc, page.id, border, delta, original)
    assert len(doc.undo_stack) == 1
    for b in find_shared_borders(page.panels, gutter):
        assert b.side_a and b.side_b  # still shared borders, a gutter apart
    doc.undo()
    assert doc.project.model_dump() == before


def test_reading_direction_reorders_every_page():
    doc = _doc()
    first = doc.project.pages[0]
    ltr = [p.id for p in first.panels_in_order()]
    assert_undoable(doc, lambda: editing.set_reading_direction(doc, ReadingDirection.RTL))
    rtl = [p.id for p in first.panels_in_order()]
    assert rtl != ltr and set(rtl) == set(ltr)


def test_balloon_edits_and_result_history():
    doc = _doc()
    panel = doc.project.pages[0].panels[0]
    balloon = assert_undoable(
        doc, lambda: editing.add_balloon(doc, panel.id, BalloonKind.SPEECH, Box(x=10, y=10, w=80, h=40), "Hi")
    )
    for text in ("H", "He", "Hel", "Hello"):
        editing.edit_balloon_text(doc, balloon.id, text)
    doc.undo_stack.break_merge()
    for x in range(11, 30):
        editing.move_balloon(doc, balloon.id, Box(x=x, y=10, w=80, h=40))
    assert len(doc.undo_stack) == 3  # add, typing, drag
    assert_undoable(doc, lambda: editing.set_balloon_kind(doc, balloon.id, BalloonKind.SHOUT))
    assert_undoable(doc, lambda: editing.retarget_tail(doc, balloon.id, point=(50.0, 200.0)))
    assert_undoable(doc, lambda: editing.delete_balloon(doc, balloon.id))

    results = [
        PanelResult(asset="a" * 64, backend="storyboard", seed=i, created_at="2026-11-24T00:00:00+00:00")
        for i in range(2)
    ]
    for r in results:
        panel.results.append(r)
    assert_undoable(doc, lambda: editing.accept_result(doc, panel.id, results[0].id))
    assert panel.current_result == results[0].id and panel.results[0].accepted and not panel.results[1].accepted
    assert_undoable(doc, lambda: editing.discard_result(doc, panel.id, results[0].id))
    assert panel.current_result is None and [r.id for r in panel.results] == [results[1].id]
    with pytest.raises(CommandError):
        editing.accept_result(doc, panel.id, "nope")

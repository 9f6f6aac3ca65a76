"""PagesStrip: thumbnails, selection, add/duplicate/delete, reorder by dragging a thumbnail."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PySide6.QtCore import QPoint, Qt

from comic_studio.core import editing
from comic_studio.core.model import BalloonKind, Box
from comic_studio.ui import pages_strip
from comic_studio.ui.pages_strip import PagesStrip


@pytest.fixture
def strip(qtbot, ctx):
    for template in ("three-tier", "grid-2x2", "splash"):
        editing.add_page(ctx.document, template)
    ctx.select_page(ctx.document.project.pages[0].id)
    widget = PagesStrip(ctx)
    qtbot.addWidget(widget)
    widget.resize(200, 700)
    widget.show()
    qtbot.waitExposed(widget)
    widget.flush()
    return widget


def page_ids(ctx) -> list[str]:
    return [p.id for p in ctx.document.project.pages]


def row_ids(strip: PagesStrip) -> list[str]:
    return [strip.list.item(r).data(Qt.ItemDataRole.UserRole) for r in range(strip.list.count())]


def test_thumbnails_and_click_selects(qtbot, strip, ctx):
    assert row_ids(strip) == page_ids(ctx)
    assert all(not strip.list.item(r).icon().isNull() for r in range(3))
    assert strip.list.currentRow() == 0
    rect = strip.list.visualItemRect(strip.list.item(2))
    qtbot.mouseClick(strip.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert ctx.current_page_id == page_ids(ctx)[2]
    ctx.select_page(page_ids(ctx)[1])
    assert strip.list.currentRow() == 1


def test_add_duplicate_delete_buttons(qtbot, strip, ctx):
    ctx.select_page(page_ids(ctx)[0])
    qtbot.mouseClick(strip.add_button, Qt.MouseButton.LeftButton)
    assert len(page_ids(ctx)) == 4
    assert ctx.current_page_id == page_ids(ctx)[1]  # inserted after the current page
    assert row_ids(strip) == page_ids(ctx)

    source = ctx.document.project.pages[2]
    editing.add_balloon(ctx.document, source.panels[0].id, BalloonKind.SPEECH, Box(x=50, y=50, w=60, h=30), "Hi")
    ctx.select_page(source.id)
    qtbot.mouseClick(strip.duplicate_button, Qt.MouseButton.LeftButton)
    pages = ctx.document.project.pages
    assert len(pages) == 5 and pages[3].id == ctx.current_page_id != source.id
    assert [b.text for p in pages[3].panels for b in p.balloons] == ["Hi"]
    assert [strip.list.item(r).text() for r in range(5)] == ["1", "2", "3", "4", "5"]

    qtbot.mouseClick(strip.delete_button, Qt.MouseButton.LeftButton)
    assert len(ctx.document.project.pages) == 4 and source.id in page_ids(ctx)
    assert row_ids(strip) == page_ids(ctx)
    ctx.undo_stack.undo()
    assert len(ctx.document.project.pages) == 5 and row_ids(strip) == page_ids(ctx)

    menu = strip.context_menu()
    assert [a.text() for a in menu.actions()] == ["Add page", "Duplicate page", "Delete page"]


def _drag_row(qtbot, strip: PagesStrip, source: int, target_pos: QPoint) -> None:
    vp = strip.list.viewport()
    start = strip.list.visualItemRect(strip.list.item(source)).center()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for i in range(1, 6):
        qtbot.mouseMove(vp, start + (target_pos - start) * (i / 5))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=target_pos)


def test_reorder_by_drag(qtbot, strip, ctx):
    first, second, third = page_ids(ctx)
    # Drag page 1 below page 3.
    last = strip.list.visualItemRect(strip.list.item(2))
    _drag_row(qtbot, strip, 0, QPoint(last.center().x(), last.bottom() - 2))
    assert page_ids(ctx) == [second, third, first]
    assert row_ids(strip) == page_ids(ctx)
    assert ctx.undo_stack.count() >= 1 and ctx.undo_stack.undoText() == "Move page"
    # Drag (now) page 3 to the top.
    top = strip.list.visualItemRect(strip.list.item(0))
    _drag_row(qtbot, strip, 2, QPoint(top.center().x(), top.top() + 2))
    assert page_ids(ctx) == [first, second, third]
    ctx.undo_stack.undo()
    assert page_ids(ctx) == [second, third, first]


def test_thumbnail_repaints_only_changed_page(qtbot, strip, ctx):
    painted = []
    original = strip._paint_some

    def spy():
        painted.extend(strip._pending)
        original()

    strip._paint_some = spy
    strip._timer.timeout.disconnect()
    strip._timer.timeout.connect(spy)
    page = ctx.document.project.pages[1]
    editing.split_panel(ctx.document, page.panels[0].id, "vertical")
    qtbot.waitUntil(lambda: not strip._pending, timeout=2000)
    assert painted and set(painted) == {page.id}


def test_thumbnails_of_a_long_book_are_painted_a_time_budget_at_a_time(qtbot, ctx, monkeypatch):
    # The real tick length is measured by ``bench/run.py --only pages_strip``; here a fake clock in
    # which every reading is a third of the budget later shows that a tick stops when it is spent.
    for _ in range(60):
        editing.add_page(ctx.document, "grid-3x3")
    widget = PagesStrip(ctx)
    qtbot.addWidget(widget)
    readings = iter(range(10**6))
    clock = SimpleNamespace(perf_counter=lambda: next(readings) * pages_strip.TICK_BUDGET_S / 3)
    monkeypatch.setattr(pages_strip, "time", clock)
    painted_per_tick = []
    while widget._pending:
        before = len(widget._pending)
        widget._paint_some()
        painted_per_tick.append(before - len(widget._pending))
    assert max(painted_per_tick) <= 3 and len(painted_per_tick) >= 61 / 3
    assert all(not widget.list.item(r).icon().isNull() for r in range(widget.list.count()))

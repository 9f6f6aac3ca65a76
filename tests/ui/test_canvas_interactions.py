"""PageCanvas through real mouse and key events (offscreen): gutters, split/merge, balloons."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from comic_studio.core import editing
from comic_studio.core.layout import find_shared_borders
from comic_studio.core.layout.geometry import polygon_distance
from comic_studio.core.model import BalloonKind, Box, Character, CharacterPlacement, Page
from comic_studio.ui.canvas import PageCanvas
from comic_studio.ui.canvas.tools import aim_for_tip


@pytest.fixture
def canvas(qtbot, ctx):
    page = editing.add_page(ctx.document, "grid-2x2")
    ctx.select_page(page.id)
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    view.resize(700, 1000)
    view.show()
    qtbot.waitExposed(view)
    view.fit_page()
    return view


def to_view(view: PageCanvas, x: float, y: float) -> QPoint:
    return view.mapFromScene(QPointF(x, y))


def drag(qtbot, view: PageCanvas, start: tuple[float, float], end: tuple[float, float], steps: int = 5) -> None:
    """Press at ``start``, move in steps, release at ``end`` (scene coordinates)."""
    vp = view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=to_view(view, *start))
    for i in range(1, steps + 1):
        t = i / steps
        qtbot.mouseMove(vp, to_view(view, start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=to_view(view, *end))


def page_of(ctx) -> Page:
    return ctx.current_page


def test_shows_four_panels_with_guides(canvas, ctx):
    scene = canvas.page_scene
    assert set(scene.panel_items) == {p.id for p in page_of(ctx).panels}
    assert len(scene.panel_items) == 4
    assert scene.guides_item is not None and scene.guides_item.isVisible()
    canvas.set_show_guides(False)
    assert not scene.guides_item.isVisible()
    # 1 pt → 1 px at 100 %.
    canvas.actual_size()
    assert canvas.zoom == pytest.approx(1.0)
    canvas.zoom_in()
    assert canvas.zoom == pytest.approx(1.25)
    canvas.fit_page()
    rect = canvas.mapFromScene(scene.page_item.paper_rect()).boundingRect()
    assert canvas.viewport().rect().contains(rect)


def test_drag_vertical_border_keeps_gutter_and_is_one_undo_step(qtbot, canvas, ctx):
    fmt = ctx.document.project.page_format
    before = {p.id: list(p.shape) for p in page_of(ctx).panels}
    handles = [i for i in canvas.page_scene.border_items if i.border.orientation == "vertical"]
    top = min(handles, key=lambda h: h.border.start[1])
    border = top.border
    mid = ((border.start[0] + border.end[0]) / 2, (border.start[1] + border.end[1]) / 2)
    undo_count = ctx.undo_stack.count()

    drag(qtbot, canvas, mid, (mid[0] + 40, mid[1]), steps=8)

    assert ctx.undo_stack.count() == undo_count + 1  # the whole drag is one step
    panels = {p.id: p for p in page_of(ctx).panels}
    left_id = next(pid for pid, _e in border.side_a)
    right_id = next(pid for pid, _e in border.side_b)
    left, right = panels[left_id], panels[right_id]
    assert max(x for x, _ in left.shape) == pytest.approx(max(x for x, _ in before[left_id]) + 40, abs=1.0)
    assert min(x for x, _ in right.shape) == pytest.approx(min(x for x, _ in before[right_id]) + 40, abs=1.0)
    assert polygon_distance(left.shape, right.shape) == pytest.approx(fmt.gutter, abs=1e-3)
    assert any(b.orientation == "vertical" for b in find_shared_borders(page_of(ctx).panels, fmt.gutter))

    ctx.undo_stack.undo()
    assert {p.id: list(p.shape) for p in page_of(ctx).panels} == before
    # The canvas followed the document back.
    item = canvas.page_scene.panel_items[left_id]
    assert item.rect.right() == pytest.approx(max(x for x, _ in before[left_id]))


def test_split_and_merge_through_canvas(qtbot, canvas, ctx):
    first = page_of(ctx).panels_in_order()[0]
    ctx.select_panels([first.id])
    canvas.split_selected("vertical")
    assert len(page_of(ctx).panels) == 5
    assert len(canvas.page_scene.panel_items) == 5
    new = [p for p in page_of(ctx).panels if p.id != first.id and p.order == first.order + 1][0]
    canvas.split_selected("diagonal")  # still selected: the first piece keeps its id
    assert len(page_of(ctx).panels) == 6
    ctx.undo_stack.undo()
    assert len(page_of(ctx).panels) == 5
    ctx.select_panels([first.id, new.id])
    canvas.merge_selected()
    assert len(page_of(ctx).panels) == 4
    assert len(canvas.page_scene.panel_items) == 4
    canvas.apply_template("three-tier")
    assert page_of(ctx).template_id == "three-tier"
    assert len(canvas.page_scene.panel_items) == len(page_of(ctx).panels)
    ctx.select_panels([page_of(ctx).panels[0].id])
    canvas.delete_selected()
    assert len(canvas.page_scene.panel_items) == len(page_of(ctx).panels)


def test_rubber_band_selects_panels(qtbot, canvas, ctx):
    fmt = ctx.document.project.page_format
    # A band across the top half from the desk (outside the page, so no item is pressed).
    drag(qtbot, canvas, (-20, -20), (fmt.width * 0.9, fmt.height * 0.3))
    top = sorted(page_of(ctx).panels, key=lambda p: min(y for _, y in p.shape))[:2]
    assert set(ctx.selected_panel_ids) == {p.id for p in top}


def _cast_panel(ctx):
    """Put Mara's head in the first panel (panel-normalised), return (panel, head point)."""
    mara = Character(name="Mara")
    doc = ctx.document
    from comic_studio.core.commands import InsertItem, SetFields

    doc.execute(InsertItem(("characters",), mara, text="Add character"))
    panel = page_of(ctx).panels_in_order()[0]
    placement = CharacterPlacement(character_id=mara.id, head=(0.75, 0.35), head_radius=0.08)
    doc.execute(SetFields(("panel", panel.id), "Cast", characters=[placement]))
    from comic_studio.core.layout import bbox

    box = bbox(panel.shape)
    return panel, mara, (box.x + 0.75 * box.w, box.y + 0.35 * box.h)


def test_balloon_add_edit_move_retarget(qtbot, canvas, ctx):
    panel, mara, head = _cast_panel(ctx)
    from comic_studio.core.layout import bbox

    pb = bbox(panel.shape)
    click = (pb.x + 0.3 * pb.w, pb.y + 0.25 * pb.h)
    canvas.set_tool("speech")
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=to_view(canvas, *click))
    balloons = ctx.document.project.find_panel(panel.id)[1].balloons
    assert len(balloons) == 1
    balloon = balloons[0]
    assert balloon.kind is BalloonKind.SPEECH and balloon.tail.character_id == mara.id  # nearest head
    assert balloon.box.cx == pytest.approx(click[0], abs=1) and balloon.box.cy == pytest.approx(click[1], abs=1)

    # The in-place editor opened; typing edits the document live, as one undo step.
    editor = canvas.editor
    assert editor is not None and editor.isVisible()
    steps = ctx.undo_stack.count()
    qtbot.keyClicks(editor, "Hello there")
    assert ctx.document.project.find_panel(panel.id)[1].balloons[0].text == "Hello there"
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert canvas.editor is None
    assert ctx.undo_stack.count() == steps + 1
    item = canvas.page_scene.balloon_items[balloon.id]
    assert item.paths is not None and " ".join(line.text for line in item.paths.geometry.lines) == "Hello there"

    # Double-click opens it again; Escape restores the text.
    qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=to_view(canvas, *click))
    assert canvas.editor is not None
    qtbot.keyClicks(canvas.editor, "!!")
    qtbot.keyClick(canvas.editor, Qt.Key.Key_Escape)
    assert ctx.document.project.find_panel(panel.id)[1].balloons[0].text == "Hello there"

    # Move by dragging the body (select tool): one merged step, auto_placed cleared.
    canvas.set_tool("select")
    box0 = ctx.document.project.find_panel(panel.id)[1].balloons[0].box
    steps = ctx.undo_stack.count()
    drag(qtbot, canvas, (box0.cx, box0.cy), (box0.cx + 15, box0.cy + 25))
    box1 = ctx.document.project.find_panel(panel.id)[1].balloons[0].box
    assert (box1.x - box0.x, box1.y - box0.y) == (pytest.approx(15, abs=2), pytest.approx(25, abs=2))
    assert ctx.undo_stack.count() == steps + 1
    assert ctx.selected_balloon_id == balloon.id

    # Retarget: first drop the tip on empty art (a point), then on Mara's head (the character).
    tail = item.tail_handle
    assert tail.isVisible()
    start = (tail.pos().x(), tail.pos().y())
    empty = (pb.x + 0.2 * pb.w, pb.y + 0.8 * pb.h)
    drag(qtbot, canvas, start, empty)
    stored = ctx.document.project.find_panel(panel.id)[1].balloons[0]
    assert stored.tail.character_id is None and stored.tail.point is not None
    assert item.tail_tip.x() == pytest.approx(empty[0], abs=2) and item.tail_tip.y() == pytest.approx(empty[1], abs=2)
    drag(qtbot, canvas, (item.tail_tip.x(), item.tail_tip.y()), head)
    stored = ctx.document.project.find_panel(panel.id)[1].balloons[0]
    assert stored.tail.character_id == mara.id

    # Resize with the corner handle.
    corner = item.resize_handle.pos()
    drag(qtbot, canvas, (corner.x(), corner.y()), (corner.x() + 20, corner.y() + 10))
    box2 = ctx.document.project.find_panel(panel.id)[1].balloons[0].box
    assert box2.w == pytest.approx(box1.w + 20, abs=2) and box2.h == pytest.approx(box1.h + 10, abs=2)
    assert (box2.x, box2.y) == (pytest.approx(box1.x), pytest.approx(box1.y))


def test_balloon_kind_menu_caption_sfx_and_delete(qtbot, canvas, ctx):
    panel = page_of(ctx).panels_in_order()[1]
    from comic_studio.core.layout import bbox

    pb = bbox(panel.shape)
    for tool in ("caption", "sfx", "thought", "whisper", "shout"):
        canvas.set_tool(tool)
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=to_view(canvas, pb.cx, pb.cy))
        canvas.editor.finish()
    kinds = [b.kind.value for b in ctx.document.project.find_panel(panel.id)[1].balloons]
    assert kinds == ["caption", "sfx", "thought", "whisper", "shout"]
    caption = ctx.document.project.find_panel(panel.id)[1].balloons[0]
    menu = canvas.page_scene.balloon_menu(caption.id)
    kind_menu = menu.actions()[0].menu()
    next(a for a in kind_menu.actions() if a.text() == "Shout").trigger()
    assert ctx.document.project.find_panel(panel.id)[1].balloons[0].kind is BalloonKind.SHOUT
    ctx.select_balloon(caption.id)
    canvas.delete_selected()
    assert len(ctx.document.project.find_panel(panel.id)[1].balloons) == 4
    assert caption.id not in canvas.page_scene.balloon_items
    with pytest.raises(ValueError):
        canvas.set_tool("brush")


def test_overflowing_text_marks_balloon(qtbot, canvas, ctx):
    panel = page_of(ctx).panels[0]
    balloon = editing.add_balloon(
        ctx.document, panel.id, BalloonKind.SPEECH, Box(x=60, y=60, w=30, h=20), "far too much text " * 10
    )
    item = canvas.page_scene.balloon_items[balloon.id]
    assert item.fits is False


def test_aim_for_tip_puts_tip_where_dropped():
    from comic_studio.core.lettering.shapes import body_outline
    from comic_studio.core.lettering.tails import edge_point, tail_tip
    from comic_studio.core.model import Balloon

    b = Balloon(box=Box(x=0, y=0, w=80, h=40))
    target = aim_for_tip(b, (60, 90))
    edge = edge_point(body_outline(b.kind, b.box, b.id), (40, 20), target)
    tip = tail_tip(edge, target)
    assert math.dist(tip, (60, 90)) < 1e-6


def test_panel_double_click_emits_activated(qtbot, canvas, ctx):
    panel = page_of(ctx).panels[0]
    from comic_studio.core.layout import centroid

    with qtbot.waitSignal(canvas.panel_activated) as blocker:
        qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=to_view(canvas, *centroid(panel.shape)))
    assert blocker.args == [panel.id]


def test_ctrl_wheel_zooms_plain_wheel_scrolls(qtbot, canvas):
    from PySide6.QtCore import QPoint as P
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    z = canvas.zoom
    centre = QPointF(canvas.viewport().rect().center())
    glob = QPointF(canvas.viewport().mapToGlobal(centre.toPoint()))
    ev = QWheelEvent(
        centre,
        glob,
        P(0, 0),
        P(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), ev)
    assert canvas.zoom == pytest.approx(z * 1.25)
    ev = QWheelEvent(
        centre,
        glob,
        P(0, 0),
        P(0, -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), ev)
    assert canvas.zoom == pytest.approx(z * 1.25)


def test_middle_drag_and_space_drag_pan(qtbot, canvas):
    canvas.set_zoom(2.0)
    vp = canvas.viewport()
    bar = canvas.verticalScrollBar()
    start = bar.value()
    centre = vp.rect().center()
    qtbot.mousePress(vp, Qt.MouseButton.MiddleButton, pos=centre)
    qtbot.mouseMove(vp, centre + QPoint(0, -60))
    qtbot.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=centre + QPoint(0, -60))
    assert bar.value() == start + 60
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(vp, centre + QPoint(0, 30))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=centre + QPoint(0, 30))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert bar.value() == start + 30


def test_follows_undo_page_switch_and_new_document(qtbot, canvas, ctx):
    from comic_studio.core.document import Document

    panel = page_of(ctx).panels[0]
    balloon = editing.add_balloon(ctx.document, panel.id, BalloonKind.SPEECH, Box(x=60, y=60, w=60, h=30), "Hi")
    assert balloon.id in canvas.page_scene.balloon_items
    ctx.document.undo()
    assert balloon.id not in canvas.page_scene.balloon_items
    other = editing.add_page(ctx.document, "splash")
    ctx.select_page(other.id)
    assert set(canvas.page_scene.panel_items) == {p.id for p in other.panels}
    fresh = Document.new()
    editing.add_page(fresh, "two-tier")
    ctx.set_document(fresh)
    assert set(canvas.page_scene.panel_items) == {p.id for p in fresh.project.pages[0].panels}
    ctx.set_document(Document.new())  # no pages: an empty desk, no crash
    assert canvas.page_scene.panel_items == {} and canvas.page_scene.page_item is None

"""A gutter dragged with the mouse on the canvas carries the balloons of its panels (one undo
step); the screenshot shows the page after the drag."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt

from comic_studio.core import editing
from comic_studio.core.layout import bbox
from comic_studio.core.model import BalloonKind, Box
from comic_studio.ui.canvas import PageCanvas


def test_balloons_follow_a_gutter_dragged_with_the_mouse(qtbot, ctx, shots):
    page = editing.add_page(ctx.document, "grid-2x2")
    ctx.select_page(page.id)
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    view.resize(700, 1000)
    view.show()
    qtbot.waitExposed(view)
    view.fit_page()
    handle = next(h for h in view.page_scene.border_items
                  if h.border.orientation == "vertical" and len(h.border.side_a) == 1)  # fmt: skip
    left_id = handle.border.side_a[0][0]
    lb = bbox(ctx.document.project.find_panel(left_id)[1].shape)
    balloon = ctx.edit(editing.add_balloon, left_id, BalloonKind.SPEECH,
                       Box(x=lb.x + lb.w - 110, y=lb.y + 40, w=100, h=50), "Wait for me!")  # fmt: skip
    steps = ctx.undo_stack.count()
    b = handle.border
    start = QPointF((b.start[0] + b.end[0]) / 2, (b.start[1] + b.end[1]) / 2)
    vp = view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=view.mapFromScene(start))
    for i in range(1, 11):
        qtbot.mouseMove(vp, view.mapFromScene(start + QPointF(-10.0 * i, 0)))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=view.mapFromScene(start + QPointF(-100, 0)))
    view.grab().save(str(shots / "balloon_after_gutter_drag.png"))

    assert ctx.undo_stack.count() == steps + 1
    panel = ctx.document.project.find_panel(left_id)[1]
    now = bbox(panel.shape)
    assert now.w < lb.w - 90
    [moved] = panel.balloons
    assert moved.id == balloon.id and moved.box.x + moved.box.w <= now.x + now.w + 0.5
    item = view.page_scene.balloon_items[balloon.id]  # the canvas shows it where the document has it
    assert abs(item.sceneBoundingRect().center().x() - moved.box.cx) < 2

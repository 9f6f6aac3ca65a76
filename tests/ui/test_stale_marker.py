"""The stale marker: a split that makes the crop cut a rendered figure marks the panel; one click
re-renders it at the new size with the same seed and pose, which clears the marker; undo brings
the marker back. The screenshot shows the marker on the page."""

from __future__ import annotations

from PySide6.QtCore import Qt
from render_helpers import small_document

from comic_studio.core import editing
from comic_studio.core.layout import bbox
from comic_studio.generation.request import GenerationRequest
from comic_studio.ui.canvas import PageCanvas
from comic_studio.ui.render_service import RenderService
from comic_studio.workflows.requests import panel_pixel_size
from comic_studio.workflows.stale import stale_crop


def test_split_marks_a_cut_panel_and_one_click_rerenders_it(qtbot, ctx, shots):
    ctx.set_document(small_document())
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    view.resize(700, 1000)
    view.show()
    qtbot.waitExposed(view)
    service = RenderService(ctx)
    view.follow_renders(service)
    scene = view.page_scene
    try:
        page = ctx.current_page
        panel = next(p for p in page.panels_in_order() if p.characters)
        service.render_panels([panel.id])
        qtbot.waitUntil(service.is_idle, timeout=60_000)
        first = ctx.document.project.find_panel(panel.id)[1].result()
        assert first is not None and panel.id not in scene.stale.items  # rendered for its shape

        # Split into a top and a bottom: the first piece keeps the image, now twice as wide as tall.
        ctx.edit(editing.split_panel, panel.id, "horizontal")
        assert stale_crop(ctx.document.project.find_panel(panel.id)[1]) is not None
        marker = scene.stale.items[panel.id]
        assert marker.isVisible() and "crop now cuts" in marker.toolTip()
        view.fit_page()
        images, item = scene.images, scene.panel_items[panel.id]
        qtbot.waitUntil(lambda: images.cover_pixmap(ctx.document.assets, item.asset, item.rect, 1.0) is not None)
        view.grab().save(str(shots / "stale_marker.png"))

        # Undo the split: not stale; redo: stale again.
        ctx.undo_stack.undo()
        assert panel.id not in scene.stale.items
        ctx.undo_stack.redo()
        assert panel.id in scene.stale.items

        # One click on the pill (a real mouse click on the canvas) re-renders at the new size.
        marker = scene.stale.items[panel.id]
        # The pill ignores the view's transform: its centre is offset in screen pixels from its corner.
        pos = view.mapFromScene(marker.scenePos()) + marker.boundingRect().center().toPoint()
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        qtbot.waitUntil(lambda: not service.is_idle(), timeout=5_000)
        qtbot.waitUntil(service.is_idle, timeout=60_000)
        now = ctx.document.project.find_panel(panel.id)[1]
        second = now.result()
        assert second.id != first.id
        old, new = GenerationRequest.from_dict(first.request), GenerationRequest.from_dict(second.request)
        assert second.seed == first.seed and new.pose_id == old.pose_id  # same seed, same pose
        assert (new.width, new.height) == panel_pixel_size(ctx.document.project, now) != (old.width, old.height)
        assert panel.id not in scene.stale.items  # re-render clears it
        view.grab().save(str(shots / "stale_marker_after_rerender.png"))
        # Undo the re-render: the marker is back.
        ctx.undo_stack.undo()
        assert ctx.document.project.find_panel(panel.id)[1].result().id == first.id
        assert panel.id in scene.stale.items
        assert bbox(ctx.document.project.find_panel(panel.id)[1].shape).w > 0
    finally:
        service.shutdown()

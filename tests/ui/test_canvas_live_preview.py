"""Renders in progress on the page canvas, through the real RenderService, Engine and bridge: the
queued badge, the live preview drawn in the panel with its progress strip, the × that cancels,
the error badge, and the final image once the job is over."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QImage
from render_helpers import FailingBackend, GateBackend, small_document

from comic_studio.core import editing
from comic_studio.core.settings import AppSettings
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.ui.canvas import PageCanvas
from comic_studio.ui.canvas.items import BalloonItem
from comic_studio.ui.main_window import MainWindow
from comic_studio.ui.render_service import PREVIEW_SIDE, RenderService, _preview_image

PREVIEW = QColor("#cc3333")  # GateBackend's live preview
FINAL = QColor("#336699")  # GateBackend's image


@pytest.fixture
def backends():
    GateBackend.release.clear()
    GateBackend.started.clear()
    register_backend("test-gate", GateBackend)
    register_backend("test-fail", FailingBackend)
    yield
    GateBackend.release.set()
    unregister_backend("test-gate")
    unregister_backend("test-fail")


@pytest.fixture
def studio(ctx, qtbot, backends):
    ctx.set_document(small_document())
    service = RenderService(ctx)
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    view.follow_renders(service)
    view.resize(640, 860)
    view.show()
    qtbot.waitExposed(view)
    view.fit_page()
    yield ctx, service, view
    GateBackend.release.set()
    service.shutdown()


def _use(ctx, panel_id: str, backend: str, **settings) -> None:
    ctx.edit(editing.set_panel_fields, panel_id, "Backend", backend=backend, backend_settings=settings)


def _panels(ctx):
    return ctx.current_page.panels_in_order()


def _close(a: QColor, b: QColor, tolerance: int = 12) -> bool:
    return max(abs(a.red() - b.red()), abs(a.green() - b.green()), abs(a.blue() - b.blue())) <= tolerance


def _art_colours(view: PageCanvas, panel_id: str) -> list[QColor]:
    """Screen colours on a grid over the panel's art: away from the badges at its top, the progress
    strip at its bottom and any balloon, from edge to edge (a preview fitted inside instead of
    covering the panel would leave grey at two sides)."""
    scene = view.page_scene
    box = view.mapFromScene(scene.panel_items[panel_id].rect).boundingRect()
    image: QImage = view.grab().toImage()
    ratio = image.devicePixelRatio()
    colours = []
    for i in range(9):
        for j in range(7):
            x = box.left() + 8 + (box.width() - 16) * i / 8
            y = box.top() + 40 + (box.height() - 72) * j / 6
            near = view.items(QRect(int(x) - 4, int(y) - 4, 9, 9))  # a balloon's outline reaches past its shape
            if any(isinstance(item, BalloonItem) for item in near):
                continue
            colours.append(QColor(image.pixel(int(x * ratio), int(y * ratio))))
    assert len(colours) > 20, "the sampled panel is mostly covered by balloons"
    return colours


def _shows(view: PageCanvas, panel_id: str, colour: QColor) -> bool:
    return all(_close(c, colour) for c in _art_colours(view, panel_id))


def _click(qtbot, view: PageCanvas, button) -> None:
    """Click the middle of an overlay button (a fixed-size item anchored at a panel corner)."""
    anchor = view.mapFromScene(button.scenePos())
    centre = button.boundingRect().center()
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=anchor + QPoint(round(centre.x()), round(centre.y()))
    )


def test_previews_are_kept_big_enough_for_the_canvas():
    # Reduced on the worker thread to PREVIEW_SIDE (the canvas scales it up smoothly, the queue down).
    big = _preview_image(Image.new("RGB", (1024, 768), "#cc3333"))
    assert PREVIEW_SIDE >= 256 and (big.width(), big.height()) == (PREVIEW_SIDE, PREVIEW_SIDE * 3 // 4)
    small = _preview_image(Image.new("RGB", (64, 48)))
    assert (small.width(), small.height()) == (64, 48)  # never enlarged


def test_queued_badge_live_preview_progress_and_final_image(studio, qtbot):
    ctx, service, view = studio
    scene = view.page_scene
    first, second = _panels(ctx)[:2]
    _use(ctx, first.id, "test-gate", steps=4)
    _use(ctx, second.id, "test-gate", steps=4)
    before = _art_colours(view, first.id)  # the grey placeholder
    assert not any(_close(c, PREVIEW) for c in before)

    running_id, _waiting_id = service.render_panels([first.id, second.id])
    # Both panels carry an overlay at once; the second waits behind the first.
    assert set(scene.live.items) == {first.id, second.id}
    waiting = scene.live.items[second.id]
    qtbot.waitUntil(lambda: waiting.state == "queued" and waiting.text == "Queued · 1", timeout=10_000)
    assert waiting.cancel_button.isVisible() and not waiting.error_badge.isVisible()

    item = scene.live.items[first.id]
    panel_item = scene.panel_items[first.id]
    qtbot.waitUntil(lambda: item.state == "running" and panel_item.preview_is_live, timeout=10_000)
    # The panel draws the preview edge to edge (cover-cropped), not the placeholder.
    qtbot.waitUntil(lambda: _shows(view, first.id, PREVIEW), timeout=5_000)
    assert re.fullmatch(r"step [0-3]/4( · ETA .+)?", item.text), item.text
    assert item.fraction is not None and 0 <= item.fraction < 1
    # The progress strip darkens the panel's bottom edge.
    bottom = view.mapFromScene(QPointF(panel_item.rect.center().x(), panel_item.rect.bottom())) - QPoint(0, 5)
    strip = QColor(view.grab().toImage().pixel(bottom))
    assert strip.lightness() < PREVIEW.lightness() - 30
    # Progress repaints the overlay in place: the same item, no rebuild per step.
    step_text = item.text
    qtbot.waitUntil(lambda: item.text != step_text or service.job(running_id).step >= 3, timeout=5_000)
    assert scene.live.items[first.id] is item

    # Turning to another page and back brings the overlay back with the preview.
    page = ctx.current_page
    other = ctx.edit(editing.add_page)
    ctx.select_page(other.id)
    assert scene.live.items == {} and first.id not in scene.panel_items
    ctx.select_page(page.id)
    assert first.id in scene.live.items and scene.panel_items[first.id].preview_is_live
    assert scene.live.items[second.id].state == "queued"

    GateBackend.release.set()
    qtbot.waitUntil(service.is_idle, timeout=20_000)
    assert scene.live.items == {}
    assert not scene.panel_items[first.id].preview_is_live
    qtbot.waitUntil(lambda: _shows(view, first.id, FINAL) and _shows(view, second.id, FINAL), timeout=10_000)
    assert scene.panel_items[first.id].live_preview is None  # the stand-in is dropped once the image shows


def test_cancel_button_cancels_and_restores_the_previous_image(studio, qtbot):
    ctx, service, view = studio
    scene = view.page_scene
    panel = _panels(ctx)[0]
    _use(ctx, panel.id, "test-gate", steps=8)
    GateBackend.release.set()  # the first render finishes straight away: the panel's image
    service.render_panels([panel.id])
    qtbot.waitUntil(service.is_idle, timeout=20_000)
    qtbot.waitUntil(lambda: _shows(view, panel.id, FINAL), timeout=10_000)

    GateBackend.release.clear()
    (job_id,) = service.render_panels([panel.id])
    item = scene.live.items[panel.id]
    qtbot.waitUntil(lambda: scene.panel_items[panel.id].preview_is_live, timeout=10_000)
    qtbot.waitUntil(lambda: _shows(view, panel.id, PREVIEW), timeout=5_000)
    selected = list(ctx.selected_panel_ids)

    _click(qtbot, view, item.cancel_button)
    qtbot.waitUntil(lambda: service.job(job_id) is None, timeout=10_000)
    assert scene.live.items == {}
    assert _shows(view, panel.id, FINAL)  # the old image is back, at once
    found = ctx.document.project.find_panel(panel.id)[1]
    assert len(found.results) == 1
    assert list(ctx.selected_panel_ids) == selected  # the click went to the button, not the panel


def test_error_badge_with_the_error_in_its_tooltip(studio, qtbot):
    ctx, service, view = studio
    scene = view.page_scene
    panel = _panels(ctx)[0]
    _use(ctx, panel.id, "test-fail")
    (failed,) = service.render_panels([panel.id])
    qtbot.waitUntil(lambda: service.job(failed).state == "error", timeout=10_000)
    item = scene.live.items[panel.id]
    assert item.state == "error" and item.error_badge.isVisible() and not item.cancel_button.isVisible()
    assert "the model file is corrupt" in item.error_badge.toolTip()
    badge = view.mapFromScene(item.error_badge.scenePos()) + item.error_badge.boundingRect().center().toPoint()
    assert QColor(view.grab().toImage().pixel(badge)).red() > 150  # red on the grey placeholder

    # A click dismisses the badge on the canvas; the queue keeps its row.
    _click(qtbot, view, item.error_badge)
    qtbot.waitUntil(lambda: scene.live.items == {}, timeout=5_000)
    assert service.job(failed) is not None

    # A new failure shows again, and the panel's next render replaces it.
    (failed_again,) = service.render_panels([panel.id])
    qtbot.waitUntil(lambda: service.job(failed_again).state == "error", timeout=10_000)
    qtbot.waitUntil(lambda: panel.id in scene.live.items and scene.live.items[panel.id].state == "error", timeout=5_000)
    _use(ctx, panel.id, "test-gate", steps=4)
    service.render_panels([panel.id])
    qtbot.waitUntil(lambda: scene.live.items[panel.id].state == "running", timeout=10_000)
    GateBackend.release.set()
    qtbot.waitUntil(service.is_idle, timeout=20_000)
    assert service.job(failed_again) is not None  # still listed in the queue...
    assert scene.live.items == {}  # ...but no longer flagged on the panel that rendered since
    qtbot.waitUntil(lambda: _shows(view, panel.id, FINAL), timeout=10_000)


def test_the_studio_window_shows_its_renders_in_the_panels(qtbot, tmp_path, monkeypatch, backends):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    window = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(window)
    window.ctx.set_document(small_document())
    panel = _panels(window.ctx)[0]
    _use(window.ctx, panel.id, "test-gate", steps=4)
    window.render_service.render_panels([panel.id])
    live = window.canvas.page_scene.live
    qtbot.waitUntil(lambda: panel.id in live.items and live.items[panel.id].state == "running", timeout=10_000)
    GateBackend.release.set()
    qtbot.waitUntil(window.render_service.is_idle, timeout=20_000)
    assert live.items == {}
    window.ctx.undo_stack.setClean()

"""The queue panel mirrors the RenderService's jobs: rows, progress with a live preview, Cancel,
Cancel all, errors in the row (tooltip details, no dialog)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog
from render_helpers import FailingBackend, GateBackend, all_panels, small_document

from comic_studio.core import editing
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.ui.queue_panel import QueuePanel, format_seconds
from comic_studio.ui.render_service import RenderService


@pytest.fixture
def queue(ctx, qtbot):
    GateBackend.release.clear()
    GateBackend.started.clear()
    register_backend("test-gate", GateBackend)
    register_backend("test-fail", FailingBackend)
    ctx.set_document(small_document())
    service = RenderService(ctx)
    panel = QueuePanel(ctx, service)
    qtbot.addWidget(panel)
    panel.resize(480, 360)
    panel.show()
    yield ctx, service, panel
    GateBackend.release.set()
    service.shutdown()
    unregister_backend("test-gate")
    unregister_backend("test-fail")


def _gate_all(ctx):
    for p in all_panels(ctx.document):
        ctx.edit(editing.set_panel_fields, p.id, "Backend", backend="test-gate", backend_settings={"steps": 20})


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 0, 7.4, 125, 3780)] == ["", "0s", "7s", "2m 05s", "1h 03m"]


def test_rows_progress_preview_and_cancel(queue, qtbot, tmp_path):
    ctx, service, panel = queue
    assert panel.placeholder.isVisibleTo(panel) and not panel.list.isVisibleTo(panel)
    _gate_all(ctx)
    ids = service.render_all()
    assert panel.list.count() == len(ids) and not panel.placeholder.isVisibleTo(panel)
    running = ids[0]
    qtbot.waitUntil(lambda: service.job(running).state == "progress", timeout=10_000)
    row = panel.row(running)
    qtbot.waitUntil(lambda: row.thumb.pixmap() is not None and not row.thumb.pixmap().isNull(), timeout=5_000)
    assert row.bar.maximum() == 20 and "/20" in row.bar.format()
    assert "Rendering" in row.state.text()
    assert panel.row(ids[-1]).state.text() == "Waiting"
    # The row follows each engine message at once; the summary follows jobs_changed, which the
    # service emits once per event-loop turn, after that turn's messages. When the "started" and
    # the first preview's messages are handled in the same turn (a loaded machine), the row is
    # already "Rendering" with its thumbnail while the summary's update is still posted.
    qtbot.waitUntil(lambda: "rendering" in panel.summary.text(), timeout=1_000)
    assert "1 rendering" in panel.summary.text() and "waiting" in panel.summary.text()
    panel.grab().save(str(tmp_path / "queue.png"))

    qtbot.mouseClick(panel.row(ids[-1]).cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.row(ids[-1]) is None, timeout=5_000)
    assert panel.list.count() == len(ids) - 1

    qtbot.mouseClick(panel.cancel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.list.count() == 0, timeout=10_000)
    assert panel.summary.text() == "Idle" and not panel.cancel_all_button.isEnabled()
    assert not any(p.results for p in all_panels(ctx.document))


def test_finished_rows_leave_and_results_land(queue, qtbot):
    ctx, service, panel = queue
    qtbot.mouseClick(panel.render_page_button, Qt.MouseButton.LeftButton)
    page = ctx.current_page
    assert panel.list.count() == len(page.panels)
    qtbot.waitUntil(lambda: panel.list.count() == 0, timeout=30_000)
    assert all(p.result() for p in ctx.current_page.panels)
    qtbot.mouseClick(panel.render_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(service.is_idle, timeout=30_000)
    assert all(p.result() for p in all_panels(ctx.document))


def test_error_row_shows_message_and_details_without_a_dialog(queue, qtbot, tmp_path):
    ctx, service, panel = queue
    target = all_panels(ctx.document)[0]
    ctx.edit(editing.set_panel_fields, target.id, "Backend", backend="test-fail", backend_settings={})
    job_id = service.render_panels([target.id])[0]
    qtbot.waitUntil(lambda: service.job(job_id).state == "error", timeout=10_000)
    row = panel.row(job_id)
    assert "Failed" in row.state.text() and "model file is corrupt" in row.state.text()
    assert "Traceback" in row.toolTip() and "RuntimeError" in row.toolTip()
    assert not row.bar.isVisibleTo(row) and row.cancel_button.text() == "Dismiss"
    assert "1 failed" in panel.summary.text()
    assert not any(isinstance(w, QDialog) and w.isVisible() for w in QApplication.topLevelWidgets())
    panel.grab().save(str(tmp_path / "queue-error.png"))
    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    assert panel.list.count() == 0 and service.jobs() == []

"""The window's side of Preferences → Render on: the settings reach the render service, and a cluster
that cannot be used asks whether to render on this computer (no Ray needed: the address is refused
before any connection)."""

from __future__ import annotations

from render_helpers import all_panels, small_document

from comic_studio.core.settings import AppSettings
from comic_studio.ui.main_window import MainWindow


def test_the_window_offers_to_render_here_when_the_cluster_cannot_be_used(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    settings = AppSettings(projects_folder=str(tmp_path), render_on="cluster", cluster_address="local:0")
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    asked: list[tuple[str, str]] = []

    def ask(title, text, buttons, default=None):
        asked.append((title, text))
        return "Render Here" if title == "Render Cluster" else "Discard"

    monkeypatch.setattr(win, "ask", ask)
    win.ctx.set_document(small_document())
    assert win.render_service.render_all()
    ((title, text),) = asked
    assert title == "Render Cluster"
    assert "Cannot render on the cluster at local:0" in text and "between 1 and 64" in text
    qtbot.waitUntil(win.render_service.is_idle, timeout=60_000)
    assert all(p.result() is not None for p in all_panels(win.ctx.document))
    assert win.settings.render_on == "cluster"  # this session renders here; the preference stays


def test_a_new_render_target_applies_once_the_queue_is_empty(ctx, qtbot):
    from comic_studio.ui.render_service import RenderService

    ctx.set_document(small_document())
    service = RenderService(ctx)
    asked: list[str] = []
    service.cluster_fallback = lambda message: asked.append(message) or True
    try:
        first = service.engine
        panel = all_panels(ctx.document)[0]
        assert service.render_panels([panel.id])
        service.set_render_target("local:0")  # the preferences changed while a job may be running
        assert not asked and service._engine is first  # nothing moves mid-way
        qtbot.waitUntil(service.is_idle, timeout=60_000)
        assert service.render_panels([panel.id])  # idle now: the engine follows the preferences
        (message,) = asked  # the cluster was tried (and refused the address), then here again
        assert "local:0" in message and service._engine is not first
        qtbot.waitUntil(service.is_idle, timeout=60_000)
    finally:
        service.shutdown()

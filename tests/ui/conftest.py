"""Qt tests run offscreen; every test gets a fresh StudioContext on a new document."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _gui_thread_collects_cycles(qapp):
    """As in the app (ui/app.py create_application): only the GUI thread collects reference cycles,
    so no engine or background thread destroys a test's Qt objects (core/garbage.py)."""
    from comic_studio.ui.garbage_collector import install_gui_thread_collector

    install_gui_thread_collector(qapp)
    yield


@pytest.fixture
def ctx(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    from comic_studio.ui.context import StudioContext

    return StudioContext()


@pytest.fixture
def shots(tmp_path):
    """The folder a test saves its screenshots in (for looking at, never asserted): the one that
    ``COMIC_STUDIO_SHOTS`` names, to keep them after the run, else the test's own tmp_path."""
    chosen = os.environ.get("COMIC_STUDIO_SHOTS")
    folder = Path(chosen) if chosen else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def studio(ctx, tiny_kit, qtbot, tmp_path, monkeypatch):
    """The identity-anchor studio: the anchor test document (consistent panels on the tiny kit), a real
    RenderService and the character library. Yields ``(ctx, service, library, messages)``."""
    from anchor_helpers import make_document

    from comic_studio.ui.characters import CharacterLibrary
    from comic_studio.ui.render_service import RenderService

    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    ctx.set_document(make_document(tiny_kit))
    service = RenderService(ctx)
    messages: list[str] = []
    ctx.message.connect(messages.append)
    library = CharacterLibrary(ctx, render_service=service)
    qtbot.addWidget(library)
    library.show()
    yield ctx, service, library, messages
    service.shutdown()


@pytest.fixture
def service(ctx):
    """A real RenderService on the test's context (the training dialogs run their jobs on its
    engine), shut down after the test."""
    from comic_studio.ui.render_service import RenderService

    service = RenderService(ctx)
    yield service
    service.shutdown()


@pytest.fixture
def make_library(ctx, qtbot, service):
    """Makes a character library on ``service`` (the training dialogs open from its context menu);
    each call a new one, as after reopening the studio."""
    from comic_studio.ui.characters import CharacterLibrary

    def make():
        library = CharacterLibrary(ctx, render_service=service)
        qtbot.addWidget(library)
        return library

    return make


@pytest.fixture
def queue_rows(ctx, qtbot, service):
    """The render queue panel on ``service`` and the text its job's row shows at every progress
    message, as ``(queue, rows)`` (the panel updates its row before later listeners of the same
    message see it)."""
    from comic_studio.generation.messages import JobEvent
    from comic_studio.ui.queue_panel import QueuePanel

    queue = QueuePanel(ctx, service)
    qtbot.addWidget(queue)
    rows: list[str] = []

    def record(message) -> None:
        row = queue.row(message.job_id)
        if message.event is JobEvent.PROGRESS and row is not None:
            rows.append(row.state.text())

    service.job_message.connect(record)
    return queue, rows

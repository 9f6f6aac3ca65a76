"""EngineBridge: messages from the worker thread arrive on the GUI thread, in order, and drive
the real record/letter edits on the document."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QCoreApplication, QThread

from comic_studio.core.model import Character
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent, JobMessage
from comic_studio.generation.request import GenerationRequest
from comic_studio.ui.engine_bridge import EngineBridge
from comic_studio.workflows.lettering import letter_panel
from comic_studio.workflows.requests import build_request
from comic_studio.workflows.results import record_result
from comic_studio.workflows.story import story_to_document


@pytest.fixture
def engine():
    eng = Engine()
    yield eng
    eng.shutdown()


def collect(bridge: EngineBridge):
    got: list[tuple[JobMessage, bool]] = []
    gui = QCoreApplication.instance().thread()
    bridge.message.connect(lambda m: got.append((m, QThread.currentThread() is gui)))
    return got


def test_messages_arrive_on_the_gui_thread_in_order(qtbot, engine):
    bridge = EngineBridge(engine)
    got = collect(bridge)
    worker_threads = []
    engine.subscribe(lambda m: worker_threads.append(threading.current_thread() is not threading.main_thread()))
    job = engine.submit(GenerationRequest(width=64, height=48, seed=5, panel_id="p"))
    qtbot.waitUntil(lambda: any(m.event.is_final for m, _ in got), timeout=20_000)
    assert any(worker_threads), "the engine did call from its worker thread"
    assert all(on_gui for _, on_gui in got), "every slot ran on the GUI thread"
    events = [m.event for m, _ in got]
    assert events[:2] == [JobEvent.QUEUED, JobEvent.STARTED] and events[-1] is JobEvent.FINISHED
    assert set(events[2:-1]) <= {JobEvent.PROGRESS}
    assert all(m.job_id == job for m, _ in got)
    bridge.close()


def test_progress_is_coalesced_when_the_gui_thread_is_busy(qtbot, engine):
    from engine_bridge_fakes import register, unregister

    register()
    try:
        bridge = EngineBridge(engine)
        got = collect(bridge)
        job = engine.submit(GenerationRequest(backend="bridge-steps", width=16, height=16))
        # Keep the GUI thread busy (no event processing) while the worker runs all its steps.
        assert engine.wait_idle(10)
        qtbot.waitUntil(lambda: any(m.event.is_final for m, _ in got), timeout=5_000)
        events = [m.event for m, _ in got]
        progress = [m for m, _ in got if m.event is JobEvent.PROGRESS]
        assert events[0] is JobEvent.QUEUED and events[-1] is JobEvent.FINISHED
        assert len(progress) == 1 and progress[0].step == progress[0].total == 50, "only the newest progress"
        assert all(m.job_id == job for m, _ in got)
    finally:
        unregister()


def test_finished_message_drives_record_and_letter_edits(qtbot, ctx, engine):
    doc = ctx.document
    mara = Character(name="Mara", colour="#d0563b")
    story_to_document('The lighthouse at night. Mara climbs the stairs. "Who is there?" Mara asked.',
                      [mara], document=doc)  # fmt: skip
    panel = next(p for page in doc.project.pages for p in page.panels if p.beat_id)
    bridge = EngineBridge(engine)

    pngs = []

    def on_message(msg: JobMessage) -> None:
        if msg.event is JobEvent.FINISHED:
            pngs.append(msg.png)
            ctx.edit(record_result, msg.panel_id, msg.request, msg.result, msg.png)
            ctx.edit(letter_panel, msg.panel_id)

    bridge.message.connect(on_message)
    # Word-overlap pose matching: the MiniLM model would spend ~13 s importing torch here.
    request = build_request(doc.project, panel).model_copy(update={"backend_settings": {"pose_matching": "overlap"}})
    engine.submit(request)
    qtbot.waitUntil(lambda: doc.project.find_panel(panel.id)[1].result() is not None, timeout=20_000)
    result = doc.project.find_panel(panel.id)[1].result()
    assert result.backend == "storyboard" and result.seed == request.seed
    assert doc.assets.get(result.asset) == pngs[0], "the worker's PNG bytes are stored as they are"
    assert pngs[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert ctx.undo_stack.count() >= 2
    bridge.close()


def test_closed_bridge_delivers_nothing(qtbot, engine):
    bridge = EngineBridge(engine)
    got = collect(bridge)
    bridge.close()
    engine.submit(GenerationRequest(width=32, height=32))
    assert engine.wait_idle(20)
    qtbot.wait(200)  # one qWait, not a processEvents() loop: see the note on PySide6 6.12 in the report
    assert got == []


def test_deleting_the_bridge_with_its_parent_unsubscribes(qtbot, engine):
    from PySide6.QtCore import QObject

    parent = QObject()
    bridge = EngineBridge(engine, parent)
    assert len(engine._subscribers) == 1
    parent.deleteLater()
    qtbot.waitUntil(lambda: len(engine._subscribers) == 0, timeout=2_000)
    del bridge
    engine.submit(GenerationRequest(width=32, height=32))
    assert engine.wait_idle(20)  # nothing left to deliver to, and nothing crashes

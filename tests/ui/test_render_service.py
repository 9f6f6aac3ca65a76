"""RenderService through the real Engine and EngineBridge: render all, cancel, errors, deleted
panels, current-page priority, exact replays."""

from __future__ import annotations

import pytest
from render_helpers import FailingBackend, GateBackend, all_panels, small_document

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.ui.render_service import RenderService
from comic_studio.workflows.lettering import letter_panel


@pytest.fixture
def service(ctx):
    ctx.set_document(small_document())
    svc = RenderService(ctx)
    messages: list[str] = []
    ctx.message.connect(messages.append)
    svc.messages = messages
    yield svc
    svc.shutdown()


@pytest.fixture
def gate():
    GateBackend.release.clear()
    GateBackend.started.clear()
    register_backend("test-gate", GateBackend)
    register_backend("test-fail", FailingBackend)
    yield GateBackend
    GateBackend.release.set()
    unregister_backend("test-gate")
    unregister_backend("test-fail")


def _use_backend(ctx, panel_id, name, **settings):
    ctx.edit(editing.set_panel_fields, panel_id, "Backend", backend=name, backend_settings=settings)


def test_engine_is_created_lazily(ctx):
    svc = RenderService(ctx)
    assert svc._engine is None
    svc.shutdown()


def test_render_all_records_and_letters_every_panel(ctx, service, qtbot):
    panels = all_panels(ctx.document)
    undo_before = ctx.undo_stack.count()
    job_ids = service.render_all()
    assert len(job_ids) == len(panels) == len(service.jobs())
    qtbot.waitUntil(service.is_idle, timeout=30_000)
    assert service.jobs() == []
    project = ctx.document.project
    for panel in all_panels(ctx.document):
        assert panel.result() is not None and panel.result().asset in ctx.document.assets
    beats_with_words = [
        p for p in all_panels(ctx.document) if (b := project.story.beat(p.beat_id)) and (b.dialogue or b.caption)
    ]
    assert beats_with_words and all(p.balloons for p in beats_with_words)
    # "Render all" of N panels, their results and their lettering, is one undo step (it was 2N),
    # in the core stack and in the Qt mirror alike.
    assert ctx.undo_stack.count() == undo_before + 1
    assert ctx.undo_stack.undoText() == f"Render {len(panels)} panels"
    rendered = ctx.document.project.model_dump()
    ctx.undo_stack.undo()
    assert not any(p.result() or p.balloons for p in all_panels(ctx.document))
    ctx.undo_stack.redo()
    assert ctx.document.project.model_dump() == rendered
    # Nothing left to do: a message, no jobs.
    assert service.render_all() == [] and "already" in service.messages[-1]


def test_render_page_and_skip_busy_panels(ctx, service, gate, qtbot):
    page = ctx.document.project.pages[0]
    first = page.panels_in_order()[0]
    _use_backend(ctx, first.id, "test-gate")
    ids = service.render_page(page.id)
    assert len(ids) == len(page.panels)
    assert service.render_panels([first.id]) == []  # already queued: not twice
    gate.release.set()
    qtbot.waitUntil(service.is_idle, timeout=30_000)
    assert all(p.result() for p in page.panels)


def test_cancel_a_queued_job(ctx, service, gate, qtbot):
    first, second, *_ = all_panels(ctx.document)
    _use_backend(ctx, first.id, "test-gate")
    running = service.render_panels([first.id])[0]
    assert gate.started.wait(10)
    queued = service.render_panels([second.id])[0]
    qtbot.waitUntil(lambda: service.job(running).running)
    assert service.job(queued).state == "queued"
    assert service.cancel(queued)
    qtbot.waitUntil(lambda: service.job(queued) is None)
    assert service.job(running) is not None
    # Cancel the running one too: it stops within a step and leaves no result.
    assert service.cancel(running)
    qtbot.waitUntil(lambda: service.jobs() == [], timeout=10_000)
    assert not ctx.document.project.find_panel(first.id)[1].results
    assert not ctx.document.project.find_panel(second.id)[1].results


def test_cancel_all(ctx, service, gate, qtbot):
    for panel in all_panels(ctx.document):
        _use_backend(ctx, panel.id, "test-gate")
    assert len(service.render_all()) == len(all_panels(ctx.document))
    assert gate.started.wait(10)
    service.cancel_all()
    qtbot.waitUntil(lambda: service.jobs() == [], timeout=10_000)
    assert not any(p.results for p in all_panels(ctx.document))


def test_invalid_backend_setting_is_a_message_not_a_crash(ctx, service):
    panel = all_panels(ctx.document)[0]
    ctx.edit(editing.set_panel_fields, panel.id, "Settings", backend_settings={"line_weight": 50.0})
    assert service.render_panels([panel.id]) == []
    assert "line_weight" in service.messages[-1] and "Page 1" in service.messages[-1]
    assert service.jobs() == []
    _use_backend(ctx, panel.id, "no-such-backend")
    assert service.render_panels([panel.id]) == []
    assert "no-such-backend" in service.messages[-1]


def test_backend_failure_stays_in_the_list(ctx, service, gate, qtbot):
    panel = all_panels(ctx.document)[0]
    _use_backend(ctx, panel.id, "test-fail")
    job_id = service.render_panels([panel.id])[0]
    qtbot.waitUntil(lambda: service.job(job_id).state == "error", timeout=10_000)
    job = service.job(job_id)
    assert "model file is corrupt" in job.error and "Traceback" in job.detail
    assert "rendering failed" in service.messages[-1] and "corrupt" in service.messages[-1]
    assert service.is_idle()
    assert not ctx.document.project.find_panel(panel.id)[1].results
    assert service.cancel(job_id)  # on an error row: dismiss
    assert service.jobs() == []


def test_panel_deleted_while_rendering(ctx, service, gate, qtbot):
    panel = all_panels(ctx.document)[0]
    _use_backend(ctx, panel.id, "test-gate")
    job_id = service.render_panels([panel.id])[0]
    assert gate.started.wait(10)
    ctx.edit(editing.delete_panel, panel.id)
    undo_count = ctx.undo_stack.count()
    gate.release.set()
    qtbot.waitUntil(lambda: service.job(job_id) is None, timeout=10_000)
    assert "deleted while it was rendering" in service.messages[-1]
    assert ctx.undo_stack.count() == undo_count


def test_current_page_panels_run_first(ctx, service, gate, qtbot):
    pages = ctx.document.project.pages
    while len(ctx.document.project.pages) < 3:
        ctx.edit(editing.add_page, "two-tier")
    pages = ctx.document.project.pages
    # Hold the worker on a job so the rest waits in the queue in priority order.
    blocker = pages[0].panels_in_order()[0]
    _use_backend(ctx, blocker.id, "test-gate")
    service.render_panels([blocker.id])
    assert gate.started.wait(10)
    ctx.select_page(pages[2].id)
    ids = service.render_all()
    by_page = {pid: p.id for p in pages for pid in [q.id for q in p.panels]}
    order = [by_page[service.job(j).panel_id] for j in service.engine.pending()]
    assert order[0] == pages[2].id and set(order[: len(pages[2].panels)]) == {pages[2].id}
    # Turning to another page moves its panels to the front of the queue.
    ctx.select_page(pages[1].id)
    order = [by_page[service.job(j).panel_id] for j in service.engine.pending()]
    assert set(order[: len(pages[1].panels)]) == {pages[1].id}
    gate.release.set()
    qtbot.waitUntil(service.is_idle, timeout=30_000)
    assert len(ids) == sum(len(p.panels) for p in pages) - 1


def test_replacing_the_document_drops_its_jobs(ctx, service, gate, qtbot):
    panel = all_panels(ctx.document)[0]
    old = ctx.document
    _use_backend(ctx, panel.id, "test-gate")
    service.render_panels([panel.id])
    assert gate.started.wait(10)
    ctx.set_document(Document.new())
    assert service.jobs() == []
    gate.release.set()
    qtbot.wait(100)
    assert not old.project.find_panel(panel.id)[1].results


def test_regenerate_replays_the_stored_request(ctx, service, qtbot):
    panel = all_panels(ctx.document)[2]
    service.render_panels([panel.id])
    qtbot.waitUntil(service.is_idle, timeout=20_000)
    result = ctx.document.project.find_panel(panel.id)[1].results[0]
    ctx.edit(editing.set_panel_fields, panel.id, "Prompt", prompt="something else entirely", seed=1)
    job_id = service.regenerate(panel.id, result.id)
    assert service.job(job_id).regenerate and "same seed" in service.job(job_id).label
    qtbot.waitUntil(service.is_idle, timeout=20_000)
    replay = ctx.document.project.find_panel(panel.id)[1].results[1]
    assert replay.asset == result.asset and replay.seed == result.seed
    assert service.regenerate(panel.id, "nope") is None and "no result" in service.messages[-1]


def _balloon_layout(panel):
    return [(b.kind, b.text, b.box, b.tail) for b in panel.balloons]


def test_background_lettering_matches_the_pipeline(ctx, service, qtbot):
    service.render_all()
    qtbot.waitUntil(service.is_idle, timeout=30_000)
    lettered = [p for p in all_panels(ctx.document) if p.balloons]
    assert lettered
    for panel in lettered:
        ours = _balloon_layout(panel)
        ctx.edit(letter_panel, panel.id)  # the synchronous reference
        assert _balloon_layout(ctx.document.project.find_panel(panel.id)[1]) == ours


def test_stale_lettering_is_redone_on_the_current_panel(ctx, service, qtbot):
    service.render_all()
    qtbot.waitUntil(service.is_idle, timeout=30_000)
    panel = next(p for p in all_panels(ctx.document) if p.balloons)
    service._letter_in_background(panel.id)
    # Before the helper thread's answer is applied, the author moves the characters' heads.
    moved = [c.model_copy(update={"head": (0.5, 0.15)}) for c in panel.characters]
    ctx.edit(editing.set_panel_fields, panel.id, "Cast", characters=moved)
    qtbot.waitUntil(service.is_idle, timeout=10_000)
    ours = _balloon_layout(ctx.document.project.find_panel(panel.id)[1])
    ctx.edit(letter_panel, panel.id)
    assert _balloon_layout(ctx.document.project.find_panel(panel.id)[1]) == ours


def test_a_backend_that_ignores_cancel_is_named_in_a_message(ctx, qtbot):
    """The engine's cancel watchdog reports the stuck backend; the window shows why and goes on."""
    import threading

    from comic_studio.generation.backend_api import GenerationBackend
    from comic_studio.generation.engine import Engine

    release, entered = threading.Event(), threading.Event()

    class DeafBackend(GenerationBackend):
        name = "test-deaf"

        def generate(self, request, on_step=None):
            entered.set()
            release.wait()  # never reports a step
            raise RuntimeError("released by the test")

    register_backend("test-deaf", DeafBackend)
    engine = Engine(cancel_grace_s=0.2)
    ctx.set_document(small_document())
    svc = RenderService(ctx, engine=engine)
    messages: list[str] = []
    ctx.message.connect(messages.append)
    try:
        panel = all_panels(ctx.document)[0]
        _use_backend(ctx, panel.id, "test-deaf")
        job_id = svc.render_panels([panel.id])[0]
        assert entered.wait(30)
        assert svc.cancel(job_id)
        qtbot.waitUntil(lambda: svc.jobs() == [], timeout=30_000)
        assert any("'test-deaf' did not stop within 0.2 s of cancel" in m for m in messages)
        second = all_panels(ctx.document)[1]
        svc.render_panels([second.id])
        qtbot.waitUntil(svc.is_idle, timeout=30_000)
        assert ctx.document.project.find_panel(second.id)[1].results
    finally:
        release.set()
        svc.shutdown()
        engine.shutdown()
        unregister_backend("test-deaf")


def test_many_jobs_finishing_in_one_event_loop_turn_change_the_jobs_once(ctx, service, qtbot):
    """The followers of jobs_changed (queue rows, live overlays, stale markers) re-sync once per
    event-loop turn, not once per engine message: here every job's messages are waiting together."""
    panels = all_panels(ctx.document)
    job_ids = service.render_all(only_missing=False)
    assert len(job_ids) == len(panels) > 1
    changes: list[int] = []
    service.jobs_changed.connect(lambda: changes.append(len(service.jobs())))
    # The GUI thread does not run its event loop while the engine renders everything: all the
    # started/progress/finished messages queue up and are handled in one turn.
    assert service.engine.wait_idle(timeout=60)
    assert changes == []
    qtbot.waitUntil(lambda: changes != [], timeout=10_000)
    assert changes == [0], "one jobs_changed for all the finished jobs, with the list already empty"
    qtbot.waitUntil(service.is_idle, timeout=30_000)  # lettering: no jobs change any more
    assert changes == [0]
    assert all(p.result() is not None for p in all_panels(ctx.document))

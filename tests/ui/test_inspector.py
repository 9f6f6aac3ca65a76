"""The panel inspector edits the selected panel through undoable edits, and renders through the
real RenderService → Engine → storyboard backend path."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from render_helpers import FAST, GateBackend, all_panels, small_document

from comic_studio.core.model import CharacterPlacement, ShotType
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.ui.inspector import PanelInspector
from comic_studio.ui.render_service import RenderService
from comic_studio.workflows.requests import build_prompt, build_request, panel_seed


@pytest.fixture
def studio(ctx, qtbot):
    ctx.set_document(small_document())
    service = RenderService(ctx)
    inspector = PanelInspector(ctx, service)
    qtbot.addWidget(inspector)
    inspector.resize(380, 1100)
    inspector.show()
    messages: list[str] = []
    ctx.message.connect(messages.append)
    yield ctx, service, inspector, messages
    service.shutdown()


def _select(ctx, index: int = 0):
    panel = all_panels(ctx.document)[index]
    ctx.select_panels([panel.id])
    return panel


def _panel(ctx, panel_id):
    return ctx.document.project.find_panel(panel_id)[1]


def test_shows_the_selected_panel(studio):
    ctx, _service, inspector, _ = studio
    assert not inspector.details.isVisibleTo(inspector)
    panel = _select(ctx)
    beat = ctx.document.project.story.beat(panel.beat_id)
    assert inspector.details.isVisibleTo(inspector)
    assert beat.action in inspector.beat_label.text()
    # The generated prompt is the placeholder; the field itself stays empty until the user types.
    assert inspector.prompt.placeholderText() == build_prompt(ctx.document.project, panel, beat)
    assert inspector.prompt.toPlainText() == ""
    assert inspector.shot.currentData() == panel.shot.value
    assert inspector.backend.currentData() == "storyboard"
    assert inspector.settings.values()["pose_matching"] == "overlap"
    assert int(inspector.seed.value()) == panel_seed(panel)
    ctx.select_panels([])
    assert not inspector.details.isVisibleTo(inspector)


def test_typing_a_prompt_is_one_undo_step(studio, qtbot):
    ctx, _service, inspector, _ = studio
    panel = _select(ctx)
    before = ctx.undo_stack.count()
    inspector.prompt.setFocus()
    qtbot.keyClicks(inspector.prompt, "a lighthouse at dusk")
    assert _panel(ctx, panel.id).prompt == "a lighthouse at dusk"
    assert ctx.undo_stack.count() == before + 1  # typing merged
    assert ctx.document.is_modified
    ctx.undo_stack.undo()
    assert _panel(ctx, panel.id).prompt == ""
    assert inspector.prompt.toPlainText() == ""
    ctx.undo_stack.redo()
    assert inspector.prompt.toPlainText() == "a lighthouse at dusk"


def test_negative_prompt_shot_and_seed(studio, qtbot):
    ctx, _service, inspector, _ = studio
    panel = _select(ctx)
    qtbot.keyClicks(inspector.negative, "blurry")
    assert _panel(ctx, panel.id).negative_prompt == "blurry"
    index = inspector.shot.findData(ShotType.CLOSE_UP.value)
    inspector.shot.setCurrentIndex(index)
    inspector.shot.activated.emit(index)
    assert _panel(ctx, panel.id).shot is ShotType.CLOSE_UP
    inspector.seed.setValue(4242)
    assert _panel(ctx, panel.id).seed == 4242
    qtbot.mouseClick(inspector.seed_lock, Qt.MouseButton.LeftButton)
    assert _panel(ctx, panel.id).seed_locked and _panel(ctx, panel.id).seed == 4242
    assert not inspector.randomise.isEnabled()
    inspector.seed_lock.setChecked(False)
    qtbot.mouseClick(inspector.randomise, Qt.MouseButton.LeftButton)
    assert _panel(ctx, panel.id).seed != 4242
    ctx.undo_stack.undo()
    assert _panel(ctx, panel.id).seed == 4242


def test_locking_pins_the_derived_seed(studio):
    ctx, _service, inspector, _ = studio
    panel = _select(ctx)
    derived = panel_seed(panel)
    inspector.seed_lock.setChecked(True)
    assert _panel(ctx, panel.id).seed == derived and _panel(ctx, panel.id).seed_locked


def test_storyboard_settings_round_trip_and_reject(studio):
    ctx, _service, inspector, messages = studio
    panel = _select(ctx)
    inspector.settings.editor("line_weight").setValue(2.5)
    assert _panel(ctx, panel.id).backend_settings["line_weight"] == 2.5
    inspector.settings.editor("name_tags").setChecked(False)
    paper = inspector.settings.editor("paper")
    paper.setCurrentIndex(paper.findData("white"))
    paper.activated.emit(paper.currentIndex())
    stored = _panel(ctx, panel.id).backend_settings
    assert stored["name_tags"] is False and stored["paper"] == "white" and stored["line_weight"] == 2.5
    # Another panel and back: the form shows what is stored.
    _select(ctx, 1)
    assert inspector.settings.values()["paper"] == "warm"
    _select(ctx, 0)
    assert inspector.settings.values() == stored

    # An invalid value is refused with a message, and the document does not change.
    undo_count = ctx.undo_stack.count()
    assert inspector.apply_settings({**stored, "line_weight": 9.0}) is False
    assert "line_weight" in messages[-1] and "maximum" in messages[-1]
    assert "line_weight" in inspector.settings.error_text()
    assert _panel(ctx, panel.id).backend_settings == stored and ctx.undo_stack.count() == undo_count
    assert inspector.apply_settings({**stored, "lin_weight": 1.0}) is False
    assert "unknown setting" in messages[-1]


def test_invalid_stored_settings_are_flagged(studio):
    ctx, _service, inspector, _ = studio
    panel = _select(ctx)
    from comic_studio.core import editing

    ctx.edit(editing.set_panel_fields, panel.id, "Settings", backend_settings={"supersample": 99})
    assert "supersample" in inspector.settings.error_text()


def test_backend_choice_rebuilds_the_form(studio):
    ctx, _service, inspector, _ = studio
    register_backend("test-gate", GateBackend)
    try:
        panel = _select(ctx)
        index = inspector.backend.findData("test-gate")
        assert index >= 0
        inspector.backend.setCurrentIndex(index)
        inspector.backend.activated.emit(index)
        assert _panel(ctx, panel.id).backend == "test-gate"
        assert _panel(ctx, panel.id).backend_settings == {}
        assert set(inspector.settings.values()) == {"steps", "strength", "tiled", "sampler", "tag"}
        inspector.settings.editor("steps").setValue(7)
        assert _panel(ctx, panel.id).backend_settings["steps"] == 7
        ctx.undo_stack.undo()
        ctx.undo_stack.undo()
        assert _panel(ctx, panel.id).backend == "storyboard" and _panel(ctx, panel.id).backend_settings == FAST
        assert "line_weight" in inspector.settings.values()
    finally:
        unregister_backend("test-gate")


def test_missing_backend_is_named(studio):
    ctx, _service, inspector, _ = studio
    panel = _select(ctx)
    from comic_studio.core import editing

    ctx.edit(editing.set_panel_fields, panel.id, "Backend", backend="sdxl-not-here", backend_settings={})
    assert "not installed" in inspector.backend.currentText()
    assert "sdxl-not-here" in inspector.settings.error_text()


def test_swap_figures_swaps_figure_and_geometry(studio):
    ctx, _service, inspector, _ = studio
    panel = _select(ctx)
    mara, theo = ctx.document.project.characters[:2]
    a = CharacterPlacement(character_id=mara.id, figure=0, head=(0.2, 0.3))
    b = CharacterPlacement(character_id=theo.id, figure=1, head=(0.7, 0.35))
    from comic_studio.core import editing

    ctx.edit(editing.set_panel_fields, panel.id, "Cast", characters=[a, b])
    assert inspector.cast.rowCount() == 2 and inspector.swap.isEnabled()
    assert inspector.cast.item(0, 0).text() == mara.name
    inspector.swap_figures()
    swapped = _panel(ctx, panel.id).characters
    assert [p.character_id for p in swapped] == [mara.id, theo.id]
    assert (swapped[0].figure, swapped[0].head) == (1, (0.7, 0.35))
    assert (swapped[1].figure, swapped[1].head) == (0, (0.2, 0.3))
    # The next request pins the swapped figures.
    request = build_request(ctx.document.project, _panel(ctx, panel.id))
    assert {c.id: c.figure for c in request.characters} == {mara.id: 1, theo.id: 0}


def test_go_to_beat(studio, qtbot):
    ctx, _service, inspector, _ = studio
    panel = _select(ctx)
    with qtbot.waitSignal(inspector.beat_requested) as signal:
        qtbot.mouseClick(inspector.goto_beat, Qt.MouseButton.LeftButton)
    assert signal.args == [panel.beat_id]


def test_render_panel_then_history_accept_discard_compare(studio, qtbot, tmp_path):
    ctx, service, inspector, _ = studio
    panel = _select(ctx)
    qtbot.mouseClick(inspector.render_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_panel(ctx, panel.id).results) == 1, timeout=20_000)
    first = _panel(ctx, panel.id).results[0]
    assert _panel(ctx, panel.id).result().id == first.id
    assert ctx.document.assets.get(first.asset)[:8] == b"\x89PNG\r\n\x1a\n"
    assert inspector.history.list.count() == 1
    qtbot.waitUntil(service.is_idle)
    assert _panel(ctx, panel.id).balloons, "the panel's dialogue was lettered"

    # Unlocked seed: the second render is a variation with a new seed.
    inspector.render_panel()
    qtbot.waitUntil(lambda: len(_panel(ctx, panel.id).results) == 2, timeout=20_000)
    first, second = _panel(ctx, panel.id).results
    assert second.seed != first.seed and _panel(ctx, panel.id).result().id == second.id
    qtbot.waitUntil(lambda: not inspector.history.thumbnails_pending(), timeout=5_000)
    assert not inspector.history.list.item(0).icon().isNull()
    inspector.grab().save(str(tmp_path / "inspector.png"))

    inspector.history.select([first.id])
    qtbot.mouseClick(inspector.history.accept_button, Qt.MouseButton.LeftButton)
    assert _panel(ctx, panel.id).current_result == first.id
    assert [r.accepted for r in _panel(ctx, panel.id).results] == [True, False]

    inspector.history.select([first.id, second.id])
    dialog = inspector.history.compare_selected()
    assert dialog is not None and all(
        label.pixmap() is not None and not label.pixmap().isNull() for label in dialog.images
    )
    dialog.grab().save(str(tmp_path / "compare.png"))
    dialog.close()

    inspector.history.select([second.id])
    qtbot.mouseClick(inspector.history.discard_button, Qt.MouseButton.LeftButton)
    assert [r.id for r in _panel(ctx, panel.id).results] == [first.id]
    ctx.undo_stack.undo()
    assert [r.id for r in _panel(ctx, panel.id).results] == [first.id, second.id]


def test_regenerate_same_seed_is_byte_identical(studio, qtbot):
    ctx, service, inspector, _ = studio
    panel = _select(ctx, 1)
    inspector.render_panel()
    qtbot.waitUntil(lambda: len(_panel(ctx, panel.id).results) == 1, timeout=20_000)
    qtbot.waitUntil(service.is_idle)
    # Change the panel afterwards: the replay must still use the stored request.
    inspector.settings.editor("line_weight").setValue(2.0)
    inspector.seed.setValue(7)
    assert inspector.regenerate_button.isEnabled()
    qtbot.mouseClick(inspector.regenerate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_panel(ctx, panel.id).results) == 2, timeout=20_000)
    original, replay = _panel(ctx, panel.id).results
    assert replay.seed == original.seed
    assert ctx.document.assets.get(replay.asset) == ctx.document.assets.get(original.asset)
    assert replay.request == original.request


def test_without_a_service_render_buttons_are_disabled(ctx, qtbot):
    ctx.set_document(small_document())
    inspector = PanelInspector(ctx, None)
    qtbot.addWidget(inspector)
    _select(ctx)
    assert not inspector.render_button.isEnabled()
    assert inspector.render_panel() == []


def test_a_balloon_selected_alone_is_titled_balloon_without_the_panel_hint(ctx, qtbot):
    from comic_studio.core.model import Balloon, Box

    document = small_document()
    panel = all_panels(document)[0]
    panel.balloons.append(Balloon(text="We have to hurry.", box=Box(x=10, y=10, w=80, h=40)))
    ctx.set_document(document)
    inspector = PanelInspector(ctx)
    qtbot.addWidget(inspector)
    inspector.show()
    assert inspector.title.text() == "Panel" and inspector.empty.isVisibleTo(inspector)

    ctx.select_balloon(panel.balloons[0].id)  # on the canvas: the balloon, no panel
    assert not ctx.selected_panel_ids
    assert inspector.balloon.isVisibleTo(inspector)
    assert inspector.title.text() == "Balloon"
    assert not inspector.empty.isVisibleTo(inspector)
    assert not inspector.details.isVisibleTo(inspector)

    ctx.select_balloon(None)  # nothing selected again: back to the hint
    assert inspector.title.text() == "Panel" and inspector.empty.isVisibleTo(inspector)

    ctx.select_panels([panel.id])  # a panel wins the title
    assert inspector.title.text().endswith("Panel 1") and not inspector.empty.isVisibleTo(inspector)

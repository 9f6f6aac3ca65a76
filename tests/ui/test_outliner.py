"""The story outliner through its widgets: paste → Parse (worker thread) → edit beats → re-parse
merge → Lay out → suggested characters; cancel a long parse without blocking the GUI."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer

from comic_studio.core.model import DialogueKind
from comic_studio.core.resources import resource
from comic_studio.ui.outliner import StoryOutliner

STORY = Path(resource("samples", "lighthouse_key.txt")).read_text(encoding="utf-8")


@pytest.fixture
def outliner(qtbot, ctx):
    widget = StoryOutliner(ctx, None)
    qtbot.addWidget(widget)
    widget.resize(640, 900)
    widget.show()
    widget.offer_suggestions = lambda suggestions: [s.id for s in suggestions]
    yield widget
    widget.shutdown()


def _parse(qtbot, outliner) -> None:
    qtbot.mouseClick(outliner.parse_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not outliner.worker.is_running(), timeout=10_000)


def _pasted_and_parsed(qtbot, outliner, ctx):
    outliner.story_edit.setPlainText(STORY)
    _parse(qtbot, outliner)
    qtbot.waitUntil(lambda: outliner.model.rowCount() == 3)
    return ctx.document.project.story


def test_paste_parse_shows_the_tree(qtbot, ctx, outliner):
    messages = []
    ctx.message.connect(messages.append)
    story = _pasted_and_parsed(qtbot, outliner, ctx)
    assert story.text == STORY and len(story.scenes) == 3 and len(story.beats()) > 30
    assert ctx.document.project.title == "The Lighthouse Key"
    first_scene = outliner.model.index(0, 0)
    assert outliner.model.rowCount(first_scene) == len(story.scenes[0].beats)
    assert outliner.model.index(0, 0, first_scene).data() == story.scenes[0].beats[0].action
    assert outliner.model.index(0, 1, first_scene).data() == "Mara?"  # a suggested, not yet created character
    assert any(m.startswith("Parsed 3 scenes") for m in messages)
    # Parsing is one undo step.
    ctx.undo_stack.undo()
    assert ctx.document.project.story.scenes == [] and outliner.model.rowCount() == 0
    ctx.undo_stack.redo()
    assert outliner.model.rowCount() == 3


def test_typing_the_story_is_one_undo_step_per_burst(qtbot, ctx, outliner):
    outliner.story_edit.setFocus()
    qtbot.keyClicks(outliner.story_edit, "Mara ran.")
    qtbot.waitUntil(lambda: ctx.document.project.story.text == "Mara ran.", timeout=3000)
    assert ctx.undo_stack.count() == 1
    outliner._end_burst()  # a pause ends the burst
    qtbot.keyClicks(outliner.story_edit, " Theo hid.")
    outliner.flush_story_text()
    assert ctx.document.project.story.text == "Mara ran. Theo hid." and ctx.undo_stack.count() == 2
    ctx.undo_stack.undo()
    assert outliner.story_edit.toPlainText() == "Mara ran."
    ctx.undo_stack.undo()
    assert outliner.story_edit.toPlainText() == "" and ctx.document.project.story.text == ""


def test_edit_a_beat_in_the_editor_with_undo_redo(qtbot, ctx, outliner):
    story = _pasted_and_parsed(qtbot, outliner, ctx)
    beat = story.scenes[0].beats[3]
    original = beat.action
    outliner.select_beat(beat.id)
    assert outliner.editor.beat_id == beat.id and outliner.editor.action_edit.toPlainText() == original
    steps = ctx.undo_stack.count()
    outliner.editor.action_edit.setFocus()
    outliner.editor.action_edit.selectAll()
    qtbot.keyClicks(outliner.editor.action_edit, "Theo drops his cup.")
    edited = ctx.document.project.story.beat(beat.id)
    assert edited.action == "Theo drops his cup." and edited.edited and edited.source == "user"
    assert ctx.undo_stack.count() == steps + 1  # the whole typing burst is one step
    index = outliner.model.index_of_beat(beat.id)
    assert index.data() == "Theo drops his cup." and index.data(Qt.ItemDataRole.FontRole).italic()
    # Shot combo and a dialogue line.
    outliner.editor.shot_combo.setCurrentIndex(outliner.editor.shot_combo.findText("close-up"))
    outliner.editor.shot_combo.activated.emit(outliner.editor.shot_combo.currentIndex())
    qtbot.mouseClick(outliner.editor.add_line_button, Qt.MouseButton.LeftButton)
    outliner.editor.dialogue_table.item(0, 2).setText("Oops.")
    kind = outliner.editor.dialogue_table.cellWidget(0, 1)
    kind.setCurrentIndex(kind.findData(DialogueKind.WHISPER))
    kind.activated.emit(kind.currentIndex())
    edited = ctx.document.project.story.beat(beat.id)
    assert edited.shot.value == "close-up"
    assert [(d.text, d.kind) for d in edited.dialogue] == [("Oops.", DialogueKind.WHISPER)]
    assert edited.dialogue[0].speaker_id == edited.actor_id
    for _ in range(5):
        ctx.undo_stack.undo()
    assert ctx.document.project.story.beat(beat.id).action == original
    assert not ctx.document.project.story.beat(beat.id).edited
    assert outliner.editor.action_edit.toPlainText() == original
    for _ in range(5):
        ctx.undo_stack.redo()
    assert ctx.document.project.story.beat(beat.id).dialogue[0].kind == DialogueKind.WHISPER


def test_reorder_by_model_move_and_by_drop(qtbot, ctx, outliner):
    story = _pasted_and_parsed(qtbot, outliner, ctx)
    before = [b.id for b in story.scenes[0].beats]
    scene = outliner.model.index(0, 0)
    assert outliner.model.moveRow(scene, 0, scene, 2)  # the first beat goes after the second
    assert [b.id for b in ctx.document.project.story.scenes[0].beats][:3] == [before[1], before[0], before[2]]
    ctx.undo_stack.undo()
    assert [b.id for b in ctx.document.project.story.scenes[0].beats] == before
    # A drag across scenes: the drop lands before the second scene's first beat.
    moved = before[4]
    mime = outliner.model.mimeData([outliner.model.index_of_beat(moved)])
    second_scene = outliner.model.index(1, 0)
    outliner.model.dropMimeData(mime, Qt.DropAction.MoveAction, 0, 0, second_scene)
    scenes = ctx.document.project.story.scenes
    assert scenes[1].beats[0].id == moved and moved not in [b.id for b in scenes[0].beats]
    assert outliner.model.index(0, 0, outliner.model.index(1, 0)).data(0x0100) == moved


def test_merge_split_add_delete_buttons(qtbot, ctx, outliner):
    story = _pasted_and_parsed(qtbot, outliner, ctx)
    first, second = story.scenes[0].beats[1], story.scenes[0].beats[2]
    count = len(story.beats())
    outliner.select_beat(first.id)
    qtbot.mouseClick(outliner.merge_button, Qt.MouseButton.LeftButton)  # with the next beat
    merged = ctx.document.project.story.beat(first.id)
    assert len(ctx.document.project.story.beats()) == count - 1 and second.action in merged.action
    qtbot.mouseClick(outliner.split_button, Qt.MouseButton.LeftButton)
    assert len(ctx.document.project.story.beats()) == count
    assert outliner.current_beat_id() != first.id  # the new half is selected
    qtbot.mouseClick(outliner.add_button, Qt.MouseButton.LeftButton)
    added = outliner.current_beat_id()
    assert ctx.document.project.story.beat(added).action == "New beat"
    qtbot.mouseClick(outliner.delete_button, Qt.MouseButton.LeftButton)
    assert ctx.document.project.story.beat(added) is None and len(ctx.document.project.story.beats()) == count


def test_reparse_asks_and_merge_keeps_the_edited_beat(qtbot, ctx, outliner):
    story = _pasted_and_parsed(qtbot, outliner, ctx)
    target = story.scenes[1].beats[2]
    outliner.select_beat(target.id)
    outliner.editor.action_edit.setPlainText("A tall stranger in navy blocks their way.")
    asked = []
    outliner.ask_reparse_mode = lambda count: asked.append(count) or "merge"
    outliner.story_edit.appendPlainText("\nMara waved goodbye.")
    _parse(qtbot, outliner)
    qtbot.waitUntil(lambda: bool(asked))
    assert asked == [1]
    beats = ctx.document.project.story.beats()
    kept = ctx.document.project.story.beat(target.id)
    assert kept is not None and kept.action == "A tall stranger in navy blocks their way." and kept.edited
    assert ctx.document.project.story.scenes[1].beats[2].id == target.id  # at its place
    assert sum(1 for b in beats if b.edited) == 1 and beats[-1].action.startswith("Mara waved")
    # Cancel leaves everything; replace drops the edit.
    outliner.ask_reparse_mode = lambda count: None
    _parse(qtbot, outliner)
    assert ctx.document.project.story.beat(target.id) is not None
    outliner.ask_reparse_mode = lambda count: "replace"
    _parse(qtbot, outliner)
    qtbot.waitUntil(lambda: ctx.document.project.story.beat(target.id) is None)
    assert not any(b.edited for b in ctx.document.project.story.beats())


def test_lay_out_assigns_beats_and_offers_characters(qtbot, ctx, outliner):
    story = _pasted_and_parsed(qtbot, outliner, ctx)
    offered = []
    outliner.offer_suggestions = lambda s: (
        offered.extend(x.name for x in s) or [x.id for x in s if x.name != "Captain Brandt"]
    )
    qtbot.mouseClick(outliner.layout_button, Qt.MouseButton.LeftButton)
    project = ctx.document.project
    panels = [p for page in project.pages for p in page.panels]
    assert project.pages and {p.beat_id for p in panels} == {b.id for b in story.beats()}
    assert offered == ["Mara", "Theo", "Captain Brandt"]
    assert sorted(c.name for c in project.characters) == ["Mara", "Theo"]
    mara = next(c for c in project.characters if c.name == "Mara")
    assert mara.pronouns.value == "she"
    ids = {cid for b in project.story.beats() for cid in b.characters} | {
        c.character_id for p in panels for c in p.characters
    }
    assert mara.id in ids and not any(i.startswith("new:") for i in ids)  # Brandt declined: dropped
    assert outliner.model.index(0, 1, outliner.model.index(0, 0)).data() == "Mara"
    # With artwork on the pages, Lay out asks first.
    from comic_studio.core import editing
    from comic_studio.core.model import BalloonKind, Box

    ctx.edit(editing.add_balloon, panels[0].id, BalloonKind.SPEECH, Box(x=10, y=10, w=40, h=20), "Hi")
    asked = []
    outliner.confirm_replace_pages = lambda: asked.append(1) or False
    pages = [p.id for p in project.pages]
    qtbot.mouseClick(outliner.layout_button, Qt.MouseButton.LeftButton)
    assert asked and [p.id for p in project.pages] == pages
    # Assign two selected beats to two selected panels, in selection order.
    last_page = project.pages[-1].panels_in_order()
    ctx.select_panels([last_page[-1].id, last_page[0].id])
    beats = story.scenes[0].beats[:2]
    outliner.select_beat(beats[0].id)
    outliner.tree.selectionModel().select(
        outliner.model.index_of_beat(beats[1].id),
        outliner.tree.selectionModel().SelectionFlag.Select | outliner.tree.selectionModel().SelectionFlag.Rows,
    )
    qtbot.mouseClick(outliner.assign_button, Qt.MouseButton.LeftButton)
    assert project.find_panel(last_page[-1].id)[1].beat_id == beats[0].id
    assert project.find_panel(last_page[0].id)[1].beat_id == beats[1].id


def test_cancel_a_long_parse_without_blocking_the_gui(qtbot, ctx, outliner):
    words = len(STORY.split())
    long_story = "\n\n".join([STORY] * (200_000 // words + 1))
    assert len(long_story.split()) >= 200_000
    outliner.story_edit.setPlainText(long_story)
    # The parse runs on the worker thread: parse() returns at once, progress arrives through the
    # event loop and a click on Cancel is handled mid-parse. How long the GUI thread ever stalls
    # meanwhile is measured by ``bench/run.py --only outliner_parse``.
    outliner.parse()
    assert outliner.worker.is_running() and outliner.cancel_button.isVisible()
    qtbot.waitUntil(lambda: outliner.progress_bar.value() > 0, timeout=10_000)
    qtbot.mouseClick(outliner.cancel_button, Qt.MouseButton.LeftButton)
    assert not outliner.worker.is_running() and not outliner.cancel_button.isVisible()
    assert outliner.worker.wait(10_000)  # the thread stops at the parser's next check
    assert ctx.document.project.story.scenes == [] and outliner.model.rowCount() == 0


def test_default_questions_read_their_dialogs(qtbot, ctx, outliner):
    from PySide6.QtWidgets import QApplication, QDialog, QListWidget, QMessageBox

    from comic_studio.parsing import CharacterSuggestion

    def click_merge():
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox) and "2 beats" in box.text()
        next(b for b in box.buttons() if b.text().startswith("Merge")).click()

    QTimer.singleShot(0, click_merge)
    assert StoryOutliner.ask_reparse_mode(outliner, 2) == "merge"

    def keep_first():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, QDialog)
        names = dialog.findChild(QListWidget)
        names.item(1).setCheckState(Qt.CheckState.Unchecked)
        dialog.accept()

    QTimer.singleShot(0, keep_first)
    offered = [
        CharacterSuggestion(id="new:mara", name="Mara", mentions=3),
        CharacterSuggestion(id="new:theo", name="Theo", mentions=1),
    ]
    assert StoryOutliner.offer_suggestions(outliner, offered) == ["new:mara"]


def test_grab_the_dock(qtbot, ctx, outliner, shots):
    story = _pasted_and_parsed(qtbot, outliner, ctx)
    outliner.select_beat(story.scenes[0].beats[1].id)
    outliner.editor.action_edit.setPlainText("Theo walks in carrying two steaming cups.")
    outliner.select_beat(story.scenes[0].beats[2].id)
    assert outliner.grab().save(str(shots / "outliner.png"))


def test_llm_parsers_take_their_model_and_server_from_the_preferences(tmp_path, monkeypatch):
    from comic_studio.core.settings import load_settings, save_settings
    from comic_studio.parsing.llm.llama import LlamaParser
    from comic_studio.parsing.llm.openai_compat import OpenAIParser
    from comic_studio.ui.parse_worker import configured_parser

    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    settings, _ = load_settings()
    settings.llm_model = str(tmp_path / "model.gguf")
    settings.openai_base_url = "http://127.0.0.1:9/v1"
    settings.openai_model = "tiny"
    save_settings(settings)
    from comic_studio.parsing.forms import StoryForm
    from comic_studio.parsing.rules import RuleParser

    rules = configured_parser("rules", "screenplay")
    assert isinstance(rules, RuleParser) and rules.form is StoryForm.SCREENPLAY
    assert isinstance(configured_parser("llama"), LlamaParser)
    server = configured_parser("openai")
    assert isinstance(server, OpenAIParser)
    assert "127.0.0.1:9" in repr(vars(server)) and "tiny" in repr(vars(server))

"""The Story dock's form choice: a pasted comic script is detected and shown as such, Lay out gives
exactly its pages and panels; choosing Prose reads the same text as prose."""

import pytest
from PySide6.QtCore import Qt

from comic_studio.ui.outliner import StoryOutliner

SCRIPT = """PAGE ONE

PANEL 1
Wide on the harbour at dawn.
CAPTION: Port Sorrow.

PANEL 2
MARA waits on the pier.
MARA: He's late.

PANEL 3
Close on Mara.
MARA (THOUGHT): Again.
SFX: SPLASH

PAGE TWO

PANEL 1
The boat drifts in.

PANEL 2
TOM (OFF): Ahoy!
"""


@pytest.fixture
def outliner(qtbot, ctx):
    widget = StoryOutliner(ctx, None)
    qtbot.addWidget(widget)
    widget.show()
    widget.offer_suggestions = lambda suggestions: [s.id for s in suggestions]
    yield widget
    widget.shutdown()


def _parse(qtbot, outliner) -> None:
    qtbot.mouseClick(outliner.parse_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not outliner.worker.is_running(), timeout=10_000)


def test_a_comic_script_is_detected_and_laid_out_page_by_page(qtbot, ctx, outliner):
    assert outliner.form_combo.currentData() == "auto" and outliner.form_combo.currentText() == "Auto-detect"
    outliner.story_edit.setPlainText(SCRIPT)
    _parse(qtbot, outliner)
    qtbot.waitUntil(lambda: outliner.model.rowCount() == 2)
    assert outliner.form_label.text() == "read as comic script"
    story = ctx.document.project.story
    assert [s.title for s in story.scenes] == ["Page 1", "Page 2"]
    qtbot.mouseClick(outliner.layout_button, Qt.MouseButton.LeftButton)
    pages = ctx.document.project.pages
    assert [len(p.panels) for p in pages] == [3, 2]
    sfx_beat = story.beats()[2]
    assert sfx_beat.sfx == ["SPLASH"] and sfx_beat.dialogue[0].kind.value == "thought"
    assert pages[0].panels_in_order()[2].beat_id == sfx_beat.id
    assert sorted(c.name for c in ctx.document.project.characters) == ["Mara", "Tom"]


def test_choosing_prose_reads_the_script_as_prose(qtbot, ctx, outliner):
    outliner.story_edit.setPlainText(SCRIPT)
    outliner.form_combo.setCurrentIndex(outliner.form_combo.findData("prose"))
    _parse(qtbot, outliner)
    qtbot.waitUntil(lambda: outliner.model.rowCount() > 0)
    assert outliner.form_label.text() == "read as prose"
    assert all(b.page == 0 for b in ctx.document.project.story.beats())


def test_the_beat_editor_shows_and_edits_sfx_notes_and_page(qtbot, ctx, outliner):
    outliner.story_edit.setPlainText(SCRIPT)
    _parse(qtbot, outliner)
    qtbot.waitUntil(lambda: outliner.model.rowCount() == 2)
    beat = ctx.document.project.story.beats()[2]
    outliner.select_beat(beat.id)
    editor = outliner.editor
    assert editor.beat_id == beat.id
    assert editor.sfx_edit.text() == "SPLASH" and editor.page_spin.value() == 1
    tip = outliner.model.data(outliner.model.index_of_beat(beat.id), Qt.ItemDataRole.ToolTipRole)
    assert "Page 1" in tip and "SFX: SPLASH" in tip
    editor.sfx_edit.setFocus()
    editor.sfx_edit.selectAll()
    qtbot.keyClicks(editor.sfx_edit, "SPLOSH / drip")
    editor.notes_edit.setFocus()
    qtbot.keyClicks(editor.notes_edit, "Rain on the lens.")
    editor.page_spin.setValue(2)
    edited = ctx.document.project.story.beat(beat.id)
    assert edited.sfx == ["SPLOSH", "drip"] and edited.notes == "Rain on the lens." and edited.page == 2
    assert edited.edited
    ctx.undo_stack.undo()  # the page change
    assert ctx.document.project.story.beat(beat.id).page == 1

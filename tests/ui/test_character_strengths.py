"""The character editor's reference strengths ("use default" or 0..2): saved through
character_edits as part of the editor's one undo step, validated like the other fields, and sent
with the character in the generation request."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from comic_studio.core import character_edits as ce
from comic_studio.core.errors import CommandError
from comic_studio.core.model import CharacterPlacement, Panel
from comic_studio.ui.characters.editor import CharacterEditor
from comic_studio.workflows.requests import build_request


def _ok(qtbot, editor) -> None:
    qtbot.mouseClick(editor.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def test_edit_strengths_then_undo(ctx, qtbot):
    ada = ctx.edit(ce.add_character, name="Ada")
    editor = CharacterEditor(ctx, ada.id)
    qtbot.addWidget(editor)
    editor.show()
    face, body = editor.strengths["face"], editor.strengths["body"]
    assert face.use_default.isChecked() and not face.spin.isEnabled() and face.value() is None
    qtbot.mouseClick(face.use_default, Qt.MouseButton.LeftButton)  # untick "use default"
    assert face.spin.isEnabled()
    face.spin.setValue(1.35)
    body.use_default.setChecked(False)
    body.spin.setValue(0.0)
    _ok(qtbot, editor)

    stored = ctx.document.project.character(ada.id)
    assert (stored.face_scale, stored.body_scale) == (1.35, 0.0)
    # The strengths travel with the character to the backend.
    panel = Panel(shape=[(0, 0), (100, 0), (100, 60)], characters=[CharacterPlacement(character_id=ada.id)])
    sent = build_request(ctx.document.project, panel, "racig").characters[0]
    assert (sent.face_scale, sent.body_scale) == (1.35, 0.0)

    ctx.undo_stack.undo()  # the whole dialog is one step
    restored = ctx.document.project.character(ada.id)
    assert (restored.face_scale, restored.body_scale) == (None, None)

    # Reopened on the edited character, the editor shows the values; back to default clears them.
    ctx.undo_stack.redo()
    again = CharacterEditor(ctx, ada.id)
    qtbot.addWidget(again)
    assert not again.strengths["face"].use_default.isChecked() and again.strengths["face"].value() == 1.35
    again.strengths["face"].use_default.setChecked(True)
    _ok(qtbot, again)
    assert ctx.document.project.character(ada.id).face_scale is None
    assert ctx.document.project.character(ada.id).body_scale == 0.0


def test_strength_out_of_range_is_refused_with_the_field_named(ctx):
    ada = ctx.edit(ce.add_character, name="Ada")
    with pytest.raises(CommandError, match="face_scale"):
        ce.update_character(ctx.document, ada.id, face_scale=2.5)
    with pytest.raises(CommandError, match="body_scale"):
        ce.update_character(ctx.document, ada.id, body_scale=-0.1)
    assert ctx.document.project.character(ada.id).face_scale is None
    ce.update_character(ctx.document, ada.id, face_scale=0.5)
    assert ctx.document.project.character(ada.id).face_scale == 0.5

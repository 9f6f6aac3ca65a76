"""The identity tokens' strength in the character editor: the identity box's spin box (the trained
box's, as the LoRA's) changes the live character in one undo step, undo restores it, the request
carries it, the library card says it, and the mouse wheel over it only scrolls."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtTest import QTest

from comic_studio.core import character_edits as ce
from comic_studio.core.model import CharacterPlacement, Panel
from comic_studio.ui.characters import CharacterLibrary
from comic_studio.ui.characters.editor import CharacterEditor
from comic_studio.ui.wheel_guard import install_wheel_guard
from comic_studio.workflows.requests import build_request


def _identity(tmp_path) -> bytes:
    torch = pytest.importorskip("torch")
    from comic_studio.training.identity import save_identity

    rows = {"clip_l": torch.zeros(2, 8), "clip_g": torch.zeros(2, 12)}
    return save_identity(tmp_path / "emma.safetensors", rows, {"steps": 9, "photos": ["a"]}).read_bytes()


def _sent(ctx, character_id):
    panel = Panel(shape=[(0, 0), (100, 0), (100, 60)], characters=[CharacterPlacement(character_id=character_id)])
    return build_request(ctx.document.project, panel, "storyboard").characters[0]


def test_the_identity_strength_is_one_undo_step_and_undo_restores_it(ctx, qtbot, tmp_path):
    emma = ctx.edit(ce.add_character, name="Emma")
    editor = CharacterEditor(ctx, emma.id)
    qtbot.addWidget(editor)
    box = editor.identity_box
    assert box is not None and not box.scale_spin.isEnabled()  # no tokens yet: nothing to scale
    asset = ctx.document.assets.add(_identity(tmp_path), validate_image=False)
    ctx.edit(ce.update_character, emma.id, label="Train identity of Emma", identity_asset=asset)
    assert box.scale_spin.isEnabled() and box.scale_spin.value() == 1.0 and "9 steps" in box.card_label.text()
    assert box.scale_spin is not editor.lora_box.scale_spin  # each box its own strength

    steps = ctx.undo_stack.count()
    box.scale_spin.setValue(0.6)
    box.scale_spin.setValue(0.5)  # spinning on is the same step
    character = ctx.document.project.character(emma.id)
    assert (character.identity_scale, character.lora_scale) == (0.5, 1.0)
    assert ctx.undo_stack.count() == steps + 1 and ctx.undo_stack.undoText() == "identity strength"
    assert (_sent(ctx, emma.id).identity, _sent(ctx, emma.id).identity_scale) == (asset, 0.5)
    assert "identity tokens: strength 0.50" in CharacterLibrary._tooltip(character)

    ctx.undo_stack.undo()
    assert ctx.document.project.character(emma.id).identity_scale == 1.0 and box.scale_spin.value() == 1.0
    ctx.undo_stack.redo()
    assert box.scale_spin.value() == 0.5

    # The editor's own OK (a draft) leaves the live strength alone.
    editor.name_edit.setText("Emma B.")
    editor.accept()
    assert (ctx.document.project.character(emma.id).name, ctx.document.project.character(emma.id).identity_scale) == (
        "Emma B.",
        0.5,
    )


def test_the_wheel_over_the_unfocused_strength_changes_nothing(ctx, qtbot, tmp_path):
    install_wheel_guard()
    emma = ctx.edit(ce.add_character, name="Emma")
    asset = ctx.document.assets.add(_identity(tmp_path), validate_image=False)
    ctx.edit(ce.update_character, emma.id, identity_asset=asset)
    editor = CharacterEditor(ctx, emma.id)
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitExposed(editor)
    spin = editor.identity_box.scale_spin
    editor.name_edit.setFocus()
    steps = ctx.undo_stack.count()
    window = spin.window().windowHandle()
    QTest.wheelEvent(window, spin.mapTo(spin.window(), spin.rect().center()), QPoint(0, -120))
    assert spin.value() == 1.0 and ctx.undo_stack.count() == steps and not spin.hasFocus()

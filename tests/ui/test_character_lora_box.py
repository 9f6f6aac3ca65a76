"""The trained LoRA in the character editor: its card, a strength, an enabled box and Clear, each
one undoable step on the live character; the request carries the LoRA only while it is enabled."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from comic_studio.core import character_edits as ce
from comic_studio.core.errors import CommandError
from comic_studio.core.model import CharacterPlacement, Panel
from comic_studio.ui.characters import CharacterLibrary
from comic_studio.ui.characters.editor import CharacterEditor
from comic_studio.workflows.requests import build_request


def _lora_with_card(tmp_path) -> bytes:
    from comic_studio.training.export import save_lora

    torch = pytest.importorskip("torch")
    state = {"unet.down.lora_A.weight": torch.zeros(4, 8), "unet.down.lora_B.weight": torch.zeros(8, 4)}
    card = {
        "trigger": "sks woman",
        "steps": 7,
        "base_model": "tiny-sdxl@abc",
        "trained_at": "2026-12-06T16:40:00+00:00",
        "final_loss": 0.125,
        "recipe": {
            "rank": 4,
            "learning_rate": 0.0001,
            "resolution": 1024,
            "timestep_law": "logit_normal",
            "memory": "12gb",
            "prior_preservation": False,
        },
    }
    return save_lora(tmp_path, "lora", state, card).diffusers.read_bytes()


def _sent(ctx, character_id):
    panel = Panel(shape=[(0, 0), (100, 0), (100, 60)], characters=[CharacterPlacement(character_id=character_id)])
    return build_request(ctx.document.project, panel, "storyboard").characters[0]


def test_lora_card_strength_enable_and_clear_are_undoable_steps(ctx, qtbot, tmp_path):
    ada = ctx.edit(ce.add_character, name="Ada")
    asset = ctx.document.assets.add(_lora_with_card(tmp_path), validate_image=False)
    ctx.edit(ce.update_character, ada.id, label="Train LoRA of Ada", lora_asset=asset)
    editor = CharacterEditor(ctx, ada.id)
    qtbot.addWidget(editor)
    editor.show()
    box = editor.lora_box
    assert box is not None
    text = box.card_label.text()
    assert "sks woman" in text and "7 steps" in text and "tiny-sdxl@abc" in text and "2026-12-06 16:40" in text
    assert "rank 4 · lr 0.0001 · 1024 px · logit_normal timesteps · memory 12gb" in text and "prior" not in text
    assert box.enabled_box.isChecked() and box.scale_spin.value() == 1.0 and box.clear_button.isEnabled()
    assert _sent(ctx, ada.id).lora == asset

    steps = ctx.undo_stack.count()
    box.scale_spin.setValue(0.6)
    box.scale_spin.setValue(0.75)  # spinning on is the same step
    assert ctx.document.project.character(ada.id).lora_scale == 0.75
    assert ctx.undo_stack.count() == steps + 1
    assert (_sent(ctx, ada.id).lora, _sent(ctx, ada.id).lora_scale) == (asset, 0.75)

    assert "trained LoRA: strength 0.75" in CharacterLibrary._tooltip(ctx.document.project.character(ada.id))
    qtbot.mouseClick(box.enabled_box, Qt.MouseButton.LeftButton)  # untick: renders leave it out
    assert ctx.document.project.character(ada.id).lora_enabled is False
    assert _sent(ctx, ada.id).lora is None
    assert "trained LoRA: off" in CharacterLibrary._tooltip(ctx.document.project.character(ada.id))
    assert ctx.undo_stack.count() == steps + 2

    qtbot.mouseClick(box.clear_button, Qt.MouseButton.LeftButton)
    assert ctx.document.project.character(ada.id).lora_asset is None
    assert box.card_label.text() == "No trained LoRA yet." and not box.clear_button.isEnabled()

    # Each was one step; undo walks back and the box follows the live character.
    ctx.undo_stack.undo()
    assert ctx.document.project.character(ada.id).lora_asset == asset and "sks woman" in box.card_label.text()
    ctx.undo_stack.undo()
    assert box.enabled_box.isChecked() and ctx.document.project.character(ada.id).lora_enabled
    ctx.undo_stack.undo()
    assert box.scale_spin.value() == 1.0 and ctx.document.project.character(ada.id).lora_scale == 1.0
    assert ctx.undo_stack.count() - ctx.undo_stack.index() == 3

    # The editor's own OK (a draft) does not touch the LoRA fields.
    box.scale_spin.setValue(1.5)
    editor.name_edit.setText("Ada L.")
    editor.accept()
    stored = ctx.document.project.character(ada.id)
    assert (stored.name, stored.lora_scale, stored.lora_asset) == ("Ada L.", 1.5, asset)


def test_a_lora_from_elsewhere_and_a_character_without_one(ctx, qtbot):
    ada = ctx.edit(ce.add_character, name="Ada")
    editor = CharacterEditor(ctx, ada.id)
    qtbot.addWidget(editor)
    box = editor.lora_box
    assert box.card_label.text() == "No trained LoRA yet."
    assert not box.scale_spin.isEnabled() and not box.enabled_box.isEnabled() and box.train_button.isEnabled()
    foreign = ctx.document.assets.add(b"not a safetensors file", validate_image=False)
    ctx.edit(ce.update_character, ada.id, lora_asset=foreign)
    assert "from elsewhere" in box.card_label.text()
    new = CharacterEditor(ctx, None)
    qtbot.addWidget(new)
    assert new.lora_box is None  # nothing to train on before the character exists


def test_lora_scale_out_of_range_is_refused_with_the_field_named(ctx):
    ada = ctx.edit(ce.add_character, name="Ada")
    with pytest.raises(CommandError, match="lora_scale"):
        ce.update_character(ctx.document, ada.id, lora_scale=2.5)
    assert ctx.document.project.character(ada.id).lora_scale == 1.0


def test_train_button_in_the_editor_opens_the_train_dialog(ctx, qtbot, shots):
    ada = ctx.edit(ce.add_character, name="Ada")
    library = CharacterLibrary(ctx)
    qtbot.addWidget(library)
    editor = library.edit_character(ada.id)
    qtbot.mouseClick(editor.lora_box.train_button, Qt.MouseButton.LeftButton)
    dialog = library.train_dialog
    assert dialog is not None and dialog.isVisible() and dialog.character_id == ada.id
    assert dialog.windowTitle() == "Train LoRA — Ada" and dialog.pictures.count() == 0
    editor.grab().save(str(shots / "character-editor-lora-box.png"))
    dialog.close()
    editor.close()

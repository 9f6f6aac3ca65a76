""" "Export for ComfyUI/A1111…" in the character's LoRA box writes the kohya file beside the
diffusers file and the card; without a LoRA the button is off."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from comic_studio.core import character_edits as ce
from comic_studio.ui.characters.editor import CharacterEditor

pytest.importorskip("peft")


def test_export_button_writes_the_kohya_file(ctx, qtbot, tmp_path):
    from comic_studio.testing.tiny import write_tiny_lora

    ada = ctx.edit(ce.add_character, name="Ada")
    data = write_tiny_lora(tmp_path / "ada.safetensors").read_bytes()
    ctx.edit(ce.update_character, ada.id, lora_asset=ctx.document.assets.add(data, validate_image=False))
    editor = CharacterEditor(ctx, ada.id)
    qtbot.addWidget(editor)
    box = editor.lora_box
    assert box is not None and box.export_button.isEnabled()
    messages: list[str] = []
    ctx.message.connect(messages.append)
    out = tmp_path / "comfy"
    box.choose_export_folder = lambda: str(out)  # the folder dialog's answer
    qtbot.mouseClick(box.export_button, Qt.MouseButton.LeftButton)
    assert sorted(p.name for p in out.iterdir()) == ["Ada.json", "Ada.kohya.safetensors", "Ada.safetensors"]
    assert "Ada.kohya.safetensors (ComfyUI/A1111)" in messages[-1]
    box.choose_export_folder = lambda: ""  # cancelled: nothing happens
    qtbot.mouseClick(box.export_button, Qt.MouseButton.LeftButton)
    assert len(messages) == 1

    ctx.edit(ce.update_character, ada.id, lora_asset=None)
    assert not box.export_button.isEnabled()

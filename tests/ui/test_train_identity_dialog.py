""" "Train identity…" in the studio on the tiny models and a real face photo: the run is off the GUI
thread with progress, the tokens land on the character as one undo step and show in the editor's
identity box (enable, clear, undo); a photo without a face fails with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from comic_studio.core import character_edits as ce  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.testing.tiny_identity import write_tiny_face_encoder  # noqa: E402
from comic_studio.ui.characters import CharacterLibrary  # noqa: E402
from comic_studio.ui.characters.identity_dialog import TrainIdentityDialog  # noqa: E402
from comic_studio.vision.detect import available_detectors  # noqa: E402
from comic_studio.workflows.identity import identity_card  # noqa: E402

RUN_TIMEOUT_MS = 240_000
FIXTURES = Path(__file__).parents[1] / "vision" / "fixtures"
pytestmark = pytest.mark.skipif("mediapipe-face" not in available_detectors(), reason="mediapipe is not installed")


@pytest.fixture
def people(ctx):
    doc = Document.new(title="Identity")
    emma = ce.add_character(doc, name="Emma")
    ce.add_reference(doc, emma.id, "face", Image.open(FIXTURES / "emma_1female.png").convert("RGB"))
    blank = ce.add_character(doc, name="Blank")
    ce.add_reference(doc, blank.id, "face", Image.new("RGB", (128, 128), "white"))
    ctx.set_document(doc)
    return emma.id, blank.id


def _dialog(ctx, qtbot, library, character_id, tiny_kit, tmp_path) -> TrainIdentityDialog:
    library.select(character_id)
    library.identity_action.trigger()  # the context menu's "Train identity…"
    dialog = library.identity_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.steps_spin.setValue(2)
    dialog.resolution_spin.setValue(64)
    dialog.model_edit.setText(str(tiny_kit.sdxl))
    dialog.encoder_edit.setText(str(write_tiny_face_encoder(tmp_path / "vit")))
    return dialog


def test_train_identity_lands_on_the_character_and_the_box_edits_it(ctx, people, qtbot, tiny_kit, tmp_path):
    emma, _blank = people
    library = CharacterLibrary(ctx)
    qtbot.addWidget(library)
    dialog = _dialog(ctx, qtbot, library, emma, tiny_kit, tmp_path)
    assert dialog.photos.count() == 1 and dialog.alpha_spin.value() == 0.5
    steps = []
    dialog.progressed.connect(lambda p: steps.append(p.step))
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        assert dialog.is_running() and dialog.windowModality() == Qt.WindowModality.ApplicationModal
    assert outcome.args == ["finished"], dialog.status_label.text()
    assert steps == [1, 2] and "Done" in dialog.status_label.text()
    character = ctx.document.project.character(emma)
    assert identity_card(ctx.document.assets.get(character.identity_asset))["steps"] == 2
    assert ctx.undo_stack.undoText() == "Train identity of Emma"
    dialog.close()

    editor = library.edit_character(emma)
    box = editor.identity_box
    assert box is not None and "2 steps" in box.card_label.text() and box.enabled_box.isChecked()
    box.enabled_box.setChecked(False)
    assert ctx.document.project.character(emma).identity_enabled is False
    qtbot.mouseClick(box.clear_button, Qt.MouseButton.LeftButton)
    assert ctx.document.project.character(emma).identity_asset is None
    assert box.card_label.text() == "No identity tokens yet." and not box.clear_button.isEnabled()
    ctx.undo_stack.undo()
    assert ctx.document.project.character(emma).identity_asset == character.identity_asset
    with qtbot.waitSignal(box.train_requested) as asked:
        qtbot.mouseClick(box.train_button, Qt.MouseButton.LeftButton)
    assert asked.args == [emma]
    editor.close()


def test_a_photo_without_a_face_fails_with_the_reason(ctx, people, qtbot, tiny_kit, tmp_path):
    _emma, blank = people
    library = CharacterLibrary(ctx)
    qtbot.addWidget(library)
    dialog = _dialog(ctx, qtbot, library, blank, tiny_kit, tmp_path)
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        dialog.start()
    assert outcome.args == ["failed"]
    assert "no face found in Blank's face reference" in dialog.status_label.text()
    assert ctx.document.project.character(blank).identity_asset is None and not dialog.is_running()

""" "Train identity…" in the studio on the tiny models and a real face photo: the run is a job of the
render engine (a Queue row with Cancel; the dialog is not modal) with progress, a loss plot and
samples rendered with the tokens so far; the tokens land on the character as one undo step and show
in the editor's identity box (enable, clear, undo); a cancel keeps a checkpoint the dialog resumes;
closing the dialog leaves the run going and reopening shows it; a photo without a face fails with
the reason."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from comic_studio.core import character_edits as ce  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.generation.messages import JobEvent  # noqa: E402
from comic_studio.testing.tiny_identity import write_tiny_face_encoder  # noqa: E402
from comic_studio.training.samples import samples_folder  # noqa: E402
from comic_studio.ui.characters.identity_dialog import TrainIdentityDialog  # noqa: E402
from comic_studio.ui.characters.training_dialog import TrainingDialog  # noqa: E402
from comic_studio.ui.training_jobs import TRAIN_IDENTITY as UI_KIND  # noqa: E402
from comic_studio.vision.detect import available_detectors  # noqa: E402
from comic_studio.workflows.identity import identity_card, identity_checkpoint_path  # noqa: E402
from comic_studio.workflows.identity_jobs import TRAIN_IDENTITY  # noqa: E402

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


def _dialog(qtbot, library, character_id, tiny_kit, tmp_path, steps=2, samples=0) -> TrainIdentityDialog:
    library.select(character_id)
    library.identity_action.trigger()  # the context menu's "Train identity…"
    dialog = library.identity_dialog
    assert dialog is not None and dialog.isVisible()
    if not dialog.is_running():
        dialog.steps_spin.setValue(steps)
        dialog.resolution_spin.setValue(64)
        dialog.samples_spin.setValue(samples)
        dialog.model_edit.setText(str(tiny_kit.sdxl))
        dialog.encoder_edit.setText(str(write_tiny_face_encoder(tmp_path / "vit")))
    return dialog


def test_the_identity_and_lora_dialogs_share_one_base_and_kind_names_agree():
    from comic_studio.ui.characters.train_dialog import TrainLoraDialog

    assert issubclass(TrainIdentityDialog, TrainingDialog) and issubclass(TrainLoraDialog, TrainingDialog)
    assert UI_KIND == TRAIN_IDENTITY  # the window names the kind without importing the trainer


def test_train_identity_in_the_queue_lands_on_the_character_and_the_box_edits_it(
    ctx, people, qtbot, tiny_kit, tmp_path, service, make_library, queue_rows
):
    emma, _blank = people
    queue, _rows = queue_rows
    library = make_library()
    dialog = _dialog(qtbot, library, emma, tiny_kit, tmp_path, samples=1)
    assert dialog.photos.count() == 1 and dialog.alpha_spin.value() == 0.5
    steps = []
    dialog.progressed.connect(lambda m: steps.append((m.step, m.total)))
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        assert dialog.is_running(), dialog.status_label.text()
        assert dialog.windowModality() == Qt.WindowModality.NonModal  # the studio stays usable
        row = queue.row(dialog.job_id)
        assert row is not None and row.name.text() == "Train identity · Emma" and row.cancel_button.isEnabled()
    assert outcome.args == ["finished"], dialog.status_label.text()
    assert steps == [(1, 2), (2, 2)] and len(dialog.loss_plot.losses) == 2
    assert dialog.sample_strip.steps == [1, 2]  # rendered with the tokens so far
    assert "Done: Emma has identity tokens (2 steps" in dialog.status_label.text()
    checkpoint = identity_checkpoint_path(ctx.document.project.id, emma)
    assert sorted(p.name for p in samples_folder(checkpoint).iterdir()) == ["step-000001-0.png", "step-000002-0.png"]
    assert queue.row(dialog.job_id) is None and service.is_idle()
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


def test_cancel_close_reopen_and_resume_through_the_queue(
    ctx, people, qtbot, tiny_kit, tmp_path, service, make_library
):
    emma, _blank = people
    library = make_library()
    dialog = _dialog(qtbot, library, emma, tiny_kit, tmp_path, steps=3)
    hold, held = threading.Event(), threading.Event()

    def hold_then_cancel_at_step_2(msg) -> None:  # on the worker: deterministic
        if msg.kind == TRAIN_IDENTITY and msg.event is JobEvent.PROGRESS and msg.step == 2 and not held.is_set():
            held.set()
            hold.wait(RUN_TIMEOUT_MS / 1000)
            service.engine.cancel(msg.job_id)

    service.engine.subscribe(hold_then_cancel_at_step_2)
    try:
        assert dialog.start()
        job_id = dialog.job_id
        qtbot.waitUntil(lambda: len(dialog.loss_plot.losses) == 2, timeout=RUN_TIMEOUT_MS)
        with qtbot.waitSignal(ctx.message, timeout=5_000) as said:
            dialog.close()
        assert said.args == ["Emma's identity goes on training in the Queue"]
        qtbot.waitUntil(lambda: library.identity_dialog is None, timeout=5_000)  # deleted on close
        assert service.training.active_for(emma, TRAIN_IDENTITY).job_id == job_id
        assert service.training.active_for(emma) is None  # no LoRA run

        reopened = _dialog(qtbot, library, emma, tiny_kit, tmp_path)
        assert reopened is not dialog and reopened.is_running() and reopened.job_id == job_id
        assert len(reopened.loss_plot.losses) == 2 and reopened.steps_spin.value() == 3
        assert not reopened.train_button.isEnabled() and not reopened.alpha_spin.isEnabled()
    finally:
        hold.set()
    with qtbot.waitSignal(reopened.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        pass
    assert outcome.args == ["cancelled"], reopened.status_label.text()
    assert "resume later" in reopened.status_label.text() and "Train identity…" in reopened.status_label.text()
    assert ctx.document.project.character(emma).identity_asset is None  # nothing half-stored
    assert reopened.resume_box.isEnabled() and reopened.resume_box.isChecked()

    with qtbot.waitSignal(reopened.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        assert reopened.start()
    assert outcome.args == ["finished"], reopened.status_label.text()
    card = identity_card(ctx.document.assets.get(ctx.document.project.character(emma).identity_asset))
    assert card["steps"] == 3
    reopened.close()


def test_a_photo_without_a_face_fails_with_the_reason(ctx, people, qtbot, tiny_kit, tmp_path, make_library):
    _emma, blank = people
    dialog = _dialog(qtbot, make_library(), blank, tiny_kit, tmp_path)
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        assert dialog.start()
    assert outcome.args == ["failed"]
    assert "no face found in Blank's face reference" in dialog.status_label.text()
    assert ctx.document.project.character(blank).identity_asset is None and not dialog.is_running()


def test_without_the_studio_queue_the_dialog_says_where_training_runs(ctx, people, qtbot):
    emma, _blank = people
    dialog = TrainIdentityDialog(ctx, emma)
    qtbot.addWidget(dialog)
    assert not dialog.start() and "open Train identity… from the studio" in dialog.status_label.text()

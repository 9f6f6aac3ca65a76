""" "Train LoRA…" in the studio on the tiny models: the run is off the GUI thread with progress and a
loss plot, its LoRA lands on the character as one undo step; a cancel saves a checkpoint and the
dialog resumes it to the same weights as an uninterrupted run; a busy render queue refuses it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from PySide6.QtCore import Qt  # noqa: E402

from comic_studio.core import character_edits as ce  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.model import Pronouns  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.training.lora import LoraRecipe  # noqa: E402
from comic_studio.ui.characters import CharacterLibrary  # noqa: E402
from comic_studio.ui.characters.train_dialog import TrainLoraDialog  # noqa: E402
from comic_studio.workflows.training import checkpoint_path, lora_card, train_character_lora  # noqa: E402

RUN_TIMEOUT_MS = 240_000  # a hang fails the test; the tiny runs take seconds


def reference(seed: int):
    return character_picture(seed, width=64, height=80)


@pytest.fixture
def mara(ctx):
    doc = Document.new(title="Training")
    mara = ce.add_character(doc, name="Mara", pronouns=Pronouns.SHE)
    ce.add_reference(doc, mara.id, "face", reference(1))
    ce.add_reference(doc, mara.id, "body", reference(2))
    ctx.set_document(doc)
    return mara.id


def _dialog(ctx, qtbot, character_id, tiny_kit, steps=2) -> TrainLoraDialog:
    library = CharacterLibrary(ctx)
    qtbot.addWidget(library)
    library.select(character_id)
    library.train_action.trigger()  # the context menu's "Train LoRA…"
    dialog = library.train_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.steps_spin.setValue(steps)
    dialog.resolution_spin.setValue(64)  # the tiny UNet's size
    dialog.model_edit.setText(str(tiny_kit.sdxl))
    return dialog


def _tensors(data: bytes) -> dict:
    from safetensors.torch import load

    return load(data)


def test_train_two_steps_lands_the_lora_on_the_character(ctx, mara, qtbot, tiny_kit, tiny_models):
    dialog = _dialog(ctx, qtbot, mara, tiny_kit)
    assert dialog.captions() == ["a photo of sks woman", "a photo of sks woman"]
    assert not dialog.resume_box.isEnabled()  # no interrupted run yet
    dialog.trigger_edit.setText("zwx")  # default captions follow the trigger
    assert dialog.captions() == ["a photo of zwx woman"] * 2
    steps = []
    dialog.progressed.connect(lambda p: steps.append((p.step, p.total)))
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        assert dialog.is_running() and not dialog.train_button.isEnabled() and dialog.cancel_button.isEnabled()
        assert dialog.windowModality() == Qt.WindowModality.ApplicationModal
    assert outcome.args == ["finished"], dialog.status_label.text()
    assert steps == [(1, 2), (2, 2)] and len(dialog.loss_plot.losses) == 2
    assert dialog.progress_bar.value() == 2 and "Done" in dialog.status_label.text()
    assert not dialog.resume_box.isEnabled() and not dialog.resume_box.isChecked()  # finished: nothing to resume

    character = ctx.document.project.character(mara)
    card = lora_card(ctx.document.assets.get(character.lora_asset))
    assert card["steps"] == 2 and card["trigger"] == "zwx woman" and card["recipe"]["resolution"] == 64
    assert not checkpoint_path(ctx.document.project.id, mara).exists()
    assert ctx.undo_stack.undoText() == "Train LoRA of Mara"
    ctx.undo_stack.undo()  # one step
    assert ctx.document.project.character(mara).lora_asset is None
    dialog.close()


def test_cancel_then_resume_gives_the_uninterrupted_weights(ctx, mara, qtbot, tiny_kit, tiny_models):
    dialog = _dialog(ctx, qtbot, mara, tiny_kit)
    # Cancel right after step 1, on the training thread itself: deterministic, whatever the load.
    dialog.progressed.connect(
        lambda p: dialog.request_cancel() if p.step == 1 else None, Qt.ConnectionType.DirectConnection
    )
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        dialog.start()
    assert outcome.args == ["cancelled"], dialog.status_label.text()
    assert "resume later" in dialog.status_label.text()
    assert checkpoint_path(ctx.document.project.id, mara).is_file()
    assert ctx.document.project.character(mara).lora_asset is None  # nothing half-stored
    assert dialog.resume_box.isEnabled() and dialog.resume_box.isChecked() and dialog.train_button.isEnabled()
    dialog.close()

    # A new dialog (as after a restart) offers the resume and finishes the run.
    again = _dialog(ctx, qtbot, mara, tiny_kit)
    assert again.resume_box.isEnabled() and again.resume_box.isChecked()
    with qtbot.waitSignal(again.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        again.start()
    assert outcome.args == ["finished"], again.status_label.text()
    resumed = _tensors(ctx.document.assets.get(ctx.document.project.character(mara).lora_asset))
    assert not checkpoint_path(ctx.document.project.id, mara).exists()

    straight_doc = ctx.document
    ctx.undo_stack.undo()
    straight = train_character_lora(straight_doc, mara, LoraRecipe(steps=2, resolution=64), model=str(tiny_kit.sdxl))
    expected = _tensors(straight_doc.assets.get(straight.asset))
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
    again.close()


def test_quitting_the_app_mid_run_cancels_with_a_checkpoint(ctx, mara, qtbot, tiny_kit, tiny_models):
    from PySide6.QtCore import QCoreApplication

    dialog = _dialog(ctx, qtbot, mara, tiny_kit, steps=500)
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        assert dialog.start()
        QCoreApplication.instance().aboutToQuit.emit()  # what QApplication.quit() sends
    assert outcome.args == ["cancelled"], dialog.status_label.text()
    assert checkpoint_path(ctx.document.project.id, mara).is_file() and dialog.resume_box.isChecked()
    dialog.close()


def test_bad_input_and_a_busy_queue_are_refused_with_a_reason(ctx, qtbot, tiny_kit, tmp_path, monkeypatch):
    from anchor_helpers import cid, make_document

    from comic_studio.ui.render_service import RenderService

    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    ctx.set_document(make_document(tiny_kit))
    ana = cid(ctx.document, "Ana")
    dialog = TrainLoraDialog(ctx, ana)
    qtbot.addWidget(dialog)
    assert not dialog.start() and "no face or outfit references" in dialog.status_label.text()
    ce.add_reference(ctx.document, ana, "face", reference(3))
    dialog.close()

    service = RenderService(ctx)
    try:
        dialog = TrainLoraDialog(ctx, ana, render_service=service)
        qtbot.addWidget(dialog)
        dialog.pictures.item(0).setText("   ")
        assert not dialog.start() and "needs a caption" in dialog.status_label.text()
        dialog.pictures.item(0).setText("a photo of sks person")
        panel = ctx.document.project.pages[0].panels[0]
        assert service.render_panels([panel.id])  # queued: the GPU is the renders' now
        assert not dialog.start() and "render queue is busy" in dialog.status_label.text()
        assert not dialog.is_running()
        qtbot.waitUntil(service.is_idle, timeout=RUN_TIMEOUT_MS)
    finally:
        service.shutdown()

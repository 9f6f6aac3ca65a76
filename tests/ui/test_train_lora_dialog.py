""" "Train LoRA…" in the studio on the tiny models: the run is a job of the render engine (shown in
the Queue with Cancel) with progress, a loss plot and a sample strip; its LoRA lands on the
character as one undo step; a cancel saves a checkpoint and the dialog resumes it to the same
weights as an uninterrupted run; closing the dialog leaves the run going, reopening shows it; a
busy render queue no longer refuses it (the run waits its turn)."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from PySide6.QtCore import Qt  # noqa: E402

from comic_studio.core import character_edits as ce  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.model import Pronouns  # noqa: E402
from comic_studio.generation.messages import JobEvent  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.training.lora import LoraRecipe  # noqa: E402
from comic_studio.training.samples import samples_folder  # noqa: E402
from comic_studio.ui.characters import CharacterLibrary  # noqa: E402
from comic_studio.ui.characters.train_dialog import TrainLoraDialog  # noqa: E402
from comic_studio.ui.render_service import RenderService  # noqa: E402
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


def _dialog(library: CharacterLibrary, character_id, tiny_kit, steps=2) -> TrainLoraDialog:
    library.select(character_id)
    library.train_action.trigger()  # the context menu's "Train LoRA…"
    dialog = library.train_dialog
    assert dialog is not None and dialog.isVisible()
    if not dialog.is_running():
        dialog.steps_spin.setValue(steps)
        dialog.resolution_spin.setValue(64)  # the tiny UNet's size
        dialog.model_edit.setText(str(tiny_kit.sdxl))
        dialog.samples_spin.setValue(0)
    return dialog


def _cancel_on_worker(engine, at_step: int) -> None:
    """Cancel the training job from the engine's worker, inside its step report: deterministic."""
    done: list[str] = []

    def react(msg) -> None:
        if msg.kind == "train-lora" and msg.event is JobEvent.PROGRESS and msg.step == at_step and not done:
            done.append(msg.job_id)
            engine.cancel(msg.job_id)

    engine.subscribe(react)


def test_train_two_steps_in_the_queue_lands_the_lora_on_the_character(
    ctx, mara, qtbot, tiny_kit, tiny_models, service, make_library, queue_rows
):
    queue, rows = queue_rows
    library = make_library()
    dialog = _dialog(library, mara, tiny_kit)
    assert dialog.captions() == ["a photo of sks woman", "a photo of sks woman"]
    assert not dialog.resume_box.isEnabled()  # no interrupted run yet
    dialog.trigger_edit.setText("zwx")  # default captions follow the trigger
    assert dialog.captions() == ["a photo of zwx woman"] * 2
    dialog.samples_spin.setValue(1)
    steps = []
    dialog.progressed.connect(lambda m: steps.append((m.step, m.total)))
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        assert dialog.is_running(), dialog.status_label.text()
        assert not dialog.train_button.isEnabled() and dialog.cancel_button.isEnabled()
        assert dialog.windowModality() == Qt.WindowModality.NonModal  # the studio stays usable
        row = queue.row(dialog.job_id)  # a row of the render queue, with Cancel
        assert row is not None and row.name.text() == "Train LoRA · Mara" and row.cancel_button.isEnabled()
    assert outcome.args == ["finished"], dialog.status_label.text()
    assert steps == [(1, 2), (2, 2)] and len(dialog.loss_plot.losses) == 2
    assert rows and all(r.startswith("Training · ") and " · loss " in r for r in rows)
    assert dialog.sample_strip.steps == [1, 2] and dialog.sample_strip.count() == 2
    assert dialog.progress_bar.value() == 2 and "Done" in dialog.status_label.text()
    assert not dialog.resume_box.isEnabled() and not dialog.resume_box.isChecked()  # finished: nothing to resume
    assert queue.row(dialog.job_id) is None and service.is_idle()

    character = ctx.document.project.character(mara)
    card = lora_card(ctx.document.assets.get(character.lora_asset))
    assert card["steps"] == 2 and card["trigger"] == "zwx woman" and card["recipe"]["resolution"] == 64
    checkpoint = checkpoint_path(ctx.document.project.id, mara)
    assert not checkpoint.exists()
    assert sorted(p.name for p in samples_folder(checkpoint).iterdir()) == ["step-000001-0.png", "step-000002-0.png"]
    # The character's card shows the newest sample, its LoRA box the strip (from the kept files).
    qtbot.waitUntil(lambda: library.sample_steps.get(mara) == 2, timeout=RUN_TIMEOUT_MS)
    box = library.edit_character(mara).lora_box
    assert box is not None and box.sample_strip.steps == [1, 2]
    library.editor.close()
    assert ctx.undo_stack.undoText() == "Train LoRA of Mara"
    ctx.undo_stack.undo()  # one step
    assert ctx.document.project.character(mara).lora_asset is None
    dialog.close()


def test_cancel_then_resume_gives_the_uninterrupted_weights(
    ctx, mara, qtbot, tiny_kit, tiny_models, service, make_library
):
    dialog = _dialog(make_library(), mara, tiny_kit)
    _cancel_on_worker(service.engine, at_step=1)
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        dialog.start()
    assert outcome.args == ["cancelled"], dialog.status_label.text()
    assert "resume later" in dialog.status_label.text() and "cancelled at step 1" in dialog.status_label.text()
    assert checkpoint_path(ctx.document.project.id, mara).is_file()
    assert ctx.document.project.character(mara).lora_asset is None  # nothing half-stored
    assert dialog.resume_box.isEnabled() and dialog.resume_box.isChecked() and dialog.train_button.isEnabled()
    dialog.close()

    # A new dialog (as after a restart) offers the resume and finishes the run.
    again = _dialog(make_library(), mara, tiny_kit)
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


def test_closing_the_dialog_leaves_the_run_going_and_reopening_shows_it(
    ctx, mara, qtbot, tiny_kit, tiny_models, service, make_library
):
    library = make_library()
    dialog = _dialog(library, mara, tiny_kit, steps=3)
    hold, held = threading.Event(), threading.Event()

    def hold_after_step_2(msg) -> None:  # the worker waits here until the dialog was reopened
        if msg.kind == "train-lora" and msg.event is JobEvent.PROGRESS and msg.step == 2 and not held.is_set():
            held.set()
            hold.wait(RUN_TIMEOUT_MS / 1000)

    service.engine.subscribe(hold_after_step_2)
    try:
        assert dialog.start()
        job_id = dialog.job_id
        qtbot.waitUntil(lambda: len(dialog.loss_plot.losses) == 2, timeout=RUN_TIMEOUT_MS)
        with qtbot.waitSignal(ctx.message, timeout=5_000) as said:
            dialog.close()
        assert said.args == ["Mara's LoRA goes on training in the Queue"]
        qtbot.waitUntil(lambda: library.train_dialog is None, timeout=5_000)  # deleted on close
        assert service.training.active_for(mara).job_id == job_id  # the run did not stop

        reopened = _dialog(library, mara, tiny_kit)
        assert reopened is not dialog and reopened.is_running() and reopened.job_id == job_id
        assert len(reopened.loss_plot.losses) == 2 and reopened.progress_bar.value() == 2
        assert reopened.steps_spin.value() == 3 and not reopened.train_button.isEnabled()
    finally:
        hold.set()
    with qtbot.waitSignal(reopened.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        pass
    assert outcome.args == ["finished"], reopened.status_label.text()
    assert len(reopened.loss_plot.losses) == 3
    assert lora_card(ctx.document.assets.get(ctx.document.project.character(mara).lora_asset))["steps"] == 3
    reopened.close()


def test_quitting_the_app_mid_run_cancels_with_a_checkpoint(
    ctx, mara, qtbot, tiny_kit, tiny_models, service, make_library
):
    from PySide6.QtCore import QCoreApplication

    dialog = _dialog(make_library(), mara, tiny_kit, steps=500)
    assert dialog.start()
    qtbot.waitUntil(lambda: bool(dialog.loss_plot.losses), timeout=RUN_TIMEOUT_MS)  # under way
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        QCoreApplication.instance().aboutToQuit.emit()  # what QApplication.quit() sends
    assert outcome.args == ["cancelled"], dialog.status_label.text()
    assert checkpoint_path(ctx.document.project.id, mara).is_file() and dialog.resume_box.isChecked()
    dialog.close()


def test_bad_input_is_refused_and_a_busy_queue_is_not(ctx, qtbot, tiny_kit, tiny_models, tmp_path, monkeypatch):
    from anchor_helpers import cid, make_document

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
        dialog.steps_spin.setValue(1)
        dialog.resolution_spin.setValue(64)
        dialog.model_edit.setText(str(tiny_kit.sdxl))
        dialog.samples_spin.setValue(0)
        dialog.pictures.item(0).setText("   ")
        assert not dialog.start() and "needs a caption" in dialog.status_label.text()
        dialog.pictures.item(0).setText("a photo of sks person")
        panel = ctx.document.project.pages[0].panels[0]
        assert service.render_panels([panel.id])  # queued: the run waits for it
        with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
            assert dialog.start() and dialog.is_running()
            second = TrainLoraDialog(ctx, ana, render_service=service)  # shows the same run
            qtbot.addWidget(second)
            assert second.is_running() and second.job_id == dialog.job_id
            assert not second.start()  # one run per character
        assert outcome.args == ["finished"], dialog.status_label.text()
        qtbot.waitUntil(service.is_idle, timeout=RUN_TIMEOUT_MS)
        assert ctx.document.project.find_panel(panel.id)[1].results  # the render ran too
    finally:
        service.shutdown()


def _tensors(data: bytes) -> dict:
    from safetensors.torch import load

    return load(data)


def test_the_text_encoder_option_is_off_by_default_and_reaches_the_recipe(ctx, mara, qtbot, tiny_kit, make_library):
    dialog = _dialog(make_library(), mara, tiny_kit)
    assert not dialog.text_encoder_box.isChecked() and dialog.recipe().train_text_encoder is False
    dialog.text_encoder_box.setChecked(True)
    assert dialog.recipe().train_text_encoder is True
    dialog.close()

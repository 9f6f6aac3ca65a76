""" "Train AnimeAdapter…" in the studio on the tiny SD 1.5 kit: the Tools menu opens the dialog; the
run is a job of the render engine (a Queue row with its loss and Cancel) with progress in the
dialog; a cancel keeps the checkpoint and a new dialog offers Resume and finishes the run from
there, writing weights the anime backend loads; a bad form is refused with the field named."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PySide6.QtCore import Qt  # noqa: E402

from comic_studio.generation.messages import JobEvent  # noqa: E402
from comic_studio.generation.models.anime_adapter import load_adapter  # noqa: E402
from comic_studio.testing.tiny_sd15 import TINY_K, write_tiny_anime_dataset  # noqa: E402
from comic_studio.ui.anime_training import TrainAnimeAdapterDialog  # noqa: E402
from comic_studio.workflows.anime_training import CHECKPOINT  # noqa: E402

RUN_TIMEOUT_MS = 240_000  # a hang fails the test; the tiny runs take seconds


def _dialog(qtbot, service, sd15_kit, data, out) -> TrainAnimeAdapterDialog:
    dialog = TrainAnimeAdapterDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.source_combo.setCurrentIndex(dialog.source_combo.findData("data"))
    dialog.folder_edit.setText(str(data))
    dialog.out_edit.setText(str(out))
    dialog.base_edit.setText(str(sd15_kit.sd15))
    dialog.encoder_edit.setText(str(sd15_kit.clip_vision))
    dialog.controller_edit.setText(str(sd15_kit.t2i_adapter))
    dialog.steps_spin.setValue(3)
    dialog.k_spin.setValue(TINY_K)
    dialog.batch_spin.setValue(2)
    dialog.resolution_spin.setValue(64)  # the tiny UNet's size
    return dialog


def test_train_in_the_queue_cancel_and_resume_in_a_new_dialog(qtbot, sd15_kit, service, queue_rows, tmp_path):
    data, out = write_tiny_anime_dataset(tmp_path / "data"), tmp_path / "weights"
    queue, rows = queue_rows
    dialog = _dialog(qtbot, service, sd15_kit, data, out)
    assert not dialog.resume_box.isEnabled()  # nothing to resume yet
    assert dialog.windowModality() == Qt.WindowModality.NonModal

    cancelled: list[str] = []

    def cancel_at_step_1(msg) -> None:  # on the worker, inside step 1's report: deterministic
        if msg.kind == "train-anime-adapter" and msg.event is JobEvent.PROGRESS and msg.step == 1 and not cancelled:
            cancelled.append(msg.job_id)
            service.engine.cancel(msg.job_id)

    stop = service.engine.subscribe(cancel_at_step_1)
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        assert dialog.is_running(), dialog.status_label.text()
        assert not dialog.train_button.isEnabled() and dialog.cancel_button.isEnabled()
        row = queue.row(dialog.job_id)
        assert row is not None and row.name.text() == "Train AnimeAdapter · weights" and row.cancel_button.isEnabled()
    stop()
    assert outcome.args == ["cancelled"], dialog.status_label.text()
    assert "cancelled at step 1" in dialog.status_label.text() and "Resume" in dialog.status_label.text()
    assert rows and all(r.startswith("Training · ") and " · loss " in r for r in rows)
    assert (out / CHECKPOINT).is_file() and dialog.resume_box.isEnabled() and dialog.resume_box.isChecked()
    assert dialog.progress_bar.value() == 1 and dialog.train_button.isEnabled()
    dialog.close()

    again = _dialog(qtbot, service, sd15_kit, data, out)  # as after a restart
    assert again.resume_box.isEnabled() and again.resume_box.isChecked()
    steps: list[int] = []
    service.job_message.connect(lambda m: steps.append(m.step) if m.event is JobEvent.PROGRESS else None)
    with qtbot.waitSignal(again.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        assert again.start()
    assert outcome.args == ["finished"], again.status_label.text()
    assert steps == [2, 3]  # went on from the checkpoint
    assert again.status_label.text().startswith(f"Done: AnimeAdapter weights in {out}")
    assert again.progress_bar.value() == 3 and queue.row(again.job_id or "") is None and service.is_idle()
    assert load_adapter(out).config.k_layers == TINY_K


def test_a_bad_form_is_refused_with_the_field_named(ctx, qtbot, sd15_kit, service, tmp_path):
    dialog = _dialog(qtbot, service, sd15_kit, tmp_path / "missing", tmp_path / "weights")
    assert not dialog.start() and "Folder" in dialog.status_label.text()
    dialog.folder_edit.setText(str(tmp_path))
    dialog.out_edit.setText("")
    assert not dialog.start() and "Output folder" in dialog.status_label.text()
    assert not dialog.is_running() and service.is_idle()


def test_the_tools_menu_opens_one_dialog(qtbot, tmp_path, monkeypatch):
    from comic_studio.core.settings import AppSettings
    from comic_studio.ui.main_window import MainWindow

    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    window = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(window)
    tools = window.menuBar().findChild(type(window.menuBar().actions()[0].menu()), "menu_tools")
    assert window.action_map["train_anime"] in tools.actions()
    window.action_map["train_anime"].trigger()
    dialog = window.anime_training_dialog
    assert dialog.isVisible() and dialog.windowTitle() == "Train AnimeAdapter"
    window.action_map["train_anime"].trigger()
    assert window.anime_training_dialog is dialog  # one at a time
    dialog.close()
    window.ctx.undo_stack.setClean()


def test_a_reopened_dialog_shows_the_run_and_quitting_cancels_it_with_a_checkpoint(
    ctx, qtbot, sd15_kit, service, tmp_path
):
    import threading

    from PySide6.QtCore import QCoreApplication

    data, out = write_tiny_anime_dataset(tmp_path / "data"), tmp_path / "weights"
    dialog = _dialog(qtbot, service, sd15_kit, data, out)
    dialog.steps_spin.setValue(500)
    hold, held = threading.Event(), threading.Event()

    def hold_after_step_1(msg) -> None:  # the worker waits here until the dialog was reopened
        if msg.kind == "train-anime-adapter" and msg.event is JobEvent.PROGRESS and msg.step == 1 and not held.is_set():
            held.set()
            hold.wait(RUN_TIMEOUT_MS / 1000)

    stop = service.engine.subscribe(hold_after_step_1)
    try:
        assert dialog.start()
        job_id = dialog.job_id
        qtbot.waitUntil(lambda: dialog.progress_bar.value() == 1, timeout=RUN_TIMEOUT_MS)
        dialog.close()
        reopened = TrainAnimeAdapterDialog(service)  # shows the run's form, not a blank one
        qtbot.addWidget(reopened)
        assert reopened.is_running() and reopened.job_id == job_id  # the run did not stop with the dialog
        assert reopened.progress_bar.value() == 1 and reopened.steps_spin.value() == 500
        assert reopened.out_edit.text() == str(out) and reopened.resolution_spin.value() == 64
        assert reopened.base_edit.text() == str(sd15_kit.sd15) and not reopened.base_edit.isEnabled()
        assert not reopened.train_button.isEnabled() and not reopened.start()
        with qtbot.waitSignal(reopened.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
            QCoreApplication.instance().aboutToQuit.emit()  # what QApplication.quit() sends
            hold.set()
    finally:
        hold.set()
        stop()
    assert outcome.args == ["cancelled"], reopened.status_label.text()
    assert (out / CHECKPOINT).is_file() and reopened.resume_box.isChecked()


def test_the_render_service_follows_one_anime_run_at_a_time(ctx, qtbot, service, tmp_path):
    from comic_studio.core.errors import ComicStudioError
    from comic_studio.ui.training_jobs import TRAIN_ANIME_ADAPTER
    from comic_studio.workflows.anime_training_jobs import AnimeTrainingRequest

    # An empty folder of pictures: the run fails on the worker, after the second submit was refused.
    (tmp_path / "empty").mkdir()
    request = AnimeTrainingRequest(images=str(tmp_path / "empty"), out=str(tmp_path / "weights"), device="cpu")
    training = service.training
    with qtbot.waitSignal(training.ended, timeout=RUN_TIMEOUT_MS) as ended:
        job_id = training.submit(request)
        assert training.active_for("", TRAIN_ANIME_ADAPTER).job_id == job_id
        assert training.run(job_id).character_id == ""  # not a character's run
        with pytest.raises(ComicStudioError, match="An AnimeAdapter run is already in the Queue"):
            training.submit(request)
    assert ended.args[:2] == [job_id, "failed"] and "no picture could be used" in ended.args[2]
    assert training.active_for("", TRAIN_ANIME_ADAPTER) is None and training.run(job_id).outcome == "failed"


def test_a_refused_run_names_the_first_bad_training_setting():
    from pydantic import ValidationError

    from comic_studio.core.errors import ComicStudioError
    from comic_studio.ui.training_jobs import refusal
    from comic_studio.workflows.anime_training_jobs import AnimeTrainingRequest

    with pytest.raises(ValidationError) as bad:
        AnimeTrainingRequest(images="/pictures", out="")
    assert refusal(bad.value).startswith("training setting out: ")
    assert (
        refusal(ComicStudioError("Output folder: choose where the weights go"))
        == "Output folder: choose where the weights go"
    )

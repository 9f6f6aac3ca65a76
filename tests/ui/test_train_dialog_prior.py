"""The Train LoRA dialog's prior-preservation and min-SNR settings: ticked, the base model's class
pictures are drawn first (progress shown), cached, and the trained LoRA's card records them; a
cancel while they are drawn keeps those made."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from PySide6.QtCore import Qt  # noqa: E402

from comic_studio.core import character_edits as ce  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.model import Pronouns  # noqa: E402
from comic_studio.core.settings import BANK_DIR_ENV, class_images_dir  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.ui.characters import CharacterLibrary  # noqa: E402
from comic_studio.workflows.training import lora_card  # noqa: E402

RUN_TIMEOUT_MS = 240_000


def test_prior_preservation_from_the_dialog(ctx, qtbot, service, tiny_kit, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv(BANK_DIR_ENV, str(tmp_path / "cache" / "banks"))
    doc = Document.new(title="Training")
    mara = ce.add_character(doc, name="Mara", pronouns=Pronouns.HE)
    ce.add_reference(doc, mara.id, "face", character_picture(1, 64, 80))
    ctx.set_document(doc)
    library = CharacterLibrary(ctx, render_service=service)
    qtbot.addWidget(library)
    dialog = library.train_lora(mara.id)
    assert dialog is not None
    assert not dialog.prior_box.isChecked() and dialog.min_snr_spin.text() == "off"  # the seed's recipe
    assert dialog.class_prompt_edit.placeholderText() == "a photo of a man" and dialog.class_images_spin.value() == 100
    dialog.steps_spin.setValue(1)
    dialog.resolution_spin.setValue(64)
    dialog.model_edit.setText(str(tiny_kit.sdxl))
    dialog.prior_box.setChecked(True)
    dialog.class_images_spin.setValue(2)
    dialog.prior_weight_spin.setValue(0.5)
    dialog.min_snr_spin.setValue(5.0)
    shown: list[tuple[int, int]] = []
    dialog.class_progressed.connect(lambda done, total: shown.append((done, total)))

    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        assert not dialog.prior_box.isEnabled()  # settings are locked while it runs
    assert outcome.args == ["finished"], dialog.status_label.text()
    assert shown == [(1, 2), (2, 2)]
    assert len(list(class_images_dir().glob("*/*.png"))) == 2
    card = lora_card(ctx.document.assets.get(ctx.document.project.character(mara.id).lora_asset))
    assert card["recipe"]["prior_preservation"] and card["recipe"]["prior_loss_weight"] == 0.5
    assert card["recipe"]["snr_gamma"] == 5.0 and card["class_pictures"]["prompt"] == "a photo of a man"

    dialog.class_images_spin.setValue(4)  # two more to draw: cancelled after the first of them
    # On the engine's worker thread, which draws the pictures: the cancel is seen before the fourth
    # picture is started, whatever the GUI thread is doing.
    engine = dialog.render_service.engine

    def cancel_after_third(message) -> None:
        if "class_pictures" in message.info and message.step >= 3:
            engine.cancel(message.job_id)

    engine.subscribe(cancel_after_third)
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    assert outcome.args == ["cancelled"]
    assert "3 of 4 kept" in dialog.status_label.text()
    assert len(list(class_images_dir().glob("*/*.png"))) == 3
    dialog.close()

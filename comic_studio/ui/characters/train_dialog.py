""" "Train LoRA…" on a character: StoryBooth's DreamBooth-LoRA from the character's references, with
its own settings (rank, timestep law, memory recipe, prior preservation, trigger, captions) on the
shared training dialog (:mod:`.training_dialog`: progress, loss plot, samples, Cancel → checkpoint →
resume, the run in the render queue; not modal; closing leaves the run going). The document is read
before the run (:func:`~comic_studio.workflows.training.plan_training`) and changed after it, on the
GUI thread, as one undoable step (:func:`~comic_studio.workflows.training.store_trained_lora`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from comic_studio.training.lora import LoraRecipe
from comic_studio.training.samples import SampleSettings
from comic_studio.ui.characters.card import ThumbnailCache, thumbnail_pixmap
from comic_studio.ui.characters.training_dialog import LossPlot, SampleStrip, TrainingDialog, format_eta
from comic_studio.ui.context import StudioContext
from comic_studio.workflows.class_images import class_prompt
from comic_studio.workflows.training import CLASS_WORDS, DEFAULT_TRIGGER, checkpoint_path, plan_training
from comic_studio.workflows.training_jobs import TRAIN_LORA, TrainingRequest, training_request

__all__ = ["LossPlot", "SampleStrip", "TrainLoraDialog", "format_eta"]  # the shared parts, for old importers

THUMB = 48
TIMESTEP_LAWS = {
    "logit_normal": "StoryBooth: logit-normal (μ −0.3, σ 1.6)",
    "uniform": "uniform",
}
MEMORY_RECIPES = {
    "as-the-seed-ran": "as the seed ran it (fp16, ≈20 GB)",
    "16gb": "16 GB (gradient checkpointing, 8-bit Adam)",
    "12gb": "12 GB (plus cached latents and embeddings)",
}


class TrainLoraDialog(TrainingDialog):
    """Train the character's LoRA (the shared parts: :class:`TrainingDialog`)."""

    KIND = TRAIN_LORA
    ACTION = "Train LoRA…"

    class_progressed = Signal(int, int)
    """``(done, total)`` class pictures drawn for prior preservation (GUI thread)."""

    def __init__(
        self,
        ctx: StudioContext,
        character_id: str,
        parent: QWidget | None = None,
        *,
        render_service: Any = None,
        thumbnails: ThumbnailCache | None = None,
    ):
        defaults = LoraRecipe()
        super().__init__(ctx, character_id, parent, render_service=render_service, steps=defaults.steps,
                         learning_rate=defaults.learning_rate, resolution=defaults.resolution)  # fmt: skip
        character = ctx.document.project.character(character_id)
        assert character is not None  # the base checked
        self.rank_spin = QSpinBox()
        self.rank_spin.setRange(1, 256)
        self.rank_spin.setValue(defaults.rank)
        self.rank_spin.setToolTip("LoRA rank (alpha follows it, so the LoRA's scale stays 1)")
        self.law_combo = QComboBox()
        for key, title in TIMESTEP_LAWS.items():
            self.law_combo.addItem(title, key)
        self.memory_combo = QComboBox()
        for key, title in MEMORY_RECIPES.items():
            self.memory_combo.addItem(title, key)
        self.trigger_edit = QLineEdit(DEFAULT_TRIGGER)
        self.trigger_edit.setToolTip("The rare identifier token the LoRA learns the character by")
        self.trigger_edit.textChanged.connect(self._trigger_changed)
        self.pictures = QListWidget()
        self.pictures.setIconSize(QSize(THUMB, THUMB))
        self.pictures.setToolTip("The character's face and outfit references; double-click a caption to edit it")
        self._class_word = CLASS_WORDS.get(character.pronouns, "person")
        # Prior preservation (DreamBooth): off by default, as StoryBooth ran; see training.lora.
        self.prior_box = QCheckBox("prior preservation with the base model's own class pictures")
        self.prior_box.setToolTip(
            "DreamBooth's prior loss: the base model first draws pictures of the class (cached and "
            "reused by every character), so the LoRA keeps what the class looks like"
        )
        self.class_prompt_edit = QLineEdit()
        self.class_prompt_edit.setPlaceholderText(class_prompt(self._class_word))
        self.class_images_spin = QSpinBox()
        self.class_images_spin.setRange(1, 10_000)
        self.class_images_spin.setValue(defaults.class_images)
        self.prior_weight_spin = QDoubleSpinBox()
        self.prior_weight_spin.setRange(0.0, 10.0)
        self.prior_weight_spin.setSingleStep(0.1)
        self.prior_weight_spin.setValue(defaults.prior_loss_weight)
        self.text_encoder_box = QCheckBox("also train the text encoders (LoRA on their attention)")
        self.text_encoder_box.setToolTip(
            "Off as StoryBooth ran: the trigger word is learnt by the UNet alone. On, both SDXL text "
            "encoders get a LoRA too (learning rate 5e-6, diffusers' DreamBooth default)"
        )
        self.min_snr_spin = QDoubleSpinBox()
        self.min_snr_spin.setRange(0.0, 100.0)
        self.min_snr_spin.setSpecialValueText("off")
        self.min_snr_spin.setToolTip("min-SNR-γ loss weighting (off as the seed ran; 5 is the paper's γ)")
        thumbs = thumbnails or ThumbnailCache()
        for digest in dict.fromkeys([*character.face_refs, *character.body_refs]):
            icon = QIcon(thumbnail_pixmap(thumbs.get(ctx.document.assets, digest, THUMB), THUMB))
            item = QListWidgetItem(icon, self._default_caption(DEFAULT_TRIGGER))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            item.setData(Qt.ItemDataRole.UserRole, digest)
            self.pictures.addItem(item)
        self.pictures.setMinimumHeight(min(2, max(1, self.pictures.count())) * (THUMB + 8))
        self.pictures.setMaximumHeight(4 * (THUMB + 8))

        form = self.form
        form.addRow("Steps", self.steps_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Rank", self.rank_spin)
        form.addRow("Resolution", self.resolution_spin)
        form.addRow("Timesteps", self.law_combo)
        form.addRow("Memory recipe", self.memory_combo)
        form.addRow("Samples every", self.samples_spin)
        form.addRow("min-SNR γ", self.min_snr_spin)
        form.addRow("", self.text_encoder_box)
        form.addRow("", self.prior_box)
        form.addRow("Class prompt", self.class_prompt_edit)
        form.addRow("Class pictures", self.class_images_spin)
        form.addRow("Prior loss weight", self.prior_weight_spin)
        form.addRow("Base model", self.model_edit)
        form.addRow("Trigger word", self.trigger_edit)
        form.addRow("", self.resume_box)
        self.finish_layout(QLabel(f"Pictures ({self.pictures.count()}) and their captions"), self.pictures)
        self.resize(520, 720)

    # ------------------------------------------------------------------ form
    def _default_caption(self, trigger: str) -> str:
        return f"a photo of {trigger.strip() or DEFAULT_TRIGGER} {self._class_word}"

    def _trigger_changed(self, text: str) -> None:
        # Captions the user left at the default follow the trigger; edited ones are kept.
        old = getattr(self, "_trigger", DEFAULT_TRIGGER)
        for row in range(self.pictures.count()):
            item = self.pictures.item(row)
            if item.text() == self._default_caption(old):
                item.setText(self._default_caption(text))
        self._trigger = text

    def captions(self) -> list[str]:
        return [self.pictures.item(row).text() for row in range(self.pictures.count())]

    def recipe(self) -> LoraRecipe:
        rank = self.rank_spin.value()
        return LoraRecipe(
            steps=self.steps_spin.value(),
            learning_rate=self.lr_spin.value(),
            rank=rank,
            alpha=float(rank),  # alpha = rank: the LoRA's scale stays 1, as the CLI does
            resolution=self.resolution_spin.value(),
            timestep_law=self.law_combo.currentData(),
            memory=self.memory_combo.currentData(),
            snr_gamma=self.min_snr_spin.value() or None,
            prior_preservation=self.prior_box.isChecked(),
            train_text_encoder=self.text_encoder_box.isChecked(),
            class_prompt=self.class_prompt_edit.text().strip(),
            class_images=self.class_images_spin.value(),
            prior_loss_weight=self.prior_weight_spin.value(),
        )

    # ------------------------------------------------------------------ the base's hooks
    def checkpoint(self) -> Path:
        return checkpoint_path(self.ctx.document.project.id, self.character_id)

    def settings_widgets(self) -> list[QWidget]:
        return [*super().settings_widgets(), self.rank_spin, self.law_combo, self.memory_combo, self.trigger_edit,
                self.pictures, self.min_snr_spin, self.text_encoder_box, self.prior_box, self.class_prompt_edit, self.class_images_spin,
                self.prior_weight_spin]  # fmt: skip

    def build_request(self, resume: bool) -> TrainingRequest:
        recipe = self.recipe()
        plan = plan_training(
            self.ctx.document,
            self.character_id,
            trigger=self.trigger_edit.text().strip() or DEFAULT_TRIGGER,
            resume=resume,
            captions=self.captions(),
        )
        return training_request(plan, recipe, model=self.model_edit.text().strip(), resume=resume,
                                samples=SampleSettings(every=self.samples_spin.value()))  # fmt: skip

    def _on_update(self, job_id: str, msg: Any) -> None:
        if job_id == self.job_id and msg.event.value == "progress" and "class_pictures" in msg.info:
            self.progress_bar.setRange(0, msg.total)
            self.progress_bar.setValue(msg.step)
            self.show_status(
                f"Class pictures for prior preservation: {msg.step}/{msg.total} (drawn once, kept for reuse)"
            )
            self.class_progressed.emit(msg.step, msg.total)
            return
        super()._on_update(job_id, msg)

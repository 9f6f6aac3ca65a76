""" "Train LoRA…" on a character: StoryBooth's DreamBooth-LoRA from the character's references, with
progress, a loss plot, a strip of samples every N steps and Cancel (→ checkpoint → resume later).

Where the run happens: in the render queue, as a job of the same engine as the renders (the GPU's
one owner; :mod:`comic_studio.workflows.training_jobs`), followed by the render service's
:class:`~comic_studio.ui.training_jobs.TrainingJobs`. So the dialog is not modal and does not
refuse while renders are queued: the run waits for the renders queued before it, renders queued
after it wait for it, and the Queue shows it with Cancel. Closing the dialog leaves the run going
in the Queue (the finished LoRA still lands on the character); Train LoRA… on the character shows
the run again. The document is read before the run
(:func:`~comic_studio.workflows.training.plan_training`) and changed after it, on the GUI thread, as
one undoable step (:func:`~comic_studio.workflows.training.store_trained_lora`).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.errors import ComicStudioError
from comic_studio.training.lora import LoraRecipe
from comic_studio.training.samples import DEFAULT_SAMPLE_EVERY, SampleSettings
from comic_studio.ui.characters.card import ThumbnailCache, thumbnail_pixmap
from comic_studio.ui.context import StudioContext
from comic_studio.ui.training_jobs import TrainingRun
from comic_studio.workflows.class_images import class_prompt
from comic_studio.workflows.training import CLASS_WORDS, DEFAULT_TRIGGER, checkpoint_path, plan_training
from comic_studio.workflows.training_jobs import training_request

THUMB = 48
SAMPLE_THUMB = 72
TIMESTEP_LAWS = {
    "logit_normal": "StoryBooth: logit-normal (μ −0.3, σ 1.6)",
    "uniform": "uniform",
}
MEMORY_RECIPES = {
    "as-the-seed-ran": "as the seed ran it (fp16, ≈20 GB)",
    "16gb": "16 GB (gradient checkpointing, 8-bit Adam)",
    "12gb": "12 GB (plus cached latents and embeddings)",
}


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class LossPlot(QWidget):
    """A sparkline of the loss per step (the last :attr:`LIMIT` steps)."""

    LIMIT = 2000

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.losses: list[float] = []
        self.setMinimumHeight(56)

    def sizeHint(self) -> QSize:
        return QSize(320, 64)

    def add(self, loss: float) -> None:
        if math.isfinite(loss):  # a NaN step would flatten the whole line
            self.losses.append(loss)
            del self.losses[: -self.LIMIT]
            self.update()

    def clear(self) -> None:
        self.losses.clear()
        self.update()

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#fafafa"))
        painter.setPen(QPen(QColor("#d0d0d0"), 1))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        if len(self.losses) >= 2:
            low, high = min(self.losses), max(self.losses)
            span = (high - low) or 1.0
            w, h, pad = self.width() - 8, self.height() - 8, 4
            last = len(self.losses) - 1
            points = QPolygonF(
                [QPointF(pad + w * i / last, pad + h * (1 - (loss - low) / span)) for i, loss in enumerate(self.losses)]
            )
            painter.setPen(QPen(QColor("#1e6fd0"), 1.5))
            painter.drawPolyline(points)
        painter.end()


class SampleStrip(QListWidget):
    """The samples so far, one picture per prompt and step, newest last ("step N" under each)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListWidget.Movement.Static)
        self.setIconSize(QSize(SAMPLE_THUMB, SAMPLE_THUMB))
        self.setFixedHeight(SAMPLE_THUMB + 2 * self.fontMetrics().lineSpacing() + 12)
        self.setToolTip("Samples at fixed prompts and seed, rendered with the weights so far")
        self.steps: list[int] = []

    def add(self, step: int, images: list[Any]) -> None:
        for image in images:
            pixmap = QPixmap.fromImage(image).scaled(SAMPLE_THUMB, SAMPLE_THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation)  # fmt: skip
            self.addItem(QListWidgetItem(QIcon(pixmap), f"step {step}"))
            self.steps.append(step)
        self.scrollToBottom()

    def clear(self) -> None:
        super().clear()
        self.steps = []


class TrainLoraDialog(QDialog):
    """Train the character's LoRA. :attr:`outcome_text` / :attr:`status` tell tests what happened."""

    progressed = Signal(object)
    """A PROGRESS :class:`~comic_studio.generation.messages.JobMessage` of this dialog's run (GUI thread)."""
    class_progressed = Signal(int, int)
    """``(done, total)`` class pictures drawn for prior preservation (GUI thread)."""
    sampled = Signal(int)
    """The run delivered its samples of this step."""
    finished_training = Signal(str)
    """The run ended: "finished", "cancelled" or "failed" (tests and the library wait on it)."""

    def __init__(
        self,
        ctx: StudioContext,
        character_id: str,
        parent: QWidget | None = None,
        *,
        render_service: Any = None,
        thumbnails: ThumbnailCache | None = None,
    ):
        super().__init__(parent)
        character = ctx.document.project.character(character_id)
        if character is None:
            raise ComicStudioError(f"character {character_id!r} does not exist")
        self.ctx = ctx
        self.character_id = character_id
        self.character_name = character.name
        self.render_service = render_service
        self._running = False
        self.job_id: str | None = None
        self.setWindowTitle(f"Train LoRA — {character.name}")

        defaults = LoraRecipe()
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setValue(defaults.steps)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.000001, 1.0)
        self.lr_spin.setSingleStep(0.00001)
        self.lr_spin.setValue(defaults.learning_rate)
        self.rank_spin = QSpinBox()
        self.rank_spin.setRange(1, 256)
        self.rank_spin.setValue(defaults.rank)
        self.rank_spin.setToolTip("LoRA rank (alpha follows it, so the LoRA's scale stays 1)")
        self.resolution_spin = QSpinBox()
        self.resolution_spin.setRange(32, 2048)
        self.resolution_spin.setSingleStep(64)
        self.resolution_spin.setValue(defaults.resolution)
        self.law_combo = QComboBox()
        for key, title in TIMESTEP_LAWS.items():
            self.law_combo.addItem(title, key)
        self.memory_combo = QComboBox()
        for key, title in MEMORY_RECIPES.items():
            self.memory_combo.addItem(title, key)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("the default SDXL model (catalogue id, folder or checkpoint)")
        self.trigger_edit = QLineEdit(DEFAULT_TRIGGER)
        self.trigger_edit.setToolTip("The rare identifier token the LoRA learns the character by")
        self.trigger_edit.textChanged.connect(self._trigger_changed)
        self.resume_box = QCheckBox("resume the interrupted run")
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(0, 100_000)
        self.samples_spin.setValue(DEFAULT_SAMPLE_EVERY)
        self.samples_spin.setSpecialValueText("never")
        self.samples_spin.setToolTip(
            "Render sample pictures (fixed prompt and seed, the LoRA so far) every N steps; 0: never"
        )
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

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing() + 4)
        self.loss_plot = LossPlot()
        self.sample_strip = SampleStrip()

        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.train_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.addButton(self.train_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
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
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel(f"Pictures ({self.pictures.count()}) and their captions"))
        layout.addWidget(self.pictures)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.sample_strip)
        layout.addWidget(self.buttons)
        self._update_resume()
        if render_service is not None:
            render_service.training.updated.connect(self._on_update)
            render_service.training.ended.connect(self._on_ended)
            run = render_service.training.active_for(character_id)
            if run is not None:
                self._attach(run)
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

    def _update_resume(self) -> None:
        has = checkpoint_path(self.ctx.document.project.id, self.character_id).is_file()
        self.resume_box.setEnabled(has and not self._running)
        self.resume_box.setChecked(has)
        self.resume_box.setToolTip(
            "An earlier run was interrupted: continue it from its checkpoint (same settings)"
            if has
            else "No interrupted run of this character to resume"
        )

    def _set_running(self, running: bool) -> None:
        self._running = running
        for widget in (self.steps_spin, self.lr_spin, self.rank_spin, self.resolution_spin, self.law_combo,
                       self.memory_combo, self.model_edit, self.trigger_edit, self.pictures, self.train_button,
                       self.samples_spin, self.min_snr_spin, self.text_encoder_box, self.prior_box,
                       self.class_prompt_edit, self.class_images_spin, self.prior_weight_spin):  # fmt: skip
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        # Close stays enabled: the run goes on in the Queue without the dialog.
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setToolTip(
            "Close this window; the training goes on in the Queue" if running else ""
        )
        if not running:
            self._update_resume()

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c62828;" if error else "")

    def is_running(self) -> bool:
        return self._running

    # ------------------------------------------------------------------ run
    def start(self) -> bool:
        """Queue the training run (False, with the reason shown, when it cannot)."""
        if self._running:
            return False
        service = self.render_service
        resume = self.resume_box.isChecked() and self.resume_box.isEnabled()
        try:
            recipe = self.recipe()
            samples = SampleSettings(every=self.samples_spin.value())
            plan = plan_training(
                self.ctx.document,
                self.character_id,
                trigger=self.trigger_edit.text().strip() or DEFAULT_TRIGGER,
                resume=resume,
                captions=self.captions(),
            )
            request = training_request(plan, recipe, model=self.model_edit.text().strip(), resume=resume,
                                       samples=samples)  # fmt: skip
            if service is None:
                raise ComicStudioError("Training runs in the render queue: open Train LoRA… from the studio.")
            job_id = service.training.submit(request)
        except ValidationError as exc:
            first = exc.errors()[0]
            self.show_status(f"training setting {'.'.join(map(str, first['loc']))}: {first['msg']}", error=True)
            return False
        except ComicStudioError as exc:
            self.show_status(str(exc), error=True)
            return False
        self.job_id = job_id
        self.loss_plot.clear()
        self.sample_strip.clear()
        self.progress_bar.setRange(0, recipe.steps)
        self.progress_bar.setValue(0)
        self.show_status("Queued: the run starts when the renders queued before it are done.")
        self._set_running(True)
        return True

    def _attach(self, run: TrainingRun) -> None:
        """Show a run that is already queued or running (the dialog was closed and opened again)."""
        self.job_id = run.job_id
        recipe = run.request.recipe
        self.steps_spin.setValue(recipe.steps)
        self.resolution_spin.setValue(recipe.resolution)
        self.samples_spin.setValue(run.request.samples.every)
        self.model_edit.setText(run.request.base_model)
        self.progress_bar.setRange(0, recipe.steps)
        for loss in run.losses:
            self.loss_plot.add(loss)
        for step, images in run.samples:
            self.sample_strip.add(step, images)
        self._set_running(True)
        if run.last is not None:
            self._show_progress(run.last)
        else:
            self.show_status("Queued: the run starts when the renders queued before it are done.")

    def _on_update(self, job_id: str, msg: Any) -> None:
        if job_id != self.job_id:
            return
        event = msg.event.value
        if event == "started":
            self.show_status("Loading the base model…")
        elif event == "progress" and "class_pictures" in msg.info:
            self.progress_bar.setRange(0, msg.total)
            self.progress_bar.setValue(msg.step)
            self.show_status(
                f"Class pictures for prior preservation: {msg.step}/{msg.total} (drawn once, kept for reuse)"
            )
            self.class_progressed.emit(msg.step, msg.total)
        elif event == "progress":
            self.loss_plot.add(float(msg.info.get("loss", math.nan)))
            self._show_progress(msg)
            self.progressed.emit(msg)
        elif event == "sample":
            run = self.render_service.training.run(job_id)
            if run is not None and run.samples:
                self.sample_strip.add(*run.samples[-1])
            self.sampled.emit(msg.step)

    def _show_progress(self, msg: Any) -> None:
        self.progress_bar.setRange(0, msg.total)
        self.progress_bar.setValue(msg.step)
        info = msg.info
        rate = float(info.get("steps_per_second", 0.0))
        self.show_status(
            f"Step {msg.step}/{msg.total} · loss {float(info.get('loss', math.nan)):.4f} · "
            f"{rate:.2f} steps/s · ETA {format_eta(msg.eta if msg.eta is not None else math.nan)}"
        )

    def request_cancel(self) -> None:
        """Cancel the run (GUI thread): it stops within a step and saves its checkpoint first."""
        if self.job_id is not None and self.render_service is not None:
            self.render_service.training.cancel(self.job_id)

    def cancel(self) -> None:
        """Stop at the next step; the run saves a checkpoint first (resume later). GUI thread."""
        if self._running:
            self.request_cancel()
            self.cancel_button.setEnabled(False)
            self.show_status("Cancelling: saving a checkpoint…")

    def _on_ended(self, job_id: str, outcome: str, text: str) -> None:
        if job_id != self.job_id:
            return
        self._set_running(False)
        if outcome == "finished":
            self.progress_bar.setValue(self.progress_bar.maximum())
            self.show_status(text)
        elif outcome == "cancelled" and checkpoint_path(self.ctx.document.project.id, self.character_id).is_file():
            self.show_status(
                f"Cancelled ({text}): the checkpoint is saved — resume later "
                "(open Train LoRA… again and keep “resume” ticked)."
            )
        elif outcome == "cancelled":
            self.show_status(f"Cancelled ({text}); there is nothing to resume.")
        else:
            self.show_status(f"Training failed: {text}", error=True)
        self.finished_training.emit(outcome)

    # ------------------------------------------------------------------ closing
    def done(self, result: int) -> None:
        if self._running:  # the run does not need this window: it goes on in the Queue
            self.ctx.message.emit(f"{self.character_name}'s LoRA goes on training in the Queue")
        super().done(result)

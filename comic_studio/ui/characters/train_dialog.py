""" "Train LoRA…" on a character: StoryBooth's DreamBooth-LoRA from the character's references, run
off the GUI thread with progress, a loss plot and Cancel (→ checkpoint → resume later).

Where the run happens, and why: on a helper thread of this dialog (:class:`BackgroundJobs`), not
as a job of the render engine. The GPU still has one owner at a time: the dialog refuses to start
while the render queue has work (:meth:`RenderService.is_idle`), and while it trains it is
application-modal, so nothing can queue a render until the run ends (finished, failed or
cancelled with its checkpoint saved). The document is read before the run
(:func:`~comic_studio.workflows.training.plan_training`) and changed after it, on the GUI thread, as
one undoable step (:func:`~comic_studio.workflows.training.store_trained_lora`); the run itself
(:func:`~comic_studio.workflows.training.run_training`) never touches it.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QCoreApplication, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPolygonF
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
from comic_studio.training.lora import LoraRecipe, TrainingCancelled, TrainingProgress
from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.characters.card import ThumbnailCache, thumbnail_pixmap
from comic_studio.ui.context import StudioContext
from comic_studio.workflows.class_images import ClassImagesCancelled, class_prompt
from comic_studio.workflows.training import (
    CLASS_WORDS,
    DEFAULT_TRIGGER,
    TrainingOutcome,
    TrainingPlan,
    checkpoint_path,
    plan_training,
    run_training,
    store_trained_lora,
    training_device,
)

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


class TrainLoraDialog(QDialog):
    """Train the character's LoRA. :attr:`outcome_text` / :attr:`status` tell tests what happened."""

    progressed = Signal(object)
    class_progressed = Signal(int, int)
    """``(done, total)`` class pictures for prior preservation, from the training thread."""
    """A :class:`TrainingProgress`, emitted on the training thread and delivered on the GUI thread."""
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
        self.render_service = render_service
        self._cancel = threading.Event()
        self._running = False
        self._plan: TrainingPlan | None = None
        self.jobs = BackgroundJobs(self, "lora-training")
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
        # Prior preservation (DreamBooth): off by default, as StoryBooth ran; see training.lora.
        self._class_word = CLASS_WORDS.get(character.pronouns, "person")
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
        self.min_snr_spin = QDoubleSpinBox()
        self.min_snr_spin.setRange(0.0, 100.0)
        self.min_snr_spin.setSpecialValueText("off")
        self.min_snr_spin.setToolTip("min-SNR-γ loss weighting (off as the seed ran; 5 is the paper's γ)")
        self.pictures = QListWidget()
        self.pictures.setIconSize(QSize(THUMB, THUMB))
        self.pictures.setToolTip("The character's face and outfit references; double-click a caption to edit it")
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
        form.addRow("Base model", self.model_edit)
        form.addRow("Trigger word", self.trigger_edit)
        form.addRow("min-SNR γ", self.min_snr_spin)
        form.addRow("", self.prior_box)
        form.addRow("Class prompt", self.class_prompt_edit)
        form.addRow("Class pictures", self.class_images_spin)
        form.addRow("Prior loss weight", self.prior_weight_spin)
        form.addRow("", self.resume_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel(f"Pictures ({self.pictures.count()}) and their captions"))
        layout.addWidget(self.pictures)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.buttons)
        self.progressed.connect(self._show_progress)
        self.class_progressed.connect(self._show_class_progress)
        app = QCoreApplication.instance()
        if app is not None:
            # Quitting mid-run: stop at the next micro-step with a checkpoint, so the exit (which
            # waits for the training thread) is quick and the run resumes next time.
            app.aboutToQuit.connect(self.request_cancel)
        self._update_resume()
        self.resize(520, 640)

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
                       self.min_snr_spin, self.prior_box, self.class_prompt_edit, self.class_images_spin,
                       self.prior_weight_spin):  # fmt: skip
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(not running)
        # Modal while it trains: nothing can queue a render on the GPU the run holds.
        self.setWindowModality(Qt.WindowModality.ApplicationModal if running else Qt.WindowModality.NonModal)
        if not running:
            self._update_resume()

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c62828;" if error else "")

    def is_running(self) -> bool:
        return self._running

    # ------------------------------------------------------------------ run
    def start(self) -> bool:
        """Start training (False, with the reason shown, when it cannot)."""
        if self._running:
            return False
        if self.render_service is not None and not self.render_service.is_idle():
            self.show_status(
                "The render queue is busy: training and renders share the GPU. Wait for the queue or "
                "cancel its jobs, then train.",
                error=True,
            )
            return False
        resume = self.resume_box.isChecked() and self.resume_box.isEnabled()
        try:
            recipe = self.recipe()
            plan = plan_training(
                self.ctx.document,
                self.character_id,
                trigger=self.trigger_edit.text().strip() or DEFAULT_TRIGGER,
                resume=resume,
                captions=self.captions(),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            self.show_status(f"training setting {'.'.join(map(str, first['loc']))}: {first['msg']}", error=True)
            return False
        except ComicStudioError as exc:
            self.show_status(str(exc), error=True)
            return False
        self._plan = plan
        self._cancel.clear()
        if not resume:
            self.loss_plot.clear()
        self.progress_bar.setRange(0, recipe.steps)
        self.show_status("Loading the base model…" if not resume else "Loading the checkpoint…")
        self._set_running(True)
        self.jobs.submit(
            self._train,
            plan,
            recipe,
            self.model_edit.text().strip(),
            resume,
            on_result=self._finished,
            on_error=self._failed,
        )
        return True

    def _train(self, plan: TrainingPlan, recipe: LoraRecipe, model: str, resume: bool) -> TrainingOutcome:
        """The training thread: no widgets, no document."""
        device, dtype = training_device("auto")
        return run_training(
            plan,
            recipe,
            model=model,
            resume=resume,
            device=device,
            dtype=dtype,
            cancel=self._cancel.is_set,
            on_progress=self.progressed.emit,  # queued to the GUI thread
            on_class_picture=self.class_progressed.emit,
        )

    def _show_progress(self, progress: TrainingProgress) -> None:
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.step)
        self.loss_plot.add(progress.loss)
        self.show_status(
            f"Step {progress.step}/{progress.total} · loss {progress.loss:.4f} · "
            f"{progress.steps_per_second:.2f} steps/s · ETA {format_eta(progress.eta_seconds)}"
        )

    def _show_class_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)
        self.show_status(f"Class pictures for prior preservation: {done}/{total} (drawn once, kept for reuse)")

    def request_cancel(self) -> None:
        """Ask the run to stop before its next micro-step (any thread: only sets an event)."""
        self._cancel.set()

    def cancel(self) -> None:
        """Stop at the next step; the run saves a checkpoint first (resume later). GUI thread."""
        if self._running:
            self.request_cancel()
            self.cancel_button.setEnabled(False)
            self.show_status("Cancelling: saving a checkpoint…")

    def _finished(self, outcome: TrainingOutcome) -> None:
        plan = self._plan
        assert plan is not None
        # Stored before the controls come back: storing removes the run's checkpoint, so "resume"
        # is then (rightly) not offered.
        trained = self.ctx.edit(store_trained_lora, plan, outcome)  # one undoable step, GUI thread
        self._set_running(False)
        if trained is None:
            self.show_status("The LoRA was trained but could not be stored (see the status bar).", error=True)
            self.finished_training.emit("failed")
            return
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.show_status(
            f"Done: {plan.character_name} has a trained LoRA ({trained.steps} steps, final loss "
            f"{trained.final_loss:.4f}). Renders with {plan.character_name} now use it."
        )
        self.ctx.message.emit(f"{plan.character_name}'s LoRA is trained")
        self.finished_training.emit("finished")

    def _failed(self, error: BaseException) -> None:
        self._set_running(False)
        if isinstance(error, ClassImagesCancelled):
            self.show_status(
                f"Cancelled while making class pictures ({error.made} of {error.total} kept): train again to "
                "continue — the pictures made are reused."
            )
            self.finished_training.emit("cancelled")
            return
        if isinstance(error, TrainingCancelled):
            self.show_status(
                f"Cancelled at step {error.step}: the checkpoint is saved — resume later "
                "(open Train LoRA… again and keep “resume” ticked)."
            )
            self.finished_training.emit("cancelled")
            return
        text = str(error) if isinstance(error, ComicStudioError) else f"{type(error).__name__}: {error}"
        self.show_status(f"Training failed: {text}", error=True)
        self.finished_training.emit("failed")

    # ------------------------------------------------------------------ closing
    def reject(self) -> None:
        if self._running:  # Esc or the window's close while training: cancel, keep the dialog
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event: Any) -> None:
        if self._running:
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)

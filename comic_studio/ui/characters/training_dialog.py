"""What every "Train …" dialog of a character shares (the LoRA's :mod:`.train_dialog`, the identity's
:mod:`.identity_dialog`): the common settings, progress, a loss plot, a strip of samples, Cancel (→
checkpoint → resume later), and following the run in the render queue.

Where the run happens: in the render queue, as a job of the same engine as the renders (the GPU's
one owner), followed by the render service's :class:`~comic_studio.ui.training_jobs.TrainingJobs`.
So a dialog is not modal and does not refuse while renders are queued: the run waits for the
renders queued before it, renders queued after it wait for it, and the Queue shows it with Cancel.
Closing the dialog leaves the run going in the Queue (the result still lands on the character, one
undoable step); opening the dialog on the character again shows the run with its loss curve and
samples so far. A subclass adds its own settings and builds its request (:meth:`build_request`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLayout,
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
from comic_studio.training.samples import DEFAULT_SAMPLE_EVERY
from comic_studio.ui.context import StudioContext
from comic_studio.ui.training_jobs import KINDS, TrainingRun, refusal

SAMPLE_THUMB = 72
QUEUED_TEXT = "Queued: the run starts when the renders queued before it are done."


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


class TrainingDialog(QDialog):
    """The base of a character's training dialog. Subclasses set :attr:`KIND` and :attr:`ACTION`,
    add their settings to :attr:`form` and call :meth:`finish_layout`, and implement
    :meth:`checkpoint`, :meth:`build_request` and :meth:`settings_widgets`.
    :attr:`status_label` / :meth:`is_running` tell tests what happened."""

    KIND = ""
    """The task kind (a key of :data:`~comic_studio.ui.training_jobs.KINDS`)."""
    ACTION = ""
    """The menu entry that opens the dialog ("Train LoRA…"), named in messages."""

    progressed = Signal(object)
    """A PROGRESS :class:`~comic_studio.generation.messages.JobMessage` of this dialog's run (GUI thread)."""
    sampled = Signal(int)
    """The run delivered its samples of this step."""
    finished_training = Signal(str)
    """The run ended: "finished", "cancelled" or "failed" (tests and the library wait on it)."""

    def __init__(
        self,
        ctx: StudioContext,
        character_id: str,
        parent: QWidget | None,
        *,
        render_service: Any,
        steps: int,
        learning_rate: float,
        resolution: int,
    ):
        super().__init__(parent)
        character = ctx.document.project.character(character_id)
        if character is None:
            raise ComicStudioError(f"character {character_id!r} does not exist")
        self.ctx = ctx
        self.character_id = character_id
        self.character_name = character.name
        self.render_service = render_service
        self.noun = KINDS[self.KIND].noun
        self._running = False
        self.job_id: str | None = None
        self.setWindowTitle(f"{self.ACTION.rstrip('…')} — {character.name}")

        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setValue(steps)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.000001, 1.0)
        self.lr_spin.setSingleStep(0.00001)
        self.lr_spin.setValue(learning_rate)
        self.resolution_spin = QSpinBox()
        self.resolution_spin.setRange(32, 2048)
        self.resolution_spin.setSingleStep(64)
        self.resolution_spin.setValue(resolution)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("the default SDXL model (catalogue id, folder or checkpoint)")
        self.resume_box = QCheckBox("resume the interrupted run")
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(0, 100_000)
        self.samples_spin.setValue(DEFAULT_SAMPLE_EVERY)
        self.samples_spin.setSpecialValueText("never")
        self.samples_spin.setToolTip(
            f"Render sample pictures (fixed prompt and seed, the {self.noun} so far) every N steps; 0: never"
        )
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
        self.form = QFormLayout()

    def finish_layout(self, *middle: QWidget | QLayout) -> None:
        """Lay out :attr:`form`, then ``middle`` (the subclass's pictures), then the run's widgets;
        follow the service's runs and show this character's running one, if any."""
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        for item in middle:
            if isinstance(item, QLayout):
                layout.addLayout(item)
            else:
                layout.addWidget(item)
        for widget in (self.progress_bar, self.status_label, self.loss_plot, self.sample_strip, self.buttons):
            layout.addWidget(widget)
        self._update_resume()
        if self.render_service is not None:
            from comic_studio.ui.training_metrics import show_sample_scores  # CLIP-I under each sample

            self.sample_scores = show_sample_scores(self.sample_strip, self.render_service, lambda: self.job_id)
            training = self.render_service.training
            training.updated.connect(self._on_update)
            training.ended.connect(self._on_ended)
            run = training.active_for(self.character_id, self.KIND)
            if run is not None:
                self._attach(run)

    # ------------------------------------------------------------------ for subclasses
    def checkpoint(self) -> Path:
        """Where this character's interrupted run of this kind keeps its checkpoint."""
        raise NotImplementedError

    def build_request(self, resume: bool) -> Any:
        """The run's engine request from the form (raises ComicStudioError / ValidationError)."""
        raise NotImplementedError

    def settings_widgets(self) -> list[QWidget]:
        """The widgets disabled while a run is going."""
        return [self.steps_spin, self.lr_spin, self.resolution_spin, self.model_edit, self.samples_spin]

    def fill_from(self, request: Any) -> None:
        """Show the settings of a run already going (the dialog was closed and opened again)."""
        self.steps_spin.setValue(request.recipe.steps)
        self.resolution_spin.setValue(request.recipe.resolution)
        self.samples_spin.setValue(request.samples.every)
        self.model_edit.setText(request.base_model)

    # ------------------------------------------------------------------ form
    def _update_resume(self) -> None:
        has = self.checkpoint().is_file()
        self.resume_box.setEnabled(has and not self._running)
        self.resume_box.setChecked(has)
        self.resume_box.setToolTip(
            "An earlier run was interrupted: continue it from its checkpoint (same settings)"
            if has
            else "No interrupted run of this character to resume"
        )

    def _set_running(self, running: bool) -> None:
        self._running = running
        for widget in [*self.settings_widgets(), self.train_button]:
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
        resume = self.resume_box.isChecked() and self.resume_box.isEnabled()
        try:
            request = self.build_request(resume)
            if self.render_service is None:
                raise ComicStudioError(f"Training runs in the render queue: open {self.ACTION} from the studio.")
            job_id = self.render_service.training.submit(request)
        except (ValidationError, ComicStudioError) as exc:
            self.show_status(refusal(exc), error=True)
            return False
        self.job_id = job_id
        self.loss_plot.clear()
        self.sample_strip.clear()
        self.progress_bar.setRange(0, request.recipe.steps)
        self.progress_bar.setValue(0)
        self.show_status(QUEUED_TEXT)
        self._set_running(True)
        return True

    def _attach(self, run: TrainingRun) -> None:
        """Show a run that is already queued or running (the dialog was closed and opened again)."""
        self.job_id = run.job_id
        self.fill_from(run.request)
        self.progress_bar.setRange(0, run.request.recipe.steps)
        for loss in run.losses:
            self.loss_plot.add(loss)
        for step, images in run.samples:
            self.sample_strip.add(step, images)
        self._set_running(True)
        if run.last is not None:
            self._show_progress(run.last)
        else:
            self.show_status(QUEUED_TEXT)

    def _on_update(self, job_id: str, msg: Any) -> None:
        if job_id != self.job_id:
            return
        event = msg.event.value
        if event == "started":
            self.show_status("Loading the base model…")
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
        elif outcome == "cancelled" and self.checkpoint().is_file():
            self.show_status(
                f"Cancelled ({text}): the checkpoint is saved — resume later "
                f"(open {self.ACTION} again and keep “resume” ticked)."
            )
        elif outcome == "cancelled":
            self.show_status(f"Cancelled ({text}); there is nothing to resume.")
        else:
            self.show_status(f"Training failed: {text}", error=True)
        self.finished_training.emit(outcome)

    # ------------------------------------------------------------------ closing
    def done(self, result: int) -> None:
        if self._running:  # the run does not need this window: it goes on in the Queue
            self.ctx.message.emit(f"{self.character_name}'s {self.noun} goes on training in the Queue")
        super().done(result)

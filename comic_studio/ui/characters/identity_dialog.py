""" "Train identity…" on a character (StableIdentity's learned tokens from its face photos) and the
character's identity box in the editor (card, enabled, Clear, Train identity…).

The dialog runs like the Train LoRA dialog it sits beside (reusing its :class:`LossPlot` and
:func:`format_eta`): the document is read before the run
(:func:`~comic_studio.workflows.identity.plan_identity`), the run
(:func:`~comic_studio.workflows.identity.run_identity_training`) happens on a helper thread and
touches no document, and the result lands on the character on the GUI thread as one undoable step.
It refuses to start while the render queue has work and is application-modal while it trains (one
owner of the GPU at a time); Cancel saves a checkpoint to resume from.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QCoreApplication, QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
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

from comic_studio.core import character_edits
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.errors import AssetError, ComicStudioError
from comic_studio.core.model import Character
from comic_studio.training.identity import IdentityRecipe
from comic_studio.training.lora import TrainingCancelled, TrainingProgress
from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.characters.card import ThumbnailCache, thumbnail_pixmap
from comic_studio.ui.characters.train_dialog import LossPlot, format_eta
from comic_studio.ui.context import StudioContext
from comic_studio.workflows.identity import (
    MAX_PHOTOS,
    IdentityOutcome,
    IdentityPlan,
    identity_card,
    identity_checkpoint_path,
    plan_identity,
    run_identity_training,
    store_trained_identity,
)
from comic_studio.workflows.training import training_device

THUMB = 48


class TrainIdentityDialog(QDialog):
    """Learn the character's identity tokens."""

    progressed = Signal(object)
    """A :class:`TrainingProgress` (emitted on the training thread, delivered on the GUI thread)."""
    finished_training = Signal(str)
    """"finished", "cancelled" or "failed"."""

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
        self._plan: IdentityPlan | None = None
        self.jobs = BackgroundJobs(self, "identity-training")
        self.setWindowTitle(f"Train identity — {character.name}")

        defaults = IdentityRecipe()
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setValue(defaults.steps)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.000001, 1.0)
        self.lr_spin.setSingleStep(0.00001)
        self.lr_spin.setValue(defaults.learning_rate)
        self.alpha_spin = QDoubleSpinBox()
        self.alpha_spin.setRange(0.05, 0.95)
        self.alpha_spin.setSingleStep(0.05)
        self.alpha_spin.setValue(defaults.alpha)
        self.alpha_spin.setToolTip("Timesteps above α·T train the noise, below it the denoised face (0.5 on SDXL, "
                                   "0.6 in the original paper)")  # fmt: skip
        self.resolution_spin = QSpinBox()
        self.resolution_spin.setRange(32, 2048)
        self.resolution_spin.setSingleStep(64)
        self.resolution_spin.setValue(defaults.resolution)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("the default SDXL model (catalogue id, folder or checkpoint)")
        self.encoder_edit = QLineEdit()
        self.encoder_edit.setPlaceholderText("the face-recognition ViT, else the generic ViT (Hugging Face cache)")
        self.resume_box = QCheckBox("resume the interrupted run")
        self.photos = QListWidget()
        self.photos.setIconSize(QSize(THUMB, THUMB))
        self.photos.setFlow(QListWidget.Flow.LeftToRight)
        self.photos.setMaximumHeight(THUMB + 16)
        thumbs = thumbnails or ThumbnailCache()
        for digest in list(dict.fromkeys(character.face_refs))[:MAX_PHOTOS]:
            icon = QIcon(thumbnail_pixmap(thumbs.get(ctx.document.assets, digest, THUMB), THUMB))
            self.photos.addItem(QListWidgetItem(icon, ""))
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
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
        form.addRow("Phase split α", self.alpha_spin)
        form.addRow("Resolution", self.resolution_spin)
        form.addRow("Base model", self.model_edit)
        form.addRow("Face encoder", self.encoder_edit)
        form.addRow("", self.resume_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel(f"Face photos ({self.photos.count()}, one face each; at most {MAX_PHOTOS})"))
        layout.addWidget(self.photos)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.buttons)
        self.progressed.connect(self._show_progress)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.request_cancel)
        self._update_resume()
        self.resize(500, 520)

    def recipe(self) -> IdentityRecipe:
        return IdentityRecipe(steps=self.steps_spin.value(), learning_rate=self.lr_spin.value(),
                              alpha=round(self.alpha_spin.value(), 2), resolution=self.resolution_spin.value())  # fmt: skip

    def _update_resume(self) -> None:
        has = identity_checkpoint_path(self.ctx.document.project.id, self.character_id).is_file()
        self.resume_box.setEnabled(has and not self._running)
        self.resume_box.setChecked(has)

    def _set_running(self, running: bool) -> None:
        self._running = running
        for widget in (self.steps_spin, self.lr_spin, self.alpha_spin, self.resolution_spin, self.model_edit,
                       self.encoder_edit, self.train_button):  # fmt: skip
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(not running)
        self.setWindowModality(Qt.WindowModality.ApplicationModal if running else Qt.WindowModality.NonModal)
        if not running:
            self._update_resume()

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c62828;" if error else "")

    def is_running(self) -> bool:
        return self._running

    def start(self) -> bool:
        """Start training (False, with the reason shown, when it cannot)."""
        if self._running:
            return False
        if self.render_service is not None and not self.render_service.is_idle():
            self.show_status("The render queue is busy: training and renders share the GPU. Wait for the queue "
                             "or cancel its jobs, then train.", error=True)  # fmt: skip
            return False
        resume = self.resume_box.isChecked() and self.resume_box.isEnabled()
        try:
            recipe = self.recipe()
            plan = plan_identity(self.ctx.document, self.character_id, resume=resume)
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
        self.show_status("Finding the face and loading the models…")
        self._set_running(True)
        self.jobs.submit(self._train, plan, recipe, self.model_edit.text().strip(), self.encoder_edit.text().strip(),
                         resume, on_result=self._finished, on_error=self._failed)  # fmt: skip
        return True

    def _train(self, plan: IdentityPlan, recipe: IdentityRecipe, model: str, encoder: str, resume: bool) -> Any:
        """The training thread: no widgets, no document."""
        device, dtype = training_device("auto")
        return run_identity_training(plan, recipe, model=model, face_encoder=encoder, resume=resume, device=device,
                                     dtype=dtype, cancel=self._cancel.is_set, on_progress=self.progressed.emit)  # fmt: skip

    def _show_progress(self, progress: TrainingProgress) -> None:
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.step)
        self.loss_plot.add(progress.loss)
        self.show_status(f"Step {progress.step}/{progress.total} · loss {progress.loss:.4f} · "
                         f"{progress.steps_per_second:.2f} steps/s · ETA {format_eta(progress.eta_seconds)}")  # fmt: skip

    def request_cancel(self) -> None:
        self._cancel.set()

    def cancel(self) -> None:
        if self._running:
            self.request_cancel()
            self.cancel_button.setEnabled(False)
            self.show_status("Cancelling: saving a checkpoint…")

    def _finished(self, outcome: IdentityOutcome) -> None:
        plan = self._plan
        assert plan is not None
        trained = self.ctx.edit(store_trained_identity, plan, outcome)  # one undoable step, GUI thread
        self._set_running(False)
        if trained is None:
            self.show_status("The identity was learned but could not be stored (see the status bar).", error=True)
            self.finished_training.emit("failed")
            return
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.show_status(f"Done: {plan.character_name} has identity tokens ({trained.steps} steps, final loss "
                         f"{trained.final_loss:.4f}). Choose the StableIdentity method for a panel to use them.")  # fmt: skip
        self.ctx.message.emit(f"{plan.character_name}'s identity is learned")
        self.finished_training.emit("finished")

    def _failed(self, error: BaseException) -> None:
        self._set_running(False)
        if isinstance(error, TrainingCancelled):
            self.show_status(f"Cancelled at step {error.step}: the checkpoint is saved — resume later "
                             "(open Train identity… again and keep “resume” ticked).")  # fmt: skip
            self.finished_training.emit("cancelled")
            return
        text = str(error) if isinstance(error, ComicStudioError) else f"{type(error).__name__}: {error}"
        self.show_status(f"Training failed: {text}", error=True)
        self.finished_training.emit("failed")

    def reject(self) -> None:
        if self._running:
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event: Any) -> None:
        if self._running:
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)


def identity_summary(character: Character, data: bytes | None) -> str:
    """One or two lines about the character's identity tokens for the box (and tests)."""
    if character.identity_asset is None:
        return "No identity tokens yet."
    if data is None:
        return f"Identity {character.identity_asset[:12]}… (the file is missing from the project)"
    card = identity_card(data)
    if not card:
        return f"Identity {character.identity_asset[:12]}… (from elsewhere: no training card)"
    when = str(card.get("trained_at") or "")[:16].replace("T", " ")
    loss = card.get("final_loss")
    loss_text = f", final loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    return (f"{card.get('steps', '?')} steps{loss_text} · {len(card.get('photos') or [])} photo(s)\n"
            f"Base model {card.get('base_model') or '?'} · trained {when or '?'}")  # fmt: skip


class IdentityBox(QGroupBox):
    """The live identity controls of one existing character (each change one undoable step, as the
    LoRA box's)."""

    train_requested = Signal(str)

    def __init__(self, ctx: StudioContext, character_id: str, parent: QWidget | None = None):
        super().__init__("Identity tokens (StableIdentity)", parent)
        self.ctx = ctx
        self.character_id = character_id
        self.card_label = QLabel()
        self.card_label.setWordWrap(True)
        self.enabled_box = QCheckBox("apply in renders")
        self.enabled_box.setToolTip("Off: the tokens stay on the character, renders leave them out")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove the identity tokens from the character (undoable)")
        self.train_button = QPushButton("Train identity…")
        self.train_button.setToolTip("Learn identity tokens from the character's face photos")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.enabled_box)
        row.addStretch(1)
        row.addWidget(self.clear_button)
        row.addWidget(self.train_button)
        form = QFormLayout(self)
        form.addRow(self.card_label)
        form.addRow(row)
        self.refresh()
        self.enabled_box.toggled.connect(self._set_enabled)
        self.clear_button.clicked.connect(self.clear)
        self.train_button.clicked.connect(lambda: self.train_requested.emit(self.character_id))
        ctx.document_changed.connect(self._on_changes)

    def character(self) -> Character | None:
        return self.ctx.document.project.character(self.character_id)

    def refresh(self) -> None:
        character = self.character()
        if character is None:
            self.setEnabled(False)
            return
        data = None
        if character.identity_asset is not None:
            try:
                data = self.ctx.document.assets.get(character.identity_asset)
            except (AssetError, KeyError, OSError):
                data = None
        self.card_label.setText(identity_summary(character, data))
        self.enabled_box.blockSignals(True)
        self.enabled_box.setChecked(character.identity_enabled)
        self.enabled_box.blockSignals(False)
        has = character.identity_asset is not None
        for control in (self.enabled_box, self.clear_button):
            control.setEnabled(has)

    def _on_changes(self, changes: Changes) -> None:
        if changes.touches(ChangeKind.CHARACTERS):
            self.refresh()

    def _set_enabled(self, on: bool) -> None:
        label = "Enable identity" if on else "Disable identity"
        self.ctx.edit(character_edits.update_character, self.character_id, label=label, identity_enabled=on)

    def clear(self) -> None:
        self.ctx.edit(character_edits.update_character, self.character_id, label="Clear identity",
                      identity_asset=None)  # fmt: skip

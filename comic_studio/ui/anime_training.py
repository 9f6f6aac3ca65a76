"""Train AnimeAdapter… in the studio: a small dialog that queues an AnimeAdapter training run as a job
of the render engine (:mod:`comic_studio.workflows.anime_training_jobs`), as Train LoRA… does.

The run shows in the Queue ("Train AnimeAdapter · FOLDER", its loss and speed, Cancel) and belongs
to the :class:`~comic_studio.ui.render_service.RenderService` through its
:class:`~comic_studio.ui.training_jobs.TrainingJobs` (as a LoRA run does; one AnimeAdapter run at a
time), not to the dialog: closing the dialog leaves it going, reopening shows it again. A cancel (or
quitting the app) saves the checkpoint in the output folder; the dialog then offers Resume, which
continues the run bit for bit. The weights are not tied to a project (they are a model, like a
downloaded one): the finished run says where they are, for the ``anime`` backend's ``adapter``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.errors import ComicStudioError
from comic_studio.training.anime_adapter import AnimeAdapterRecipe
from comic_studio.ui.training_jobs import TRAIN_ANIME_ADAPTER, TrainingRun, refusal
from comic_studio.workflows.anime_training import CHECKPOINT
from comic_studio.workflows.anime_training_jobs import AnimeTrainingRequest

if TYPE_CHECKING:
    from comic_studio.ui.render_service import RenderService

SOURCES = (("images", "A folder of character pictures"), ("data", "A dataset folder (metadata.jsonl)"))
CONTROLLERS = (
    ("t2i-adapter", "OpenPose T2I-Adapter (the paper's)"),
    ("controlnet", "OpenPose ControlNet"),
    ("none", "None (no disentanglement)"),
)


class TrainAnimeAdapterDialog(QDialog):
    """Non-modal: the studio stays usable while the run goes on in the Queue."""

    finished_training = Signal(str)
    """The run ended: "finished", "cancelled" or "failed"."""

    def __init__(self, render_service: RenderService, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Train AnimeAdapter")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.runs = render_service.training
        self.job_id: str | None = None
        defaults = AnimeAdapterRecipe()

        self.source_combo = QComboBox()
        for key, text in SOURCES:
            self.source_combo.addItem(text, key)
        self.source_combo.setToolTip(
            "Pictures: masks and poses are detected (NAME.mask.png / NAME.pose.png beside a picture win, NAME.txt "
            "is its tags, without the character's name). A dataset folder: metadata.jsonl rows {image, mask, pose, prompt}."
        )  # fmt: skip
        self.folder_edit, folder_row = self._folder_row("The pictures or the dataset folder")
        self.out_edit, out_row = self._folder_row("Where the weights (and the checkpoint) go")
        self.out_edit.textChanged.connect(self._update_resume)
        self.base_edit = QLineEdit()
        self.base_edit.setPlaceholderText("default SD 1.5 (catalogue id, folder or .safetensors)")
        self.base_edit.setToolTip(
            "An SD 1.5 model (the paper's family) or an SDXL one, which trains SDXL-family weights: then choose the "
            "ControlNet pose controller (or name an SDXL T2I-Adapter folder) and resolution 1024. SD 2.x is refused."
        )
        self.encoder_edit = QLineEdit()
        self.encoder_edit.setPlaceholderText("default clip-vit-l-14-vision")
        self.controller_combo = QComboBox()
        for key, text in CONTROLLERS:
            self.controller_combo.addItem(text, key)
        self.controller_edit = QLineEdit()
        self.controller_edit.setPlaceholderText("default: the catalogue's (folder or catalogue id)")
        self.steps_spin = _spin(1, 1_000_000, defaults.steps, "optimizer steps (the paper trains 30,000)")
        self.k_spin = _spin(1, 15, defaults.k_layers, "CLIP layers fused (the paper's K = 7)")
        self.batch_spin = _spin(1, 1024, defaults.gradient_accumulation, "pictures per step, by accumulation (16)")
        self.resolution_spin = _spin(64, 2048, defaults.resolution, "training size (SD 1.5: 512)")
        self.resolution_spin.setSingleStep(64)
        self.resume_box = QCheckBox("resume the interrupted run in the output folder")

        form = QFormLayout()
        form.addRow("Train on", self.source_combo)
        form.addRow("Folder", folder_row)
        form.addRow("Output folder", out_row)
        form.addRow("Base model", self.base_edit)
        form.addRow("Image encoder", self.encoder_edit)
        form.addRow("Pose controller", self.controller_combo)
        form.addRow("Controller model", self.controller_edit)
        form.addRow("Steps", self.steps_spin)
        form.addRow("CLIP layers (K)", self.k_spin)
        form.addRow("Batch", self.batch_spin)
        form.addRow("Resolution", self.resolution_spin)
        form.addRow("", self.resume_box)
        self.progress_bar = QProgressBar()
        self.status_label = QLabel("Hours to days on a GPU for real weights: the run waits its turn in the Queue.")
        self.status_label.setWordWrap(True)
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.train_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(buttons)

        self.runs.updated.connect(self._on_update)
        self.runs.ended.connect(self._on_ended)
        run = self.runs.active_for("", TRAIN_ANIME_ADAPTER)
        if run is not None:
            self._attach(run)
        self._update_resume()

    def _folder_row(self, tip: str) -> tuple[QLineEdit, QWidget]:
        edit = QLineEdit()
        edit.setToolTip(tip)
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse(edit, tip))
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(edit)
        box.addWidget(browse)
        return edit, row

    def _browse(self, edit: QLineEdit, title: str) -> None:
        chosen = QFileDialog.getExistingDirectory(self, title, edit.text())
        if chosen:
            edit.setText(chosen)

    # ------------------------------------------------------------------ form
    def request(self) -> AnimeTrainingRequest:
        """The run the form describes (:class:`ValidationError` / :class:`ComicStudioError` when it cannot)."""
        folder, out = self.folder_edit.text().strip(), self.out_edit.text().strip()
        if not folder or not Path(folder).is_dir():
            raise ComicStudioError(f"Folder: choose an existing folder of pictures or a dataset ({folder or 'empty'})")
        if not out:
            raise ComicStudioError("Output folder: choose where the weights go")
        recipe = AnimeAdapterRecipe(steps=self.steps_spin.value(), k_layers=self.k_spin.value(),
                                    gradient_accumulation=self.batch_spin.value(),
                                    resolution=self.resolution_spin.value(),
                                    controller=self.controller_combo.currentData())  # fmt: skip
        pictures = self.source_combo.currentData() == "images"
        return AnimeTrainingRequest(out=out, data="" if pictures else folder, images=folder if pictures else "",
                                    base=self.base_edit.text().strip(), encoder=self.encoder_edit.text().strip(),
                                    controller_model=self.controller_edit.text().strip(), recipe=recipe,
                                    resume=self.resume_box.isChecked() and self.resume_box.isEnabled())  # fmt: skip

    def _update_resume(self) -> None:
        out = self.out_edit.text().strip()
        can = bool(out) and not self.is_running() and (Path(out) / CHECKPOINT).is_file()
        self.resume_box.setEnabled(can)
        self.resume_box.setChecked(can)

    def is_running(self) -> bool:
        return self.job_id is not None

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b3261e;" if error else "")

    # ------------------------------------------------------------------ the run
    def start(self) -> bool:
        """Queue the run (False, with the reason shown, when it cannot)."""
        if self.is_running():
            return False
        try:
            request = self.request()
            job_id = self.runs.submit(request)
        except (ValidationError, ComicStudioError) as exc:
            self.show_status(refusal(exc), error=True)
            return False
        self.progress_bar.setRange(0, request.recipe.steps)
        self.progress_bar.setValue(0)
        self.show_status("Queued: the run starts when the renders queued before it are done.")
        self._running(job_id)
        return True

    def _attach(self, run: TrainingRun) -> None:
        """Show a run that is already queued or going (the dialog was reopened)."""
        request = run.request
        source = "images" if request.images else "data"
        self.source_combo.setCurrentIndex(self.source_combo.findData(source))
        self.folder_edit.setText(request.images or request.data)
        self.out_edit.setText(request.out)
        self.base_edit.setText(request.base)
        self.encoder_edit.setText(request.encoder)
        self.controller_combo.setCurrentIndex(self.controller_combo.findData(request.recipe.controller))
        self.controller_edit.setText(request.controller_model)
        self.steps_spin.setValue(request.recipe.steps)
        self.k_spin.setValue(request.recipe.k_layers)
        self.batch_spin.setValue(request.recipe.gradient_accumulation)
        self.resolution_spin.setValue(request.recipe.resolution)
        self.progress_bar.setRange(0, request.recipe.steps)
        self._running(run.job_id)
        if run.last is not None:
            self._on_update(run.job_id, run.last)

    def _running(self, job_id: str | None) -> None:
        self.job_id = job_id
        running = job_id is not None
        self.train_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in self._form_widgets():
            widget.setEnabled(not running)
        self._update_resume()

    def _form_widgets(self) -> list[QWidget]:
        return [self.source_combo, self.folder_edit, self.out_edit, self.base_edit, self.encoder_edit,
                self.controller_combo, self.controller_edit, self.steps_spin, self.k_spin, self.batch_spin,
                self.resolution_spin]  # fmt: skip

    def _on_update(self, job_id: str, msg: Any) -> None:
        if job_id != self.job_id or msg.event.value != "progress":
            return
        if msg.info.get("dataset_pictures"):
            self.show_status(f"Building the dataset: {msg.step} of {msg.total} pictures (masks and poses)…")
            return
        self.progress_bar.setRange(0, msg.total)
        self.progress_bar.setValue(msg.step)
        left = f" · about {msg.eta / 60:.0f} min left" if msg.eta else ""
        self.show_status(f"Step {msg.step} of {msg.total} · loss {msg.info.get('loss', float('nan')):.4f}{left}")

    def cancel(self) -> None:
        if self.job_id is not None:
            self.runs.cancel(self.job_id)
            self.cancel_button.setEnabled(False)
            self.show_status("Stopping at the next step (the checkpoint is saved first)…")

    def _on_ended(self, job_id: str, outcome: str, text: str) -> None:
        if job_id != self.job_id:
            return
        self._running(None)
        if outcome == "cancelled" and self.resume_box.isEnabled():
            text += " — tick Resume and Train to continue."
        self.show_status(text, error=outcome == "failed")
        self.finished_training.emit(outcome)


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin

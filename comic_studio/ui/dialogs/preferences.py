"""Preferences bound to :class:`comic_studio.core.settings.AppSettings`.

The dialog edits a copy; :meth:`PreferencesDialog.apply_to` validates the form into the real
settings object only on OK, so Cancel never leaves half-applied values behind.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.layout import load_presets
from comic_studio.core.model import ReadingDirection
from comic_studio.core.settings import MAX_AUTOSAVE_MINUTES, AppSettings
from comic_studio.ui.dialogs.render_on import RenderOnGroup

THEME_LABELS = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
DEVICE_LABELS = {"auto": "Automatic", "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (Metal)", "cpu": "CPU only"}
PRECISION_LABELS = {
    "auto": "Automatic (half on a GPU)",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "float32": "float32 (full)",
}
MEMORY_LABELS = {
    "auto": "Automatic (from the GPU's memory and each backend's need)",
    "gpu": "Everything on the GPU (fastest)",
    "model-offload": "Offload whole models (less memory)",
    "sequential-offload": "Offload layer by layer (least memory, slowest)",
}
DIRECTION_LABELS = {ReadingDirection.LTR: "Left to right", ReadingDirection.RTL: "Right to left (manga)"}


class FolderField(QWidget):
    """A path line edit with a "Browse…" button opening a folder picker."""

    def __init__(self, value: str, placeholder: str, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a Folder", self.edit.text())
        if folder:
            self.edit.setText(folder)

    def text(self) -> str:
        return self.edit.text().strip()


def _combo(items: dict, current) -> QComboBox:
    combo = QComboBox()
    for key, label in items.items():
        combo.addItem(label, key)
    index = combo.findData(current)
    combo.setCurrentIndex(max(index, 0))
    return combo


class PreferencesDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("preferences_dialog")
        self.setMinimumWidth(560)
        self.settings = settings

        folders = QGroupBox("Folders")
        form = QFormLayout(folders)
        self.projects_folder = FolderField(settings.projects_folder, "Your documents folder")
        self.models_folder = FolderField(settings.models_folder, "The app's data folder")
        self.external_models_folder = FolderField(settings.external_models_folder, "None (e.g. ComfyUI/models)")
        self.external_models_folder.setToolTip(
            "An existing ComfyUI or Automatic1111 models folder whose checkpoints are reused"
        )
        form.addRow("Projects:", self.projects_folder)
        form.addRow("Models:", self.models_folder)
        form.addRow("ComfyUI / A1111 models:", self.external_models_folder)

        defaults = QGroupBox("New projects")
        form = QFormLayout(defaults)
        presets = {pid: f"{p.name}" for pid, p in load_presets().items()}
        if settings.default_page_preset not in presets:  # a preset file removed since: keep the value visible
            presets[settings.default_page_preset] = f"{settings.default_page_preset} (missing)"
        self.page_preset = _combo(presets, settings.default_page_preset)
        self.reading_direction = _combo(DIRECTION_LABELS, settings.reading_direction)
        form.addRow("Page preset:", self.page_preset)
        form.addRow("Reading direction:", self.reading_direction)

        app = QGroupBox("Application")
        form = QFormLayout(app)
        self.theme = _combo(THEME_LABELS, settings.theme)
        self.autosave = QSpinBox()
        self.autosave.setRange(0, MAX_AUTOSAVE_MINUTES)
        self.autosave.setSuffix(" min")
        self.autosave.setSpecialValueText("Off")
        self.autosave.setValue(settings.autosave_minutes)
        self.device = _combo(DEVICE_LABELS, settings.device)
        self.device.setToolTip("Where generation models run (used by the generation engine)")
        form.addRow("Theme:", self.theme)
        form.addRow("Autosave every:", self.autosave)
        form.addRow("Generation device:", self.device)
        self.dtype = _combo(PRECISION_LABELS, settings.dtype)
        self.memory_mode = _combo(MEMORY_LABELS, settings.memory_mode)
        self.memory_mode.setToolTip(
            "Automatic picks, per backend, the fastest mode its declared GPU memory need fits (see the Models "
            "dialog); on running out of memory the engine steps down one leaner mode at a time and retries"
        )
        form.addRow("Precision:", self.dtype)
        form.addRow("GPU memory:", self.memory_mode)
        self.pose_clip_model = QLineEdit(settings.pose_clip_model)
        self.pose_clip_model.setPlaceholderText(
            "a catalogue id (openclip-vit-h-14, openclip-vit-bigg-14) or a weights file"
        )
        self.pose_clip_model.setToolTip("The OpenCLIP model of pose matching 'openclip' (text → pose-photo search)")
        form.addRow("Pose search model:", self.pose_clip_model)
        self.allow_pickled_weights = QCheckBox("Allow pickled weights (.bin, .ckpt, .pt)")
        self.allow_pickled_weights.setChecked(settings.allow_pickled_weights)
        self.allow_pickled_weights.setToolTip(
            "Pickled model files can run code when opened; they are read with weights_only=True when "
            "allowed. Only this setting allows them: a project cannot."
        )
        form.addRow("Model files:", self.allow_pickled_weights)

        parsers = QGroupBox("Story parsers (LLM)")
        form = QFormLayout(parsers)
        self.llm_model = QLineEdit(settings.llm_model)
        self.llm_model.setPlaceholderText("a .gguf file or a catalogue id, e.g. qwen2.5-1.5b-instruct-q4")
        self.openai_base_url = QLineEdit(settings.openai_base_url)
        self.openai_base_url.setPlaceholderText("http://127.0.0.1:11434/v1 (Ollama, LM Studio, llama.cpp server)")
        self.openai_model = QLineEdit(settings.openai_model)
        self.openai_model.setPlaceholderText("the server's model name (empty: its first)")
        form.addRow("llama model:", self.llm_model)
        form.addRow("OpenAI-compatible server:", self.openai_base_url)
        form.addRow("Server model:", self.openai_model)
        note = QLabel("An API key, if the server needs one, is read from $COMIC_STUDIO_OPENAI_API_KEY and never saved.")
        note.setWordWrap(True)
        form.addRow(note)

        self.render_on = RenderOnGroup(settings)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        for group in (folders, defaults, app, self.render_on, parsers):
            layout.addWidget(group)
        layout.addWidget(buttons)

    def values(self) -> dict:
        return {
            "projects_folder": self.projects_folder.text(),
            "models_folder": self.models_folder.text(),
            "external_models_folder": self.external_models_folder.text(),
            "default_page_preset": self.page_preset.currentData(),
            "reading_direction": self.reading_direction.currentData(),
            "theme": self.theme.currentData(),
            "autosave_minutes": self.autosave.value(),
            "device": self.device.currentData(),
            "dtype": self.dtype.currentData(),
            "memory_mode": self.memory_mode.currentData(),
            "pose_clip_model": self.pose_clip_model.text().strip(),
            "allow_pickled_weights": self.allow_pickled_weights.isChecked(),
            "llm_model": self.llm_model.text().strip(),
            "openai_base_url": self.openai_base_url.text().strip(),
            "openai_model": self.openai_model.text().strip(),
            **self.render_on.values(),
        }

    def apply_to(self, settings: AppSettings) -> None:
        """Write the form into ``settings`` (validated all together before any field changes)."""
        checked = AppSettings.model_validate({**settings.model_dump(), **self.values()})
        for name in self.values():
            setattr(settings, name, getattr(checked, name))

"""Export to PDF, PNG pages or CBZ: an options dialog, and a worker thread with progress + cancel.

The export runs on a :class:`ExportThread` over a deep copy of the project taken when it starts,
so the user can keep editing while pages are written and the file shows the book as it was when
"Export" was pressed. Asset bytes are immutable and content-addressed, so the store is shared.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal
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
    QProgressDialog,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import load_presets
from comic_studio.core.layout.presets import to_inch, to_mm
from comic_studio.core.model import Project

KINDS = {"pdf": "PDF", "png": "PNG Pages", "cbz": "CBZ"}


@dataclass(frozen=True)
class ExportOptions:
    kind: str
    """``pdf``, ``png`` (a folder of pages) or ``cbz``."""
    path: Path
    dpi: int = 300
    bleed: bool = True
    trim_marks: bool = False
    image_format: str = "png"
    """CBZ page images: ``png`` or ``jpeg``."""


def default_options(project: Project, kind: str, base: Path) -> ExportOptions:
    """Sensible defaults: print DPI and bleed for PDF, screen-friendly 150 DPI without bleed for
    PNG/CBZ; the output sits next to ``base`` (the project file, or a path in the projects folder)."""
    if kind not in KINDS:
        raise ValueError(f"export kind {kind!r}: use one of {', '.join(KINDS)}")
    stem = base.with_suffix("")
    if kind == "pdf":
        return ExportOptions("pdf", stem.with_suffix(".pdf"), dpi=project.page_format.dpi, bleed=True)
    if kind == "cbz":
        return ExportOptions("cbz", stem.with_suffix(".cbz"), dpi=150, bleed=False)
    return ExportOptions("png", stem.parent / f"{stem.name}-pages", dpi=150, bleed=False)


def run_export(
    project: Project,
    assets: AssetStore,
    options: ExportOptions,
    progress=None,
    cancel=None,
    overset: list[str] | None = None,
) -> Path:
    """Write the export described by ``options`` (no Qt here: the worker thread calls it);
    ``overset`` collects where a balloon's text is cut at its outline."""
    from comic_studio.export import export_cbz, export_pdf, export_pngs

    if options.kind in ("pdf", "cbz"):
        # A typed-in path may name a new folder: create it, as the PNG export does for its folder.
        try:
            options.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ComicStudioError(f"{options.path.parent}: cannot create the folder ({exc.strerror or exc})") from exc
    if options.kind == "pdf":
        return export_pdf(
            project,
            assets,
            options.path,
            dpi=options.dpi,
            bleed=options.bleed,
            trim_marks=options.trim_marks,
            progress=progress,
            cancel=cancel,
            overset=overset,
        )
    if options.kind == "cbz":
        return export_cbz(
            project,
            assets,
            options.path,
            dpi=options.dpi,
            bleed=options.bleed,
            image_format=options.image_format,
            progress=progress,
            cancel=cancel,
            overset=overset,
        )
    if options.kind == "png":
        export_pngs(
            project,
            assets,
            options.path,
            dpi=options.dpi,
            bleed=options.bleed,
            progress=progress,
            cancel=cancel,
            overset=overset,
        )
        return options.path
    raise ComicStudioError(f"unknown export kind {options.kind!r}")


class ExportThread(QThread):
    """Runs one export off the GUI thread. Signals are emitted from the worker and delivered
    (queued) on the GUI thread because this object lives there."""

    progressed = Signal(int, int)
    succeeded = Signal(object)
    """The written path."""
    failed = Signal(str)
    """A one-line message for the user."""
    cancelled = Signal(str)
    done = Signal()
    """Emitted last, whatever the outcome."""

    def __init__(self, project: Project, assets: AssetStore, options: ExportOptions, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project.model_copy(deep=True)
        self.assets = assets
        self.options = options
        self._cancel = threading.Event()
        self.result: Path | None = None
        self.error = ""
        self.warning = ""
        """After a successful export: balloons whose text was cut at their outline, or ""."""
        self.elapsed = 0.0

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from comic_studio.export.common import ExportCancelled, overset_message

        started = time.perf_counter()
        overset: list[str] = []
        try:
            self.result = run_export(
                self.project,
                self.assets,
                self.options,
                progress=self.progressed.emit,
                cancel=self._cancel.is_set,
                overset=overset,
            )
            self.warning = overset_message(overset)
        except ExportCancelled as exc:
            self.error = str(exc)
            self.cancelled.emit(self.error)
        except ComicStudioError as exc:
            self.error = str(exc)
            self.failed.emit(self.error)
        except Exception as exc:  # noqa: BLE001 — a worker must report, never die silently
            self.error = f"export failed: {type(exc).__name__}: {exc}"
            self.failed.emit(self.error)
        else:
            self.succeeded.emit(self.result)
        finally:
            self.elapsed = time.perf_counter() - started
            self.done.emit()


def start_export(project: Project, assets: AssetStore, options: ExportOptions, parent: QWidget | None) -> ExportThread:
    """Start ``options`` on a worker with a modal progress dialog whose Cancel stops the export
    between pages. The caller connects to the thread's signals for the outcome."""
    thread = ExportThread(project, assets, options, parent)
    dialog = QProgressDialog(
        f"Exporting {KINDS[options.kind]} to {options.path.name}…", "Cancel", 0, max(1, len(project.pages)), parent
    )
    dialog.setObjectName("export_progress")
    dialog.setWindowTitle("Export")
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(400)  # quick exports finish without a flashing dialog
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setValue(0)
    thread.progress_dialog = dialog

    def on_progress(done: int, total: int) -> None:
        dialog.setMaximum(max(1, total))
        dialog.setValue(done)
        dialog.setLabelText(f"Exporting page {min(done + 1, total)} of {total}…")

    def on_done() -> None:
        dialog.close()
        dialog.deleteLater()

    thread.progressed.connect(on_progress)
    dialog.canceled.connect(thread.cancel)
    thread.done.connect(on_done)
    thread.finished.connect(thread.deleteLater)  # QThread.finished: after run() has returned
    thread.start()
    return thread


class ExportDialog(QDialog):
    """Options for one export kind; :meth:`options` reads the form."""

    def __init__(self, project: Project, options: ExportOptions, parent: QWidget | None = None):
        super().__init__(parent)
        self.kind = options.kind
        self.setWindowTitle(f"Export {KINDS[options.kind]}")
        self.setObjectName("export_dialog")
        self.setMinimumWidth(520)
        form = QFormLayout()

        path_row = QWidget()
        row = QHBoxLayout(path_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.path = QLineEdit(str(options.path))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("Folder:" if options.kind == "png" else "File:", path_row)

        fmt = project.page_format
        preset = load_presets().get(fmt.preset)
        preset_name = preset.name if preset else fmt.preset
        size = f"{to_inch(fmt.width):.4g} × {to_inch(fmt.height):.4g} in ({to_mm(fmt.width):.0f} × {to_mm(fmt.height):.0f} mm)"
        page = QLabel(
            f"{preset_name}<br><small>{size}, bleed {to_mm(fmt.bleed):.1f} mm — set when the project was created</small>"
        )
        form.addRow("Page:", page)

        self.dpi = QSpinBox()
        self.dpi.setRange(36, 1200)
        self.dpi.setSingleStep(50)
        self.dpi.setSuffix(" dpi")
        self.dpi.setValue(options.dpi)
        form.addRow("Resolution:", self.dpi)

        self.bleed = QCheckBox("Include the bleed area")
        self.bleed.setChecked(options.bleed)
        form.addRow("", self.bleed)
        self.trim_marks = QCheckBox("Crop marks outside the bleed")
        self.trim_marks.setChecked(options.trim_marks)
        self.image_format = QComboBox()
        self.image_format.addItem("PNG (lossless)", "png")
        self.image_format.addItem("JPEG (smaller)", "jpeg")
        self.image_format.setCurrentIndex(max(0, self.image_format.findData(options.image_format)))
        if options.kind == "pdf":
            form.addRow("", self.trim_marks)
        if options.kind == "cbz":
            form.addRow("Page images:", self.image_format)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole).setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        current = self.path.text()
        if self.kind == "png":
            chosen = QFileDialog.getExistingDirectory(self, "Export PNG Pages To", current)
        else:
            pattern = "PDF (*.pdf)" if self.kind == "pdf" else "Comic book archive (*.cbz)"
            chosen, _ = QFileDialog.getSaveFileName(self, f"Export {KINDS[self.kind]}", current, pattern)
        if chosen:
            self.path.setText(chosen)

    def options(self) -> ExportOptions:
        path = Path(self.path.text().strip()).expanduser()
        suffix = {"pdf": ".pdf", "cbz": ".cbz"}.get(self.kind)
        if suffix and path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix)
        return ExportOptions(
            self.kind,
            path,
            dpi=self.dpi.value(),
            bleed=self.bleed.isChecked(),
            trim_marks=self.trim_marks.isChecked(),
            image_format=self.image_format.currentData(),
        )

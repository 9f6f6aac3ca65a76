"""The Models dialog: what the model catalogue offers, what is installed where, and downloads.

Every catalogue entry is a row (name, kind, size, licence, status). The status says where an
installed model was found (our models folder, the Hugging Face cache, a ComfyUI/A1111 tree), or
shows a progress bar while it downloads, or the one-line reason a download failed. A selector
answers "what is missing for this backend / the llama parser" from each backend's declared
``required_models`` (third-party backends included) and the catalogue's requirements.

Downloads run on one background thread (:class:`DownloadJob`) that works through a queue, so the
GUI never waits on the network; progress comes back as queued Qt signals, throttled so a fast
local transfer cannot flood the event loop. Downloading reuses the core downloader (resume, sha256).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.settings import AppSettings
from comic_studio.generation.backend_api import describe_vram
from comic_studio.generation.models.sdxl import default_sdxl_model
from comic_studio.weights.catalogue import Catalogue, CatalogueError, ModelEntry, load_catalogue
from comic_studio.weights.locate import Located, Places, locate
from comic_studio.weights.needs import (
    SOURCE_LABELS,
    ModelNeed,
    check_need,
    human_size,
    relevant_ids,
    to_download,
)

LARGE_DOWNLOAD = 1_000_000_000
"""Bytes from which a download asks for confirmation first (multi-GB checkpoints)."""
PROGRESS_INTERVAL_S = 0.05
"""At most ~20 progress signals a second per download: enough for a smooth bar."""

COLUMNS = ("Name", "Kind", "Size", "Licence", "Status")
NAME, KIND, SIZE, LICENCE, STATUS = range(len(COLUMNS))
ID_ROLE = Qt.ItemDataRole.UserRole

KIND_LABELS = {
    "sdxl": "SDXL checkpoint", "sdxl-config": "SDXL config", "vae": "VAE", "lora": "LoRA", "ipadapter": "IP-Adapter",
    "clip_vision": "image encoder", "controlnet": "ControlNet", "embedding": "embedding", "llm": "LLM (GGUF)",
    "openclip": "OpenCLIP (pose search)", "sd15": "SD 1.5 checkpoint", "t2i_adapter": "T2I-Adapter",
    "face_encoder": "face encoder (StableIdentity)",
    "referencenet": "ReferenceNet (SerialGen stage 1)",
}  # fmt: skip
LLAMA_KEY = "parser:llama"
LLAMA_NEED = ModelNeed("llm", "a GGUF instruct model", interchangeable=True)
ALL_KEY = ""


@dataclass(frozen=True)
class Need:
    """Something that runs on models: a backend (its ``required_models``) or the llama parser."""

    key: str
    label: str
    requires: tuple[ModelNeed, ...] = ()
    preferred: dict[str, str] = field(default_factory=dict)
    """Model kind → the user's configured choice (the default SDXL model, the parser's GGUF)."""
    vram_gb: dict[str, float] = field(default_factory=dict)
    """The backend's declared GPU memory per memory mode (``GenerationBackend.vram_gb``)."""


def needs_for(settings: AppSettings, catalogue: Catalogue) -> list[Need]:
    """One :class:`Need` per installed backend, from its declaration, plus the llama story parser."""
    from comic_studio.generation.registry import available_backends

    try:
        backends = available_backends()
    except Exception:  # the registry isolates plugin failures; this is belt and braces for the dialog
        backends = {}
    configured = {"sdxl": default_sdxl_model()}
    out = [Need(name, f"{cls.display_name or name} backend", tuple(cls.required_models), configured,
                dict(cls.vram_gb)) for name, cls in backends.items()]  # fmt: skip
    out.append(Need(LLAMA_KEY, "llama story parser", (LLAMA_NEED,), {"llm": settings.llm_model}))
    return out


def describe_need(
    need: Need, catalogue: Catalogue, found: dict[str, Located | None]
) -> tuple[bool, str, list[ModelEntry]]:
    """(ready, guidance text, entries still to download for the suggested models). The text ends
    with the backend's GPU memory figures when it declares them."""
    ready, text, missing = _describe_models(need, catalogue, found)
    vram = describe_vram(need.vram_gb)
    return ready, f"{text}\n{vram}." if vram else text, missing


def _describe_models(
    need: Need, catalogue: Catalogue, found: dict[str, Located | None]
) -> tuple[bool, str, list[ModelEntry]]:
    if not need.requires:
        return True, f"{need.label}: needs no downloaded models.", []
    statuses = [check_need(n, catalogue, found, need.preferred.get(n.kind, "")) for n in need.requires]
    if all(s.ready for s in statuses):
        have = "; ".join(f"{_name(catalogue, s.satisfied_by)} ({s.where})" for s in statuses)
        return True, f"{need.label}: ready — {have}.", []
    lacking = [s for s in statuses if not s.ready]
    unusable = [s.problem for s in lacking if s.problem]  # a configured file that would not load
    if unusable:
        return False, f"{need.label}: {unusable[0]}", to_download(lacking)
    unknown = [s.need.words for s in lacking if s.suggestion is None]
    if unknown:
        return False, f"{need.label} needs {_and(unknown)}, and the catalogue has none.", []
    missing = to_download(lacking)
    listed = ", ".join(f"{m.name} ({human_size(m.size)})" if m.size else m.name for m in missing)
    words = _and([s.need.words for s in lacking])
    others = [
        e.name for s in lacking if s.need.interchangeable for e in catalogue.of_kind(s.need.kind) if e != s.suggestion
    ]
    more = f" Other choices: {', '.join(others)}." if others else ""
    return False, (f"{need.label} needs {words}. Missing: {listed} — {human_size(sum(m.size or 0 for m in missing))} "
                   f"in all. Press Download, or point Preferences at a ComfyUI/A1111 models folder.{more}"), missing  # fmt: skip


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _name(catalogue: Catalogue, satisfied_by: str | None) -> str:
    try:
        return catalogue.get(satisfied_by or "").name
    except CatalogueError:
        return str(satisfied_by)  # a configured path


class _Relay(QObject):
    """Carries a worker thread's news to the GUI thread (queued connections)."""

    progress = Signal(str, object, object, int, int)
    """model id, bytes done, bytes total (or None), file index, file count."""
    outcome = Signal(str, str, str)
    """model id, ``done`` | ``failed`` | ``cancelled``, message."""


class DownloadJob:
    """One daemon thread downloading queued entries in order. A daemon, so quitting the app mid-way
    never hangs: the ``.part`` file stays and the next download resumes it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.relay = _Relay()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: deque[ModelEntry] = deque()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="model-download", daemon=True)

    def add(self, entries: list[ModelEntry]) -> bool:
        """Queue more work; False when the thread has already finished (start a new job)."""
        with self._lock:
            if self._closed:
                return False
            self._pending.extend(entries)
        if not self._thread.is_alive() and not self._thread.ident:
            self._thread.start()
        return True

    def cancel(self) -> list[str]:
        """Stop the running download (within one chunk) and drop the queue; returns the dropped ids."""
        with self._lock:
            dropped = [e.id for e in self._pending]
            self._pending.clear()
        self._stop.set()
        return dropped

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending or self._stop.is_set():
                    self._closed = True
                    break
                entry = self._pending.popleft()
            self._download(entry)

    def _download(self, entry: ModelEntry) -> None:
        from comic_studio.weights.download import DownloadCancelled, DownloadProgress, download_entry

        last = [0.0]

        def report(p: DownloadProgress) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or (p.total is not None and p.done >= p.total):
                last[0] = now
                self.relay.progress.emit(p.model_id, p.done, p.total, p.file_index, p.file_count)

        try:
            download_entry(entry, self.folder, progress=report, should_stop=self._stop.is_set)
        except DownloadCancelled as exc:
            self.relay.outcome.emit(entry.id, "cancelled", str(exc))
        except Exception as exc:  # shown in the row: the user gets the reason, never a traceback
            message = str(exc) if type(exc).__module__.startswith("comic_studio") else f"{type(exc).__name__}: {exc}"
            self.relay.outcome.emit(entry.id, "failed", message or type(exc).__name__)
        else:
            self.relay.outcome.emit(entry.id, "done", "")


class ModelsDialog(QDialog):
    """Non-modal: downloads go on while the user works; reopening shows the same dialog."""

    def __init__(self, settings: AppSettings | None = None, parent: QWidget | None = None, *,
                 catalogue: Catalogue | None = None, places: Places | None = None):  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("models_dialog")
        self.resize(980, 520)
        self.settings = settings or AppSettings()
        self.catalogue = catalogue or load_catalogue()
        self.places = places or Places.from_settings(self.settings)
        self.found: dict[str, Located | None] = {}
        self.states: dict[str, tuple[str, str]] = {}
        """id → (state, message); states: installed, missing, queued, downloading, failed, cancelled."""
        self._job: DownloadJob | None = None
        self._bars: dict[str, QProgressBar] = {}

        external = (
            str(self.places.external) if self.places.external else "not set (Preferences → ComfyUI / A1111 models)"
        )
        self.folders_label = QLabel(f"Downloads go to: {self.places.models}<br>ComfyUI / A1111 models: {external}")
        self.folders_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.need_combo = QComboBox()
        self.need_combo.setObjectName("models_need")
        self.need_combo.addItem("All models", ALL_KEY)
        self.needs = {n.key: n for n in needs_for(self.settings, self.catalogue)}
        for need in self.needs.values():
            self.need_combo.addItem(need.label, need.key)
        self.need_combo.currentIndexChanged.connect(self._on_need_changed)
        self.guidance = QLabel()
        self.guidance.setObjectName("models_guidance")
        self.guidance.setWordWrap(True)

        self.table = QTableWidget(len(self.catalogue.models), len(COLUMNS))
        self.table.setObjectName("models_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        for col in (KIND, SIZE, LICENCE):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(STATUS, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(NAME, 260)
        for row, entry in enumerate(self.catalogue.models):
            self._fill_static(row, entry)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.download_button = QPushButton("Download")
        self.download_button.setToolTip("Download the selected models and what they need")
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button = QPushButton("Cancel Downloads")
        self.cancel_button.clicked.connect(self.cancel_downloads)
        self.open_button = QPushButton("Open Models Folder")
        self.open_button.clicked.connect(self.open_models_folder)
        refresh = QPushButton("Rescan")
        refresh.setToolTip("Look for models again (after copying files or changing Preferences)")
        refresh.clicked.connect(self.refresh)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        top = QHBoxLayout()
        top.addWidget(QLabel("What is missing for:"))
        top.addWidget(self.need_combo, 1)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.cancel_button, self.open_button, refresh):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folders_label)
        layout.addLayout(top)
        layout.addWidget(self.guidance)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.refresh()

    # ------------------------------------------------------------------ queries (tests, callers)
    def row_of(self, model_id: str) -> int:
        for row in range(self.table.rowCount()):
            if self.table.item(row, NAME).data(ID_ROLE) == model_id:
                return row
        raise KeyError(model_id)

    def state(self, model_id: str) -> str:
        return self.states[model_id][0]

    def status_text(self, model_id: str) -> str:
        bar = self._bars.get(model_id)
        return bar.text() if bar is not None else self.table.item(self.row_of(model_id), STATUS).text()

    def is_downloading(self) -> bool:
        return any(s in ("queued", "downloading") for s, _ in self.states.values())

    # ------------------------------------------------------------------ scanning
    def refresh(self) -> None:
        """Locate every entry again (rows being downloaded keep their progress)."""
        for entry in self.catalogue.models:
            self.found[entry.id] = locate(entry, self.places)
            if self.states.get(entry.id, ("",))[0] not in ("queued", "downloading"):
                self._set_state(entry.id, "installed" if self.found[entry.id] else "missing")
        self._on_need_changed()

    def _fill_static(self, row: int, entry: ModelEntry) -> None:
        name = QTableWidgetItem(entry.name)
        name.setData(ID_ROLE, entry.id)
        name.setToolTip(f"{entry.id}\n{entry.notes}".strip())
        size = QTableWidgetItem(human_size(entry.size))
        size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        needs = ", ".join(self.catalogue.get(n).name for n in entry.needs)
        if needs:
            size.setToolTip(f"also needs {needs}")
        for col, item in ((NAME, name), (KIND, QTableWidgetItem(KIND_LABELS.get(entry.kind, entry.kind))), (SIZE, size),
                          (LICENCE, QTableWidgetItem(entry.licence or "unknown")), (STATUS, QTableWidgetItem(""))):  # fmt: skip
            self.table.setItem(row, col, item)

    def _set_state(self, model_id: str, state: str, message: str = "") -> None:
        self.states[model_id] = (state, message)
        row = self.row_of(model_id)
        if state != "downloading" and model_id in self._bars:
            self.table.removeCellWidget(row, STATUS)
            del self._bars[model_id]
        item = self.table.item(row, STATUS)
        colour = None
        if state == "installed":
            found = self.found.get(model_id)
            where = SOURCE_LABELS.get(found.source, found.source) if found else "?"
            text, tip, colour = (
                f"installed — {where}: {found.path if found else ''}",
                str(found.path if found else ""),
                "#2e7d32",
            )
        elif state == "failed":
            text, tip, colour = f"failed: {message}", message, "#c62828"
        elif state == "cancelled":
            text, tip = "cancelled (partial file kept; Download resumes it)", message
        elif state == "queued":
            text, tip = "queued…", ""
        elif state == "downloading":
            text, tip = "downloading…", ""
            if model_id not in self._bars:
                bar = QProgressBar()
                bar.setRange(0, 1000)
                bar.setValue(0)
                bar.setTextVisible(True)
                bar.setFormat("starting…")
                self._bars[model_id] = bar
                self.table.setCellWidget(row, STATUS, bar)
        else:
            text, tip = "missing", ""
        item.setText(text)
        item.setToolTip(tip)
        item.setForeground(QBrush(QColor(colour)) if colour else QBrush())
        self._update_buttons()

    # ------------------------------------------------------------------ "what is missing for"
    def set_need(self, key: str) -> None:
        self.need_combo.setCurrentIndex(max(self.need_combo.findData(key), 0))

    def _on_need_changed(self, *_args) -> None:
        key = self.need_combo.currentData()
        need = self.needs.get(key)
        if need is None:
            installed = sum(1 for f in self.found.values() if f is not None)
            self.guidance.setText(f"{installed} of {len(self.catalogue.models)} catalogue models are installed. "
                                  "Choose a backend above to see what it still needs.")  # fmt: skip
            for row in range(self.table.rowCount()):
                self.table.setRowHidden(row, False)
            return
        ready, text, missing = describe_need(need, self.catalogue, self.found)
        self.guidance.setText(("✓ " if ready else "⚠ ") + text)
        relevant: set[str] = set()
        for model_need in need.requires:
            relevant |= relevant_ids(model_need, self.catalogue)
        for row in range(self.table.rowCount()):
            self.table.setRowHidden(row, self.table.item(row, NAME).data(ID_ROLE) not in relevant)
        if missing:  # preselect what is missing so Download is one click
            self.select_ids([m.id for m in missing])

    def select_ids(self, model_ids: list[str]) -> None:
        self.table.clearSelection()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for model_id in model_ids:
            self.table.selectionModel().select(self.table.model().index(self.row_of(model_id), 0), flags)

    # ------------------------------------------------------------------ downloads
    def selected_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, NAME).data(ID_ROLE) for r in rows]

    def download_selected(self) -> bool:
        return self.download(self.selected_ids())

    def download(self, model_ids: list[str]) -> bool:
        """Queue ``model_ids`` and what they need (the ones not installed yet); asks first when the
        total is large. Returns whether anything was queued."""
        todo: list[ModelEntry] = []
        for model_id in model_ids:
            for entry in self.catalogue.requirements(model_id):
                busy = self.states.get(entry.id, ("",))[0] in ("queued", "downloading")
                if self.found.get(entry.id) is None and not busy and entry not in todo:
                    todo.append(entry)
        if not todo or not self.confirm_download(todo):
            return False
        for entry in todo:
            self._set_state(entry.id, "queued")
        if self._job is None or not self._job.add(todo):
            self._job = DownloadJob(self.places.models)
            self._job.relay.progress.connect(self._on_progress)
            self._job.relay.outcome.connect(self._on_outcome)
            self._job.add(todo)
        return True

    def confirm_download(self, entries: list[ModelEntry]) -> bool:
        total = sum(e.size or 0 for e in entries)
        if total < LARGE_DOWNLOAD:
            return True
        lines = "\n".join(f"• {e.name} — {human_size(e.size)}, licence: {e.licence or 'unknown'}" for e in entries)
        return self.ask_to_confirm(
            f"Download {human_size(total)}?",
            f"{lines}\n\ninto {self.places.models}.\nBy downloading you accept each model's licence.",
        )

    def ask_to_confirm(self, title: str, text: str) -> bool:
        """The confirmation box (a seam tests replace)."""
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)  # fmt: skip
        return answer == QMessageBox.StandardButton.Yes

    def cancel_downloads(self) -> None:
        if self._job is None:
            return
        for model_id in self._job.cancel():
            self._set_state(model_id, "cancelled")

    def wait_for_downloads(self, timeout: float = 10.0) -> None:
        """Block until the worker finishes (tests and shutdown; the GUI never calls this)."""
        if self._job is not None:
            self._job.join(timeout)

    def _on_progress(self, model_id: str, done: int, total: int | None, index: int, count: int) -> None:
        if self.states.get(model_id, ("",))[0] != "downloading":
            self._set_state(model_id, "downloading")
        bar = self._bars[model_id]
        entry = self.catalogue.get(model_id)
        sizes = [f.size for f in entry.files]
        # Whole-entry progress when the catalogue knows every file's size, else this file's.
        if count > 1 and all(s for s in sizes):
            fraction = min(1.0, (sum(sizes[:index]) + done) / sum(sizes))  # type: ignore[arg-type]
        else:
            fraction = done / total if total else None
        files = f" · file {index + 1}/{count}" if count > 1 else ""
        if fraction is None:
            bar.setRange(0, 0)  # busy indicator: the server did not say how big the file is
            bar.setFormat(f"{human_size(done)}{files}")
        else:
            bar.setRange(0, 1000)
            bar.setValue(int(fraction * 1000))
            of = f" of {human_size(total)}" if total and count == 1 else ""
            bar.setFormat(f"{fraction * 100:.0f}% · {human_size(done)}{of}{files}")

    def _on_outcome(self, model_id: str, outcome: str, message: str) -> None:
        if outcome == "done":
            self.found[model_id] = locate(self.catalogue.get(model_id), self.places)
            if self.found[model_id] is None:  # files landed but do not form an entry: say so
                self._set_state(
                    model_id, "failed", "downloaded, but the files are not where the catalogue expects them"
                )
            else:
                self._set_state(model_id, "installed")
        else:
            self._set_state(model_id, outcome, message)
        if not self.is_downloading():
            self._on_need_changed()

    def _update_buttons(self) -> None:
        selected = self.selected_ids()
        self.download_button.setEnabled(any(self.states.get(i, ("",))[0] not in ("installed", "queued", "downloading")
                                            for i in selected))  # fmt: skip
        self.cancel_button.setEnabled(self.is_downloading())

    def open_models_folder(self) -> None:
        folder = self.places.models
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

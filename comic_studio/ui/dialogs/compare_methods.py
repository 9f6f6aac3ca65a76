""" "Compare methods…": one panel rendered by 2–6 backends at the same seed, side by side.

The renders are queued as one group (:meth:`RenderService.compare`) and wait outside the history;
each cell shows its render, its time and its metrics (CLIP-T, and per character masked CLIP-I and
pose accuracy, :mod:`comic_studio.evaluation`, scored on a helper thread with the app's CLIP model,
setting ``pose_clip_model``). "Keep this" adds every render to the panel's history and shows the
chosen one, as one undo step. The zoom slider sizes every cell's picture.
"""

from __future__ import annotations

import functools
import os
from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.render_service import MAX_COMPARED, Comparison

ZOOM_RANGE = (160, 720)


@functools.lru_cache(maxsize=2)
def _face_similarity(encoder: str) -> Any:
    """The face embedder for ``encoder`` (``$COMIC_STUDIO_FACE_ENCODER``'s value; empty: the Hugging
    Face cache's), loaded once per process; None when absent (the captions then show no face figure)."""
    from comic_studio.evaluation.faces import load_face_similarity

    return load_face_similarity(encoder)[0]


def score_render(doc: Any, request: Any, generated: Any, png: bytes) -> Any:
    """Helper thread: the render's metrics with the app's CLIP model (loaded once per process) and,
    when a face encoder is installed, face similarity."""
    from comic_studio.core.safe_read import decode_image
    from comic_studio.evaluation.scoring import Scorer
    from comic_studio.poses.openclip_embedder import load_clip_model
    from comic_studio.poses.retrieval import default_cache_dir
    from comic_studio.workflows.evaluation import references_of
    from comic_studio.workflows.results import effective_request

    effective = effective_request(request, generated)
    from comic_studio.training.identity import FACE_ENCODER_ENV

    face = _face_similarity(os.environ.get(FACE_ENCODER_ENV, ""))
    scorer = Scorer(load_clip_model(None), default_cache_dir(), face_embedder=face)
    return scorer.score_panel(decode_image(png, where="compared render"), effective, references_of(doc, effective))


def backend_list(parent: QWidget, checked: set[str]) -> QListWidget:
    """Every installed backend, checkable (``checked`` ticked); the data role holds its name."""
    from comic_studio.generation.registry import available_backends

    backends = QListWidget(parent)
    for name, cls in sorted(available_backends().items()):
        item = QListWidgetItem(f"{getattr(cls, 'display_name', name) or name}  ({name})", backends)
        item.setData(Qt.ItemDataRole.UserRole, name)
        item.setCheckState(Qt.CheckState.Checked if name in checked else Qt.CheckState.Unchecked)
    backends.setMaximumHeight(140)
    return backends


def checked_backends(backends: QListWidget) -> list[str]:
    items = (backends.item(i) for i in range(backends.count()))
    return [it.data(Qt.ItemDataRole.UserRole) for it in items if it.checkState() == Qt.CheckState.Checked]


def set_checked_backends(backends: QListWidget, names: list[str]) -> None:
    for i in range(backends.count()):
        item = backends.item(i)
        wanted = item.data(Qt.ItemDataRole.UserRole) in names
        item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)


def metrics_text(score: Any, names: dict[str, str]) -> str:
    """A cell's caption lines: CLIP-T, then per character CLIP-I and pose accuracy (or the reason
    metrics are missing when ``score`` is an exception)."""
    if isinstance(score, BaseException):
        return f"metrics unavailable: {score}"
    parts = [f"CLIP-T {score.clip_t:.3f}"]
    for c in score.characters:
        clip_i = "—" if c.clip_i is None else f"{c.clip_i:.3f}"
        face = "" if c.face_similarity is None else f" · face {c.face_similarity:.3f}"
        pose = "" if c.pose is None else (" · pose not found" if not c.pose.found else f" · AKD {c.pose.akd or 0:.3f}")
        parts.append(f"{names.get(c.character_id, c.character_id)}: CLIP-I {clip_i}{face}{pose}")
    return "\n".join(parts)


class CompareMethodsDialog(QDialog):
    """Pick backends, compare them on ``panel_id``, keep one."""

    def __init__(self, ctx: Any, service: Any, panel_id: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx, self.service, self.panel_id = ctx, service, panel_id
        self.group: Comparison | None = None
        self.metrics: dict[str, str] = {}
        self._jobs = BackgroundJobs(self, "compare-metrics")
        self.setWindowTitle(f"Compare methods · {service.panel_label(panel_id)}")
        panel = ctx.document.project.find_panel(panel_id)
        self.backends = backend_list(self, {panel[1].backend} if panel else set())
        self.backends.itemChanged.connect(self._update_start)
        self.start_button = QPushButton("Compare", self)
        self.start_button.clicked.connect(self.start)
        self.zoom = QSlider(Qt.Orientation.Horizontal, self)
        self.zoom.setRange(*ZOOM_RANGE)
        self.zoom.setValue(280)
        self.zoom.valueChanged.connect(self._refresh)
        self.status = QLabel(f"Pick 2 to {MAX_COMPARED} methods; they render at the panel's seed.", self)
        self.grid_host = QWidget(self)
        self.grid = QGridLayout(self.grid_host)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        self.images: dict[str, QLabel] = {}
        self.captions: dict[str, QLabel] = {}
        self.keep_buttons: dict[str, QPushButton] = {}
        top = QHBoxLayout()
        top.addWidget(self.backends, 1)
        side = QVBoxLayout()
        side.addWidget(self.start_button)
        side.addWidget(QLabel("Zoom", self))
        side.addWidget(self.zoom)
        side.addStretch(1)
        top.addLayout(side)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        layout.addWidget(close)
        service.comparison_changed.connect(self._changed)
        self._update_start()
        self.resize(980, 720)

    def checked(self) -> list[str]:
        return checked_backends(self.backends)

    def set_checked(self, names: list[str]) -> None:
        set_checked_backends(self.backends, names)

    def _update_start(self, *_: Any) -> None:
        self.start_button.setEnabled(2 <= len(self.checked()) <= MAX_COMPARED)

    def start(self) -> Comparison | None:
        """Queue the checked methods as one group and lay out one cell per method."""
        group = self.service.compare(self.panel_id, self.checked())
        if group is None:
            return None
        self.group, self.metrics = group, {}
        while self.grid.count():
            item = self.grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.images.clear()
        self.captions.clear()
        self.keep_buttons.clear()
        for column, name in enumerate(group.cells):
            image = QLabel("rendering…", self.grid_host)
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption = QLabel(name, self.grid_host)
            caption.setWordWrap(True)
            keep = QPushButton(f"Keep {name}", self.grid_host)
            keep.setEnabled(False)
            keep.clicked.connect(lambda _=False, n=name: self.keep(n))
            row, col = divmod(column, 3)
            self.grid.addWidget(image, 3 * row, col)
            self.grid.addWidget(caption, 3 * row + 1, col)
            self.grid.addWidget(keep, 3 * row + 2, col)
            self.images[name], self.captions[name], self.keep_buttons[name] = image, caption, keep
        self.status.setText(f"Seed {group.seed}: {len(group.cells)} methods queued")
        return group

    def keep(self, backend: str) -> bool:
        if self.group is None or not self.service.keep_comparison(self.group.group_id, backend):
            return False
        self.status.setText(f"Kept {backend}; every render of this comparison is in the panel's history")
        for button in self.keep_buttons.values():
            button.setEnabled(False)
        return True

    def _changed(self, group_id: str) -> None:
        if self.group is None or group_id != self.group.group_id:
            return
        for name, cell in self.group.cells.items():
            if cell.result is not None and name not in self.metrics:
                self.metrics[name] = "metrics: scoring…"
                self._jobs.submit(score_render, self.ctx.document, cell.request, cell.result, cell.png,
                                  on_result=partial(self._scored, name), on_error=partial(self._scored, name))  # fmt: skip
        self._refresh()

    def _scored(self, name: str, score: Any) -> None:
        names = {c.id: c.name for c in self.group.cells[name].request.characters} if self.group else {}
        self.metrics[name] = metrics_text(score, names)
        self._refresh()

    def metrics_done(self) -> bool:
        """Every finished render has its metrics (or the reason they are missing)."""
        if self.group is None:
            return False
        finished = sum(c.result is not None for c in self.group.cells.values())
        return len(self.metrics) == finished and not any(m.endswith("scoring…") for m in self.metrics.values())

    def _refresh(self, *_: Any) -> None:
        if self.group is None:
            return
        side = self.zoom.value()
        for name, cell in self.group.cells.items():
            image, caption = self.images[name], self.captions[name]
            if cell.error:
                image.setText(f"failed: {cell.error}")
            elif cell.png is not None:
                pixmap = QPixmap()
                pixmap.loadFromData(cell.png)
                image.setPixmap(
                    pixmap.scaled(
                        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                    )
                )
            text = f"{name} · {cell.seconds:.1f} s" if (cell.png or cell.error) else name
            caption.setText(text + ("\n" + self.metrics[name] if name in self.metrics else ""))
            self.keep_buttons[name].setEnabled(cell.result is not None and self.group.kept is None)
        done = sum(1 for c in self.group.cells.values() if c.result is not None or c.error)
        if self.group.kept is None:
            self.status.setText(f"Seed {self.group.seed}: {done}/{len(self.group.cells)} rendered")

    def done(self, code: int) -> None:  # noqa: D401 - QDialog.done
        self._jobs.shutdown()
        super().done(code)

"""The render queue dock: one row per job with progress, ETA, a live preview and Cancel.

Rows are kept in step with :class:`~comic_studio.ui.render_service.RenderService`: the set of
rows is synchronised on ``jobs_changed``, and a single row is updated per ``job_message`` (a
progress tick repaints one progress bar, never the list). Errors stay in the list with their
one-line message; the technical detail is the row's tooltip, never a traceback dialog.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comic_studio.ui.context import StudioContext
from comic_studio.ui.render_service import RenderJob, RenderService

ROW_THUMB = 44
MAX_ROWS = 20
"""Rows with widgets at most; further waiting jobs are summed up in one line."""
_ERROR_COLOUR = "#c0392b"


def format_seconds(seconds: float | None) -> str:
    """``7s``, ``2m 05s``, ``1h 03m``; empty when unknown."""
    if seconds is None or seconds < 0:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class JobRow(QWidget):
    """One job: preview thumbnail, name and state, progress bar, Cancel (or Dismiss on errors)."""

    def __init__(self, service: RenderService, job: RenderJob, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.job_id = job.job_id
        self._signature: tuple | None = None
        self.thumb = QLabel(self)
        self.thumb.setFixedSize(ROW_THUMB, ROW_THUMB)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setStyleSheet("background: #3a3a3a; border-radius: 3px;")
        self.name = QLabel(job.label, self)
        self.name.setStyleSheet("font-weight: bold;")
        self.state = QLabel(self)
        self.state.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(True)
        self.bar.setMaximumHeight(16)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelJob")
        self.cancel_button.clicked.connect(self._cancel)

        text = QVBoxLayout()
        text.setContentsMargins(0, 0, 0, 0)
        text.setSpacing(2)
        text.addWidget(self.name)
        text.addWidget(self.state)
        text.addWidget(self.bar)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 3, 4, 3)
        layout.addWidget(self.thumb)
        layout.addLayout(text, 1)
        layout.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.update_from(job)

    def update_from(self, job: RenderJob) -> None:
        # Skip when nothing shown changed: Qt setters cost GUI time (and a GIL round trip each).
        signature = (job.label, job.state, job.step, job.total, round(job.elapsed), None if job.eta is None else round(job.eta),
                     job.error, id(job.preview), tuple(sorted(job.info.items())))  # fmt: skip
        if signature == self._signature:
            return
        self._signature = signature
        self.name.setText(job.label)
        if job.state == "error":
            self.state.setText(f"Failed: {job.error}")
            self.state.setStyleSheet(f"color: {_ERROR_COLOUR};")
            self.setToolTip(f"{job.error}\n\n{job.detail}".strip())
            self.bar.hide()
            self.cancel_button.setText("Dismiss")
            self.cancel_button.setToolTip("Remove this failed job from the list")
        else:
            self.state.setStyleSheet("")
            self.setToolTip("")
            self.bar.show()
            self.cancel_button.setText("Cancel")
            if job.state == "queued":
                self.state.setText("Waiting")
                self.bar.setRange(0, 1)
                self.bar.setValue(0)
                self.bar.setFormat("queued")
            else:
                eta = format_seconds(job.eta) if job.eta is not None and job.eta >= 1 else ""  # "0s left" says nothing
                self.state.setText(_running_text(job, eta))
                if job.total > 0:
                    self.bar.setRange(0, job.total)
                    self.bar.setValue(min(job.step, job.total))
                    self.bar.setFormat(f"{job.step}/{job.total}" + (f" · ETA {eta}" if eta else ""))
                else:
                    self.bar.setRange(0, 0)  # busy indicator until the backend reports steps
        if job.preview is not None and not job.preview.isNull():
            self.thumb.setPixmap(
                QPixmap.fromImage(job.preview).scaled(
                    ROW_THUMB, ROW_THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
            )

    def _cancel(self) -> None:
        self.service.cancel(self.job_id)


def _running_text(job: RenderJob, eta: str) -> str:
    """The state line of a running job: a render's time, a training run's loss and speed too."""
    elapsed = format_seconds(job.elapsed) or "0s"
    left = f" · about {eta} left" if eta else ""
    if not job.is_task:
        return f"Rendering · {elapsed}{left}"
    figures = ""
    if "loss" in job.info:
        figures = f" · loss {job.info['loss']:.4f}"
    if job.info.get("steps_per_second"):
        rate = float(job.info["steps_per_second"])
        figures += f" · {rate:.2f} steps/s" if rate >= 0.1 else f" · {1 / rate:.1f} s/step"
    return f"Training · {elapsed}{figures}{left}"


class QueuePanel(QWidget):
    """Dockable list of render jobs with Cancel per job, Cancel all, Render page and Render all."""

    def __init__(self, ctx: StudioContext, render_service: RenderService, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.service = render_service
        self.setObjectName("queuePanel")
        self._rows: dict[str, tuple[QListWidgetItem, JobRow]] = {}

        self.summary = QLabel(self)
        self.render_page_button = QPushButton("Render page", self)
        self.render_page_button.setToolTip("Render every panel of the current page")
        self.render_page_button.clicked.connect(lambda: self.service.render_page())
        self.render_all_button = QPushButton("Render all", self)
        self.render_all_button.setToolTip("Render every panel that has no image yet, the current page first")
        self.render_all_button.clicked.connect(lambda: self.service.render_all())
        self.cancel_all_button = QPushButton("Cancel all", self)
        self.cancel_all_button.setObjectName("cancelAll")
        self.cancel_all_button.clicked.connect(self.service.cancel_all)
        self.list = QListWidget(self)
        self.list.setObjectName("jobList")
        self.list.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.list.setUniformItemSizes(False)
        self.placeholder = QLabel("No renders queued. Use Render panel, Render page or Render all.", self)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: gray;")

        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.render_page_button)
        header.addWidget(self.render_all_button)
        header.addWidget(self.cancel_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.list, 1)
        self.overflow = QLabel(self)
        self.overflow.setObjectName("queueOverflow")
        self.overflow.setStyleSheet("color: gray;")
        self.overflow.hide()
        layout.addWidget(self.overflow)

        render_service.jobs_changed.connect(self.sync)
        render_service.job_message.connect(self._on_message)
        self.sync()

    def row(self, job_id: str) -> JobRow | None:
        entry = self._rows.get(job_id)
        return entry[1] if entry else None

    def sync(self) -> None:
        """Make the rows match the service's jobs: failed, running, then the next waiting ones
        (at most :data:`MAX_ROWS` rows; a "Render all" of a long book must not build a thousand
        row widgets on the GUI thread at once, so the rest is counted in one line)."""
        jobs = self.service.jobs()
        failed = [j for j in jobs if j.state == "error"]
        running = [j for j in jobs if j.running]
        waiting = [j for j in jobs if j.state == "queued"]
        room = max(0, MAX_ROWS - len(failed) - len(running))
        shown = failed + running + waiting[:room]
        wanted = {job.job_id for job in shown}
        for job_id in [j for j in self._rows if j not in wanted]:
            self._remove_row(job_id)
        # Rows that exist stay where they are (rebuilding row widgets is the expensive part);
        # a new row goes after every shown row that comes before it.
        position = {job.job_id: i for i, job in enumerate(shown)}
        for job in shown:
            entry = self._rows.get(job.job_id)
            if entry is not None:
                entry[1].update_from(job)
                continue
            index = sum(1 for other in self._rows if position[other] < position[job.job_id])
            row = JobRow(self.service, job)
            item = QListWidgetItem()
            item.setSizeHint(QSize(row.sizeHint().width(), max(row.sizeHint().height(), ROW_THUMB + 8)))
            self.list.insertItem(index, item)
            self.list.setItemWidget(item, row)
            self._rows[job.job_id] = (item, row)
        hidden = len(waiting) - len(waiting[:room])
        self.overflow.setText(f"… and {hidden} more waiting" if hidden else "")
        self.overflow.setVisible(bool(hidden))
        self._update_summary(jobs)

    def _remove_row(self, job_id: str) -> None:
        item, row = self._rows.pop(job_id)
        self.list.takeItem(self.list.row(item))
        row.deleteLater()

    def _on_message(self, msg) -> None:
        job = self.service.job(msg.job_id)
        row = self.row(msg.job_id)
        if job is not None and row is not None:
            row.update_from(job)

    def _update_summary(self, jobs: list[RenderJob]) -> None:
        running = sum(1 for j in jobs if j.running and not j.is_task)
        training = sum(1 for j in jobs if j.running and j.is_task)
        waiting = sum(1 for j in jobs if j.state == "queued")
        failed = sum(1 for j in jobs if j.state == "error")
        parts = []
        if training:
            parts.append(f"{training} training")
        if running:
            parts.append(f"{running} rendering")
        if waiting:
            parts.append(f"{waiting} waiting")
        if failed:
            parts.append(f"<span style='color:{_ERROR_COLOUR}'>{failed} failed</span>")
        self.summary.setText(" · ".join(parts) if parts else "Idle")
        self.cancel_all_button.setEnabled(bool(jobs))
        self.placeholder.setVisible(not jobs)
        self.list.setVisible(bool(jobs))


__all__ = ["JobRow", "QueuePanel", "format_seconds"]

"""Training jobs of the render queue, followed on the GUI thread (the request and the run are
:mod:`comic_studio.workflows.training_jobs`).

A training run is a job of the same engine as the renders (the queue shows it as "Train LoRA ·
NAME" with its progress, its latest sample as the thumbnail, and Cancel). It belongs to the
:class:`~comic_studio.ui.render_service.RenderService`, not to the Train dialog: closing the dialog
leaves the run going (an author starts a half-hour run and goes on drawing), reopening Train LoRA…
on the character shows it again with its loss curve and samples so far, and the finished LoRA is
stored on the character (one undoable step) whether or not a dialog is open. Quitting the app
cancels the run; the trainer saves its checkpoint first, so the next session resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtGui import QImage

from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.ui.images import pil_to_qimage
from comic_studio.workflows.training import store_trained_lora
from comic_studio.workflows.training_jobs import TRAIN_LORA, TrainingRequest, submit_training

if TYPE_CHECKING:
    from comic_studio.ui.render_service import RenderService


@dataclass
class TrainingRun:
    """What the dialog and the queue show of one run."""

    job_id: str
    request: TrainingRequest
    document: Document
    losses: list[float] = field(default_factory=list)
    samples: list[tuple[int, list[QImage]]] = field(default_factory=list)
    """(step, one picture per prompt), in the order they came."""
    last: Any = None
    """The newest PROGRESS :class:`JobMessage`."""
    outcome: str = ""
    """"" while queued or running; then "finished", "cancelled" or "failed"."""
    text: str = ""
    """How it ended, one line for the author."""

    @property
    def character_id(self) -> str:
        return self.request.character_id


class TrainingJobs(QObject):
    """The training side of one :class:`RenderService`."""

    updated = Signal(str, object)
    """``(job_id, JobMessage)``: a run's STARTED, PROGRESS or SAMPLE, after it was recorded here."""
    ended = Signal(str, str, str)
    """``(job_id, outcome, text)``: "finished" (the LoRA is on the character now), "cancelled"
    or "failed"."""

    def __init__(self, service: RenderService):
        super().__init__(service)
        self.service = service
        self._runs: dict[str, TrainingRun] = {}
        app = QCoreApplication.instance()
        if app is not None:
            # Quitting mid-run: stop at the next micro-step with a checkpoint, so the exit (which
            # waits for the engine's worker) is quick and the run resumes next time.
            app.aboutToQuit.connect(self.cancel_all)

    @property
    def ctx(self) -> Any:
        return self.service.ctx

    # ------------------------------------------------------------------ queries
    def run(self, job_id: str) -> TrainingRun | None:
        return self._runs.get(job_id)

    def active_for(self, character_id: str) -> TrainingRun | None:
        """The character's run that is queued or running in this project (None when there is none)."""
        return next(
            (r for r in self._runs.values()
             if r.character_id == character_id and not r.outcome and r.document is self.ctx.document),
            None,
        )  # fmt: skip

    # ------------------------------------------------------------------ submitting
    def submit(self, request: TrainingRequest) -> str:
        """Queue the run; raises :class:`ComicStudioError` with the reason when it cannot be."""
        if self.active_for(request.character_id) is not None:
            raise ComicStudioError(f"{request.character_name}'s LoRA is already training (see the Queue)")
        job_id = submit_training(self.service.engine, request)
        self._runs[job_id] = TrainingRun(job_id, request, self.ctx.document)
        self.service.add_task_job(job_id, request.label)
        return job_id

    def cancel(self, job_id: str) -> None:
        self.service.cancel(job_id)

    def cancel_all(self) -> None:
        for run in list(self._runs.values()):
            if not run.outcome:
                self.service.cancel(run.job_id)

    # ------------------------------------------------------------------ engine messages (GUI thread)
    def on_message(self, msg: Any) -> QImage | None:
        """Record a message of one of our runs; returns the newest sample picture (for the queue's
        thumbnail) when the message brought one."""
        run = self._runs.get(msg.job_id)
        if run is None or msg.kind != TRAIN_LORA:
            return None
        event = msg.event.value
        thumb = None
        if event == "progress":
            run.last = msg
            loss = msg.info.get("loss")
            if loss is not None:
                run.losses.append(float(loss))
        elif event == "sample":
            images = [pil_to_qimage(image) for image in msg.samples]
            run.samples.append((msg.step, images))
            thumb = images[0] if images else None
        elif event == "finished":
            self._store(run, msg.outcome)
            return None
        elif event == "cancelled":
            self._end(run, "cancelled", msg.error or "cancelled before it started")
            return None
        elif event == "error":
            self._end(run, "failed", msg.error)
            return None
        self.updated.emit(run.job_id, msg)
        return thumb

    def _store(self, run: TrainingRun, outcome: Any) -> None:
        name = run.request.character_name
        if run.document is not self.ctx.document:
            self._end(run, "failed", f"the project was closed while {name}'s LoRA trained; the LoRA is not kept")
            return
        trained = self.ctx.edit(store_trained_lora, run.request.plan(decode=False), outcome)  # one undoable step
        if trained is None:
            self._end(run, "failed", "The LoRA was trained but could not be stored (see the status bar).")
            return
        self.ctx.message.emit(f"{name}'s LoRA is trained")
        self._end(run, "finished", f"Done: {name} has a trained LoRA ({trained.steps} steps, final loss "
                                   f"{trained.final_loss:.4f}). Renders with {name} now use it.")  # fmt: skip

    def _end(self, run: TrainingRun, outcome: str, text: str) -> None:
        run.outcome, run.text = outcome, text
        self.ended.emit(run.job_id, outcome, text)

    def clear(self) -> None:
        """The project was replaced: its runs were cancelled by the service; forget the records."""
        for run in list(self._runs.values()):
            if not run.outcome:
                self._end(run, "cancelled", "the project was closed; the checkpoint is kept to resume")
        self._runs.clear()

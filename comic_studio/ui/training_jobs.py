"""Training jobs of the render queue, followed on the GUI thread (the requests and the runs are
:mod:`comic_studio.workflows.training_jobs`, the LoRA's, :mod:`comic_studio.workflows.identity_jobs`,
StableIdentity's, and :mod:`comic_studio.workflows.anime_training_jobs`, AnimeAdapter's;
:data:`KINDS` holds what differs between them: a character's trainers store their outcome on the
character, AnimeAdapter's weights are a model outside the project and one run goes at a time).

A training run is a job of the same engine as the renders (the queue shows it as "Train LoRA ·
NAME", "Train identity · NAME" or "Train AnimeAdapter · FOLDER" with its progress, its latest sample
as the thumbnail, and Cancel). It belongs to the
:class:`~comic_studio.ui.render_service.RenderService`, not to the Train dialog: closing the dialog
leaves the run going (an author starts a half-hour run and goes on drawing), reopening Train LoRA…
on the character shows it again with its loss curve and samples so far, and the finished LoRA is
stored on the character (one undoable step) whether or not a dialog is open. Quitting the app
cancels the run; the trainer saves its checkpoint first, so the next session resumes it. Opening
another project cancels the runs too (the render service cancels every job of the old project).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtGui import QImage

from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.ui.images import pil_to_qimage
from comic_studio.workflows.training import store_trained_lora
from comic_studio.workflows.training_jobs import TRAIN_LORA, submit_training

if TYPE_CHECKING:
    from comic_studio.ui.render_service import RenderService


def refusal(exc: ValidationError | ComicStudioError) -> str:
    """Why a Train dialog's run could not be queued, in one line: the first bad training setting
    (the request's validation), or the error's own text."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"training setting {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)


class TrainingKind:
    """What differs between the trainers the queue runs: how a request is submitted, which runs may
    not go at the same time, and what a finished run changes and says."""

    noun: str
    """ "LoRA", "identity", "AnimeAdapter": in "Mara's LoRA is trained"."""

    def submit(self, engine: Any, request: Any) -> str:
        """Queue ``request`` on ``engine`` (registering the runner); returns the job id."""
        raise NotImplementedError

    def scope(self, request: Any) -> str:
        """Runs of this kind with the same scope go one at a time ("": one run of the kind at a time)."""
        return ""

    def busy(self, request: Any) -> str:
        """Why a second run of the scope is refused."""
        raise NotImplementedError

    def finish(self, ctx: Any, run: TrainingRun, outcome: Any) -> tuple[str, str]:
        """Take a finished run's outcome (GUI thread): ``("finished" | "failed", the author's line)``."""
        raise NotImplementedError


@dataclass(frozen=True)
class CharacterTraining(TrainingKind):
    """A trainer of one character (LoRA, identity tokens): one run per character at a time, and
    the outcome is stored on the character, in the project the run was started in."""

    noun: str
    submitter: Callable[[Any, Any], str]
    """``submitter(engine, request) -> job id`` (registers the runner)."""
    store: Callable[[Document, Any, Any], Any]
    """``store(document, plan, outcome) -> trained`` (``trained.steps``, ``trained.final_loss``)."""
    done: str
    """What the finished run changes, after "Done: NAME has …"."""

    def submit(self, engine: Any, request: Any) -> str:
        return self.submitter(engine, request)

    def scope(self, request: Any) -> str:
        return str(request.character_id)

    def busy(self, request: Any) -> str:
        return f"{request.character_name}'s {self.noun} is already training (see the Queue)"

    def finish(self, ctx: Any, run: TrainingRun, outcome: Any) -> tuple[str, str]:
        name = run.request.character_name
        if run.document is not ctx.document:
            return "failed", f"the project was closed while {name}'s {self.noun} trained; it is not kept"
        trained = ctx.edit(self.store, run.request.plan(decode=False), outcome)  # one undoable step
        if trained is None:
            return "failed", f"The {self.noun} was trained but could not be stored (see the status bar)."
        ctx.message.emit(f"{name}'s {self.noun} is trained")
        return "finished", f"Done: {name} has " + self.done.format(steps=trained.steps, loss=trained.final_loss,
                                                                   name=name)  # fmt: skip


@dataclass(frozen=True)
class AnimeAdapterTraining(TrainingKind):
    """AnimeAdapter (:mod:`comic_studio.workflows.anime_training_jobs`): not a character's, one run
    at a time; its weights are a model, not part of the project: the finished run says where they are."""

    noun: str = "AnimeAdapter"

    def submit(self, engine: Any, request: Any) -> str:
        from comic_studio.workflows.anime_training_jobs import submit_anime_training

        return submit_anime_training(engine, request)

    def busy(self, request: Any) -> str:
        return "An AnimeAdapter run is already in the Queue: cancel it or let it finish first"

    def finish(self, ctx: Any, run: TrainingRun, outcome: Any) -> tuple[str, str]:
        unused = f" {len(outcome.unused)} picture(s) were not used (see the dataset report)." if outcome.unused else ""
        ctx.message.emit(f"AnimeAdapter trained: {outcome.folder}")
        return "finished", (f"Done: AnimeAdapter weights in {outcome.folder} ({outcome.steps} steps, final loss "
                            f"{outcome.final_loss:.4f}). Set the anime backend's 'AnimeAdapter weights' to this "
                            f"folder.{unused}")  # fmt: skip


TRAIN_IDENTITY = "train-identity"
""":data:`comic_studio.workflows.identity_jobs.TRAIN_IDENTITY`, named here so the window's start does
not import the identity trainer (the two functions below import it on first use)."""
TRAIN_ANIME_ADAPTER = "train-anime-adapter"
""":data:`comic_studio.workflows.anime_training_jobs.TRAIN_ANIME_ADAPTER` (imported on first use, as
the identity trainer)."""


def _submit_identity(engine: Any, request: Any) -> str:
    from comic_studio.workflows.identity_jobs import submit_identity_training

    return submit_identity_training(engine, request)


def _store_identity(doc: Document, plan: Any, outcome: Any) -> Any:
    from comic_studio.workflows.identity import store_trained_identity

    return store_trained_identity(doc, plan, outcome)


KINDS: dict[str, TrainingKind] = {
    TRAIN_LORA: CharacterTraining("LoRA", submit_training, store_trained_lora,
                                  "a trained LoRA ({steps} steps, final loss {loss:.4f}). Renders with {name} now use "
                                  "it."),
    TRAIN_IDENTITY: CharacterTraining("identity", _submit_identity, _store_identity,
                                      "identity tokens ({steps} steps, final loss {loss:.4f}). Choose the "
                                      "StableIdentity method for a panel to use them."),
    TRAIN_ANIME_ADAPTER: AnimeAdapterTraining(),
}  # fmt: skip


@dataclass
class TrainingRun:
    """What the dialog and the queue show of one run."""

    job_id: str
    request: Any
    """A :class:`~comic_studio.workflows.training_jobs.TrainingRequest`, an
    :class:`~comic_studio.workflows.identity_jobs.IdentityTrainingRequest` or an
    :class:`~comic_studio.workflows.anime_training_jobs.AnimeTrainingRequest` (its ``kind`` says)."""
    document: Document
    """The project it was started in."""
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
        """The character trained ("" for a kind that trains none)."""
        return str(getattr(self.request, "character_id", ""))

    @property
    def scope(self) -> str:
        return KINDS[self.kind].scope(self.request)

    @property
    def kind(self) -> str:
        return str(self.request.kind)


class TrainingJobs(QObject):
    """The training side of one :class:`RenderService`."""

    updated = Signal(str, object)
    """``(job_id, JobMessage)``: a run's STARTED, PROGRESS or SAMPLE, after it was recorded here."""
    ended = Signal(str, str, str)
    """``(job_id, outcome, text)``: "finished" (a LoRA or identity is on the character now),
    "cancelled" or "failed"."""

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

    def active_for(self, scope: str, kind: str = TRAIN_LORA) -> TrainingRun | None:
        """The run of ``kind`` that is queued or running in this project for ``scope`` (the
        character's id; "" for a kind that trains no character), None when there is none."""
        return next(
            (r for r in self._runs.values()
             if r.scope == scope and r.kind == kind and not r.outcome and r.document is self.ctx.document),
            None,
        )  # fmt: skip

    # ------------------------------------------------------------------ submitting
    def submit(self, request: Any) -> str:
        """Queue the run (a request of one of :data:`KINDS`); raises :class:`ComicStudioError` with
        the reason when it cannot be."""
        spec = KINDS[request.kind]
        if self.active_for(spec.scope(request), request.kind) is not None:
            raise ComicStudioError(spec.busy(request))
        job_id = spec.submit(self.service.engine, request)
        self._runs[job_id] = TrainingRun(job_id, request, self.ctx.document)
        self.service.add_task_job(job_id, request.label, request.kind)
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
        if run is None or msg.kind != run.kind:
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
            self._end(run, *KINDS[run.kind].finish(self.ctx, run, msg.outcome))
            return None
        elif event == "cancelled":
            self._end(run, "cancelled", msg.error or "cancelled before it started")
            return None
        elif event == "error":
            self._end(run, "failed", msg.error)
            return None
        self.updated.emit(run.job_id, msg)
        return thumb

    def _end(self, run: TrainingRun, outcome: str, text: str) -> None:
        run.outcome, run.text = outcome, text
        self.ended.emit(run.job_id, outcome, text)

    def clear(self) -> None:
        """The project was replaced: its runs were cancelled by the service; forget the records."""
        for run in list(self._runs.values()):
            if not run.outcome:
                self._end(run, "cancelled", "the project was closed; the checkpoint is kept to resume")
        self._runs.clear()

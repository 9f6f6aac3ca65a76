"""Training samples scored as the run goes: masked CLIP-I of each sample against the character's
references (:meth:`comic_studio.evaluation.scoring.Scorer.picture_clip_i`, the app's CLIP model,
setting ``pose_clip_model``), so an author sees whether the LoRA is drawing *this* character yet.

:class:`SampleScores` belongs to the render service (one per service, made on first use by
:func:`sample_scores`): it follows every training run's SAMPLE messages, scores the pictures on a
helper thread and keeps the figures per run, so a dialog closed and opened again shows them too.
:func:`show_sample_scores` puts them under a dialog's sample strip ("step N · CLIP-I 0.812").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QListWidget

from comic_studio.ui.background import BackgroundJobs


def _score(document: Any, character_id: str, pictures: list, scorer_box: list) -> list[float | None]:
    """Helper thread: CLIP-I of each sample picture against the character's references."""
    from comic_studio.core.safe_read import decode_image
    from comic_studio.evaluation.scoring import Scorer
    from comic_studio.poses.openclip_embedder import load_clip_model
    from comic_studio.poses.retrieval import default_cache_dir

    if not scorer_box:  # one Scorer per service: the references' features are computed once per character
        scorer_box.append(Scorer(load_clip_model(None), default_cache_dir()))
    character = document.project.character(character_id)
    hashes = list(dict.fromkeys((*character.face_refs, *character.body_refs))) if character else []
    references = [decode_image(document.assets.get(h), where=f"reference {h[:12]}") for h in hashes]
    key = "|".join(hashes)  # a changed set of references is scored afresh
    return scorer_box[0].picture_clip_i([p.convert("RGB") for p in pictures], references, key)


class SampleScores(QObject):
    """CLIP-I of every training sample of one render service's runs, per job and step."""

    scored = Signal(str, int)
    """``(job_id, step)``: that step's samples have their CLIP-I (or the reason they have none)."""

    def __init__(self, service: Any):
        super().__init__(service)
        self.service = service
        self.scores: dict[str, dict[int, list[float | None]]] = {}
        self.errors: dict[str, str] = {}
        """Job id → why its samples could not be scored (no CLIP model, …)."""
        self._scorer: list = []
        self._jobs = BackgroundJobs(self, "sample-clip-i")
        service.training.updated.connect(self._updated)

    def _updated(self, job_id: str, msg: Any) -> None:
        if msg.event.value != "sample" or not msg.samples:
            return
        run = self.service.training.run(job_id)
        if run is None:
            return
        self._jobs.submit(_score, run.document, run.character_id, list(msg.samples), self._scorer,
                          on_result=partial(self._done, job_id, msg.step),
                          on_error=partial(self._failed, job_id, msg.step))  # fmt: skip

    def _done(self, job_id: str, step: int, values: list[float | None]) -> None:
        self.scores.setdefault(job_id, {})[step] = values
        self.scored.emit(job_id, step)

    def _failed(self, job_id: str, step: int, exc: BaseException) -> None:
        self.errors[job_id] = str(exc)
        self.scored.emit(job_id, step)


def sample_scores(service: Any) -> SampleScores:
    """The service's :class:`SampleScores` (made on first use)."""
    found = service.findChild(SampleScores)
    return found if found is not None else SampleScores(service)


def caption(step: int, value: float | None) -> str:
    return f"step {step}" if value is None else f"step {step} · CLIP-I {value:.3f}"


class _StripLabels(QObject):
    """Child of the strip: its connections end when the strip (the dialog) is gone."""

    def __init__(self, strip: QListWidget, scores: SampleScores, job_id: Callable[[], str | None]):
        super().__init__(strip)
        self.strip, self.scores, self.job_id = strip, scores, job_id
        scores.scored.connect(self.relabel)
        # Items are added before the strip records their step: label them once that is done.
        strip.model().rowsInserted.connect(lambda *_: QTimer.singleShot(0, self, self.relabel))

    def relabel(self, *_: Any) -> None:
        job = self.job_id() or ""
        values = self.scores.scores.get(job, {})
        error = self.scores.errors.get(job, "")
        seen: dict[int, int] = {}
        for row, step in enumerate(list(getattr(self.strip, "steps", []))[: self.strip.count()]):
            index = seen.get(step, 0)
            seen[step] = index + 1
            step_values = values.get(step, [])
            item = self.strip.item(row)
            item.setText(caption(step, step_values[index] if index < len(step_values) else None))
            if error:
                item.setToolTip(f"CLIP-I unavailable: {error}")


def show_sample_scores(strip: QListWidget, service: Any, job_id: Callable[[], str | None]) -> SampleScores:
    """Label the items of a sample strip (``strip.steps[i]`` is item i's step, one item per prompt)
    with their CLIP-I as scores arrive and as items are added; ``job_id()``: the run shown."""
    scores = sample_scores(service)
    _StripLabels(strip, scores, job_id)
    return scores

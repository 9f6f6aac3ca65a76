"""Engine jobs that are not renders (training a LoRA, later other trainers): the seam between the
engine and the layers above it.

The engine (``generation``) sits below ``training`` and ``workflows`` in the layer contract, so it
cannot know what training is. Instead a layer above registers a *runner* for a job *kind*
(:meth:`comic_studio.generation.engine.Engine.register_runner`) and submits *task requests* of that
kind; the engine queues them with the renders (one worker, one owner of the GPU, one priority
queue) and calls the runner on its worker thread with a :class:`TaskContext`, through which the
runner reports progress and intermediate outputs (samples) on the engine's
:class:`~comic_studio.generation.messages.JobMessage` stream and learns that it was cancelled.

No torch and no Qt here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from comic_studio.generation.resources import EngineResources


@runtime_checkable
class TaskRequest(Protocol):
    """What a non-render job is asked to do: serialisable (``to_dict`` gives plain JSON data), and
    names its ``kind`` (the runner the engine dispatches it to)."""

    @property
    def kind(self) -> str: ...

    @property
    def label(self) -> str:
        """One line for the queue, e.g. "Train LoRA · Mara"."""
        ...

    @property
    def needs_device_memory(self) -> bool:
        """True when the task needs the GPU's memory for itself: the engine drops its cached render
        models before running it (they are loaded again by the next render)."""
        ...

    @property
    def cancel_grace_s(self) -> float:
        """How long the task may take to stop after a cancel before the engine abandons its thread
        (the engine's own grace when that is longer)."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class CheckpointedTask(Protocol):
    """A task request whose run keeps its state in one checkpoint file (a training run): on a
    cluster the run keeps that file in the worker's own folder, a cancelled or failed run's file is
    sent back to ``checkpoint`` on the client, and a resume sends it to the worker again
    (:mod:`comic_studio.generation.cluster`)."""

    @property
    def checkpoint(self) -> str:
        """The checkpoint file on the machine that submitted the run."""
        ...

    @property
    def resume(self) -> bool: ...

    def with_checkpoint(self, path: str) -> Any:
        """The same request keeping its checkpoint at ``path``."""
        ...


@dataclass
class TaskContext:
    """What a runner gets from the engine (on the worker thread)."""

    job_id: str
    resources: EngineResources
    """The engine's device choice and settings (the model cache was freed already when the task
    asked for the device's memory)."""
    cancelled: Callable[[], bool]
    """True once the job is cancelled: the runner stops at its next safe point (a training run
    saves its checkpoint first) and raises :class:`~comic_studio.generation.request.Cancelled`
    or its own subclass of :class:`~comic_studio.core.errors.ComicStudioError` naming the stop."""
    _progress: Callable[[int, int, Mapping[str, float], float | None], None] = field(repr=False)
    _sample: Callable[[int, int, list[Image.Image], Mapping[str, Any]], None] = field(repr=False)
    started: float = field(default_factory=time.monotonic)

    def progress(
        self, step: int, total: int, info: Mapping[str, float] | None = None, eta: float | None = None
    ) -> None:
        """A PROGRESS message: ``step`` of ``total`` with task figures in ``info`` (training: loss, lr,
        steps_per_second). Every call is sent and delivered (not thinned out like a render's steps):
        report optimizer steps, not anything finer."""
        self._progress(step, total, dict(info or {}), eta)

    def sample(self, step: int, total: int, images: list[Image.Image], info: Mapping[str, Any] | None = None) -> None:
        """A SAMPLE message: intermediate output at ``step`` (training: the fixed-prompt samples).
        Never thinned out: every sample reaches every subscriber."""
        self._sample(step, total, list(images), dict(info or {}))


TaskRunner = Callable[[Any, TaskContext], Any]
"""``runner(request, context) -> outcome``: runs on the engine's worker thread; the outcome rides
on the FINISHED message (:attr:`JobMessage.outcome`). Exceptions become ERROR messages, except
a cancel (see :attr:`TaskContext.cancelled`), which becomes CANCELLED with the exception's text."""

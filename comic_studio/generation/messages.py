"""The messages a generation job emits, from queued to finished/error/cancelled. No Qt, no torch.

A job's messages always arrive in this order::

    QUEUED → STARTED → (PROGRESS | SAMPLE)* → FINISHED | ERROR | CANCELLED
    QUEUED → CANCELLED                        (cancelled before it started)

SAMPLE comes only from task jobs (:mod:`comic_studio.generation.tasks`, e.g. a training run's
sample images every N steps); a render job sends PROGRESS only. A task job's messages carry
``kind`` (the task's kind; ``"render"`` for renders), its QUEUED message the task request in
``task``, and its FINISHED message the runner's ``outcome`` instead of ``result``/``png``.

The UI's render queue reads them through :class:`comic_studio.ui.engine_bridge.EngineBridge`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from comic_studio.generation.request import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

RENDER = "render"
"""The ``kind`` of a render job (a :class:`GenerationRequest` run by a backend)."""


class JobEvent(str, Enum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    SAMPLE = "sample"
    FINISHED = "finished"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """The job's last message: nothing more will come for it."""
        return self in (JobEvent.FINISHED, JobEvent.ERROR, JobEvent.CANCELLED)


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    event: JobEvent
    panel_id: str | None = None
    step: int = 0
    total: int = 0
    preview: Image.Image | None = None
    """PROGRESS: an optional live preview of the image so far."""
    result: GenerationResult | None = None
    """FINISHED: what the backend returned."""
    png: bytes | None = None
    """FINISHED: ``result.images[0]`` PNG-encoded on the worker (the GUI thread stores it as is)."""
    request: GenerationRequest | None = None
    """QUEUED and FINISHED: the validated request (backend settings with defaults filled in)."""
    error: str = ""
    """ERROR: one line for the user, no traceback. CANCELLED: empty, or why the cancel was forced (a
    backend that did not stop in time)."""
    detail: str = ""
    """ERROR: the technical detail (a traceback) for a "details" box."""
    elapsed: float = 0.0
    """Seconds since STARTED."""
    eta: float | None = None
    """PROGRESS: estimated seconds left, from the step rate (``None`` until a rate is known)."""
    kind: str = RENDER
    """``"render"``, or the kind of the task job (e.g. ``"train-lora"``)."""
    task: Any = None
    """QUEUED of a task job: its task request (:class:`~comic_studio.generation.tasks.TaskRequest`)."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """PROGRESS and SAMPLE of a task job: its figures (training: loss, lr, steps_per_second; a
    sample: the prompts and the files it was kept in)."""
    samples: tuple[Image.Image, ...] = ()
    """SAMPLE: the images (training: one per fixed prompt, rendered with the weights so far)."""
    outcome: Any = None
    """FINISHED of a task job: what its runner returned."""

    @property
    def is_task(self) -> bool:
        return self.kind != RENDER

    @property
    def fraction(self) -> float:
        """Progress 0..1 (for a progress bar); 1.0 once finished."""
        if self.event is JobEvent.FINISHED:
            return 1.0
        return min(1.0, self.step / self.total) if self.total > 0 else 0.0


Subscriber = Callable[[JobMessage], None]


class Subscribers:
    """The listeners of an engine's messages: subscribed and unsubscribed from any thread, each
    message handed to every one of them in turn (a snapshot of the list, so a listener may
    unsubscribe while it is called)."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._callbacks: list[Subscriber] = []
        self._lock = threading.Lock()

    def add(self, callback: Subscriber) -> Callable[[], None]:
        """Subscribe ``callback``; returns the function that unsubscribes it (safe to call twice)."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def __len__(self) -> int:
        with self._lock:
            return len(self._callbacks)

    def publish(self, message: JobMessage) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(message)
            except Exception:  # one broken listener must not stop the others or the worker
                log.exception("%s subscriber %r failed on %s", self._owner, callback, message.event.value)

"""The messages a generation job emits, from queued to finished/error/cancelled. No Qt, no torch.

A job's messages always arrive in this order::

    QUEUED → STARTED → PROGRESS* → FINISHED | ERROR | CANCELLED
    QUEUED → CANCELLED                        (cancelled before it started)

The UI's render queue reads them through :class:`comic_studio.ui.engine_bridge.EngineBridge`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from comic_studio.generation.request import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from PIL import Image


class JobEvent(str, Enum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
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

    @property
    def fraction(self) -> float:
        """Progress 0..1 (for a progress bar); 1.0 once finished."""
        if self.event is JobEvent.FINISHED:
            return 1.0
        return min(1.0, self.step / self.total) if self.total > 0 else 0.0

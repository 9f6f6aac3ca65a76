"""Generation engine API without Qt: the request snapshot and result types shared by all backends."""

from comic_studio.generation.request import (
    Cancelled,
    GenerationError,
    GenerationRequest,
    GenerationResult,
    PoseSpec,
    RequestCharacter,
    RequestFigure,
    StepCallback,
)

__all__ = [
    "Cancelled",
    "GenerationError",
    "GenerationRequest",
    "GenerationResult",
    "PoseSpec",
    "RequestCharacter",
    "RequestFigure",
    "StepCallback",
]

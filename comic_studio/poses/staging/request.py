"""What staging reads from a panel's generation request.

Staging sits beside ``comic_studio.generation``, not above it, so it names the fields it uses
instead of importing ``GenerationRequest``; a ``GenerationRequest`` (and its ``RequestCharacter``)
is what every caller passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self

from comic_studio.core.model import PoseSpec, ShotType


class StagedCharacter(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def colour(self) -> str: ...
    @property
    def figure(self) -> int | None:
        """The figure the character plays when pinned; ``None`` lets staging assign one."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


class StagedRequest(Protocol):
    """A panel's job: the cast, who acts on whom, the beat's text, the pose chosen in the panel
    (``pose_id`` from the library, or explicit ``figures_override``), the shot, size and seed."""

    @property
    def characters(self) -> Sequence[StagedCharacter]: ...
    @property
    def actor_id(self) -> str | None: ...
    @property
    def target_id(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def prompt(self) -> str: ...
    @property
    def pose_id(self) -> str | None: ...
    @property
    def figures_override(self) -> PoseSpec | None: ...
    @property
    def shot(self) -> ShotType: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def seed(self) -> int: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...

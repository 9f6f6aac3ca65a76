"""The story-parser interface: what a parser is, and the progress/cancel callbacks it takes.

A parser is anything with a ``name`` and a ``parse`` method returning a validated
:class:`~comic_studio.parsing.schema.ParsedStory`. Parsers are found by name through
:mod:`comic_studio.parsing.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from comic_studio.core.model import Character
from comic_studio.parsing.errors import ParseCancelled
from comic_studio.parsing.schema import ParsedStory

ProgressCallback = Callable[[float], None]
"""Called with the fraction done, 0.0 … 1.0."""
CancelCallback = Callable[[], bool]
"""Returns True when the caller wants the parse to stop (the parser raises ParseCancelled)."""


@runtime_checkable
class StoryParser(Protocol):
    name: str

    def parse(
        self,
        story_text: str,
        characters: list[Character],
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
    ) -> ParsedStory: ...


def check_cancel(cancel: CancelCallback | None) -> None:
    if cancel is not None and cancel():
        raise ParseCancelled("parsing was cancelled")

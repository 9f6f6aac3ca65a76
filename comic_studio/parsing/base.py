"""The story-parser interface and the registry that finds parsers by name.

A parser is anything with a ``name`` and a ``parse`` method returning a validated
:class:`~comic_studio.parsing.schema.ParsedStory`. The rule parser registers itself as "rules";
the LLM parsers register their own names through :func:`register_parser`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from comic_studio.core.model import Character
from comic_studio.parsing.errors import ParseCancelled, ParseError
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


_REGISTRY: dict[str, Callable[[], StoryParser]] = {}


def register_parser(name: str, factory: Callable[[], StoryParser]) -> None:
    """Make a parser available by name. Re-registering a name replaces it (plugins may override)."""
    if not name or not name.strip():
        raise ParseError("a parser needs a non-empty name")
    _REGISTRY[name] = factory


def _llama_parser() -> StoryParser:
    from comic_studio.parsing.llm.llama import LlamaParser  # lazy: llama_cpp loads only when used

    return LlamaParser()


def _openai_parser() -> StoryParser:
    from comic_studio.parsing.llm.openai_compat import OpenAIParser

    return OpenAIParser()


def _ensure_builtins() -> None:
    if "rules" not in _REGISTRY:
        from comic_studio.parsing.rules import RuleParser  # imported lazily: avoids an import cycle

        _REGISTRY["rules"] = RuleParser
    _REGISTRY.setdefault("llama", _llama_parser)
    _REGISTRY.setdefault("openai", _openai_parser)


def available_parsers() -> list[str]:
    _ensure_builtins()
    return sorted(_REGISTRY)


def get_parser(name: str) -> StoryParser:
    _ensure_builtins()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ParseError(f"unknown parser {name!r}; available: {', '.join(sorted(_REGISTRY))}", "parser") from None
    return factory()


def check_cancel(cancel: CancelCallback | None) -> None:
    if cancel is not None and cancel():
        raise ParseCancelled("parsing was cancelled")


def parse(
    story_text: str,
    characters: list[Character] | None = None,
    parser: str | StoryParser = "rules",
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> ParsedStory:
    """Parse a story with the named parser (or a configured parser object, e.g. an LLM parser with
    the model from the preferences) and validate the result against the library."""
    chars = list(characters or [])
    engine = get_parser(parser) if isinstance(parser, str) else parser
    result = engine.parse(story_text, chars, progress=progress, cancel=cancel)
    return result.validate_against(chars)

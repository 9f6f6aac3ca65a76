"""Finds story parsers by name: the built-ins ("rules", and the LLM parsers "llama" and "openai",
whose heavy dependencies import only when one is created) and any registered with
:func:`register_parser`; :func:`parse` runs one and validates its result against the library.
"""

from __future__ import annotations

from collections.abc import Callable

from comic_studio.core.model import Character
from comic_studio.parsing.base import CancelCallback, ProgressCallback, StoryParser
from comic_studio.parsing.errors import ParseError
from comic_studio.parsing.rules import RuleParser
from comic_studio.parsing.schema import ParsedStory

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
    _REGISTRY.setdefault("rules", RuleParser)
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

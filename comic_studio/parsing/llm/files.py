"""Story file → ParsedStory with a configured LLM parser (the CLI's ``--model``/``--base-url``).

The registry builds parsers with default settings; a caller with explicit options (the CLI, the
outliner's preferences) builds one here instead, with the same file handling as the rule path.
"""

from __future__ import annotations

from pathlib import Path

from comic_studio.core.character_file import load_characters
from comic_studio.core.model import Character
from comic_studio.parsing.base import CancelCallback, ProgressCallback, StoryParser
from comic_studio.parsing.errors import ParseError
from comic_studio.parsing.files import promote_suggestions, read_story
from comic_studio.parsing.forms import StoryForm, detect_form
from comic_studio.parsing.names import infer_characters
from comic_studio.parsing.schema import ParsedStory


def make_llm_parser(
    name: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    context: int | None = None,
    window_seconds: float | None = None,
) -> StoryParser:
    """A ``llama`` or ``openai`` parser with the given model/server (None → environment/defaults),
    context size in tokens (``--context``) and time limit per window (``--window-seconds``)."""
    options: dict[str, int | float] = {}
    if context is not None:
        if context < 512:
            raise ParseError(f"--context {context}: a context needs at least 512 tokens", "context")
        options["n_ctx"] = context
    if window_seconds is not None:
        if not window_seconds > 0:
            raise ParseError(f"--window-seconds {window_seconds:g}: the time limit must be positive", "window_seconds")
        options["time_limit_s"] = window_seconds
    if name == "llama":
        if base_url:
            raise ParseError("--base-url applies to the openai parser; the llama parser takes --model PATH.gguf")
        from comic_studio.parsing.llm.llama import LlamaParser

        return LlamaParser(model, **options)  # type: ignore[arg-type]
    if name == "openai":
        from comic_studio.parsing.llm.openai_compat import OpenAIParser

        return OpenAIParser(base_url, model, **options)  # type: ignore[arg-type]
    raise ParseError(f"{name!r} is not an LLM parser (llama, openai)")


def parse_story_file_with(
    parser: StoryParser,
    story_path: str | Path,
    *,
    characters_path: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> tuple[ParsedStory, list[Character]]:
    text = read_story(story_path)
    if not characters_path and detect_form(text) is not StoryForm.PROSE:
        parsed = parser.parse(text, [], progress=progress, cancel=cancel)  # a script's speakers: see parse_story_file
        return promote_suggestions(parsed.validate_against([]), [])
    characters = load_characters(characters_path) if characters_path else infer_characters(text)
    parsed = parser.parse(text, characters, progress=progress, cancel=cancel)
    return parsed.validate_against(characters), characters

"""Errors raised by story parsers (kept here so core/errors.py stays owned by the core)."""

from __future__ import annotations

from comic_studio.core.errors import ComicStudioError


class ParseError(ComicStudioError):
    """A story cannot be parsed, or a parser's output breaks the ParsedStory contract.

    ``path`` names the offending field ("scenes[0].beats[3].dialogue[1].speaker_id") when the
    problem is in a parser's output, so an LLM parser's bad JSON can be reported precisely.
    """

    def __init__(self, message: str, path: str = ""):
        self.path = path
        self.problem = message
        super().__init__(f"{path}: {message}" if path else message)


class ParseCancelled(ParseError):
    """The caller's ``cancel`` callback asked the parser to stop."""

"""Story parsers: story text → scenes → beats (one visible action each), behind one interface.

``parse(text, characters)`` runs the default rule parser and returns a validated
:class:`ParsedStory`; LLM parsers register more names with :func:`register_parser`.
No Qt and no torch here.
"""

from comic_studio.parsing.base import StoryParser
from comic_studio.parsing.errors import ParseCancelled, ParseError
from comic_studio.parsing.files import parse_story_file, promote_suggestions, write_parsed_json
from comic_studio.parsing.names import infer_characters
from comic_studio.parsing.registry import available_parsers, get_parser, parse, register_parser
from comic_studio.parsing.schema import CharacterSuggestion, ParsedStory, from_json, validate_parsed

__all__ = [
    "CharacterSuggestion",
    "ParseCancelled",
    "ParseError",
    "ParsedStory",
    "StoryParser",
    "available_parsers",
    "from_json",
    "get_parser",
    "infer_characters",
    "parse",
    "parse_story_file",
    "promote_suggestions",
    "register_parser",
    "validate_parsed",
    "write_parsed_json",
]

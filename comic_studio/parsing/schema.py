"""The one output every story parser produces: scenes of core Beats plus new-character suggestions.

The rule parser and the LLM parsers all return a :class:`ParsedStory`. Pydantic checks the shape
(``extra="forbid"`` everywhere, enums for shot and dialogue kind); :func:`validate_parsed` checks
what pydantic cannot: that every id points at a known character, that actor and target are among
the beat's characters, that no beat is empty and that beat ids are unique. Nothing that fails
these checks may reach the document.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comic_studio.core.model import Beat, Character, DialogueKind, Pronouns, Scene, ShotType
from comic_studio.core.safe_read import UnsafeInputError, parse_json
from comic_studio.parsing.errors import ParseError

NEW_ID_PREFIX = "new:"
MAX_SUGGESTIONS = 1_000
"""New characters one parse may suggest; also the most characters a project holds, so a story's
library plus its new names never exceeds it (see :func:`comic_studio.parsing.names.most_mentioned`)."""
FormName = Literal["", "prose", "comic", "screenplay"]
_NEW_ID = re.compile(r"^new:[a-z0-9][a-z0-9-]{0,58}$")


def slugify(name: str) -> str:
    """ASCII-ish slug for provisional ids: "Zoë Łukasz" → "zoe-lukasz" (letters kept, rest '-')."""
    import unicodedata

    # Ł/ł and a few others have no decomposition; map them by hand so slugs stay readable.
    table = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Đ": "D", "đ": "d", "Æ": "AE", "æ": "ae"})
    flat = unicodedata.normalize("NFKD", name.translate(table)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", flat.lower()).strip("-")
    return slug[:58] or "character"


def provisional_id(name: str) -> str:
    """The id a suggested (not yet created) character carries inside a ParsedStory."""
    return NEW_ID_PREFIX + slugify(name)


class CharacterSuggestion(BaseModel):
    """A proper name found in the story that is not in the character library."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64)
    """Provisional id ``new:<slug>`` used by the beats until the user creates the character."""
    name: Annotated[str, Field(min_length=1, max_length=200)]
    mentions: int = Field(ge=0)
    pronouns: Pronouns | None = None
    """Inferred from the text (a single-gender pronoun after a sentence naming only them, or a
    title such as "Mrs."); ``None`` when the text does not make it clear."""
    first_beat_id: str | None = None


class ParsedStory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(max_length=200)] = ""
    """The story's title when the text opens with one (a lone upper-case line or ``# Title``)."""
    scenes: Annotated[list[Scene], Field(max_length=100_000)] = []
    suggestions: Annotated[list[CharacterSuggestion], Field(max_length=MAX_SUGGESTIONS)] = []
    parser: Annotated[str, Field(max_length=200)] = ""
    form: FormName = ""
    """The form the text was read as (see :mod:`comic_studio.parsing.forms`); "" when the parser
    does not say. Comic-script beats carry their script page in ``Beat.page``."""
    warnings: Annotated[list[Annotated[str, Field(max_length=2_000)]], Field(max_length=10_000)] = []

    def beats(self) -> list[Beat]:
        return [b for s in self.scenes for b in s.beats]

    def validate_against(self, characters: list[Character]) -> ParsedStory:
        """Raise :class:`ParseError` naming the field if an id or beat breaks the contract."""
        validate_parsed(self, characters)
        return self


def validate_parsed(parsed: ParsedStory, characters: list[Character]) -> None:
    """Check the cross-references pydantic cannot see. Raises ParseError with a field path."""
    known: set[str] = {c.id for c in characters}
    for i, sug in enumerate(parsed.suggestions):
        path = f"suggestions[{i}].id"
        if not _NEW_ID.match(sug.id):
            raise ParseError(f"suggested character id {sug.id!r} must look like 'new:<slug>'", path)
        if sug.id in known:
            raise ParseError(f"suggested character id {sug.id!r} is used twice", path)
        known.add(sug.id)

    seen_beats: dict[str, str] = {}
    seen_scenes: set[str] = set()
    for si, scene in enumerate(parsed.scenes):
        if scene.id in seen_scenes:
            raise ParseError(f"duplicate scene id {scene.id!r}", f"scenes[{si}].id")
        seen_scenes.add(scene.id)
        for bi, beat in enumerate(scene.beats):
            path = f"scenes[{si}].beats[{bi}]"
            if beat.id in seen_beats:
                raise ParseError(f"duplicate beat id {beat.id!r} (first used at {seen_beats[beat.id]})", f"{path}.id")
            seen_beats[beat.id] = path
            _check_beat(beat, path, known)

    beat_ids = set(seen_beats)
    for i, sug in enumerate(parsed.suggestions):
        if sug.first_beat_id is not None and sug.first_beat_id not in beat_ids:
            raise ParseError(
                f"first_beat_id {sug.first_beat_id!r} is not a beat of this story", f"suggestions[{i}].first_beat_id"
            )


def _check_beat(beat: Beat, path: str, known: set[str]) -> None:
    for ci, cid in enumerate(beat.characters):
        if cid not in known:
            raise ParseError(
                f"unknown character id {cid!r} (not in the library or the suggestions)", f"{path}.characters[{ci}]"
            )
    if len(set(beat.characters)) != len(beat.characters):
        raise ParseError("a character is listed twice", f"{path}.characters")
    for field in ("actor_id", "target_id"):
        value = getattr(beat, field)
        if value is not None and value not in beat.characters:
            raise ParseError(f"{value!r} is not among the beat's characters {beat.characters}", f"{path}.{field}")
    if beat.actor_id is not None and beat.actor_id == beat.target_id:
        raise ParseError("actor and target are the same character", f"{path}.target_id")
    if not isinstance(beat.shot, ShotType):
        raise ParseError(f"shot {beat.shot!r} is not one of {[s.value for s in ShotType]}", f"{path}.shot")
    for di, line in enumerate(beat.dialogue):
        lpath = f"{path}.dialogue[{di}]"
        if line.speaker_id is not None and line.speaker_id not in known:
            raise ParseError(
                f"unknown speaker id {line.speaker_id!r} (not in the library or the suggestions)", f"{lpath}.speaker_id"
            )
        if not isinstance(line.kind, DialogueKind):
            raise ParseError(f"kind {line.kind!r} is not one of {[k.value for k in DialogueKind]}", f"{lpath}.kind")
        if not line.text.strip():
            raise ParseError("dialogue text is blank", f"{lpath}.text")
    if not beat.action.strip() and not beat.dialogue and not beat.caption.strip():
        raise ParseError("empty action: a beat needs an action, dialogue or a caption", f"{path}.action")


def _error_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def from_json(text: str | bytes, characters: list[Character]) -> ParsedStory:
    """Parse and validate a ParsedStory from JSON (the LLM path). Errors name the field path."""
    try:
        data = parse_json(text, where="the parsed story")
    except UnsafeInputError as exc:  # not JSON, too big, nested too deeply, an unusable number
        raise ParseError(exc.problem, "ParsedStory") from None
    if not isinstance(data, dict):
        raise ParseError(f"expected a JSON object, got {type(data).__name__}", "ParsedStory")
    try:
        parsed = ParsedStory.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ParseError(f"{first['msg']}{more}", _error_path(tuple(first["loc"])) or "ParsedStory") from None
    validate_parsed(parsed, characters)
    return parsed

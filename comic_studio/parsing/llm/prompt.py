"""What the LLM parsers send to a model: the instructions, the JSON schema, and its pydantic mirror.

The model does not write a :class:`~comic_studio.parsing.schema.ParsedStory` directly: ids are
bookkeeping a model gets wrong, so it writes *names* ("Mara Vance") and :mod:`.convert` maps them
onto library ids (or flags new characters as suggestions). Everything else matches the
ParsedStory fields one to one. The schema bounds every string and list, which keeps a
grammar-constrained answer finite even from a confused model, and the same schema is mirrored by
:class:`WindowOutput` (``extra="forbid"``) so an answer that arrived without the grammar — a server
that ignored ``response_format``, a grammar-free run — is validated just as strictly.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comic_studio.core.model import Character, DialogueKind, ShotType
from comic_studio.core.safe_read import UnsafeInputError, parse_json
from comic_studio.parsing.errors import ParseError

# Bounds shared by the JSON schema (what the grammar enforces) and the pydantic mirror.
MAX_SCENES = 6
MAX_NEW_CHARACTERS = 8
MAX_CHARS_PER_BEAT = 6
MAX_LINES_PER_BEAT = 6
NAME_LEN = 80
ACTION_LEN = 300
LINE_LEN = 400
SHORT_LEN = 80
MAX_ANSWER_CHARS = 4 * 1024 * 1024
"""The longest answer accepted for one window. Real answers are a few kB; the schema's bounds
could just reach a couple of MB for the largest window, so anything past this is a runaway."""

SHOTS = [s.value for s in ShotType]
KINDS = [k.value for k in DialogueKind]
PRONOUN_VALUES = ["he", "she", "they", "it"]

Name = Annotated[str, Field(max_length=NAME_LEN)]
Short = Annotated[str, Field(max_length=SHORT_LEN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineOut(_Strict):
    speaker: Name
    """Full name of the speaker; "" for an unattributed voice."""
    text: Annotated[str, Field(min_length=1, max_length=LINE_LEN)]
    kind: Literal["speech", "thought", "shout", "whisper"]


class BeatOut(_Strict):
    action: Annotated[str, Field(min_length=1, max_length=ACTION_LEN)]
    characters: Annotated[list[Name], Field(max_length=MAX_CHARS_PER_BEAT)]
    actor: Name
    target: Name
    shot: Literal["establishing", "wide", "medium", "close-up", "extreme-close-up", "over-the-shoulder"]
    mood: Short
    dialogue: Annotated[list[LineOut], Field(max_length=MAX_LINES_PER_BEAT)]
    caption: Annotated[str, Field(max_length=ACTION_LEN)]


class SceneOut(_Strict):
    title: Short
    setting: Short
    time_of_day: Short
    beats: Annotated[list[BeatOut], Field(min_length=1)]


class NewCharacterOut(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=NAME_LEN)]
    pronouns: Literal["he", "she", "they", "it"]


class WindowOutput(_Strict):
    """One window's answer, exactly as the JSON schema describes it."""

    scenes: Annotated[list[SceneOut], Field(min_length=1, max_length=MAX_SCENES)]
    new_characters: Annotated[list[NewCharacterOut], Field(max_length=MAX_NEW_CHARACTERS)]


def _string(max_len: int, min_len: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "maxLength": max_len}
    if min_len:
        out["minLength"] = min_len
    return out


def window_schema(max_beats: int = 24) -> dict[str, Any]:
    """The JSON schema for one window's answer (given to the grammar and to servers).

    ``max_beats`` caps beats per scene: a window of N words rarely holds more than N/8 actions, and
    a cap keeps a runaway generation inside the token budget."""
    line = {
        "type": "object",
        "properties": {"speaker": _string(NAME_LEN), "text": _string(LINE_LEN, 1), "kind": {"enum": KINDS}},
        "required": ["speaker", "text", "kind"],
        "additionalProperties": False,
    }
    beat = {
        "type": "object",
        "properties": {
            "action": _string(ACTION_LEN, 1),
            "characters": {"type": "array", "items": _string(NAME_LEN, 1), "maxItems": MAX_CHARS_PER_BEAT},
            "actor": _string(NAME_LEN),
            "target": _string(NAME_LEN),
            "shot": {"enum": SHOTS},
            "mood": _string(SHORT_LEN),
            "dialogue": {"type": "array", "items": line, "maxItems": MAX_LINES_PER_BEAT},
            "caption": _string(ACTION_LEN),
        },
        "required": ["action", "characters", "actor", "target", "shot", "mood", "dialogue", "caption"],
        "additionalProperties": False,
    }
    scene = {
        "type": "object",
        "properties": {
            "title": _string(SHORT_LEN),
            "setting": _string(SHORT_LEN),
            "time_of_day": _string(SHORT_LEN),
            "beats": {"type": "array", "items": beat, "minItems": 1, "maxItems": max(1, max_beats)},
        },
        "required": ["title", "setting", "time_of_day", "beats"],
        "additionalProperties": False,
    }
    new_char = {
        "type": "object",
        "properties": {"name": _string(NAME_LEN, 1), "pronouns": {"enum": PRONOUN_VALUES}},
        "required": ["name", "pronouns"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "scenes": {"type": "array", "items": scene, "minItems": 1, "maxItems": MAX_SCENES},
            "new_characters": {"type": "array", "items": new_char, "maxItems": MAX_NEW_CHARACTERS},
        },
        "required": ["scenes", "new_characters"],
        "additionalProperties": False,
    }


SYSTEM_PROMPT = f"""You turn prose into a comic script. Answer with JSON only, matching the schema.
Rules:
- Split the text into scenes; a scene changes when the place or time changes or a heading says so.
- Split each scene into beats. A beat is ONE visible action that one panel can show. "She opened the door and ran outside" is two beats.
- Write every action in the present tense with full character names, never pronouns ("Mara Vance opens the door", not "She opens it").
- "characters" lists the full names of everyone visible in the beat; "actor" is who acts, "target" who is acted upon ("" when none).
- Use only the characters of the library below. Add a new name only when the text clearly introduces a new person; list such people in "new_characters".
- Dialogue goes into "dialogue" of the beat where it is spoken, word for word, with the speaker's full name ("" if unknown) and the kind: speech, thought (inner voice, italics), shout, or whisper.
- Narration that cannot be drawn (time jumps, inner summaries) becomes the beat's "caption".
- "shot" is one of: {", ".join(SHOTS)}. Open a new place with an establishing or wide shot; use close-up for faces and small objects.
- "setting" is the place in a few words, "time_of_day" e.g. morning, night ("" if unknown), "mood" one or two words."""


def library_text(characters: list[Character]) -> str:
    """The character library as the model sees it: names, aliases, pronouns, short descriptions."""
    if not characters:
        return "Character library: (empty; introduce characters as new_characters)"
    lines = ["Character library:"]
    for c in characters:
        parts = [c.name]
        if c.aliases:
            parts.append("also called " + ", ".join(c.aliases))
        parts.append(c.pronouns.value)
        if c.description.strip():
            parts.append(c.description.strip()[:160])
        lines.append("- " + "; ".join(parts))
    return "\n".join(lines)


def build_messages(window_text: str, characters: list[Character], context: str = "") -> list[dict[str, str]]:
    """Chat messages for one window: system rules + library, then the earlier context and the text."""
    system = SYSTEM_PROMPT + "\n\n" + library_text(characters)
    user = ""
    if context.strip():
        user += "Story so far (context only, do not repeat it):\n" + context.strip() + "\n\n"
    user += "Text to convert:\n" + window_text.strip()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_window_output(raw: str) -> WindowOutput:
    """Strictly validate a model's answer. Raises :class:`ParseError` naming the field.

    Decoding is lenient about raw control characters inside strings (a grammar can let one
    through) — they are blanked — but the structure must match the schema exactly."""
    text = raw.strip()
    if not text:
        raise ParseError("the model returned an empty answer", "window")
    # Some chat models wrap JSON in a Markdown fence even when asked not to.
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.S)
    if fenced:
        text = fenced.group(1)
    try:
        # Bounded: a server's answer is outside input (a nested or huge answer must not exhaust the
        # parser); lenient about raw control characters inside strings, blanked below.
        data = parse_json(text, where="the model's answer", limit=MAX_ANSWER_CHARS, strict=False)
    except UnsafeInputError as exc:
        raise ParseError(f"the model's answer was refused: {exc.problem}", "window") from None
    data = _clean_strings(data)
    try:
        return WindowOutput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"]) or "window"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ParseError(f"the model's answer breaks the schema: {first['msg']}{more}", path) from None


def _clean_strings(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub(" ", value)
    if isinstance(value, list):
        return [_clean_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean_strings(v) for k, v in value.items()}
    return value

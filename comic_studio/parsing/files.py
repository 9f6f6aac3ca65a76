"""File-level helpers for the ``comic-studio parse`` command and the app's story import.

Reading a story (and optionally a character library) from disk, parsing it, turning suggested
characters into real ones, and writing the validated ParsedStory as JSON. Errors name the file.
"""

from __future__ import annotations

from pathlib import Path

from comic_studio.core.atomic import FileWriteError, atomic_write_text
from comic_studio.core.character_file import load_characters
from comic_studio.core.model import Character
from comic_studio.core.safe_read import UnsafeInputError, read_bytes
from comic_studio.parsing.base import CancelCallback, ProgressCallback, StoryParser
from comic_studio.parsing.errors import ParseError
from comic_studio.parsing.forms import StoryForm, detect_form
from comic_studio.parsing.names import PALETTE, colour_for, infer_characters
from comic_studio.parsing.registry import parse
from comic_studio.parsing.schema import ParsedStory, slugify

MAX_STORY_BYTES = 50 * 1024 * 1024  # a story larger than this is not a comic script


def read_story(path: str | Path) -> str:
    """A story file's text: a regular file (a FIFO or ``/dev/zero`` given as the story is refused
    at once) of at most :data:`MAX_STORY_BYTES`, in UTF-8."""
    p = Path(path)
    try:
        data = read_bytes(p, limit=MAX_STORY_BYTES, what="story")
    except UnsafeInputError as exc:
        if not p.exists() and not p.is_symlink():
            raise ParseError(f"{p}: no such story file") from None
        raise ParseError(f"{p}: {exc.problem}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{p}: not UTF-8 text (byte {exc.start}); save the story as UTF-8") from None


def parse_story_file(
    story_path: str | Path,
    *,
    parser: str | StoryParser = "rules",
    characters_path: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> tuple[ParsedStory, list[Character]]:
    """Parse a story file. Without a character library the story's proper names become
    characters (pronouns inferred where the text is clear). Returns the story and the library used.

    A script's characters are its speakers (cues in capitals, which prose name-finding skips) and
    the names in its descriptions: the parse suggests them and they are promoted here."""
    text = read_story(story_path)
    if characters_path:
        characters = load_characters(characters_path)
    else:
        form = getattr(parser, "form", StoryForm.AUTO) if not isinstance(parser, str) else StoryForm.AUTO
        if (detect_form(text) if form is StoryForm.AUTO else form) is not StoryForm.PROSE:
            parsed = parse(text, [], parser, progress=progress, cancel=cancel)
            return promote_suggestions(parsed, [])
        characters = infer_characters(text)
    return parse(text, characters, parser, progress=progress, cancel=cancel), characters


def promote_suggestions(parsed: ParsedStory, characters: list[Character]) -> tuple[ParsedStory, list[Character]]:
    """Turn every suggested character into a real one: new Characters (ids ``c-<slug>``, colours
    not used yet) and a copy of the story whose beats and speakers point at them."""
    used_ids = {c.id for c in characters}
    used_colours = {c.colour.lower() for c in characters}
    free_colours = [
        c
        for c in (colour_for(i) for i in range(len(PALETTE) + len(parsed.suggestions) + len(characters)))
        if c not in used_colours
    ]
    mapping: dict[str, str] = {}
    created: list[Character] = []
    for i, sug in enumerate(parsed.suggestions):
        base = "c-" + slugify(sug.name)
        cid, k = base, 2
        while cid in used_ids:
            cid, k = f"{base}-{k}", k + 1
        used_ids.add(cid)
        mapping[sug.id] = cid
        kwargs = {"pronouns": sug.pronouns} if sug.pronouns is not None else {}
        created.append(Character(id=cid, name=sug.name, colour=free_colours[i % len(free_colours)], **kwargs))

    def swap(value: str | None) -> str | None:
        return mapping.get(value, value) if value is not None else None

    out = parsed.model_copy(deep=True)
    out.suggestions = []
    for beat in out.beats():
        beat.characters = [mapping.get(c, c) for c in beat.characters]
        beat.actor_id, beat.target_id = swap(beat.actor_id), swap(beat.target_id)
        for line in beat.dialogue:
            line.speaker_id = swap(line.speaker_id)
    library = [*characters, *created]
    out.validate_against(library)
    return out, created


def write_parsed_json(parsed: ParsedStory, out_path: str | Path) -> None:
    """Write atomically (temporary file + rename) so a failed write never leaves half a file."""
    try:
        atomic_write_text(out_path, parsed.model_dump_json(indent=2), "the parsed story")
    except FileWriteError as exc:
        raise ParseError(f"{out_path}: cannot write the parsed story ({exc.strerror})") from None

"""Story files in, validated JSON out; suggested characters promoted to real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comic_studio.core.character_file import load_characters
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing import ParseError, from_json, parse
from comic_studio.parsing.files import parse_story_file, promote_suggestions, write_parsed_json

STORY = 'Zoë opens the door. She smiles at Łukasz. He waves at her.\n\n"Come in," said Zoë.\n'


def test_bare_story_file_gets_inferred_characters_and_round_trips(tmp_path: Path) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    parsed, chars = parse_story_file(story)
    assert {c.name: c.pronouns for c in chars} == {"Zoë": Pronouns.SHE, "Łukasz": Pronouns.HE}
    out = tmp_path / "beats.json"
    write_parsed_json(parsed, out)
    again = from_json(out.read_text("utf-8"), chars)
    assert again == parsed
    assert [b.action for b in again.beats()][:3] == [
        "Zoë opens the door.",
        "Zoë smiles at Łukasz.",
        "Łukasz waves at Zoë.",
    ]
    assert not list(tmp_path.glob(".beats-*"))


def test_character_file_is_used_and_errors_name_the_file(tmp_path: Path) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    lib = tmp_path / "chars.json"
    lib.write_text(json.dumps({"characters": [{"id": "z", "name": "Zoë", "pronouns": "she"}]}), encoding="utf-8")
    parsed, chars = parse_story_file(story, characters_path=lib)
    assert [c.id for c in chars] == ["z"]
    assert parsed.beats()[0].actor_id == "z"
    assert [s.id for s in parsed.suggestions] == ["new:lukasz"]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "z", "name": "Zoë", "pronouns": "xe"}]), encoding="utf-8")
    with pytest.raises(ComicStudioError, match=r"bad\.json: characters\[0\]\.pronouns"):
        load_characters(bad)
    with pytest.raises(ParseError, match="no such story file"):
        parse_story_file(tmp_path / "missing.txt")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Zoë".encode("latin-1"))
    with pytest.raises(ParseError, match="latin1.txt: not UTF-8"):
        parse_story_file(latin)


def test_promote_suggestions_rewrites_every_reference() -> None:
    lib = [Character(id="bella", name="Bella", pronouns="she", colour="#d9483b")]
    parsed = parse('Bella meets Mr. Okafor. He bows to her. "Welcome," said Okafor.', lib)
    promoted, created = promote_suggestions(parsed, lib)
    assert [(c.id, c.name, c.pronouns) for c in created] == [("c-mr-okafor", "Mr. Okafor", Pronouns.HE)]
    assert created[0].colour != "#d9483b"
    assert promoted.suggestions == []
    text = promoted.model_dump_json()
    assert "new:" not in text and "c-mr-okafor" in text
    promoted.validate_against(lib + created)
    assert parsed.suggestions  # the input is untouched


def test_write_into_missing_folder_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot write"):
        write_parsed_json(parse("Bella sits.", []), tmp_path / "nope" / "beats.json")

"""ParsedStory contract: malformed parser output is rejected with the field path named."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from comic_studio.core.model import Beat, Character, DialogueLine, Scene
from comic_studio.parsing import (
    ParseCancelled,
    ParsedStory,
    ParseError,
    available_parsers,
    from_json,
    get_parser,
    parse,
    register_parser,
    validate_parsed,
)
from comic_studio.parsing.schema import CharacterSuggestion, provisional_id, slugify

BELLA = Character(id="bella", name="Bella", pronouns="she")
EDWARD = Character(id="edward", name="Edward", pronouns="he")
LIB = [BELLA, EDWARD]


def story(*beats: Beat, suggestions: list[CharacterSuggestion] | None = None) -> ParsedStory:
    return ParsedStory(scenes=[Scene(beats=list(beats))], suggestions=suggestions or [], parser="test")


def good_beat(**kw) -> Beat:
    base = dict(action="Bella opens the door.", characters=["bella"], actor_id="bella")
    base.update(kw)
    return Beat(**base)


def test_valid_story_passes_and_round_trips_through_json() -> None:
    parsed = story(
        good_beat(dialogue=[DialogueLine(speaker_id="edward", text="Hi", kind="whisper")]),
        good_beat(characters=["bella", "new:zoe"], target_id="new:zoe"),
        suggestions=[CharacterSuggestion(id="new:zoe", name="Zoë", mentions=2)],
    )
    parsed.validate_against(LIB)
    again = from_json(parsed.model_dump_json(), LIB)
    assert again == parsed


@pytest.mark.parametrize(
    ("beat", "path", "words"),
    [
        (
            good_beat(dialogue=[DialogueLine(speaker_id="ghost", text="Boo")]),
            "scenes[0].beats[0].dialogue[0].speaker_id",
            "unknown speaker",
        ),
        (good_beat(characters=["bella", "nobody"]), "scenes[0].beats[0].characters[1]", "unknown character"),
        (good_beat(actor_id="edward"), "scenes[0].beats[0].actor_id", "not among the beat's characters"),
        (
            good_beat(characters=["bella", "edward"], target_id="bella"),
            "scenes[0].beats[0].target_id",
            "same character",
        ),
        (good_beat(action="   "), "scenes[0].beats[0].action", "empty action"),
        (good_beat(characters=["bella", "bella"]), "scenes[0].beats[0].characters", "listed twice"),
    ],
)
def test_malformed_beats_are_rejected_with_the_field_path(beat: Beat, path: str, words: str) -> None:
    with pytest.raises(ParseError) as info:
        validate_parsed(story(beat), LIB)
    assert info.value.path == path
    assert words in str(info.value)


def test_empty_action_is_fine_with_dialogue_or_caption() -> None:
    validate_parsed(story(good_beat(action="", dialogue=[DialogueLine(speaker_id="bella", text="Hi")])), LIB)
    validate_parsed(story(Beat(action="", caption="Meanwhile…")), LIB)


def test_duplicate_beat_ids_are_rejected() -> None:
    with pytest.raises(ParseError, match="duplicate beat id") as info:
        validate_parsed(story(good_beat(id="b1"), good_beat(id="b1")), LIB)
    assert info.value.path == "scenes[0].beats[1].id"


def test_suggestion_ids_must_be_provisional_and_known_to_the_beats() -> None:
    bad = story(good_beat(), suggestions=[CharacterSuggestion(id="zoe", name="Zoë", mentions=1)])
    with pytest.raises(ParseError, match="new:<slug>"):
        validate_parsed(bad, LIB)
    dangling = story(
        good_beat(), suggestions=[CharacterSuggestion(id="new:zoe", name="Zoë", mentions=1, first_beat_id="nope")]
    )
    with pytest.raises(ParseError, match="first_beat_id"):
        validate_parsed(dangling, LIB)


def _json_story(beat: dict) -> str:
    return json.dumps({"scenes": [{"beats": [beat]}], "suggestions": [], "parser": "llm", "warnings": []})


def test_from_json_rejects_wrong_kind_naming_the_path() -> None:
    text = _json_story({"action": "x", "dialogue": [{"speaker_id": "bella", "text": "Hi", "kind": "sing"}]})
    with pytest.raises(ParseError) as info:
        from_json(text, LIB)
    assert info.value.path == "scenes[0].beats[0].dialogue[0].kind"


def test_from_json_rejects_unknown_fields_bad_shot_and_bad_json() -> None:
    with pytest.raises(ParseError) as info:
        from_json(_json_story({"action": "x", "colour": "red"}), LIB)
    assert info.value.path == "scenes[0].beats[0].colour"
    with pytest.raises(ParseError) as info:
        from_json(_json_story({"action": "x", "shot": "drone"}), LIB)
    assert info.value.path == "scenes[0].beats[0].shot"
    with pytest.raises(ParseError, match="not valid JSON"):
        from_json("{scenes: ", LIB)
    with pytest.raises(ParseError, match="expected a JSON object"):
        from_json("[]", LIB)
    with pytest.raises(ParseError, match="unknown speaker"):
        from_json(_json_story({"action": "x", "dialogue": [{"speaker_id": "ghost", "text": "Boo"}]}), LIB)


def test_slugs_and_provisional_ids() -> None:
    assert slugify("Zoë Łukasz-Nowak") == "zoe-lukasz-nowak"
    assert provisional_id("José") == "new:jose"
    assert slugify("!!!") == "character"


def test_empty_input_gives_an_empty_story() -> None:
    for text in ("", "   \n\n  \t"):
        result = parse(text, LIB)
        assert result.scenes == [] and result.suggestions == [] and result.parser == "rules"


def test_registry_and_unknown_parser() -> None:
    assert "rules" in available_parsers()
    assert get_parser("rules").name == "rules"
    with pytest.raises(ParseError, match="unknown parser 'gpt'.*rules"):
        get_parser("gpt")


def test_registered_parser_output_is_validated() -> None:
    class Broken:
        name = "broken"

        def parse(self, story_text, characters, *, progress=None, cancel=None):
            return story(good_beat(characters=["stranger"], actor_id=None))

    register_parser("broken", Broken)
    with pytest.raises(ParseError, match="unknown character id 'stranger'"):
        parse("Bella opens the door.", LIB, parser="broken")


def test_progress_is_reported_and_cancel_stops() -> None:
    text = "\n\n".join(f"Bella opens door {i}. Edward waves." for i in range(300))
    seen: list[float] = []
    parse(text, LIB, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 2
    with pytest.raises(ParseCancelled):
        parse(text, LIB, cancel=lambda: True)


def test_parsing_imports_neither_qt_nor_torch() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'torch'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import comic_studio.parsing as p\n"
        "print(len(p.parse('Bella opens the door.').beats()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"

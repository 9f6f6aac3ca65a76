"""The prompt, the JSON schema given to the model, and the strict validation of its answers."""

from __future__ import annotations

import json

import pytest

from comic_studio.core.model import Character, DialogueKind, Pronouns, ShotType
from comic_studio.parsing import ParseError, from_json
from comic_studio.parsing.llm.prompt import SHOTS, build_messages, decode_window_output, library_text, window_schema

LIB = [
    Character(
        id="mara",
        name="Mara Vance",
        aliases=["Mara"],
        pronouns=Pronouns.SHE,
        description="curly auburn hair, green raincoat",
    ),
    Character(id="tom", name="Old Tom", pronouns=Pronouns.HE),
]


def answer(**beat_overrides: object) -> dict:
    beat = {
        "action": "Mara Vance opens the door.",
        "characters": ["Mara Vance"],
        "actor": "Mara Vance",
        "target": "",
        "shot": "medium",
        "mood": "tense",
        "dialogue": [{"speaker": "Mara Vance", "text": "Run!", "kind": "shout"}],
        "caption": "",
    }
    beat.update(beat_overrides)
    return {
        "scenes": [{"title": "", "setting": "harbour", "time_of_day": "night", "beats": [beat]}],
        "new_characters": [],
    }


def test_schema_enums_match_the_document_model_and_every_object_is_closed() -> None:
    schema = window_schema(max_beats=5)
    beat = schema["properties"]["scenes"]["items"]["properties"]["beats"]
    assert beat["maxItems"] == 5 and beat["minItems"] == 1
    props = beat["items"]["properties"]
    assert props["shot"]["enum"] == [s.value for s in ShotType] == SHOTS
    assert props["dialogue"]["items"]["properties"]["kind"]["enum"] == [k.value for k in DialogueKind]

    def walk(node: dict) -> None:
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert set(node["required"]) == set(node["properties"])
        if node.get("type") == "string":
            assert node["maxLength"] > 0  # bounded strings keep a confused model's answer finite
        for child in node.get("properties", {}).values():
            walk(child)
        if "items" in node:
            walk(node["items"])

    walk(schema)


def test_schema_converts_to_a_llama_grammar() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(window_schema()), verbose=False)
    assert grammar is not None


def test_messages_carry_rules_library_and_context() -> None:
    msgs = build_messages("She runs.", LIB, context="Last beats:\n- Mara Vance opens the door.")
    assert [m["role"] for m in msgs] == ["system", "user"]
    system, user = msgs[0]["content"], msgs[1]["content"]
    assert "ONE visible action" in system and "never pronouns" in system and "new_characters" in system
    assert "- Mara Vance; also called Mara; she; curly auburn hair, green raincoat" in system
    assert "- Old Tom; he" in system
    assert user.index("Story so far") < user.index("Text to convert:\nShe runs.")
    assert "empty" in library_text([])


def test_valid_answer_decodes() -> None:
    out = decode_window_output(json.dumps(answer()))
    assert out.scenes[0].beats[0].dialogue[0].kind == "shout"


def test_control_characters_and_code_fences_are_tolerated() -> None:
    raw = json.dumps(answer(action="Mara\x1d Vance waits.")).replace("\\u001d", "\x1d")
    assert "\x1d" in raw
    assert decode_window_output(raw).scenes[0].beats[0].action == "Mara  Vance waits."
    assert decode_window_output("```json\n" + json.dumps(answer()) + "\n```").scenes


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("", "empty answer"),
        ("   \n", "empty answer"),
        ('{"scenes": [', "not valid JSON"),
        ("[]", "breaks the schema"),
        (json.dumps({"scenes": [], "new_characters": []}), "scenes"),
        (json.dumps(answer(action="")), "scenes.0.beats.0.action"),
        (json.dumps(answer(shot="aerial")), "scenes.0.beats.0.shot"),
        (json.dumps(answer(dialogue=[{"speaker": "Mara Vance", "text": "Hi", "kind": "yell"}])), "dialogue.0.kind"),
        (json.dumps(answer(extra="x")), "extra"),
        (json.dumps({"scenes": answer()["scenes"]}), "new_characters"),
    ],
)
def test_malformed_answers_are_rejected_with_the_field(raw: str, needle: str) -> None:
    with pytest.raises(ParseError) as err:
        decode_window_output(raw)
    assert needle in str(err.value)


def _story(**beat: object) -> str:
    base = {"id": "b1", "action": "Mara Vance opens the door.", "characters": ["mara"], "dialogue": []}
    base.update(beat)
    return json.dumps({"scenes": [{"id": "s1", "beats": [base]}], "parser": "llama"})


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (_story(dialogue=[{"speaker_id": "ghost", "text": "Boo"}]), "scenes[0].beats[0].dialogue[0].speaker_id"),
        (_story(characters=["ghost"]), "scenes[0].beats[0].characters[0]"),
        (_story(action="   "), "scenes[0].beats[0].action"),
        (
            _story(dialogue=[{"speaker_id": "mara", "text": "Hi", "kind": "yell"}]),
            "scenes[0].beats[0].dialogue[0].kind",
        ),
        (_story(shot="aerial"), "scenes[0].beats[0].shot"),
        (_story(actor_id="tom"), "scenes[0].beats[0].actor_id"),
    ],
)
def test_project_schema_rejects_malformed_beats(doc: str, path: str) -> None:
    with pytest.raises(ParseError) as err:
        from_json(doc, LIB)
    assert err.value.path == path

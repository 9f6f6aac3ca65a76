"""The hard corpus: each story in corpus/*.txt is parsed with the shared character library and
compared, fact by fact, with corpus/<story>.json. Every expectation is its own test, so a
regression names the story, the beat and the field; known gaps are single strict xfails."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from comic_studio.core.model import Beat, Character
from comic_studio.parsing import ParsedStory, parse

CORPUS = Path(__file__).parent / "corpus"
STORIES = sorted(p.stem for p in CORPUS.glob("*.txt"))


def library() -> list[Character]:
    return [Character.model_validate(c) for c in json.loads((CORPUS / "characters.json").read_text("utf-8"))]


@cache
def parsed(story: str) -> ParsedStory:
    return parse((CORPUS / f"{story}.txt").read_text("utf-8"), library())


def expected(story: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{story}.json").read_text("utf-8"))


def _cases() -> list[Any]:
    cases = []
    for story in STORIES:
        exp = expected(story)
        for bi, beat in enumerate(exp["beats"]):
            for key in beat:
                if key in ("xfail", "xfail_fields"):
                    continue
                reason = beat.get("xfail") or beat.get("xfail_fields", {}).get(key)
                marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
                cases.append(pytest.param(story, bi, key, marks=marks, id=f"{story}-beat{bi}-{key}"))
    return cases


def test_corpus_has_every_story_with_expectations() -> None:
    assert len(STORIES) >= 8
    for story in STORIES:
        assert (CORPUS / f"{story}.json").exists(), f"{story}.txt has no expected .json"


@pytest.mark.parametrize("story", STORIES)
def test_scene_count(story: str) -> None:
    assert len(parsed(story).scenes) == expected(story)["scenes"]


@pytest.mark.parametrize("story", STORIES)
def test_beat_count(story: str, request: pytest.FixtureRequest) -> None:
    exp = expected(story)
    if "xfail_beat_count" in exp:
        request.applymarker(pytest.mark.xfail(reason=exp["xfail_beat_count"], strict=True))
    got = [b.action or f"<talk/caption {b.dialogue and b.dialogue[0].text!r}>" for b in parsed(story).beats()]
    assert len(got) == len(exp["beats"]), got


def _beat_with_scene(story: str, index: int) -> tuple[int, Beat]:
    flat = [(si, b) for si, s in enumerate(parsed(story).scenes) for b in s.beats]
    assert index < len(flat), f"{story}: only {len(flat)} beats, expected beat {index}"
    return flat[index]


@pytest.mark.parametrize(("story", "index", "key"), _cases())
def test_beat_fact(story: str, index: int, key: str) -> None:
    want = expected(story)["beats"][index][key]
    scene_index, beat = _beat_with_scene(story, index)
    where = f"{story} beat {index} ({beat.action!r})"
    if key == "scene":
        assert scene_index == want, where
    elif key == "action":
        assert beat.action == want, where
    elif key == "action_contains":
        for piece in want:
            assert piece in beat.action, where
    elif key == "characters":
        assert sorted(beat.characters) == sorted(want), where
    elif key == "actor":
        assert beat.actor_id == want, where
    elif key == "target":
        assert beat.target_id == want, where
    elif key in ("shot",):
        assert beat.shot.value == want, where
    elif key in ("setting", "time_of_day", "mood"):
        assert getattr(beat, key) == want, where
    elif key == "caption_contains":
        assert want in beat.caption, where
    elif key == "dialogue":
        got = [(d.speaker_id, d.kind.value, d.text) for d in beat.dialogue]
        assert len(got) == len(want), f"{where}: {got}"
        for (speaker, kind, text), exp in zip(got, want, strict=True):
            assert speaker == exp[0], f"{where}: speaker of {text!r}"
            assert kind == exp[1], f"{where}: kind of {text!r}"
            if len(exp) > 2:
                assert exp[2] in text, f"{where}: text {text!r}"
    else:
        raise AssertionError(f"unknown expectation key {key!r} in {story}.json")


@pytest.mark.parametrize("story", STORIES)
def test_no_pronoun_left_in_resolved_actions(story: str) -> None:
    """Rewritten actions name people: no he/she/him/her/his left where a character was resolved."""
    import re

    for beat in parsed(story).beats():
        if beat.characters and beat.actor_id:
            assert not re.search(r"\b(he|she|him|his|He|She|His)\b", beat.action), beat.action

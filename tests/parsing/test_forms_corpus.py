"""The forms corpus: short comic scripts, screenplays and prose stories (forms_corpus/*), each with
its expected facts in a .json beside it, parsed with the shared character library and the form
auto-detected. Every fact is its own test, so a failure names the file, the beat and the field.

``python tests/parsing/test_forms_corpus.py`` prints the share of facts met per form (the figure
the parser's notes report)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from comic_studio.core.model import Beat, Character
from comic_studio.parsing import ParsedStory, parse
from comic_studio.parsing.forms import detect_form

CORPUS = Path(__file__).parent / "forms_corpus"
STORIES = sorted(p.stem for p in CORPUS.iterdir() if p.suffix in (".txt", ".fountain"))


def _path(story: str) -> Path:
    return next(p for p in CORPUS.iterdir() if p.stem == story and p.suffix != ".json")


def library() -> list[Character]:
    shared = Path(__file__).parent / "corpus" / "characters.json"
    return [Character.model_validate(c) for c in json.loads(shared.read_text("utf-8"))]


@cache
def parsed(story: str) -> ParsedStory:
    return parse(_path(story).read_text("utf-8"), library())


def expected(story: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{story}.json").read_text("utf-8"))


def _story_facts(story: str) -> list[str]:
    exp = expected(story)
    keys = ["form", "detected", "title", "scenes", "beat_count", "suggestions"]
    return keys + (["pages"] if "pages" in exp else []) + (["pronouns"] if "pronouns" in exp else [])


def _cases() -> list[Any]:
    cases = []
    for story in STORIES:
        cases += [pytest.param(story, -1, key, id=f"{story}-{key}") for key in _story_facts(story)]
        for bi, beat in enumerate(expected(story)["beats"]):
            cases += [pytest.param(story, bi, key, id=f"{story}-beat{bi}-{key}") for key in beat]
    return cases


def check(story: str, index: int, key: str) -> None:
    """Raise AssertionError when the fact does not hold."""
    exp = expected(story)
    got = parsed(story)
    if index < 0:
        _check_story(story, key, exp, got)
        return
    want = exp["beats"][index][key]
    flat = [(si, b) for si, s in enumerate(got.scenes) for b in s.beats]
    assert index < len(flat), f"{story}: only {len(flat)} beats, expected beat {index}"
    scene_index, beat = flat[index]
    _check_beat(f"{story} beat {index} ({beat.action!r})", key, want, scene_index, beat)


def _check_story(story: str, key: str, exp: dict[str, Any], got: ParsedStory) -> None:
    if key == "form":
        assert got.form == exp["form"], story
    elif key == "detected":
        assert detect_form(_path(story).read_text("utf-8")).value == exp["form"], story
    elif key == "title":
        assert got.title == exp["title"], story
    elif key == "scenes":
        assert len(got.scenes) == exp["scenes"], [s.title for s in got.scenes]
    elif key == "beat_count":
        assert len(got.beats()) == len(exp["beats"]), [b.action for b in got.beats()]
    elif key == "suggestions":
        assert sorted(s.name for s in got.suggestions) == sorted(exp["suggestions"]), story
    elif key == "pronouns":
        by_name = {s.name: s.pronouns.value if s.pronouns else None for s in got.suggestions}
        for name, pronouns in exp["pronouns"].items():
            assert by_name.get(name) == pronouns, f"{story}: {name}"
    elif key == "pages":
        from comic_studio.workflows.story import story_to_document

        doc = story_to_document(_path(story).read_text("utf-8"), library())
        story_model = doc.project.story
        counts = [len(p.panels) for p in doc.project.pages]
        assert counts == exp["pages"], f"{story}: pages of {counts} panels"
        for number, page in enumerate(doc.project.pages, 1):
            beats = [story_model.beat(p.beat_id) for p in page.panels_in_order()]
            assert all(b is not None and b.page == number for b in beats), f"{story}: page {number}"
    else:
        raise AssertionError(f"unknown story fact {key!r}")


def _check_beat(where: str, key: str, want: Any, scene_index: int, beat: Beat) -> None:
    if key == "scene":
        assert scene_index == want, where
    elif key == "page":
        assert beat.page == want, where
    elif key == "action":
        assert beat.action == want, where
    elif key == "action_contains":
        for piece in want:
            assert piece in beat.action, where
    elif key == "characters":
        assert sorted(beat.characters) == sorted(want), f"{where}: {beat.characters}"
    elif key in ("actor", "target"):
        assert getattr(beat, f"{key}_id") == want, f"{where}: {key} {getattr(beat, f'{key}_id')}"
    elif key == "shot":
        assert beat.shot.value == want, f"{where}: {beat.shot.value}"
    elif key in ("setting", "time_of_day", "caption"):
        assert getattr(beat, key) == want, f"{where}: {getattr(beat, key)!r}"
    elif key == "caption_contains":
        assert want in beat.caption, f"{where}: {beat.caption!r}"
    elif key == "notes_contains":
        assert want in beat.notes, f"{where}: {beat.notes!r}"
    elif key == "sfx":
        assert beat.sfx == want, f"{where}: {beat.sfx}"
    elif key == "dialogue":
        got = [(d.speaker_id, d.kind.value, d.text, d.off_panel) for d in beat.dialogue]
        assert len(got) == len(want), f"{where}: {got}"
        for (speaker, kind, text, off), exp in zip(got, want, strict=True):
            assert speaker == exp[0], f"{where}: speaker of {text!r}"
            assert kind == exp[1], f"{where}: kind of {text!r}"
            assert exp[2] in text, f"{where}: text {text!r}"
            assert off == (len(exp) > 3 and exp[3] == "off"), f"{where}: off-panel {text!r}"
    else:
        raise AssertionError(f"unknown expectation key {key!r}")


def test_every_form_has_several_stories() -> None:
    forms = Counter(expected(s)["form"] for s in STORIES)
    assert all(forms[f] >= 3 for f in ("prose", "comic", "screenplay")), forms


@pytest.mark.parametrize(("story", "index", "key"), _cases())
def test_fact(story: str, index: int, key: str) -> None:
    check(story, index, key)


def scores() -> dict[str, tuple[int, int]]:
    """Facts met and facts checked, per form."""
    out: dict[str, list[int]] = {}
    for case in _cases():
        story, index, key = case.values
        form = expected(story)["form"]
        met = out.setdefault(form, [0, 0])
        met[1] += 1
        try:
            check(story, index, key)
        except AssertionError:
            continue
        met[0] += 1
    return {f: (m[0], m[1]) for f, m in out.items()}


if __name__ == "__main__":
    for form, (met, total) in sorted(scores().items()):
        print(f"{form}: {met}/{total} facts ({100 * met / total:.1f} %)", file=sys.stdout)

"""A story naming more people than a project can hold (1,000 characters) keeps the most-mentioned
as characters and says so, instead of a validation traceback (parse) or a project the save refuses
(render --save)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from comic_studio.cli import main
from comic_studio.core.model import Character
from comic_studio.core.projectfile import load_project
from comic_studio.core.settings import STATE_DIR_ENV
from comic_studio.parsing.schema import MAX_SUGGESTIONS
from comic_studio.workflows.story import story_to_document

NAMES = [a + b + c + d + "ski" for a, b, c, d in itertools.product("BCDFGHKLMNPRSTVZ", "aeiou", "lmnrstvk", "aeiou")]


def _story(n: int, repeat_first: int = 0) -> str:
    names = NAMES[:n]
    sentences = [", ".join(names[i : i + 19]) + " and " + names[i + 19] + " wave." for i in range(0, n - 19, 20)]
    # The first few are mentioned again: the most-mentioned names are the ones kept.
    sentences += [f"{name} bows." for name in names[:repeat_first]]
    return "\n\n".join(sentences)


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "crowd.txt"
    path.write_text(_story(1200, repeat_first=5), encoding="utf-8")
    return path


def test_cli_parse_with_a_library_keeps_a_projects_worth_and_warns(story: Path, tmp_path: Path, capsys) -> None:
    library = tmp_path / "lib.json"
    library.write_text(json.dumps([{"id": "z", "name": "Zoe", "pronouns": "she"}]), encoding="utf-8")
    out = tmp_path / "parsed.json"
    assert main(["parse", str(story), "--characters", str(library), "--out", str(out), "--quiet"]) == 0
    parsed = json.loads(out.read_text(encoding="utf-8"))
    names = [s["name"] for s in parsed["suggestions"]]
    assert len(names) == MAX_SUGGESTIONS - 1 and set(NAMES[:5]) <= set(names)
    assert any("only the 999 mentioned most became characters" in w for w in parsed["warnings"])


def test_cli_parse_without_a_library_warns_about_the_names_left_out(story: Path, tmp_path: Path) -> None:
    out = tmp_path / "parsed.json"
    assert main(["parse", str(story), "--out", str(out), "--quiet"]) == 0
    parsed = json.loads(out.read_text(encoding="utf-8"))
    assert parsed["suggestions"] == []  # the inferred library already holds a project's worth
    assert any("more people than a project can hold" in w for w in parsed["warnings"])


def test_a_story_with_too_many_names_builds_a_project_that_saves_and_reopens(story, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    from comic_studio.parsing import infer_characters

    text = story.read_text(encoding="utf-8")
    doc = story_to_document(text, infer_characters(text))
    doc.save(tmp_path / "crowd.comic")
    project, _assets = load_project(tmp_path / "crowd.comic")
    assert len(project.characters) == MAX_SUGGESTIONS
    doc = story_to_document(text, [Character(id="z", name="Zoe")])
    doc.save(tmp_path / "crowd2.comic")
    assert len(load_project(tmp_path / "crowd2.comic")[0].characters) == MAX_SUGGESTIONS

"""Windowing, carried state, and names → ids conversion of the model's answers."""

from __future__ import annotations

import re

from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing.llm.convert import NameResolver, convert_window
from comic_studio.parsing.llm.prompt import WindowOutput
from comic_studio.parsing.llm.windows import RunningState, approx_tokens, names_by_id, split_windows
from comic_studio.parsing.rules import RuleParser
from comic_studio.parsing.schema import ParsedStory

LIB = [
    Character(id="mara", name="Mara Vance", aliases=["Captain"], pronouns=Pronouns.SHE),
    Character(id="tom", name="Old Tom", pronouns=Pronouns.HE),
    Character(id="ana", name="Ana Ruiz", pronouns=Pronouns.SHE),
    Character(id="leo", name="Leo Ruiz", pronouns=Pronouns.HE),
]

STORY = """THE LIGHTHOUSE KEY

INT. HARBOUR - NIGHT

Mara Vance runs along the pier. The rain is loud. Old Tom waits by the lamp.

"You're late," Tom said.

She hands him the key. He turns it over twice. The lamp flickers.

## The lighthouse

Ana Ruiz climbs the stairs. Leo Ruiz follows her with a lantern. They reach the top.
"""


def words(text: str) -> list[str]:
    return re.findall(r"[\w'’]+", text)


def test_windows_fit_the_budget_and_keep_every_word_in_order() -> None:
    title, windows = split_windows(STORY, budget_tokens=16)
    assert title == "THE LIGHTHOUSE KEY"
    assert len(windows) > 4
    assert all(approx_tokens(w.text) <= 16 for w in windows)
    assert all(w.index == i for i, w in enumerate(windows))
    rebuilt = [
        w for win in windows for w in words(win.text) if w not in ("INT", "HARBOUR", "NIGHT", "The", "lighthouse")
    ]
    original = [w for w in words(STORY.split("\n", 2)[2]) if w not in ("INT", "HARBOUR", "NIGHT", "The", "lighthouse")]
    assert rebuilt == original


def test_headings_start_scenes_and_later_windows_continue_them() -> None:
    _, windows = split_windows(STORY, budget_tokens=40)
    starts = [w for w in windows if not w.continues_scene]
    assert [w.first_heading.title for w in starts] == ["INT. HARBOUR - NIGHT", "The lighthouse"]
    assert windows[0].text.startswith("## INT. HARBOUR - NIGHT\n\nMara Vance runs")
    assert any(w.continues_scene for w in windows)


def test_one_window_per_scene_when_scenes_fit() -> None:
    _, windows = split_windows(STORY, budget_tokens=4000)
    assert [w.text.split("\n")[0] for w in windows] == ["## INT. HARBOUR - NIGHT", "## The lighthouse"]
    assert not any(w.continues_scene for w in windows)


def test_halves_split_between_paragraphs_then_sentences() -> None:
    _, windows = split_windows(STORY, budget_tokens=4000)
    a, b = windows[0].halves()
    assert a.text + b.text != "" and not a.continues_scene and b.continues_scene
    single = split_windows("One. Two. Three. Four.", 4000)[1][0]
    left, right = single.halves()
    assert (left.text, right.text) == ("One. Two.", "Three. Four.")
    assert split_windows("Alone.", 4000)[1][0].halves()[0].text == "Alone."


def test_running_state_carries_place_cast_and_last_beats() -> None:
    parsed = RuleParser().parse(STORY, LIB)
    state = RunningState(LIB)
    state.update(parsed.scenes[:1], names_by_id(LIB, {}))
    ctx = state.context()
    assert "harbour" in ctx and "night" in ctx
    assert "Old Tom (he)" in ctx and "Mara Vance (she)" in ctx
    assert ctx.count("\n- ") == 3  # only the last three beats travel
    assert "You're late" in ctx or "turns" in ctx or "flickers" in ctx


def out(*beats: dict, new: list | None = None) -> WindowOutput:
    full = []
    for b in beats:
        base = {
            "action": "x",
            "characters": [],
            "actor": "",
            "target": "",
            "shot": "medium",
            "mood": "",
            "dialogue": [],
            "caption": "",
        }
        base.update(b)
        full.append(base)
    return WindowOutput.model_validate(
        {"scenes": [{"title": "", "setting": "pier", "time_of_day": "", "beats": full}], "new_characters": new or []}
    )


def test_names_resolve_to_library_ids_and_new_people_become_suggestions() -> None:
    r = NameResolver(LIB)
    assert r.resolve("Mara Vance") == "mara" and r.resolve("mara vance") == "mara"
    assert r.resolve("Captain") == "mara" and r.resolve("Tom") == "tom" and r.resolve("Mara") == "mara"
    assert r.resolve("Ruiz") is not None and r.resolve("Ruiz").startswith("new:")  # shared surname: ambiguous
    assert r.resolve("she") is None and r.resolve("the guard") is None and r.resolve("") is None
    scenes = convert_window(
        out(
            {
                "action": "Mara Vance hands Greta Holm the key.",
                "characters": ["Mara Vance", "Greta Holm", "she"],
                "actor": "Mara Vance",
                "target": "Greta Holm",
                "dialogue": [{"speaker": "Greta Holm", "text": "Thanks", "kind": "whisper"}],
            },
            new=[{"name": "Greta Holm", "pronouns": "she"}],
        ),
        r,
    )
    beat = scenes[0].beats[0]
    assert beat.source == "llm" and beat.setting == "pier"
    assert beat.characters == ["mara", "new:greta-holm"]
    assert (beat.actor_id, beat.target_id) == ("mara", "new:greta-holm")
    assert beat.dialogue[0].speaker_id == "new:greta-holm" and beat.dialogue[0].kind.value == "whisper"
    sug = r.suggestions["new:greta-holm"]
    assert sug.pronouns == Pronouns.SHE and sug.first_beat_id == beat.id and sug.mentions == 1
    story = ParsedStory(scenes=scenes, suggestions=list(r.suggestions.values()))
    story.validate_against(LIB)


def test_actor_equal_to_target_is_dropped_and_rollback_forgets_suggestions() -> None:
    r = NameResolver(LIB)
    beat = convert_window(out({"characters": ["Old Tom"], "actor": "Old Tom", "target": "Tom"}), r)[0].beats[0]
    assert beat.actor_id == "tom" and beat.target_id is None
    cp = r.checkpoint()
    r.resolve("Greta Holm")
    assert r.suggestions
    r.rollback(cp)
    assert not r.suggestions and r.resolve("Greta Holm") == "new:greta-holm"


def test_rule_fallback_scenes_are_adopted_with_consistent_ids() -> None:
    r = NameResolver(LIB)
    first = r.resolve("Greta Holm")
    parsed = RuleParser().parse("Greta Holm waves at Mara Vance. Bruno Kask laughs at Greta Holm.", r.as_characters())
    scenes = r.adopt_rule_scenes(parsed.scenes, parsed.suggestions)
    cast = {c for s in scenes for b in s.beats for c in b.characters}
    assert first in cast and "mara" in cast
    assert {s.name for s in r.suggestions.values()} == {"Greta Holm", "Bruno Kask"}
    ParsedStory(scenes=scenes, suggestions=list(r.suggestions.values())).validate_against(LIB)

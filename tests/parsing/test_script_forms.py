"""Comic full scripts and screenplays: the readers' variants, form detection, the rule parser's
``form`` choice, and the layout that keeps a script's pages and panels."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from comic_studio.core.layout import auto_layout, page_format
from comic_studio.core.model import (
    BalloonKind,
    Beat,
    Character,
    DialogueKind,
    DialogueLine,
    Pronouns,
    ShotType,
)
from comic_studio.parsing import ParseError, parse
from comic_studio.parsing.comic_script import read_comic_script
from comic_studio.parsing.forms import StoryForm, detect_form, story_form, voice_of
from comic_studio.parsing.fountain import read_screenplay
from comic_studio.parsing.rules import RuleParser

ELI = Character(id="eli", name="Elias Grey", aliases=["the old man"], pronouns=Pronouns.HE)
MARA = Character(id="mara", name="Mara", pronouns=Pronouns.SHE)


def _kinds(elements):
    return [e.kind for e in elements]


# ----------------------------------------------------------------------------- comic scripts


@pytest.mark.parametrize(
    ("page", "panel"),
    [
        ("PAGE ONE", "PANEL 1"),
        ("Page 1", "Panel 1."),
        ("PAGE 1:", "PANEL ONE:"),
        ("## Page One (four panels)", "**Panel 1**"),
        ("PAGE TWENTY-ONE", "[Panel 1]"),
        ("page 1", "Pnl 1 -"),
    ],
)
def test_page_and_panel_heading_variants(page: str, panel: str) -> None:
    text = f"{page}\n\n{panel}\nMara waits by the door.\n\nMARA: Hello?\n"
    elements = read_comic_script(text)
    assert _kinds(elements) == ["scene", "panel", "action", "line"]
    assert elements[2].text == "Mara waits by the door."
    assert (elements[3].speaker, elements[3].text) == ("MARA", "Hello?")
    assert detect_form(text) is StoryForm.COMIC


def test_page_and_panel_on_one_line() -> None:
    text = "PAGE 3, PANEL 1: Wide on the harbour.\nMARA: Boats.\n\nPAGE 3, PANEL 2\nMara waves.\n"
    parsed = parse(text, [MARA])
    beats = parsed.beats()
    assert [s.title for s in parsed.scenes] == ["Page 3"]  # the page named again is the same page
    assert [(b.page, b.action) for b in beats] == [(3, "Wide on the harbour."), (3, "Mara waves.")]
    assert beats[0].dialogue[0].text == "Boats."


def test_numbered_balloons_with_names_in_any_case() -> None:
    beat = parse(
        "PAGE 1\nPANEL 1\nMara at the door.\n1. Mara: Hello?\n2) Elias Grey (OFF): Here.\n", [MARA, ELI]
    ).beats()[0]
    assert [(d.speaker_id, d.text, d.off_panel) for d in beat.dialogue] == [
        ("mara", "Hello?", False),
        ("eli", "Here.", True),
    ]
    # Unnumbered, a line in mixed case with a colon is description ("Mara: tired, wet."), not a balloon.
    assert parse("PAGE 1\nPANEL 1\nMara: tired, wet.\n", [MARA]).beats()[0].dialogue == []


def test_description_on_the_heading_line_and_continued_lines() -> None:
    elements = read_comic_script(
        "PAGE 1\nPANEL 1: Wide on the harbour.\nBoats knock together.\n"
        "ELI: This is a long line\nthat goes on.\nCAPTION (ELI): Years ago.\n"
    )
    assert [(e.kind, e.text) for e in elements[1:]] == [
        ("panel", ""),
        ("action", "Wide on the harbour. Boats knock together."),
        ("line", "This is a long line that goes on."),
        ("caption", "Years ago."),
    ]


@pytest.mark.parametrize(
    ("extension", "kind", "off"),
    [
        ("(OFF)", DialogueKind.SPEECH, True),
        ("(O.S.)", DialogueKind.SPEECH, True),
        ("(WHISPER)", DialogueKind.WHISPER, False),
        ("(WHISPERING)", DialogueKind.WHISPER, False),
        ("(THOUGHT)", DialogueKind.THOUGHT, False),
        ("(BURST)", DialogueKind.SHOUT, False),
        ("(SHOUTING)", DialogueKind.SHOUT, False),
        ("(RADIO)", DialogueKind.SPEECH, True),
        ("(OFF) (WHISPER)", DialogueKind.WHISPER, True),
        ("(CONT'D)", DialogueKind.SPEECH, False),
    ],
)
def test_cue_extensions_give_balloon_kinds(extension: str, kind: DialogueKind, off: bool) -> None:
    parsed = parse(f"PAGE 1\nPANEL 1\nThe lamp room.\nMARA {extension}: Now.\n", [MARA])
    line = parsed.beats()[0].dialogue[0]
    assert (line.speaker_id, line.kind, line.off_panel) == ("mara", kind, off)
    # An off-panel speaker is not drawn in the panel.
    assert parsed.beats()[0].characters == ([] if off else ["mara"])


def test_captions_sfx_and_notes_are_not_dialogue() -> None:
    text = (
        "PAGE 1\n[[This page is all rain.]]\nPANEL 1\nThe lighthouse.\n"
        "CAP: Maine.\nNARRATION: 1952.\nSFX: KRAKOOM\nFX: hsss\nNOTE: Keep it dark.\n[Reference: the 1952 photo]\n"
    )
    beat = parse(text).beats()[0]
    assert beat.caption == "Maine. 1952."
    assert beat.sfx == ["KRAKOOM", "hsss"]
    assert "This page is all rain." in beat.notes and "Keep it dark." in beat.notes and "1952 photo" in beat.notes
    assert beat.dialogue == [] and beat.action == "The lighthouse."


def test_a_cue_alone_on_its_line_takes_the_next_line() -> None:
    beat = parse("PAGE 1\nPANEL 1\nMara turns.\n\nMARA (WHISPER)\nWho's there?\n", [MARA]).beats()[0]
    assert [(d.speaker_id, d.kind, d.text) for d in beat.dialogue] == [("mara", DialogueKind.WHISPER, "Who's there?")]


def test_one_beat_per_panel_and_a_scene_per_page() -> None:
    text = "PAGE 1\nPANEL 1\nA.\nPANEL 2\nB.\nPANEL 3\nC.\n\nPAGE 2\nPANEL 1\nD.\n"
    parsed = parse(text)
    assert [s.title for s in parsed.scenes] == ["Page 1", "Page 2"]
    assert [(b.page, b.action) for b in parsed.beats()] == [(1, "A."), (1, "B."), (1, "C."), (2, "D.")]
    # An empty panel is still the panel the script asks for.
    assert [b.action for b in parse("PAGE 1\nPANEL 1\nPANEL 2\nX.\n").beats()] == ["(no description)", "X."]


def test_a_spread_shares_its_panels_between_its_two_pages() -> None:
    text = "PAGES 2-3\nPANEL 1\nA.\nPANEL 2\nB.\nPANEL 3\nC.\nPAGE 4\nPANEL 1\nD.\n"
    assert [(b.page, b.action) for b in parse(text).beats()] == [(2, "A."), (2, "B."), (3, "C."), (4, "D.")]
    # A one-panel spread stays one page: a panel cannot cross the gutter between two pages.
    assert [b.page for b in parse("PAGES 2-3\nPANEL 1\nThe whole city.\n").beats()] == [2]


def test_speakers_meet_the_library_and_the_descriptions() -> None:
    text = (
        "PAGE 1\nPANEL 1\nCAPTAIN ELIAS GREY climbs the stairs.\nGREY: Almost.\n"
        "PANEL 2\nClose on the old man.\nELIAS (THOUGHT): Nearly there.\nTHEO (OFF): Captain!\n"
    )
    parsed = parse(text, [ELI])
    first, second = parsed.beats()
    assert first.characters == ["eli"] and first.action == "Captain Elias Grey climbs the stairs."
    assert first.dialogue[0].speaker_id == "eli"
    assert second.characters == ["eli"] and second.shot == ShotType.CLOSE_UP  # "the old man": the library alias
    assert [s.name for s in parsed.suggestions] == ["Theo"]
    assert parsed.suggestions[0].pronouns is None  # nothing in the script says: "they" until the author does


def test_without_a_library_speakers_and_description_names_merge() -> None:
    parsed = parse("PAGE 1\nPANEL 1\nCaptain Elias Grey waits.\nGREY: Late again.\nELIAS: Always.\n", [])
    assert [s.name for s in parsed.suggestions] == ["Elias Grey"]
    (beat,) = parsed.beats()
    assert {d.speaker_id for d in beat.dialogue} == {"new:elias-grey"} and beat.actor_id == "new:elias-grey"


def test_layout_follows_the_script_pages_with_a_template_per_panel_count() -> None:
    text = (
        "PAGE 1\n"
        + "".join(f"PANEL {i}\nClose on a hand, number {i}.\n" for i in range(1, 8))
        + "PAGE 2\nPANEL 1\nClose on an eye.\n"
        + "PAGE 3\nPANEL 1\nWide on the city.\nPANEL 2\nMara runs.\nPANEL 3\nShe stops.\n"
    )
    parsed = parse(text, [MARA])
    pages = auto_layout(parsed.scenes, page_format("us-comic"))
    assert [len(p.panels) for p in pages] == [7, 1, 3]
    by_id = {b.id: b for b in parsed.beats()}
    for number, page in enumerate(pages, 1):
        assert {by_id[p.beat_id].page for p in page.panels} == {number}
        assert [p.beat_id for p in page.panels_in_order()] == [b.id for b in parsed.beats() if b.page == number]


def test_layout_pages_free_beats_between_script_pages_itself() -> None:
    free = [Beat(action=f"Free {i}.") for i in range(9)]
    fixed = [Beat(action="Fixed.", page=5)]
    pages = auto_layout([*free, *fixed], page_format("us-comic"))
    assert len(pages) >= 3 and [p.beat_id for p in pages[-1].panels] == [fixed[0].id]
    assert sum(len(p.panels) for p in pages[:-1]) == 9


def test_story_to_document_lays_out_the_script_and_letters_sfx() -> None:
    from comic_studio.workflows.lettering import lettering_lines
    from comic_studio.workflows.story import story_to_document

    text = "PAGE 1\nPANEL 1\nThe door.\nCAPTION: Night.\nMARA (OFF): Open up!\nSFX: BAM BAM\nPANEL 2\nMara waits.\n"
    doc = story_to_document(text, [MARA])
    assert [len(p.panels) for p in doc.project.pages] == [2]
    beat = doc.project.story.beats()[0]
    assert lettering_lines(beat) == [
        (BalloonKind.CAPTION, "Night.", None),
        (BalloonKind.SPEECH, "Open up!", None),  # off panel: no figure for the tail
        (BalloonKind.SFX, "BAM BAM", None),
    ]
    on_panel = beat.model_copy(update={"dialogue": [DialogueLine(speaker_id="mara", text="Hi.")], "sfx": []})
    assert lettering_lines(on_panel)[-1] == (BalloonKind.SPEECH, "Hi.", "mara")


# ----------------------------------------------------------------------------- screenplays

FOUNTAIN = """Title:
    _**The Keeper**_
Credit: Written by
Author: A. Writer

/* Cut:
INT. BOAT - DAY
JACK
Go home.
*/

EXT. LIGHTHOUSE - NIGHT #1#

Mara climbs. [[Make the rain heavy.]]

MARA
(whispering)
Is anyone here?
(beat)
Hello?

ELIAS (V.O.)
~Row, row, row your boat

SMASH CUT TO:

> FADE OUT.

.THE LAMP ROOM

>THE END<

= Eli and Mara meet.
"""


def test_fountain_elements() -> None:
    title, elements = read_screenplay(FOUNTAIN)
    assert title == "The Keeper"
    assert [(e.kind, e.text or e.title) for e in elements] == [
        ("scene", "EXT. LIGHTHOUSE - NIGHT"),
        ("note", "Make the rain heavy."),
        ("action", "Mara climbs."),
        ("line", "Is anyone here?"),
        ("line", "Hello?"),
        ("line", "Row, row, row your boat"),
        ("scene", "THE LAMP ROOM"),
        ("caption", "THE END"),
        ("note", "Eli and Mara meet."),
    ]
    assert elements[0].setting == "lighthouse" and elements[0].time_of_day == "night"
    assert [(e.speaker, e.dialogue_kind, e.off_panel) for e in elements if e.kind == "line"] == [
        ("MARA", DialogueKind.WHISPER, False),
        ("MARA", DialogueKind.SPEECH, False),  # "(beat)" is a pause, not a voice
        ("ELIAS", DialogueKind.SPEECH, True),
    ]
    assert "Go home" not in str(elements)  # the boneyard is left out


def test_screenplay_beats_and_speakers() -> None:
    parsed = parse(FOUNTAIN, [ELI, MARA])
    assert parsed.form == "screenplay" and parsed.title == "The Keeper"
    assert [s.title for s in parsed.scenes] == ["EXT. LIGHTHOUSE - NIGHT", "THE LAMP ROOM"]
    first = parsed.scenes[0].beats[0]
    assert first.action == "Mara climbs." and first.notes == "Make the rain heavy."
    assert [(d.speaker_id, d.text) for d in first.dialogue] == [
        ("mara", "Is anyone here?"),
        ("mara", "Hello?"),
        ("eli", "Row, row, row your boat"),  # a voice-over is heard in the panel on screen
    ]
    assert parsed.scenes[1].beats[0].caption == "THE END"
    assert parsed.suggestions == []


def test_loose_screenplay_text() -> None:
    text = "INT. KITCHEN - DAY\nMara pours tea.\nELIAS\nThanks.\nMARA: Careful, it's hot.\nElias drinks anyway.\n"
    parsed = parse(text, [ELI, MARA])
    assert parsed.form == "screenplay"
    assert [(b.action, [(d.speaker_id, d.text) for d in b.dialogue]) for b in parsed.beats()] == [
        ("Mara pours tea.", []),
        ("Elias Grey speaks to Mara.", [("eli", "Thanks.")]),
        ("Mara speaks to Elias Grey.", [("mara", "Careful, it's hot.")]),
        ("Elias drinks anyway.", []),
    ]


# ----------------------------------------------------------------------------- detection and choice


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("Mara walked in. INT. was written on the door. She laughed.\n\nELI\nwaved.", StoryForm.PROSE),
        ("THE KEEPER\n\nMara climbed the stairs. Eli waited.", StoryForm.PROSE),
        ("INT. KITCHEN - DAY\n\nMara cooks.\n\nMARA\nHungry?\n\nELI\nAlways.\n", StoryForm.SCREENPLAY),
        ("PANEL 1\nMara.\n\nPANEL 2\nEli.\n", StoryForm.COMIC),
        ("MARA: Hi.\nELI: Hello.\n\nMARA\nBye.\n\nELI\nBye now.\n\nMARA\nGo.\n", StoryForm.SCREENPLAY),
    ],
)
def test_detect_form(text: str, form: StoryForm) -> None:
    assert detect_form(text) is form


def test_the_chosen_form_wins_over_detection() -> None:
    script = "PAGE 1\nPANEL 1\nMara waits.\nMARA: Hello?\n"
    as_prose = RuleParser("prose").parse(script, [MARA])
    assert as_prose.form == "prose" and all(b.page == 0 for b in as_prose.beats())
    assert RuleParser("comic").parse(script, [MARA]).form == "comic"
    with pytest.raises(ParseError, match="unknown story form 'novel'"):
        story_form("novel")


def test_voice_of_ignores_stage_directions() -> None:
    assert voice_of("beat") == (None, False)
    assert voice_of("into phone") == (None, False)  # the speaker is in the panel, talking into it
    assert voice_of("ON PHONE") == (None, True)  # the cue's voice comes out of a phone
    assert voice_of("quietly") == (DialogueKind.WHISPER, False)


# ----------------------------------------------------------------------------- robustness

_SCRIPT_PIECES = [
    "PAGE 1\n",
    "PAGES 2-3\n",
    "PANEL 1\n",
    "Panel 2.",
    "MARA:",
    "MARA (OFF):",
    "ELIAS (WHISPER)\n",
    "CAPTION:",
    "SFX:",
    "NOTE:",
    "[[",
    "]]",
    "/*",
    "*/",
    "@",
    ">",
    "<",
    "CUT TO:\n",
    "INT. KITCHEN - DAY\n",
    ".",
    "!",
    "^",
    "(whispering)\n",
    "~",
    "=",
    "#",
    "*",
    "_",
    "Mara",
    "runs",
    "the door",
    "\n\n",
    "\n",
    " ",
    "1.",
    "Title: X\n",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_SCRIPT_PIECES), max_size=50).map(" ".join), st.sampled_from(list(StoryForm)))
def test_any_script_text_parses_into_a_valid_story(text: str, form: StoryForm) -> None:
    parsed = RuleParser(form).parse(text, [ELI, MARA]).validate_against([ELI, MARA])
    for beat in parsed.beats():
        assert beat.action.strip() or beat.dialogue or beat.caption.strip()
        assert beat.page >= 0 and len(beat.sfx) <= 16

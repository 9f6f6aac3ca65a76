"""Text splitting (scenes, quotes, sentences), proper-name inference and large inputs."""

from __future__ import annotations

import pytest

from comic_studio.core.model import Character, DialogueKind, Pronouns
from comic_studio.parsing import infer_characters, parse
from comic_studio.parsing.bench import BENCH_CHARACTERS, bench_parser, generate_story
from comic_studio.parsing.names import PALETTE, find_proper_names
from comic_studio.parsing.text import extract_quotes, match_heading, placeholders, split_scenes, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Smith met Dr. Jones. They left.", ["Mr. Smith met Dr. Jones.", "They left."]),
        ("She waited... Then he came. Wait... what?", ["She waited...", "Then he came.", "Wait... what?"]),
        (
            "He lives on St. James St. in e.g. London. Bella sighs.",
            ["He lives on St. James St. in e.g. London.", "Bella sighs."],
        ),
        ("J. R. Smith nods! Why? Because.", ["J. R. Smith nods!", "Why?", "Because."]),
        ("It costs 3.50 now. Fine.", ["It costs 3.50 now.", "Fine."]),
    ],
)
def test_sentence_splitting_respects_abbreviations_and_ellipses(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_quote_spanning_sentences_stays_one_quote_and_one_sentence() -> None:
    masked, quotes = extract_quotes('"Wait. Don\'t go. Please," she said. Bella left.')
    assert [q.text for q in quotes] == ["Wait. Don't go. Please,"]
    sentences = split_sentences(masked)
    assert len(sentences) == 2 and placeholders(sentences[0]) == [0]


def test_single_quotes_are_dialogue_but_apostrophes_are_not() -> None:
    masked, quotes = extract_quotes("'I don't know,' Bella said. 'It's Edward's.'")
    assert [q.text for q in quotes] == ["I don't know,", "It's Edward's."]
    masked, quotes = extract_quotes("Bella's cat isn't Edward's.")
    assert quotes == [] and masked == "Bella's cat isn't Edward's."


def test_curly_and_nested_quotes_and_italic_thoughts() -> None:
    _, quotes = extract_quotes("“He said ‘run’ twice,” Zoë said. *Why now?* she thought. A *very* big dog.")
    assert [q.text for q in quotes] == ["He said ‘run’ twice,", "Why now?"]
    assert quotes[1].kind_hint == DialogueKind.THOUGHT


def test_unterminated_quote_is_marked() -> None:
    _, quotes = extract_quotes('Jacob sighs. "The storm took everything.')
    assert quotes[0].unterminated


@pytest.mark.parametrize(
    ("line", "setting", "time"),
    [
        ("INT. KITCHEN - NIGHT", "kitchen", "night"),
        ("EXT. HARBOUR DOCKS — DAWN", "harbour docks", "dawn"),
        ("Scene 2: The harbour", "harbour", ""),
        ("## Morning at the docks", "docks", "morning"),
        ("Chapter IV", "", ""),
        ("***", "", ""),
        ("- - -", "", ""),
    ],
)
def test_scene_headings(line: str, setting: str, time: str) -> None:
    heading = match_heading(line)
    assert heading is not None
    assert (heading.setting, heading.time_of_day) == (setting, time)


def test_ordinary_lines_are_not_headings() -> None:
    for line in (
        "Bella opens the door.",
        "Scene after scene, she wept for him all night long and more.",
        "- a list item",
    ):
        assert match_heading(line) is None


def test_blank_lines_alone_do_not_split_scenes() -> None:
    raw = split_scenes("Bella sits.\n\nEdward stands.\n\n\n\nJacob waves.")
    assert len(raw) == 1 and len(raw[0].paragraphs) == 3
    assert len(parse("Bella sits.\n\nEdward stands.", BENCH_CHARACTERS).scenes) == 1


def test_place_change_after_blank_line_starts_a_scene() -> None:
    result = parse(
        "Bella sits in the kitchen.\n\nAt the docks, Edward waits.\n\nIn the kitchen, Bella sighs.", BENCH_CHARACTERS
    )
    assert [s.setting for s in result.scenes] == ["kitchen", "docks", "kitchen"]


def test_infer_characters_finds_names_pronouns_and_colours() -> None:
    text = (
        "Zoë walked into the bakery on Monday. She was tired. Łukasz waved at Zoë. He grinned.\n\n"
        "Mrs. Álvarez came in from Paris. Then José arrived. José laughed. In March, Hope filled the room. "
        "They hope for the best. The Harbour was quiet. Later, Zoë and Anna Karenina talked. Anna nodded."
    )
    chars = infer_characters(text)
    by_name = {c.name: c for c in chars}
    assert set(by_name) == {"Zoë", "Łukasz", "Mrs. Álvarez", "José", "Anna Karenina"}
    assert by_name["Zoë"].pronouns == Pronouns.SHE
    assert by_name["Łukasz"].pronouns == Pronouns.HE
    assert by_name["Mrs. Álvarez"].pronouns == Pronouns.SHE
    assert by_name["José"].pronouns == Pronouns.THEY  # nothing in the text says
    assert "Anna" in by_name["Anna Karenina"].aliases
    assert len({c.colour for c in chars}) == len(chars) and all(c.colour in PALETTE for c in chars)
    assert len({c.id for c in chars}) == len(chars)
    assert infer_characters(text) == chars  # deterministic ids


def test_inferred_characters_drive_a_full_parse() -> None:
    text = "Zoë opens the door. She smiles at Łukasz. He waves at her."
    chars = infer_characters(text)
    ids = {c.name: c.id for c in chars}
    beats = parse(text, chars).beats()
    assert beats[1].action == "Zoë smiles at Łukasz." and beats[1].target_id == ids["Łukasz"]
    assert beats[2].action == "Łukasz waves at Zoë."


def test_unknown_names_become_suggestions_with_provisional_ids() -> None:
    lib = [Character(id="bella", name="Bella", pronouns="she")]
    result = parse('Bella meets Mr. Okafor at the station. He shakes her hand. "Welcome," said Okafor.', lib)
    assert [(s.id, s.name, s.pronouns) for s in result.suggestions] == [("new:mr-okafor", "Mr. Okafor", Pronouns.HE)]
    first = result.beats()[0]
    assert first.characters == ["bella", "new:mr-okafor"] and result.suggestions[0].first_beat_id == first.id
    assert result.beats()[1].action == "Mr. Okafor shakes Bella's hand."
    assert result.beats()[1].dialogue[0].speaker_id == "new:mr-okafor"


def test_names_are_whole_words_and_case_sensitive() -> None:
    lib = [Character(id="will", name="Will", pronouns="he"), Character(id="zoe", name="Zoë", pronouns="she")]
    beats = parse("Will opens the box. Nobody will see Zoëy. Zoë's dog barks.", lib).beats()
    assert beats[0].characters == ["will"]
    assert "zoe" not in beats[1].characters and "will" not in beats[1].characters
    assert beats[2].characters == ["zoe"]
    assert find_proper_names("Will opens the box. Nobody will see Will.", {"Will"}) == []


def test_huge_input_parses() -> None:
    # Its speed (words per second) is measured by ``bench/run.py --only parser``.
    text = generate_story(200_000, seed=3)
    assert len(text.split()) >= 200_000
    result = parse(text, BENCH_CHARACTERS)
    assert len(result.beats()) > 20_000


def test_bench_reports_words_per_second() -> None:
    out = bench_parser(words=5_000, pathological={"sentences": "It was cold. " * 100})
    assert out["words"] >= 5_000 and out["words_per_s"] > 0 and out["beats"] > 0
    assert out["pathological_worst_input"] == "sentences" and out["pathological_worst_s"] >= 0


def test_many_inferred_characters_keep_distinct_colours() -> None:
    names = "Ada Bram Cleo Dario Elif Farid Greta Hugo Ines Jonas Kaito Lena Milo Nadia Oskar Priya Quinn Rafael Sofia Tomasz".split()
    text = " ".join(f"Then {a} waves at {b}." for a, b in zip(names, names[1:] + names[:1]))
    chars = infer_characters(text)
    assert sorted(c.name for c in chars) == sorted(names)
    assert len({c.colour for c in chars}) == 20


def test_it_character_and_plural_possessive() -> None:
    lib = [
        Character(id="r2", name="R2", pronouns="it"),
        Character(id="james", name="James", pronouns="he"),
        Character(id="bella", name="Bella", pronouns="she"),
    ]
    beats = parse(
        "R2 rolls toward James. It beeps at him. James' hand shakes. The box is heavy and it falls.", lib
    ).beats()
    assert beats[1].action == "R2 beeps at James." and (beats[1].actor_id, beats[1].target_id) == ("r2", "james")
    assert beats[2].characters == ["james"] and beats[2].actor_id == "james"
    # "it" two sentences after the robot is the box, not R2.
    assert all("r2" not in b.characters for b in beats[3:])


def test_opening_title_is_split_off_and_not_a_caption():
    from comic_studio.parsing import parse

    parsed = parse("THE LIGHTHOUSE KEY\n\nINT. KITCHEN - NIGHT\n\nRain fell. Mara sat.", [])
    assert parsed.title == "THE LIGHTHOUSE KEY"
    captions = [b.caption for b in parsed.beats()]
    assert "LIGHTHOUSE" not in " ".join(captions)
    assert parse("Title: A Quiet Day\n\nMara sat.", []).title == "A Quiet Day"
    # Shouted one-liners and ordinary narration are not titles.
    assert parse("HELP!\n\nMara sat.", []).title == ""
    assert parse("It rained.\n\nMara sat.", []).title == ""


def test_narration_before_a_scene_break_becomes_one_caption():
    from comic_studio.parsing import parse

    parsed = parse("It had been raining for days.\n\nINT. ROOM - DAY\n\nMara sat.", [])
    assert [b.caption for b in parsed.beats()][0] == "It had been raining for days."


def test_scene_nouns_opening_a_sentence_are_not_names():
    from comic_studio.parsing import infer_characters

    names = {
        c.name
        for c in infer_characters("Light fell through dusty windows. Rain hammered the roof. Zoë opens the door.")
    }
    assert names == {"Zoë"}

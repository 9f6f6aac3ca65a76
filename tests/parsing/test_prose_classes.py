"""The prose failure classes a larger test found, each as a class: several sentences per class, not
one example (attribution fragments, dialogue order, capitalised non-names, the first-person
narrator, openers, time jumps, quoted titles, ranks and aliases, pronoun gender)."""

from __future__ import annotations

import pytest

from comic_studio.core.model import Character, DialogueKind, Pronouns
from comic_studio.parsing import parse
from comic_studio.parsing.names import find_proper_names

MARA = Character(id="mara", name="Mara", pronouns=Pronouns.SHE)
THEO = Character(id="theo", name="Theo", pronouns=Pronouns.HE)
ELI = Character(id="eli", name="Elias Grey", aliases=["the old man", "Gramps"], pronouns=Pronouns.HE)


def _lines(text: str, library: list[Character]) -> list[tuple[str | None, str]]:
    return [(d.speaker_id, d.text) for b in parse(text, library).beats() for d in b.dialogue]


# ----------------------------------------------------------------------------- attribution fragments


@pytest.mark.parametrize(
    "text",
    [
        '"You are late," the captain said.',
        '"You are late," said the captain.',
        '"You are late," a voice whispered softly.',
        '"You are late." The stranger said.',
        '"You are late," the tall stranger said quietly.',
    ],
)
def test_an_unnamed_speakers_tag_is_neither_a_caption_nor_another_speaker(text: str) -> None:
    parsed = parse(f"Mara opened the door. {text}", [MARA])
    beats = parsed.beats()
    assert [(d.speaker_id, d.text) for b in beats for d in b.dialogue] == [(None, "You are late.")]
    assert all(not b.caption for b in beats), [b.caption for b in beats]
    assert all("said" not in b.action and "whispered" not in b.action for b in beats)
    assert not parsed.warnings  # the tag says someone speaks: nothing to warn about


@pytest.mark.parametrize(
    "text",
    ['"Mine," she said.', '"Mine." She said.', '"Mine," she said softly.', '"Mine." She whispered.'],
)
def test_a_pronoun_tag_is_a_tag_even_when_the_pronoun_is_unresolved(text: str) -> None:
    unknown = Character(id="kit", name="Kit", pronouns=Pronouns.THEY)  # "she" cannot be Kit
    beats = parse(f"Kit picked up the book. {text}", [unknown]).beats()
    assert [d.text for b in beats for d in b.dialogue] == ["Mine."]
    assert all(not b.caption for b in beats) and len(beats) == 1


def test_a_tag_sentence_of_its_own_joins_its_quote() -> None:
    lines = parse('Theo sat. "Move over." Mara said. "Fine." Theo shrugged.', [MARA, THEO]).beats()
    assert [(d.speaker_id, d.text) for b in lines for d in b.dialogue] == [("mara", "Move over."), ("theo", "Fine.")]
    assert [b.action for b in lines][:1] == ["Theo sat."]


# ----------------------------------------------------------------------------- dialogue order


def test_an_action_between_two_lines_hands_the_turn_to_its_actor() -> None:
    assert _lines('"Where were you?" Mara asked. Theo shrugged. "Out."', [MARA, THEO]) == [
        ("mara", "Where were you?"),
        ("theo", "Out."),
    ]
    # The same speaker acting between their own lines keeps the turn.
    assert _lines('"Well?" Mara asked. She waited. "Answer me."', [MARA, THEO]) == [
        ("mara", "Well?"),
        ("mara", "Answer me."),
    ]


def test_lines_stay_in_reading_order_across_beats() -> None:
    beats = parse('Theo waved. "Hi," Mara said, and walked over. "Hello," Theo answered.', [MARA, THEO]).beats()
    order = [d.text for b in beats for d in b.dialogue]
    assert order == ["Hi.", "Hello."]
    assert beats[0].dialogue == []  # Theo's wave comes before anyone speaks


# ----------------------------------------------------------------------------- capitalised non-names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Grab the rope. Walk slowly. Theo smiled at Mara.", ["Theo", "Mara"]),
        ("Run. Run now. Hide. Theo hid behind Mara.", ["Theo", "Mara"]),
        ("On Monday Theo met Mara. On Friday Mara left.", ["Theo", "Mara"]),
        ("Sometimes Theo sang. Often Mara listened to Theo.", ["Theo", "Mara"]),
        ("Yesterday Theo called Mara.", ["Theo", "Mara"]),
        ("Dad was late. Theo waited for his dad.", ["Theo"]),
        ("Mom laughed. Mara hugged her mom. Theo smiled.", ["Mara", "Theo"]),
        ("Theo hugged Dad. Dad smiled at Mara.", ["Theo", "Dad", "Mara"]),
    ],
)
def test_capitalised_words_that_are_not_names(text: str, names: list[str]) -> None:
    assert [c.name for c in find_proper_names(text)] == names


@pytest.mark.parametrize("word", ["Dad", "Mom", "Grandma", "Uncle"])
def test_a_family_word_used_as_a_name_carries_its_gender(word: str) -> None:
    (cand,) = [c for c in find_proper_names(f"Theo hugged {word}. {word} smiled at her son.") if c.name == word]
    assert cand.pronouns == (Pronouns.SHE if word in ("Mom", "Grandma") else Pronouns.HE)


@pytest.mark.parametrize(
    "text",
    [
        "I walked to the harbour. Theo waved at me.",
        "I thought about Mara. I was tired.",
        "Theo looked at me. I looked away.",
    ],
)
def test_the_first_person_narrator_is_never_a_character(text: str) -> None:
    parsed = parse(text, [])
    assert "I" not in [s.name for s in parsed.suggestions]
    assert all("new:i" not in b.characters for b in parsed.beats())


# ----------------------------------------------------------------------------- openers


@pytest.mark.parametrize(
    "opener",
    ["Sometimes", "On Monday", "Beside him,", "Without a word,", "At the harbour", "Later that night", "Once again"],
)
def test_an_opener_before_the_subject_leaves_the_actor(opener: str) -> None:
    beats = parse(f"Theo came home. {opener} Mara closed the door.", [MARA, THEO]).beats()
    assert beats[-1].actor_id == "mara", [(b.action, b.actor_id) for b in beats]


# ----------------------------------------------------------------------------- time jumps


@pytest.mark.parametrize(
    "jump",
    [
        "Forty years earlier, the tower was new.",
        "Twenty-five years later, the tower was a ruin.",
        "Years ago, Theo lived here.",
        "In 1952, the keeper lit the lamp.",
        "Three days ago, Mara arrived.",
        "Back in the present, Mara closed the book.",
    ],
)
def test_time_jumps_and_flashbacks_start_a_scene(jump: str) -> None:
    parsed = parse(f"Mara climbed the tower. Theo followed.\n\n{jump} Theo watched the sea.", [MARA, THEO])
    assert len(parsed.scenes) == 2, [s.title for s in parsed.scenes]


# ----------------------------------------------------------------------------- titles in quotes


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ('Theo read "The Old Man and the Sea" aloud.', "“The Old Man and the Sea”"),
        ("Mara hummed “Yesterday” while she cooked.", "“Yesterday”"),
        ('They watched "Casablanca" twice.', "“Casablanca”"),
    ],
)
def test_titles_in_quotes_are_not_spoken(text: str, title: str) -> None:
    beats = parse(text, [MARA, THEO]).beats()
    assert not any(b.dialogue for b in beats)
    assert any(title in b.action for b in beats)


def test_speech_in_quotes_is_still_speech() -> None:
    assert _lines('"Run," Theo said. "Now!" "Yes" was all Mara said.', [MARA, THEO])[:2] == [
        ("theo", "Run."),
        ("theo", "Now!"),
    ]


# ----------------------------------------------------------------------------- one person, many names


def test_rank_full_name_first_and_last_name_are_one_character() -> None:
    text = "Captain Elias Grey climbed the stairs. Elias was tired. Grey lit the lamp. The captain smiled."
    (cand,) = find_proper_names(text)
    assert cand.name == "Elias Grey" and set(cand.aliases) >= {"Elias", "Grey"}
    beats = parse(text, []).beats()
    assert [b.actor_id for b in beats[:3]] == ["new:elias-grey"] * 3


def test_a_rank_is_not_an_implicit_alias() -> None:
    reyes = Character(id="reyes", name="Captain Reyes", pronouns=Pronouns.SHE)
    parsed = parse("Captain Elias Grey waved. Reyes nodded.", [reyes])
    assert [s.name for s in parsed.suggestions] == ["Elias Grey"]
    assert parsed.beats()[0].characters == ["new:elias-grey"]


@pytest.mark.parametrize("nickname", ["the old man", "The old man", "Gramps"])
def test_a_library_alias_links_a_nickname(nickname: str) -> None:
    beats = parse(f"Theo walked in. {nickname[0].upper() + nickname[1:]} looked up.", [THEO, ELI]).beats()
    assert beats[-1].actor_id == "eli"


# ----------------------------------------------------------------------------- pronoun gender


@pytest.mark.parametrize(
    ("text", "who", "pronouns"),
    [
        ("Sally walks in. Sally sits beside him.", "Sally", None),  # "him" is someone else
        ("Robin waved. Robin smiled at her.", "Robin", None),
        ("Robin waved. She smiled.", "Robin", Pronouns.SHE),
        ("Robin waved. Robin poured herself a drink.", "Robin", Pronouns.SHE),  # a reflexive is theirs
        ("Robin and Kim waved. She smiled.", "Robin", None),  # two people: unsure, so "they"
    ],
)
def test_pronoun_gender_only_from_clear_evidence(text: str, who: str, pronouns: Pronouns | None) -> None:
    (cand,) = [c for c in find_proper_names(text) if c.name == who]
    assert cand.pronouns == pronouns


def test_group_they_resolves_to_the_characters_present() -> None:
    beats = parse("Theo and Mara walked to the pier. They sat down. Robin waved at them.", []).beats()
    assert beats[1].characters == ["new:theo", "new:mara"] and beats[1].action == "Theo and Mara sat down."
    assert set(beats[2].characters) == {"new:robin", "new:theo", "new:mara"}


def test_whispered_tag_kind_carries() -> None:
    lines = parse('"Quiet," the guard whispered. "They can hear us."', []).beats()
    assert [d.kind for b in lines for d in b.dialogue] == [DialogueKind.WHISPER, DialogueKind.WHISPER]

"""Proper names → characters, for stories that arrive without a character library.

A capitalised word (or run of capitalised words: "Anna Karenina", "José Álvarez") is a name when it
appears mid-sentence, or starts two or more sentences and never appears in lower case; stopwords,
months, weekdays, known places and "<Name> Street"-style places are left out. Pronouns are inferred
where the text makes them clear: a sentence mentioning only that name followed by a sentence
whose pronouns are all of one gender, or a title such as "Mrs." in front of it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing.lexicon import (
    ALL_VERBS,
    KINSHIP,
    KINSHIP_HE,
    KINSHIP_SHE,
    KNOWN_PLACES,
    MONTHS,
    OPENERS,
    PLACE_SUFFIXES,
    PRONOUNS,
    SCENE_NOUNS,
    SHOT_WORDS,
    SPEECH_VERBS,
    STOPWORDS,
    TITLES_HE,
    TITLES_NEUTRAL,
    TITLES_SHE,
    VERB_BASES,
    WEEKDAYS,
)
from comic_studio.parsing.schema import MAX_SUGGESTIONS, slugify

# Upper-case letters of every script below U+2000, built once (Python's re has no \p{Lu}).
_UPPER = "".join(ch for ch in map(chr, range(0x2000)) if ch.isupper())
_UPPER_CLASS = "[" + re.escape(_UPPER) + "]"
_CAP_RUN = re.compile(
    rf"(?<![\w'’-]){_UPPER_CLASS}[^\W\d_]*(?:[-'’][^\W\d_]+)*(?:[ \t]+{_UPPER_CLASS}[^\W\d_]*(?:[-'’][^\W\d_]+)*)*"
)
_LOWER_WORD = re.compile(r"(?<![\w'’-])[a-zà-öø-ÿ][^\W\d_]*")
_SENTENCE_START = re.compile(r"(?:^|[.!?…:;]|\n)[\s\"'“‘(\[*_—–-]*$")
_TITLE_BEFORE = re.compile(r"\b(Mr|Mrs|Ms|Miss|Dr|Prof|Capt|Mme|Sir|Lady)\.?\s+$")
_NEXT_WORD = re.compile(r"[ \t]+([a-z]+)\b")
_ABBREVIATED_TITLES = frozenset({"Mr", "Mrs", "Ms", "Dr", "Prof", "Capt", "Mme"})
_PRONOUN_WORDS = re.compile(r"\b(he|him|his|himself|she|her|hers|herself)\b", re.I)
_AND_NAME = re.compile(r"[ \t]+and[ \t]+" + _UPPER_CLASS)
_POSSESSIVE_BEFORE = re.compile(r"\b(?:my|your|his|her|their|our|its|the|a)\s+$", re.I)
_OWN_PRONOUNS = frozenset({"his", "himself", "hers", "herself"})
_SENTENCE = re.compile(r"[^.!?…\n]+[.!?…]*")

PALETTE = [
    "#d9483b",
    "#3b7dd9",
    "#2fa36b",
    "#e0a028",
    "#8e4fc7",
    "#1fa5b5",
    "#d9548f",
    "#6b8e23",
    "#b5651d",
    "#4b5bd1",
    "#c0392b",
    "#16a085",
    "#7f8c8d",
    "#d35400",
    "#2c3e50",
    "#9b59b6",
]


def colour_for(index: int) -> str:
    """Palette colours first, then golden-ratio hues so every character stays distinct."""
    if index < len(PALETTE):
        return PALETTE[index]
    import colorsys

    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55 + 0.3 * ((index // 7) % 2), 0.78 - 0.2 * ((index // 3) % 2))
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def free_colour(used: set[str] | list[str]) -> str:
    """The first colour of :func:`colour_for`'s sequence no character has yet, so a new character
    is told apart from the others on the canvas, in name tags and in the pose overlay."""
    taken = {c.lower() for c in used}
    index = 0
    while colour_for(index).lower() in taken:
        index += 1
    return colour_for(index)


@dataclass
class NameCandidate:
    name: str
    mentions: int = 0
    pronouns: Pronouns | None = None
    aliases: list[str] = field(default_factory=list)


def most_mentioned(candidates: list[NameCandidate], room: int) -> list[NameCandidate]:
    """At most ``room`` candidates, the most mentioned ones, still in order of first appearance.

    A story (or a hostile file) can name thousands of people; a project holds at most
    :data:`~comic_studio.parsing.schema.MAX_SUGGESTIONS` characters, so the rest stay plain text."""
    if len(candidates) <= room:
        return candidates
    keep = set(sorted(range(len(candidates)), key=lambda i: (-candidates[i].mentions, i))[: max(0, room)])
    return [c for i, c in enumerate(candidates) if i in keep]


def names_left_out(found: int, kept: int, *, which: str = "mentioned most") -> str:
    """The warning for a story with more new names than a project can take as characters."""
    if kept == 0:
        return (
            f"the story names {found:,} more people than a project can hold as characters (at most "
            f"{MAX_SUGGESTIONS:,}); they stay plain text"
        )
    return (
        f"the story names {found:,} people not in the character library; only the {kept:,} {which} "
        f"became characters (a project holds at most {MAX_SUGGESTIONS:,}), the others stay plain text"
    )


def _is_name_word(word: str) -> bool:
    low = word.lower().rstrip(".")
    if (
        low in STOPWORDS
        or low in MONTHS
        or low in WEEKDAYS
        or low in KNOWN_PLACES
        or low in SCENE_NOUNS
        or low in SHOT_WORDS
    ):
        return False
    # ALL-CAPS words are headings ("INT. KITCHEN") or shouting, not names.
    return not (len(word) > 1 and word.isupper())


def find_proper_names(text: str, exclude: set[str] | None = None) -> list[NameCandidate]:
    """Proper names in ``text`` ordered by first appearance; ``exclude`` holds known names."""
    exclude = exclude or set()
    lower_vocab = {m.group() for m in _LOWER_WORD.finditer(text)}
    counts: Counter[str] = Counter()
    mid: Counter[str] = Counter()
    first_pos: dict[str, int] = {}
    titles: dict[str, str] = {}
    preceded_by_the: Counter[str] = Counter()
    before_verb: Counter[str] = Counter()  # "Zoë opens …": a sentence-initial word right before a verb
    possessed: Counter[str] = Counter()
    for m in _CAP_RUN.finditer(text):
        words = m.group().split()
        start = m.start()
        at_start = bool(_SENTENCE_START.search(text, max(0, start - 6), start)) or start == 0
        # Titles introduce a name and tell its pronouns; they are not part of the name.
        title = ""
        tb = _TITLE_BEFORE.search(text, max(0, start - 6), start)
        if tb:
            title, at_start = tb.group(1) + ".", False
        # A title alone ("Theo hugged Uncle") is the name the text uses; before a name it is a title.
        while (
            words
            and (len(words) > 1 or words[0].endswith(".") or words[0] in _ABBREVIATED_TITLES)
            and (words[0] in TITLES_HE or words[0] in TITLES_SHE or words[0].rstrip(".") in TITLES_NEUTRAL)
        ):
            title = words.pop(0)
            at_start = False
        words = [w.rstrip(".") if w.endswith(".") else w for w in words]
        words = [w[:-2] if w.endswith(("'s", "’s")) else w for w in words]
        # Drop leading sentence-starter words ("Then Bella" → "Bella").
        after_the = text[max(0, start - 4) : start].lower().endswith("the ")
        while words and not _is_name_word(words[0]):
            after_the = words.pop(0).lower() == "the"
            at_start = False
        # "Sometimes Theo", "Yesterday Mara", "Run Theo": at a sentence start, an adverb, a
        # preposition or a verb glued to the name is not part of it.
        while (
            at_start
            and len(words) > 1
            and (
                words[0].lower() in OPENERS
                or words[0].lower().endswith("ly")
                or words[0].lower() in ALL_VERBS
                or words[0].lower() in lower_vocab
            )
        ):
            words.pop(0)
            at_start = False
        while words and not _is_name_word(words[-1]):
            words.pop()
        if not words:
            continue
        if len(words) > 1 and words[-1] in PLACE_SUFFIXES:
            continue
        name = " ".join(words)
        if name in exclude or any(w in exclude for w in words):
            continue
        counts[name] += 1
        if not at_start:
            mid[name] += 1
        first_pos.setdefault(name, start)
        if title:
            titles.setdefault(name, title)
        if after_the:
            preceded_by_the[name] += 1
        nxt = _NEXT_WORD.match(text, m.end())
        if nxt and (nxt.group(1) in ALL_VERBS or nxt.group(1) in SPEECH_VERBS):
            before_verb[name] += 1
        elif at_start and nxt and nxt.group(1) == "and" and _AND_NAME.match(text, m.end()):
            before_verb[name] += 1  # "Theo and Mara walked": listed with a name, a name too
        if not at_start and _POSSESSIVE_BEFORE.search(text, max(0, start - 8), start):
            possessed[name] += 1  # "his Dad": a family word, not a name

    accepted: list[str] = []
    for name, n in counts.items():
        single = " " not in name
        low = name.lower()
        if single and low in KINSHIP and mid[name] - possessed[name] < 1:
            continue  # "Dad" only opening sentences, or only after "my": a family word
        if single and low in VERB_BASES and mid[name] == 0:
            continue  # "Grab the rope." "Walk." — imperatives open sentences, names also appear mid-sentence
        if preceded_by_the[name] == n:
            continue  # "the Harbour", "the Council": a thing, not a person
        if single and low in KINSHIP and mid[name] > possessed[name]:
            accepted.append(name)  # "Theo hugged Dad": a family word used as a name ("her dad" too)
            continue
        if single and name.lower() in lower_vocab:
            # The word also occurs in lower case ("Hope", "Will" as verbs): only a title or a
            # mid-sentence use twice makes it a name.
            if not (name in titles or mid[name] >= 2):
                continue
        if mid[name] >= 1 or n >= 2 or name in titles or before_verb[name] and name.lower() not in lower_vocab:
            accepted.append(name)

    # A single word that is the first or last word of an accepted multi-word name is that person.
    multi = [a for a in accepted if " " in a]
    merged: dict[str, NameCandidate] = {}
    owner: dict[str, str] = {}
    for name in sorted(accepted, key=lambda a: first_pos[a]):
        parts = name.split()
        if len(parts) == 1:
            full = [m for m in multi if m.split()[0] == name or m.split()[-1] == name]
            if len(full) == 1:
                owner[name] = full[0]
                continue
        owner[name] = name
    for name in sorted(accepted, key=lambda a: first_pos[owner[a]]):
        cand = merged.setdefault(owner[name], NameCandidate(owner[name]))
        cand.mentions += counts[name]
        if name != owner[name]:
            cand.aliases.append(name)
        if name in titles and cand.pronouns is None:
            t = titles[name].rstrip(".")
            if " " not in cand.name and cand.name == name:
                # Known only with a title ("Mrs. Álvarez"): keep the title in the name.
                cand.aliases.append(cand.name)
                cand.name = f"{t}. {cand.name}" if t in _ABBREVIATED_TITLES else f"{t} {cand.name}"
            cand.pronouns = Pronouns.HE if t in TITLES_HE else Pronouns.SHE if t in TITLES_SHE else None
    for cand in merged.values():
        # A family word used as a name says the gender the text would otherwise have to show.
        low = cand.name.lower()
        if cand.pronouns is None and low in KINSHIP:
            cand.pronouns = Pronouns.HE if low in KINSHIP_HE else Pronouns.SHE if low in KINSHIP_SHE else None
    _infer_pronouns(text, list(merged.values()))
    return list(merged.values())


def _infer_pronouns(text: str, candidates: list[NameCandidate]) -> None:
    """Vote per name from pairs of sentences: (1) a sentence naming only X followed by a sentence
    whose he/she pronouns are all of one gender; (2) then, by elimination, a sentence naming one
    still-unknown X followed by pronouns of two genders, one of which belongs to a character
    already known and mentioned just before ("She smiles at Łukasz. He waves at her.")."""
    if not candidates:
        return
    lookup: dict[str, NameCandidate] = {}
    for c in candidates:
        for n in (c.name, *c.aliases):
            lookup[n] = c
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(n) for n in sorted(lookup, key=len, reverse=True)) + r")(?![\w-])"
    )
    sentences = [s.group() for s in _SENTENCE.finditer(text)]
    names = [{lookup[m.group(1)].name for m in pattern.finditer(sent)} for sent in sentences]
    found = [_PRONOUN_WORDS.findall(sent) for sent in sentences]
    genders = [{PRONOUNS[w.lower()][0] for w in words} for words in found]
    # In a sentence that names the person again, "him"/"she" is someone else ("Sally sits beside
    # him"); only a possessive or reflexive there can be theirs.
    own = [{PRONOUNS[w.lower()][0] for w in words if w.lower() in _OWN_PRONOUNS} for words in found]
    by_name = {c.name: c for c in candidates}

    def heard(i: int, name: str) -> set[str]:
        return own[i] if name in names[i] else genders[i]

    def tally(votes: dict[str, Counter[str]]) -> bool:
        changed = False
        for name, counter in votes.items():
            cand = by_name[name]
            if cand.pronouns is None and counter:
                (best, n), *rest = counter.most_common()
                if not rest or n > rest[0][1]:
                    cand.pronouns = Pronouns(best)
                    changed = True
        return changed

    votes: dict[str, Counter[str]] = {c.name: Counter() for c in candidates}
    for i in range(1, len(sentences)):
        if len(names[i - 1]) == 1:
            name = next(iter(names[i - 1]))
            if len(heard(i, name)) == 1:
                votes[name][next(iter(heard(i, name)))] += 1
    tally(votes)
    for _ in range(3):  # elimination may unlock further names
        votes = {c.name: Counter() for c in candidates}
        for i in range(1, len(sentences)):
            unknown = [n for n in names[i - 1] if by_name[n].pronouns is None]
            if len(unknown) != 1 or not heard(i, unknown[0]):
                continue
            recent = names[i - 1] | names[i] | (names[i - 2] if i >= 2 else set())
            taken = {by_name[n].pronouns.value for n in recent if by_name[n].pronouns is not None}  # type: ignore[union-attr]
            left = heard(i, unknown[0]) - taken
            if len(left) == 1:
                votes[unknown[0]][left.pop()] += 1
        if not tally(votes):
            break


def infer_characters(story_text: str) -> list[Character]:
    """Characters for a story without a library: one per proper name, distinct colours.

    Ids are derived from the names ("c-zoe"), so parsing the same story twice gives the same ids.
    """
    out: list[Character] = []
    used: set[str] = set()
    # At most a project's worth: the rule parser then warns about the names left out.
    for i, cand in enumerate(most_mentioned(find_proper_names(story_text), MAX_SUGGESTIONS)):
        base = "c-" + slugify(cand.name)
        cid, k = base, 2
        while cid in used:
            cid, k = f"{base}-{k}", k + 1
        used.add(cid)
        out.append(
            Character(
                id=cid,
                name=cand.name,
                aliases=cand.aliases,
                pronouns=cand.pronouns or Pronouns.THEY,
                colour=colour_for(i),
            )
        )
    return out

"""Clauses: one visible action each. Splits compound sentences and finds each clause's subject.

"Bella opens the door and Edward steps inside" → two clauses (a verb on both sides of "and");
"Bella and Edward walk" stays one clause with a compound subject, because the words before
"and" hold no verb. Without a POS tagger, verbs are recognised from the lexicon, and a bare verb
form after "and" only counts when the first verb is bare too ("they walk and talk").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from comic_studio.parsing.lexicon import (
    ALL_VERBS,
    IRREGULAR_PAST,
    OPENERS,
    SKIPPABLE,
    SPEECH_VERBS,
    TITLES_NEUTRAL,
    VERB_BASES,
)
from comic_studio.parsing.mentions import Token

_TITLES = frozenset({"Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Capt", "Sir", "Lady", "Lord", "Mme"})
_SPLITTERS = frozenset({"and", "but", "then"})
_INTRO_MAX = 10  # longest comma-terminated intro phrase we skip to find a subject ("Later that night,")


@dataclass
class Clause:
    start: int  # first token index (inclusive) in the sentence
    end: int  # last token index (exclusive)
    subject: list[int] = field(default_factory=list)  # token indices of the subject mentions
    inherits_subject: bool = False  # "… and steps inside": the subject is the previous clause's
    intro_end: int = -1  # token index where a skipped intro phrase ends (its comma), -1 if none
    verb: int = -1  # index of the first verb token, -1 if none


def is_verb(tok: Token) -> bool:
    """A lower-case token found in the verb lexicon (capitalised words are names or starters)."""
    return (tok.low in ALL_VERBS or tok.low in SPEECH_VERBS) and not tok.text[:1].isupper() and not tok.char_ids


def _is_subject_word(tok: Token) -> bool:
    return bool(tok.char_ids) or tok.role == "subj"


def _bare(word: str) -> bool:
    return word in VERB_BASES and word not in IRREGULAR_PAST


def split_clauses(tokens: list[Token]) -> list[Clause]:
    clauses: list[Clause] = []
    start, n = 0, len(tokens)
    inherits_next = False
    first_verb = -1
    i = 0
    while i < n:
        tok = tokens[i]
        if first_verb < 0 and (i > start or inherits_next) and is_verb(tok) and not _is_subject_word(tok):
            first_verb = i
        if tok.text == ";" and i > start:
            clauses.append(Clause(start, i, inherits_subject=inherits_next))
            start, first_verb, inherits_next = i + 1, -1, False
            i += 1
            continue
        # A comma splits before a second finite verb ("grabs the rope, climbs the wall", not
        # "-ing") or before a new subject with its verb ("Bella turns, Edward smiles").
        comma = tok.text == "," and first_verb >= 0 and i + 1 < n
        comma_verb = comma and is_verb(tokens[i + 1]) and not tokens[i + 1].low.endswith("ing")
        if comma and not comma_verb and not _is_subject_word(tokens[i + 1]):
            comma = False
        if (tok.low in _SPLITTERS or comma) and first_verb >= 0:
            j = i + 1
            while j < n and (
                tokens[j].low in SKIPPABLE
                or tokens[j].low.endswith("ly")
                and not tokens[j].char_ids
                or tokens[j].text == ","
                and not comma_verb
            ):
                j += 1
            if j < n:
                nxt = tokens[j]
                split_here = inherits = False
                if is_verb(nxt) and not _is_subject_word(nxt):
                    # Same subject, second action: "… and steps inside".
                    left = tokens[first_verb].low
                    split_here = inherits = not (_bare(nxt.low) and not _bare(left))
                elif _is_subject_word(nxt) and not nxt.possessive:
                    k = (nxt.span_end if nxt.span_end >= 0 else j) + 1
                    while k < n and (tokens[k].low in SKIPPABLE or tokens[k].low.endswith("ly")):
                        k += 1
                    split_here = k < n and is_verb(tokens[k])
                if split_here:
                    end = i - 1 if i - 1 > start and tokens[i - 1].text == "," else i
                    clauses.append(Clause(start, end, inherits_subject=inherits_next))
                    start, first_verb, inherits_next = i + 1, -1, inherits
                    # Drop a "then"/"," right after the conjunction: "and then leaves".
                    while start < n and tokens[start].low == "then":
                        start += 1
                    i = start
                    continue
        i += 1
    if start < n:
        clauses.append(Clause(start, n, inherits_subject=inherits_next))
    for clause in clauses:
        find_subject(tokens, clause)
    return clauses


def find_subject(tokens: list[Token], clause: Clause) -> None:
    """Fill ``clause.subject``/``intro_end``/``verb``: skip intro phrases and adverbs, then take the
    leading mention(s) ("Bella", "Bella and Edward", "Bella's hand", "She")."""
    i, end = clause.start, clause.end
    # Comma-terminated intros without a verb or a character ("Later that night, at the docks,").
    while True:
        j = i
        while (
            j < end
            and j - i <= _INTRO_MAX
            and tokens[j].text != ","
            and not tokens[j].char_ids
            and tokens[j].role != "subj"
            and not is_verb(tokens[j])
        ):
            j += 1
        if j < end and tokens[j].text == "," and j > i and j - i <= _INTRO_MAX:
            clause.intro_end = j
            i = j + 1
            continue
        break
    while i < end and (
        tokens[i].low in SKIPPABLE or tokens[i].low.endswith("ly") and not tokens[i].char_ids and not is_verb(tokens[i])
    ):
        i += 1
    # An opener without a comma ("Sometimes Theo sang", "On Monday Theo came home"): skip to the
    # first mention when no verb comes before it.
    if i < end and tokens[i].low in OPENERS and not tokens[i].char_ids and tokens[i].role != "subj":
        j = i + 1
        while j < end and j - i <= _INTRO_MAX and not _is_subject_word(tokens[j]) and not is_verb(tokens[j]):
            j += 1
        if j < end and j - i <= _INTRO_MAX and _is_subject_word(tokens[j]) and tokens[j].role != "poss":
            clause.intro_end = j - 1
            i = j
    if clause.inherits_subject:
        clause.verb = i if i < end and is_verb(tokens[i]) else _first_verb(tokens, i, end)
        return
    if i < end and is_verb(tokens[i]) and tokens[i].low in SPEECH_VERBS:
        # Inverted speech tag: "said Edward".
        if i + 1 < end and (tokens[i + 1].char_ids or tokens[i + 1].role == "subj"):
            clause.subject = [i + 1]
            clause.verb = i
        return
    subject: list[int] = []
    # Titles before a name ("Mrs. Álvarez" when only "Álvarez" is known) belong to the subject.
    while i + 1 < end and (tokens[i].text in _TITLES or tokens[i].text in TITLES_NEUTRAL) and not tokens[i].char_ids:
        i += 2 if tokens[i + 1].text == "." and i + 2 < end else 1
    while i < end:
        tok = tokens[i]
        if tok.char_ids or tok.role in ("subj", "poss") and tok.text[:1].isupper() or tok.role == "subj":
            subject.append(i)
            i = (tok.span_end if tok.span_end >= 0 else i) + 1
            if tok.possessive or tok.role == "poss":
                break  # "Bella's hand shakes": the owner acts
            if (
                i < end
                and tokens[i].low in ("and", ",")
                and i + 1 < end
                and (tokens[i + 1].char_ids or tokens[i + 1].role == "subj")
            ):
                i += 1
                continue
        break
    clause.subject = subject
    clause.verb = _first_verb(tokens, i, end)


def _first_verb(tokens: list[Token], i: int, end: int) -> int:
    while i < end:
        if is_verb(tokens[i]):
            return i
        i += 1
    return -1

"""Cues read from a beat's words: shot type, mood, setting, time of day, scene-jump openers."""

from __future__ import annotations

import re
from collections import Counter

from comic_studio.core.model import ShotType
from comic_studio.parsing.lexicon import (
    ACTION_VERBS,
    CLOSE_UP_CUES,
    ESTABLISHING_CUES,
    EXTREME_CLOSE_CUES,
    MOOD_WORDS,
    PLACE_NOUNS,
    TIME_WORDS,
    WIDE_CUES,
)
from comic_studio.parsing.mentions import Token

_NUM = (
    r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
    r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?|"
    r"a hundred|hundreds of|a thousand|a few|a couple of|several|many|some|\d+)"
)
_UNIT = r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centuries|moments?)"
TIME_JUMP = re.compile(
    r"^(?:meanwhile|later|earlier|afterwards?|elsewhere|"
    r"the (?:next|following) (?:morning|day|evening|night|week|month|year|afternoon)|"
    r"next (?:morning|day|evening|week|night)|that (?:night|evening|morning|afternoon)|"
    rf"{_NUM} {_UNIT} (?:later|after|passed|earlier|before|went by|had passed|have passed)|"
    rf"(?:{_UNIT}) later|at (?:dawn|dusk|noon|midnight|sunrise|sunset|nightfall)|"
    r"by (?:morning|nightfall|dawn|noon|evening)|long ago|once upon a time|back (?:at|in) |"
    rf"{_NUM} {_UNIT} ago|years? (?:later|earlier|before|ago)|in (?:the (?:summer|winter|spring|autumn|fall) of )?"
    r"(?:1[0-9]|20)\d\d\b|flashback)",
    re.I,
)
_PLACE_INTRO = re.compile(r"^(?:back\s+)?(?:at|in|inside|outside|on|aboard)\s+(?:the\s+)?([^,]{2,40}),", re.I)
_CAPTION_START = re.compile(r"^(?:it|there)\s+(?:was|were|is|are|had|has|'s|’s|would|will|seemed)\b", re.I)

_PLACE_PREPS = frozenset(
    "in at inside into outside to toward towards through across near onto on from aboard of".split()
)
_DETERMINERS = frozenset("the a an his her their my our your its this that".split())


def is_time_jump(sentence: str) -> bool:
    return bool(TIME_JUMP.match(sentence))


def place_intro(sentence: str) -> str:
    """ "At the docks, …" → "docks" when the phrase names a place; else ""."""
    m = _PLACE_INTRO.match(sentence)
    if not m:
        return ""
    words = m.group(1).lower().split()
    return " ".join(words) if words and words[-1] in PLACE_NOUNS else ""


def is_caption_sentence(tokens: list[Token], text: str) -> bool:
    """Scene-setting narration without a character or a visible action becomes a caption."""
    if any(t.char_ids for t in tokens):
        return False
    if _CAPTION_START.match(text) or is_time_jump(text):
        return True
    return not any(t.low in ACTION_VERBS and not t.text[:1].isupper() for t in tokens)


def find_setting(tokens: list[Token], start: int, end: int) -> str:
    """ "… in the old kitchen" → "old kitchen", "at St. Mary's church" → "St. Mary's church":
    a preposition, a determiner, then up to four words ending in a place noun."""
    for i in range(start, end):
        if tokens[i].low not in _PLACE_PREPS:
            continue
        j = i + 1
        if j < end and tokens[j].low in _DETERMINERS:
            j += 1
        for k in range(j, min(j + 5, end)):
            tok = tokens[k]
            if tok.low in PLACE_NOUNS:
                out = ""
                for t in tokens[j : k + 1]:
                    out += t.text if (not out or t.text == "." or out.endswith("'")) else " " + t.text
                return out if any(c.isupper() for c in out) else out.lower()
            if (
                not (tok.text[:1].isalpha() or tok.text == ".")
                or tok.low in _PLACE_PREPS
                or tok.char_ids
                and not tok.possessive
            ):
                break
    return ""


def find_time_of_day(tokens: list[Token], start: int, end: int) -> str:
    for i in range(start, end):
        t = TIME_WORDS.get(tokens[i].low)
        if t and t != "day":
            return t
    return ""


def choose_shot(
    words: list[str], text_low: str, *, scene_start: bool, new_place: bool, eyes_focus: bool = False
) -> ShotType:
    """Priority: over-the-shoulder, extreme close-up, close-up, wide, establishing, medium.

    ``eyes_focus``: the clause is about someone's eyes ("Bella's eyes narrow") → extreme close-up;
    eyes merely mentioned ("looks into his eyes") only make a close-up.
    """
    if "shoulder" in words and "over" in words:
        i = words.index("over")
        if "shoulder" in words[i + 1 : i + 4]:
            return ShotType.OVER_THE_SHOULDER
    if (
        eyes_focus
        or "extreme close" in text_low
        or "in extreme detail" in text_low
        or any(w in EXTREME_CLOSE_CUES for w in words)
    ):
        return ShotType.EXTREME_CLOSE_UP
    if any(w in CLOSE_UP_CUES for w in words):
        return ShotType.CLOSE_UP
    if any(w in WIDE_CUES for w in words):
        return ShotType.WIDE
    if scene_start or new_place or any(w in ESTABLISHING_CUES for w in words):
        return ShotType.ESTABLISHING
    return ShotType.MEDIUM


def choose_mood(words: list[str]) -> str:
    found = [MOOD_WORDS[w] for w in words if w in MOOD_WORDS]
    if not found:
        return ""
    counts = Counter(found)
    best = max(counts.values())
    return next(m for m in found if counts[m] == best)  # ties: the first mood in the text

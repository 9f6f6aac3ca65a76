"""Tokens and character mentions: names, aliases, possessives and pronouns in a sentence.

Names match case-sensitively on whole tokens (so "Will" the character is not "will" the verb, and
"Zoë" matches "Zoë's" but never "Zoëy"). Multi-word names are matched longest first; the first
and last word of a multi-word name act as implicit aliases when no other character shares them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing.lexicon import AFTER_OBJECT_HER, PRONOUNS, STOPWORDS, TITLES_HE, TITLES_NEUTRAL, TITLES_SHE

# Words (letters with inner apostrophes or hyphens: "don't", "Bella's", "Jean-Luc"), numbers,
# or single punctuation characters.
_TOKEN = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|\d+(?:[.,]\d+)*|[^\w\s]")
_POSSESSIVE_SUFFIXES = ("'s", "’s")


@dataclass(slots=True)
class Token:
    text: str
    start: int
    end: int
    low: str
    char_ids: tuple[str, ...] = ()  # resolved characters (a name, or a pronoun after resolution)
    pronoun: str = ""  # pronoun set ("he"/"she"/"they"/"it") when the token is a pronoun
    role: str = ""  # subj/obj/poss/posspro/refl for pronouns
    possessive: bool = False
    span_end: int = -1  # for multi-word names: index of the last token of the name


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text)]


class CharacterIndex:
    """Finds characters in token lists. Built once per parse; lookups are dict hits per token."""

    def __init__(self, characters: list[Character]):
        self.characters = {c.id: c for c in characters}
        self.pronouns_of: dict[str, str] = {c.id: Pronouns(c.pronouns).value for c in characters}
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        explicit: dict[tuple[str, ...], str] = {}
        for c in characters:
            for name in c.all_names():
                toks = tuple(t.text for t in tokenize(name))
                if not toks:
                    continue
                explicit.setdefault(toks, c.id)
                # Lower-case aliases ("the captain") also match capitalised at a sentence start.
                if toks[0][:1].islower():
                    explicit.setdefault((toks[0][:1].upper() + toks[0][1:], *toks[1:]), c.id)
        implicit: dict[tuple[str, ...], set[str]] = {}
        for c in characters:
            toks = [t.text for t in tokenize(c.name) if t.text != "."]
            if len(toks) > 1:
                for part in (toks[0], toks[-1]):
                    # "Captain" of "Captain Reyes" is a rank, not her name: "Captain Elias Grey" is
                    # someone else.
                    if part in TITLES_NEUTRAL or part in TITLES_HE or part in TITLES_SHE:
                        continue
                    if part[:1].isupper() and part.lower() not in STOPWORDS:
                        implicit.setdefault((part,), set()).add(c.id)
        table = dict(explicit)
        for toks, ids in implicit.items():
            if toks not in table and len(ids) == 1:
                table[toks] = next(iter(ids))
        for toks, cid in table.items():
            self._by_first.setdefault(toks[0], []).append((toks, cid))
        for entries in self._by_first.values():
            entries.sort(key=lambda e: -len(e[0]))
        self.names_by_id = {c.id: c.name for c in characters}

    def add(self, character: Character) -> None:
        """Add a character found during the parse (a suggested new character)."""
        self.__init__([*self.characters.values(), character])  # small libraries: rebuilding is cheap

    def mark(self, tokens: list[Token]) -> None:
        """Set ``char_ids``/``possessive`` on name tokens and ``pronoun``/``role`` on pronouns."""
        by_first = self._by_first
        i, n = 0, len(tokens)
        while i < n:
            tok = tokens[i]
            text = tok.text
            base = text[:-2] if text.endswith(_POSSESSIVE_SUFFIXES) else text
            entries = by_first.get(text) or (by_first.get(base) if base is not text else None)
            if entries:
                matched = False
                for toks, cid in entries:
                    k = len(toks)
                    if k == 1:
                        tok.char_ids = (cid,)
                        tok.possessive = base is not text
                        tok.span_end = i
                        matched = True
                        break
                    if i + k <= n and all(_same(tokens[i + j].text, toks[j], j == k - 1) for j in range(k)):
                        tok.char_ids = (cid,)
                        last = tokens[i + k - 1].text
                        tok.possessive = last.endswith(_POSSESSIVE_SUFFIXES)
                        tok.span_end = i + k - 1
                        matched = True
                        break
                if matched:
                    last = tok.span_end
                    # "James' car": a bare apostrophe right after a name ending in s.
                    if (
                        not tok.possessive
                        and tokens[last].text.endswith("s")
                        and last + 1 < n
                        and tokens[last + 1].text in ("'", "’")
                        and tokens[last + 1].start == tokens[last].end
                        and (last + 2 >= n or tokens[last + 2].start != tokens[last + 1].end)
                    ):
                        tok.possessive = True
                    i = last + 1
                    continue
            pr = PRONOUNS.get(tok.low)
            if pr is not None:
                tok.pronoun, tok.role = pr
                if tok.low == "her":
                    tok.role = _her_role(tokens, i)
            i += 1


def _her_role(tokens: list[Token], i: int) -> str:
    """ "her" is possessive before a noun ("her hand"), an object otherwise ("gives her the key")."""
    if tokens[i].text == "Her":
        return "poss"
    if i + 1 >= len(tokens):
        return "obj"
    nxt = tokens[i + 1]
    if not nxt.text[:1].isalpha() or nxt.low in AFTER_OBJECT_HER or nxt.low.endswith("ly") or nxt.char_ids:
        return "obj"
    return "poss"


def _same(token: str, name_part: str, last: bool) -> bool:
    if token == name_part:
        return True
    return last and token.endswith(_POSSESSIVE_SUFFIXES) and token[:-2] == name_part

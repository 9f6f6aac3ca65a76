"""Pronoun resolution: he/him/his…, she/her/hers…, they/them/their… → library characters.

Rules (a small centering model, enough for comic scripts):
- candidates are characters whose library pronouns match, most recently mentioned first;
- a subject pronoun prefers the subject of an earlier clause of the same sentence, then the
  subject of the previous sentence ("Bella finds Edward. She …" → Bella);
- an object pronoun never means its own clause's subject ("Edward pushes him" ≠ Edward) and
  prefers the most recent non-subject mention;
- a possessive prefers its clause's subject ("Edward takes his coat"), then the nearest mention;
- "they" with no they-character refers to the group of the previous sentence ("Bella and
  Edward walk. They talk." → both).
"""

from __future__ import annotations

from comic_studio.parsing.clauses import Clause
from comic_studio.parsing.mentions import CharacterIndex, Token


class PronounResolver:
    def __init__(self, index: CharacterIndex):
        self.index = index
        self.pronouns_of = index.pronouns_of
        self.recency: list[str] = []  # most recent first
        self.prev_subject: tuple[str, ...] = ()
        self.prev_mentions: list[tuple[str, bool]] = []  # (id, was a subject) in the last sentence
        self.has_they_chars = any(p == "they" for p in self.pronouns_of.values())
        self.has_it_chars = any(p == "it" for p in self.pronouns_of.values())

    def reset_scene(self) -> None:
        """A new scene keeps who was last mentioned (the next "she" is still likely the heroine)
        but forgets sentence roles."""
        self.prev_subject = ()
        self.prev_mentions = []

    def _touch(self, ids: tuple[str, ...]) -> None:
        for cid in reversed(ids):
            if cid in self.recency:
                self.recency.remove(cid)
            self.recency.insert(0, cid)

    def note_mentions(self, ids: list[str]) -> None:
        """Record characters mentioned outside narration (a dialogue speaker) as recent."""
        self._touch(tuple(ids))

    def resolve(self, tokens: list[Token], clauses: list[Clause]) -> list[tuple[str, ...]]:
        """Resolve pronoun tokens in place; return each clause's subject ids."""
        subjects: list[tuple[str, ...]] = []
        mentions: list[tuple[str, bool]] = []
        sentence_subjects: list[tuple[str, ...]] = []
        for clause in clauses:
            subj_idx = set(clause.subject)
            clause_subject: tuple[str, ...] = ()
            if clause.inherits_subject and subjects:
                clause_subject = subjects[-1]
            for i in range(clause.start, clause.end):
                tok = tokens[i]
                if tok.pronoun and not tok.char_ids:
                    ids = self._pick(tok, i in subj_idx, clause_subject, sentence_subjects, mentions)
                    if ids:
                        tok.char_ids = ids
                if tok.char_ids:
                    is_subj = i in subj_idx
                    if is_subj:
                        clause_subject = _merge(clause_subject, tok.char_ids)
                    for cid in tok.char_ids:
                        mentions.append((cid, is_subj))
                    self._touch(tok.char_ids)
            subjects.append(clause_subject)
            if clause_subject:
                sentence_subjects.append(clause_subject)
        if mentions:
            self.prev_mentions = mentions
            self.prev_subject = sentence_subjects[0] if sentence_subjects else ()
        return subjects

    def _pick(
        self,
        tok: Token,
        is_subject: bool,
        clause_subject: tuple[str, ...],
        sentence_subjects: list[tuple[str, ...]],
        mentions: list[tuple[str, bool]],
    ) -> tuple[str, ...]:
        pset, role = tok.pronoun, tok.role
        if pset == "it" and not self.has_it_chars:
            return ()
        compatible = [cid for cid in self.recency if self.pronouns_of.get(cid) == pset]
        if pset == "they":
            # A group that just acted together wins over a singular-they character.
            group = self._group(
                role, clause_subject, sentence_subjects, strict=bool(self.has_they_chars and compatible)
            )
            if group or not (self.has_they_chars and compatible):
                return group
        if pset == "it":
            # "it" is nearly always a thing; only take an it-character mentioned in this or the
            # previous sentence.
            recent = {c for c, _ in mentions} | {c for c, _ in self.prev_mentions}
            compatible = [c for c in compatible if c in recent]
        if not compatible:
            return ()

        def ok(ids: tuple[str, ...]) -> bool:
            return len(ids) == 1 and self.pronouns_of.get(ids[0]) == pset

        if role == "subj" or is_subject:
            for subj in sentence_subjects:
                if ok(subj):
                    return subj
            if ok(self.prev_subject):
                return self.prev_subject
            return (compatible[0],)
        if role == "obj":
            excluded = set(clause_subject)
            for cid, was_subj in reversed(mentions):
                if not was_subj and cid not in excluded and self.pronouns_of.get(cid) == pset:
                    return (cid,)
            for cid, was_subj in reversed(self.prev_mentions):
                if not was_subj and cid not in excluded and self.pronouns_of.get(cid) == pset:
                    return (cid,)
            rest = [c for c in compatible if c not in excluded]
            return (rest[0],) if rest else ()
        if role == "refl":
            return clause_subject if ok(clause_subject) else (compatible[0],)
        # Possessive: "his"/"her"/"their" before a noun, or "hers"/"theirs".
        if ok(clause_subject):
            return clause_subject
        for cid, _ in reversed(mentions):
            if self.pronouns_of.get(cid) == pset:
                return (cid,)
        if ok(self.prev_subject):
            return self.prev_subject
        return (compatible[0],)

    def _group(
        self, role: str, clause_subject: tuple[str, ...], sentence_subjects: list[tuple[str, ...]], strict: bool = False
    ) -> tuple[str, ...]:
        """Plural "they" for a group of characters. ``strict`` (a they-character exists): only a
        group that was a subject counts, not any two names in the last sentence."""
        if role in ("poss", "refl", "posspro") and len(clause_subject) >= 2:
            return clause_subject
        for subj in sentence_subjects:
            if len(subj) >= 2:
                return subj
        if len(self.prev_subject) >= 2:
            return self.prev_subject
        if role == "subj" and not strict:
            seen: list[str] = []
            for cid, _ in self.prev_mentions:
                if cid not in seen:
                    seen.append(cid)
            if len(seen) >= 2:
                return tuple(seen)
        return ()


def _merge(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return a + tuple(x for x in b if x not in a)

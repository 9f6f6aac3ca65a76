"""A model's window answer (names) → core Scenes and Beats (ids), plus new-character suggestions.

The model writes names; the library is matched by full name or alias (case-insensitive), then by
a word of exactly one character's name ("Mara" → "Mara Vance"). A capitalised name that matches
nobody becomes a suggestion with a provisional ``new:<slug>`` id — the outliner asks the author
before it becomes a character. Pronouns and lower-case descriptions ("the guard") are not people
the library can hold, so they are left out of the beat's cast.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from comic_studio.core.model import Beat, Character, DialogueKind, DialogueLine, Pronouns, Scene, ShotType
from comic_studio.parsing.errors import ParseError
from comic_studio.parsing.llm.prompt import WindowOutput
from comic_studio.parsing.schema import MAX_SUGGESTIONS, CharacterSuggestion, provisional_id

_PRONOUN_WORDS = {
    "i",
    "me",
    "you",
    "he",
    "him",
    "she",
    "her",
    "it",
    "we",
    "us",
    "they",
    "them",
    "someone",
    "everyone",
    "nobody",
    "narrator",
    "voice",
    "unknown",
    "none",
    "null",
    "n/a",
}
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


class NameResolver:
    """Maps names to character ids for one whole parse (suggestions persist across windows)."""

    def __init__(self, characters: list[Character]):
        self.library = list(characters)
        self._exact: dict[str, str] = {}
        word_owners: dict[str, set[str]] = {}
        for c in characters:
            for name in c.all_names():
                self._exact.setdefault(name.casefold().strip(), c.id)
                for word in _WORD.findall(name):
                    word_owners.setdefault(word.casefold(), set()).add(c.id)
        # A word names a character only when no other character shares it ("Vance" with two Vances is ambiguous).
        self._word = {w: next(iter(ids)) for w, ids in word_owners.items() if len(ids) == 1 and len(w) > 1}
        self.suggestions: dict[str, CharacterSuggestion] = {}
        self._suggested_names: dict[str, str] = {}
        self._pronouns: dict[str, Pronouns] = {}
        self.room = max(0, MAX_SUGGESTIONS - len(self.library))
        """New names this parse may still suggest (a project holds at most MAX_SUGGESTIONS characters)."""
        self.left_out: set[str] = set()
        """New names refused once there was no room: they stay plain text (the parse warns)."""

    def note_new_character(self, name: str, pronouns: str) -> None:
        """The model declared a new character: remember its pronouns for when a beat names it."""
        key = name.casefold().strip()
        if key and key not in self._exact:
            self._pronouns[key] = Pronouns(pronouns)

    def resolve(self, name: str) -> str | None:
        clean = " ".join(name.split()).strip(" .,:;!?\"'“”")
        key = clean.casefold()
        if not key or key in _PRONOUN_WORDS:
            return None
        if key in self._exact:
            return self._exact[key]
        if key in self._suggested_names:
            return self._suggested_names[key]
        words = [w.casefold() for w in _WORD.findall(clean)]
        owners = {self._word[w] for w in words if w in self._word}
        if len(owners) == 1:
            return owners.pop()
        if not clean[:1].isupper() or len(words) > 4:
            return None  # "the guard", or a sentence where a name should be
        return self._suggest(clean, key)

    def _suggest(self, name: str, key: str) -> str | None:
        if len(self.suggestions) >= self.room:
            self.left_out.add(key)
            return None
        sid = provisional_id(name)
        base, n = sid, 2
        while sid in self.suggestions or sid in {c.id for c in self.library}:
            if sid in self.suggestions and self.suggestions[sid].name.casefold() == key:
                break
            sid, n = f"{base}-{n}"[:64], n + 1
        if sid not in self.suggestions:
            self.suggestions[sid] = CharacterSuggestion(
                id=sid, name=name[:200], mentions=0, pronouns=self._pronouns.get(key)
            )
        self._suggested_names[key] = sid
        return sid

    def mention(self, cid: str, beat_id: str) -> None:
        sug = self.suggestions.get(cid)
        if sug is not None:
            sug.mentions += 1
            if sug.first_beat_id is None:
                sug.first_beat_id = beat_id

    def checkpoint(self) -> Any:
        """State to :meth:`rollback` to when a window's answer is thrown away."""
        return copy.deepcopy((self.suggestions, self._suggested_names, self._pronouns, self.left_out))

    def rollback(self, state: Any) -> None:
        self.suggestions, self._suggested_names, self._pronouns, self.left_out = copy.deepcopy(state)

    def as_characters(self) -> list[Character]:
        """The library plus the suggestions so far as provisional characters (for the rule fallback)."""
        extra = [
            Character(id=s.id, name=s.name, pronouns=s.pronouns or Pronouns.THEY) for s in self.suggestions.values()
        ]
        return [*self.library, *extra]

    def adopt_rule_scenes(self, scenes: list[Scene], suggestions: list[CharacterSuggestion]) -> list[Scene]:
        """Take the rule parser's scenes for a window into this parse: its new suggestions join ours
        (same name → same id; a clashing id is renamed) and the beats are re-pointed accordingly."""
        mapping: dict[str, str | None] = {}
        for sug in suggestions:
            key = sug.name.casefold().strip()
            if key in self._suggested_names:
                mapping[sug.id] = self._suggested_names[key]
                self.suggestions[mapping[sug.id]].mentions += sug.mentions
                continue
            new_id = mapping[sug.id] = self._suggest(sug.name, key)
            if new_id is None:
                continue  # no room for another character: the name stays plain text
            adopted = self.suggestions[new_id]
            adopted.mentions += sug.mentions
            adopted.pronouns = adopted.pronouns or sug.pronouns
            adopted.first_beat_id = adopted.first_beat_id or sug.first_beat_id
        for beat in (b for s in scenes for b in s.beats):
            beat.characters = [cid for cid in (mapping.get(c, c) for c in beat.characters) if cid is not None]
            beat.actor_id = mapping.get(beat.actor_id, beat.actor_id) if beat.actor_id else None
            beat.target_id = mapping.get(beat.target_id, beat.target_id) if beat.target_id else None
            for line in beat.dialogue:
                line.speaker_id = mapping.get(line.speaker_id, line.speaker_id) if line.speaker_id else None
        return scenes

    def known_names(self) -> list[str]:
        """Every name a later window should reuse: the library plus suggestions found so far."""
        return [c.name for c in self.library] + [s.name for s in self.suggestions.values()]


def convert_window(output: WindowOutput, resolver: NameResolver) -> list[Scene]:
    """Turn one validated window answer into scenes of ``source="llm"`` beats.

    Raises :class:`ParseError` for a beat that is empty once cleaned (the caller retries the window)."""
    for nc in output.new_characters:
        resolver.note_new_character(nc.name, nc.pronouns)
    scenes: list[Scene] = []
    for si, scene_out in enumerate(output.scenes):
        scene = Scene(
            title=scene_out.title.strip(), setting=scene_out.setting.strip(), time_of_day=scene_out.time_of_day.strip()
        )
        for bi, b in enumerate(scene_out.beats):
            path = f"scenes.{si}.beats.{bi}"
            beat = Beat(source="llm", shot=ShotType(b.shot), setting=scene.setting, time_of_day=scene.time_of_day)
            beat.action = " ".join(b.action.split())
            beat.caption = " ".join(b.caption.split())
            beat.mood = " ".join(b.mood.split())
            cast: list[str] = []
            for name in [*b.characters, b.actor, b.target]:
                cid = resolver.resolve(name)
                if cid is not None and cid not in cast:
                    cast.append(cid)
            actor, target = resolver.resolve(b.actor), resolver.resolve(b.target)
            beat.characters = cast[:16]
            beat.actor_id = actor if actor in beat.characters else None
            beat.target_id = target if target in beat.characters and target != beat.actor_id else None
            for line in b.dialogue:
                text = " ".join(line.text.split())
                if text:
                    beat.dialogue.append(
                        DialogueLine(speaker_id=resolver.resolve(line.speaker), text=text, kind=DialogueKind(line.kind))
                    )
            if not beat.action and not beat.dialogue and not beat.caption:
                raise ParseError("the model wrote an empty beat (no action, dialogue or caption)", path + ".action")
            for cid in {*beat.characters, *(ln.speaker_id for ln in beat.dialogue if ln.speaker_id)}:
                resolver.mention(cid, beat.id)
            scene.beats.append(beat)
        scenes.append(scene)
    return scenes

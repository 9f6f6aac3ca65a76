"""Script forms → scenes and beats, on the rule parser's machinery (its name index, pronoun
resolver, clause splitter and dialogue attachment).

* A **comic script** keeps its structure: each page heading opens a scene ("Page 3") and each panel
  is exactly one beat whose ``page`` is the script page, so Lay out gives the script's pages and
  panels. The panel description is the beat's action (characters found in it, names written in
  capitals included), captions its caption, dialogue its lines in order, SFX its sound effects and
  notes its notes to the artist.
* A **screenplay** scene heading opens a scene; action paragraphs are read like prose (one beat per
  visible action), and each dialogue line joins its speaker's beat or a talking beat of its own.

Speakers are the cues' names ("CAPT. GREY (OFF)" → "Capt. Grey"), matched to the library (names,
aliases, the first or last word of a full name) and to names found in the descriptions, so a cue
"GREY" and "Captain Elias Grey" in the action are one character.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from comic_studio.core.model import Beat, DialogueLine, ShotType
from comic_studio.parsing.base import check_cancel
from comic_studio.parsing.clauses import split_clauses
from comic_studio.parsing.comic_script import front_title, read_comic_script
from comic_studio.parsing.cues import choose_mood, choose_shot, find_setting, find_time_of_day
from comic_studio.parsing.forms import SCENE_HEADING, ScriptElement, StoryForm, name_case
from comic_studio.parsing.fountain import read_screenplay
from comic_studio.parsing.lexicon import STOPWORDS, TITLES_HE, TITLES_NEUTRAL, TITLES_SHE
from comic_studio.parsing.mentions import tokenize
from comic_studio.parsing.names import NameCandidate, find_proper_names
from comic_studio.parsing.schema import CharacterSuggestion, ParsedStory
from comic_studio.parsing.text import Heading, split_title

if TYPE_CHECKING:
    from comic_studio.parsing.rules import _Run

_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_MAX_SFX = 16
_TITLE_WORDS = TITLES_NEUTRAL | TITLES_HE | TITLES_SHE
_RANK_BEFORE_NAME = re.compile(
    r"\b([A-Z]{2,}\.?)(?=[ \t]+[^\W\d_][^\W\d_A-Z])",
)


def run_script(run: _Run, text: str, form: StoryForm) -> ParsedStory:
    if form is StoryForm.COMIC:
        title = front_title(text)
        elements = read_comic_script(text)
    else:
        title, elements = read_screenplay(text)
        if not title:  # a lone line in capitals opening the text, unless it is a forced element
            opening = split_title(text)[0]
            title = "" if opening[:1] in ".!@>~=#" or SCENE_HEADING.match(opening) else opening
    if not elements:
        run.warnings.append(f"no {form.value} script elements found: nothing to lay out")
    return _ScriptRun(run, elements, form).walk(title)


class _ScriptRun:
    def __init__(self, run: _Run, elements: list[ScriptElement], form: StoryForm):
        self.run = run
        self.elements = elements
        self.comic = form is StoryForm.COMIC
        self.form = form
        self.speaker_ids: dict[str, str] = {}  # cue name in capitals → character id
        self.caps_names: set[str] = set()  # names as they appear in capitals, to re-case in descriptions
        self.pending_notes: list[str] = []  # screenplay notes waiting for the beat they are about

    # ------------------------------------------------------------------ names

    def recase(self, text: str) -> str:
        """Names written in capitals ("ELI GREY stands") in their name case, so the index finds them."""
        if not self.caps_names:
            return text

        def fix(m: re.Match[str]) -> str:
            word = m.group()
            return name_case(word) if word in self.caps_names and word.isupper() else word

        if text.isupper():  # a whole action in capitals ("!ZOË ADJUSTS THE TELESCOPE."): sentence case
            words = [name_case(w) if w.strip(".,;:!?") in self.caps_names else w.lower() for w in text.split()]
            text = " ".join(words)
            return text[:1].upper() + text[1:]
        text = _WORD.sub(fix, text)
        # "CAPTAIN Elias Grey": a rank in capitals before a name just re-cased is part of the name.
        return _RANK_BEFORE_NAME.sub(
            lambda m: name_case(m.group(1)) if name_case(m.group(1)).rstrip(".") in _TITLE_WORDS else m.group(1), text
        )

    def suggest(self) -> list[CharacterSuggestion]:
        run = self.run
        cues: Counter[str] = Counter()
        order: list[str] = []
        for el in self.elements:
            if el.kind == "line" and el.speaker:
                name = name_case(el.speaker)
                if name not in cues:
                    order.append(name)
                cues[name] += 1
        self.caps_names = {n.upper() for n in order} | {w for n in order for w in n.upper().split()}
        self.caps_names -= {w.upper() for w in STOPWORDS}
        known = self._library_keys()
        prose = "\n\n".join(self.recase(el.text) for el in self.elements if el.kind in ("action", "caption"))
        found = find_proper_names(prose, run.library_names()) if prose else []
        by_key: dict[str, NameCandidate] = {}
        for cand in found:
            for n in [cand.name, *cand.aliases]:
                by_key.setdefault(n.upper(), cand)
            parts = [p for p in cand.name.split() if p[:1].isupper() and not p.endswith(".")]
            if len(parts) > 1:
                by_key.setdefault(parts[0].upper(), cand)
                by_key.setdefault(parts[-1].upper(), cand)
        extra: list[NameCandidate] = []
        cue_owner: dict[str, NameCandidate] = {}
        for name in order:
            key = name.upper()
            if key in known or _without_title(key) in known:
                continue
            known_cand = by_key.get(key) or by_key.get(_without_title(key))
            if known_cand is None:
                cand = NameCandidate(name)  # pronouns unknown: "they" until the author says
                extra.append(cand)
                by_key[key] = cand
            else:
                cand = known_cand
                if name != cand.name and name not in cand.aliases:
                    cand.aliases.append(name)
            cand.mentions += cues[name]
            cue_owner[key] = cand
        suggestions = run.suggest(_unique([*found, *extra]))
        ids = {s.name: s.id for s in suggestions}
        for key, cand in cue_owner.items():
            if cand.name in ids:
                self.speaker_ids[key] = ids[cand.name]
        for key, cid in known.items():
            self.speaker_ids.setdefault(key, cid)
        return suggestions

    def _library_keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        parts: dict[str, set[str]] = {}
        for c in self.run.library:
            for n in c.all_names():
                keys.setdefault(n.upper(), c.id)
            words = [w for w in c.name.split() if w[:1].isupper()]
            for w in {words[0], words[-1]} if len(words) > 1 else set():
                parts.setdefault(w.upper(), set()).add(c.id)
        for key, ids in parts.items():
            if len(ids) == 1:
                keys.setdefault(key, next(iter(ids)))
        return keys

    def speaker(self, cue: str) -> str | None:
        key = name_case(cue).upper()
        return self.speaker_ids.get(key) or self.speaker_ids.get(_without_title(key))

    # ------------------------------------------------------------------ the walk

    def walk(self, title: str) -> ParsedStory:
        run = self.run
        suggestions = self.suggest()
        run._start_scene(None)
        beat: Beat | None = None
        page = 1 if self.comic else 0
        page_notes: list[str] = []
        total = len(self.elements) or 1
        for k, el in enumerate(self.elements):
            if k % 64 == 0:
                check_cancel(run.cancel)
                if run.progress:
                    run.progress(k / total)
            if el.kind == "scene":
                self._close(beat)
                beat = None
                run._start_scene(Heading(title=el.title, setting=el.setting, time_of_day=el.time_of_day))
                page = el.page
                continue
            if self.comic:
                if el.kind == "panel":
                    self._close(beat)
                    beat = self._panel(page, page_notes)
                    continue
                if el.kind == "note" and beat is None:
                    page_notes.append(el.text)  # a note before the page's first panel is about the page
                    continue
                if beat is None:
                    beat = self._panel(page, page_notes)  # a page written without panel headings: one panel
                self._fill(beat, el)
            else:
                self._screen(el)
        self._close(beat)
        run._finish_scene()
        if run.progress:
            run.progress(1.0)
        run._link_suggestions(suggestions)
        return run.result(title, suggestions, self.form)

    # ------------------------------------------------------------------ comic panels

    def _panel(self, page: int, page_notes: list[str]) -> Beat:
        beat = self.run._new_beat(action="")
        beat.page = page
        beat.notes = " ".join(page_notes)
        page_notes.clear()
        return beat

    def _fill(self, beat: Beat, el: ScriptElement) -> None:
        if el.kind == "action":
            beat.action = f"{beat.action} {self.recase(el.text)}".strip()
        elif el.kind == "caption":
            beat.caption = f"{beat.caption} {el.text}".strip()[:5_000]
        elif el.kind == "sfx":
            if len(beat.sfx) < _MAX_SFX:
                beat.sfx.append(el.text[:200])
        elif el.kind == "note":
            beat.notes = f"{beat.notes} {el.text}".strip()[:5_000]
        elif el.kind == "line" and len(beat.dialogue) < 64:
            sid = self.speaker(el.speaker)
            beat.dialogue.append(
                DialogueLine(speaker_id=sid, text=el.text[:5_000], kind=el.dialogue_kind, off_panel=el.off_panel)
            )
            if sid is None:
                self.run.warnings.append(f"{el.speaker!r}: a speaker the parser could not name")

    def _close(self, beat: Beat | None) -> None:
        """Finish a panel: characters, actor and target, shot, mood, setting from what it holds."""
        if beat is None:
            return
        run = self.run
        st = run.state
        assert st is not None
        beat.action = beat.action[:5_000]
        tokens = tokenize(beat.action)
        run.index.mark(tokens)
        run.resolver.resolve(tokens, split_clauses(tokens))  # "He" in a description is someone
        named = [cid for t in tokens for cid in t.char_ids]
        speakers = [d.speaker_id for d in beat.dialogue if d.speaker_id and not d.off_panel]
        chars = list(dict.fromkeys([*named, *speakers]))[:16]
        beat.characters = chars
        for cid in chars:
            if cid not in st.present:
                st.present.append(cid)
        actor = named[0] if named else (speakers[0] if speakers else None)
        beat.actor_id = actor
        beat.target_id = next((c for c in chars if c != actor), None) if actor else None
        words = [t.low for t in tokens]
        setting = find_setting(tokens, 0, len(tokens))
        if setting:
            st.setting = setting
        st.time_of_day = find_time_of_day(tokens, 0, len(tokens)) or st.time_of_day
        beat.setting, beat.time_of_day = st.setting[:2_000], st.time_of_day[:2_000]
        low = beat.action.lower()
        beat.shot = script_shot(low) or choose_shot(
            words, low, scene_start=len(run.scenes) == 0 and st.made == 1, new_place=bool(setting)
        )
        beat.mood = choose_mood(words)
        if not (beat.action.strip() or beat.dialogue or beat.caption.strip()):
            beat.action = "(no description)" if not beat.sfx else beat.sfx[0]  # keep the panel the script asks for
        run.resolver.note_mentions(chars)

    # ------------------------------------------------------------------ screenplay

    def _screen(self, el: ScriptElement) -> None:
        run = self.run
        st = run.state
        assert st is not None
        made = len(st.scene.beats)
        if el.kind == "action":
            run._paragraph(self.recase(el.text))
        elif el.kind == "caption":
            st.pending_caption.append(el.text)
        elif el.kind == "note":
            if st.scene.beats and not el.inline:  # a note on its own is about what came before it
                last = st.scene.beats[-1]
                last.notes = f"{last.notes} {el.text}".strip()[:5_000]
            else:
                self.pending_notes.append(el.text)  # "[[…]]" written in an action: about its first beat
            return
        elif el.kind == "line":
            sid = self.speaker(el.speaker)
            line = DialogueLine(speaker_id=sid, text=el.text[:5_000], kind=el.dialogue_kind, off_panel=el.off_panel)
            on_screen = st.scene.beats[-1] if st.scene.beats else None
            if el.off_panel and on_screen is not None and len(on_screen.dialogue) < 4:
                on_screen.dialogue.append(line)  # a voice from off-screen is heard in the panel on screen
            else:
                run._attach(line, [], [])
            if sid is None:
                run.warnings.append(f"{el.speaker!r}: a speaker the parser could not name")
        beats = st.scene.beats
        if self.pending_notes and len(beats) > made:
            beats[made].notes = f"{beats[made].notes} {' '.join(self.pending_notes)}".strip()[:5_000]
            self.pending_notes.clear()


# Camera directions writers open a panel description with; they say the shot outright.
_SHOT_DIRECTIONS = (
    (re.compile(r"^(?:extreme close|ecu\b|extreme cu\b|macro\b)"), ShotType.EXTREME_CLOSE_UP),
    (re.compile(r"^(?:over[- ]the[- ]shoulder|ots\b)"), ShotType.OVER_THE_SHOULDER),
    (re.compile(r"^(?:close[- ]?up|close on|closeup|close shot|cu\b|tight on|tight shot)"), ShotType.CLOSE_UP),
    (re.compile(r"^(?:establishing|est\.? shot)"), ShotType.ESTABLISHING),
    (re.compile(r"^(?:wide|long shot|full shot|ws\b|aerial|panorama|big panel|splash)"), ShotType.WIDE),
    (re.compile(r"^(?:medium|mid[- ]shot|ms\b)"), ShotType.MEDIUM),
)


def script_shot(description_low: str) -> ShotType | None:
    """The shot a panel description names in its first words ("Close on Jacob…"), or None."""
    text = description_low.lstrip(" *_([")
    for pattern, shot in _SHOT_DIRECTIONS:
        if pattern.match(text):
            return shot
    return None


def _without_title(key: str) -> str:
    """ "CAPT. GREY" → "GREY": cues often carry a rank the descriptions leave out."""
    words = key.split()
    return " ".join(words[1:]) if len(words) > 1 and words[0].rstrip(".") in _RANKS else key


_RANKS = frozenset(
    "MR MRS MS MISS DR PROF CAPT CAPTAIN SGT SERGEANT LT LIEUTENANT COL COLONEL GEN GENERAL DET DETECTIVE "
    "OFFICER AGENT SIR LADY LORD KING QUEEN PRINCE PRINCESS FATHER SISTER BROTHER AUNT UNCLE".split()
)


def _unique(cands: list[NameCandidate]) -> list[NameCandidate]:
    """Each candidate once (a cue merged into a description name is the same object)."""
    seen: set[int] = set()
    out = []
    for c in cands:
        if id(c) not in seen:
            seen.add(id(c))
            out.append(c)
    return out

"""The rule-based story parser (the default): story text → scenes → beats, no model needed.

Pipeline per paragraph: cut out quotes → split sentences → find names and pronouns → split
clauses (one visible action each) → resolve pronouns → one beat per clause, with shot, mood,
setting and time cues → attribute each quote to a speaker and attach it to that speaker's beat.
Everything is dictionary look-ups and precompiled regexes, linear in the text length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from comic_studio.core.model import Beat, Character, DialogueKind, DialogueLine, Pronouns, Scene, ShotType
from comic_studio.parsing.base import CancelCallback, ProgressCallback, check_cancel
from comic_studio.parsing.clauses import Clause, split_clauses
from comic_studio.parsing.cues import (
    choose_mood,
    choose_shot,
    find_setting,
    find_time_of_day,
    is_caption_sentence,
    is_time_jump,
    place_intro,
)
from comic_studio.parsing.forms import StoryForm, detect_form, story_form
from comic_studio.parsing.lexicon import ACTION_VERBS, IRREGULAR_PAST, SKIPPABLE, SPEECH_VERBS, VERB_BASES
from comic_studio.parsing.mentions import CharacterIndex, Token, tokenize
from comic_studio.parsing.names import NameCandidate, find_proper_names, most_mentioned, names_left_out
from comic_studio.parsing.pronouns import PronounResolver
from comic_studio.parsing.schema import MAX_SUGGESTIONS, CharacterSuggestion, FormName, ParsedStory, provisional_id
from comic_studio.parsing.text import (
    Heading,
    Quote,
    extract_quotes,
    placeholders,
    split_scenes,
    split_sentences,
    split_title,
    strip_placeholders,
)

_TALK_VERB = {
    DialogueKind.SPEECH: "speaks",
    DialogueKind.SHOUT: "shouts",
    DialogueKind.WHISPER: "whispers",
    DialogueKind.THOUGHT: "thinks",
}
_MAX_LINES_PER_BEAT = 4  # more balloons than this do not fit a panel
_MAX_CAPTION = 600  # characters of narration queued before it gets a caption panel of its own
# Words allowed in a pure speech tag besides subject and verb: "Bella said quietly to Edward".
_TAG_FILLER = frozenset({"to", "at", "back", "out", "up", "again", "aloud", "then", "and", "as", "if"})


@dataclass
class _QuoteEvent:
    quotes: list[Quote]
    speaker: str | None
    kind: DialogueKind | None
    tagged: bool
    sentence_beats: list[Beat]
    position: int  # index among the paragraph's events


@dataclass
class _SceneState:
    scene: Scene
    setting: str = ""
    time_of_day: str = ""
    pending_caption: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)  # distinct speakers, most recent last
    present: list[str] = field(default_factory=list)  # characters seen in this scene
    made: int = 0  # beats created so far (some wait in the paragraph before they are emitted)


class RuleParser:
    """``form``: "auto" (default: :func:`~comic_studio.parsing.forms.detect_form` decides), "prose",
    "comic" (a comic full script) or "screenplay" (Fountain or loose screenplay text)."""

    name = "rules"

    def __init__(self, form: str | StoryForm = StoryForm.AUTO):
        self.form = story_form(form)

    def parse(
        self,
        story_text: str,
        characters: list[Character],
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
    ) -> ParsedStory:
        form = detect_form(story_text) if self.form is StoryForm.AUTO else self.form
        if form is StoryForm.PROSE:
            return _Run(characters, progress, cancel).run(story_text)
        from comic_studio.parsing.scripts import run_script  # the script forms' assembly

        return run_script(_Run(characters, progress, cancel), story_text, form)


class _Run:
    """One parse: the mutable state lives here, never in module globals (parsers run in threads)."""

    def __init__(self, characters: list[Character], progress: ProgressCallback | None, cancel: CancelCallback | None):
        self.library = list(characters)
        self.progress = progress
        self.cancel = cancel
        self.warnings: list[str] = []
        self.scenes: list[Scene] = []
        self.state: _SceneState | None = None
        self.carry_speaker: str | None = None  # speaker of an unterminated quote (continues)

    # ------------------------------------------------------------------ top level

    def run(self, text: str) -> ParsedStory:
        if not text.strip():
            return ParsedStory(parser="rules")
        title, text = split_title(text)
        suggestions = self._suggest(text)
        raw_scenes = split_scenes(text)
        total = sum(len(s.paragraphs) for s in raw_scenes) or 1
        done = 0
        for raw in raw_scenes:
            self._start_scene(raw.heading)
            for para in raw.paragraphs:
                if done % 64 == 0:
                    check_cancel(self.cancel)
                    if self.progress:
                        self.progress(done / total)
                self._paragraph(para)
                done += 1
        self._finish_scene()
        if self.progress:
            self.progress(1.0)
        self._link_suggestions(suggestions)
        return self.result(title, suggestions, StoryForm.PROSE)

    def result(self, title: str, suggestions: list[CharacterSuggestion], form: StoryForm) -> ParsedStory:
        return ParsedStory(
            title=_clip(title, 200),
            scenes=self.scenes,
            suggestions=suggestions,
            parser="rules",
            form=cast(FormName, form.value),
            warnings=self.warnings[:10_000],
        )

    def library_names(self) -> set[str]:
        """Every name and alias of the library, and the capitalised words of each."""
        exclude: set[str] = set()
        for c in self.library:
            for n in c.all_names():
                exclude.add(n)
                exclude.update(w for w in n.split() if w[:1].isupper())
        return exclude

    def _suggest(self, text: str) -> list[CharacterSuggestion]:
        """Unknown proper names become suggested characters with provisional ``new:`` ids."""
        return self.suggest(find_proper_names(text, self.library_names()))

    def suggest(self, found: list[NameCandidate]) -> list[CharacterSuggestion]:
        """Suggested characters (provisional ``new:`` ids) for ``found``; builds the name index."""
        suggestions: list[CharacterSuggestion] = []
        provisional: list[Character] = []
        used = {c.id for c in self.library}
        kept = most_mentioned(found, MAX_SUGGESTIONS - len(self.library))
        if len(kept) < len(found):
            self.warnings.append(names_left_out(len(found), len(kept)))
        for cand in kept:
            pid, k = provisional_id(cand.name), 2
            while pid in used:
                pid, k = f"{provisional_id(cand.name)}-{k}", k + 1
            used.add(pid)
            suggestions.append(
                CharacterSuggestion(id=pid, name=cand.name, mentions=cand.mentions, pronouns=cand.pronouns)
            )
            provisional.append(
                Character(id=pid, name=cand.name, aliases=cand.aliases, pronouns=cand.pronouns or Pronouns.THEY)
            )
        self.index = CharacterIndex(self.library + provisional)
        for sug in suggestions:
            if sug.pronouns is None:
                self.index.pronouns_of[sug.id] = ""  # unknown: never the answer to a pronoun
        self.resolver = PronounResolver(self.index)
        return suggestions

    def _link_suggestions(self, suggestions: list[CharacterSuggestion]) -> None:
        first: dict[str, str] = {}
        for scene in self.scenes:
            for beat in scene.beats:
                for cid in [*beat.characters, *(d.speaker_id for d in beat.dialogue if d.speaker_id)]:
                    first.setdefault(cid, beat.id)
        for sug in suggestions:
            sug.first_beat_id = first.get(sug.id)

    # ------------------------------------------------------------------ scenes

    def _start_scene(self, heading: Heading | None, title: str = "") -> None:
        self._finish_scene()
        h = heading or Heading()
        scene = Scene(
            title=_clip(title or h.title, 2_000),
            setting=_clip(h.setting, 2_000),
            time_of_day=_clip(h.time_of_day, 2_000),
        )
        self.state = _SceneState(scene, setting=h.setting, time_of_day=h.time_of_day)
        self.resolver.reset_scene()
        self.carry_speaker = None

    def _finish_scene(self) -> None:
        st = self.state
        if st is None:
            return
        if st.pending_caption:
            self._new_beat(action="")  # _new_beat consumes the pending narration as its caption
        self.state = None
        if st.scene.beats:
            st.scene.setting = _clip(
                st.scene.setting or next((b.setting for b in st.scene.beats if b.setting), ""), 2_000
            )
            st.scene.time_of_day = _clip(
                st.scene.time_of_day or next((b.time_of_day for b in st.scene.beats if b.time_of_day), ""), 2_000
            )
            self.scenes.append(st.scene)

    def _maybe_jump(self, first_sentence: str) -> None:
        """A blank line starts a new scene only with a time or place change at its start."""
        st = self.state
        assert st is not None
        if not st.scene.beats:
            return
        if is_time_jump(first_sentence):
            self._start_scene(None, title=first_sentence.split(",")[0].strip().rstrip("."))
            return
        place = place_intro(first_sentence)
        if place and place != st.setting:
            self._start_scene(None, title=first_sentence.split(",")[0].strip())
            self.state.setting = place  # type: ignore[union-attr]

    # ------------------------------------------------------------------ paragraphs

    def _paragraph(self, paragraph: str) -> None:
        masked, quotes = extract_quotes(paragraph)
        sentences = split_sentences(masked)
        if not sentences:
            return
        self._maybe_jump(strip_placeholders(sentences[0]).strip())
        events: list[Beat | _QuoteEvent] = []
        for sentence in sentences:
            qids = placeholders(sentence)
            narration = " ".join(strip_placeholders(sentence).split())
            tokens = tokenize(narration)
            self.index.mark(tokens)
            clauses = split_clauses(tokens)
            subjects = self.resolver.resolve(tokens, clauses)
            if not qids and events and isinstance(events[-1], _QuoteEvent) and not events[-1].tagged:
                # '"Sit down." The captain said.': a tag in a sentence of its own belongs to the
                # quote before it; it is neither a caption nor an action.
                speaker, kind, tag_clauses = self._find_tag(tokens, clauses, subjects)
                if kind is not None and (tag_clauses == set(range(len(clauses))) or speaker == UNNAMED):
                    last = events[-1]
                    last.speaker, last.kind, last.tagged = speaker, kind, speaker is not None
                    if tag_clauses == set(range(len(clauses))):
                        continue  # "The stranger said it without looking up." keeps its beat
            if not qids:
                if is_caption_sentence(tokens, narration):
                    self._note_time_place(tokens)
                    self._add_caption(narration, events)
                    continue
                events.extend(self._clause_beats(tokens, clauses, subjects, narration, None))
                continue
            speaker, kind, tag_clauses = self._find_tag(tokens, clauses, subjects)
            beats = self._clause_beats(tokens, clauses, subjects, narration, tag_clauses)
            events.extend(beats)
            events.append(
                _QuoteEvent([quotes[q] for q in qids], speaker, kind, speaker is not None, beats, len(events))
            )
        self._emit(events)
        last_quote = quotes[-1] if quotes else None
        if last_quote is None or not last_quote.unterminated:
            self.carry_speaker = None

    def _add_caption(self, text: str, sink: list[Beat] | list[Beat | _QuoteEvent]) -> None:
        """Queue narration for the next beat's caption; a long run of narration becomes a
        caption-only panel of its own (appended to ``sink``, in text order) rather than an
        unreadable wall of text."""
        st = self.state
        assert st is not None
        if text:
            st.pending_caption.append(text)
        if sum(len(c) for c in st.pending_caption) > _MAX_CAPTION:
            sink.append(self._new_beat(action="", emit=False))  # type: ignore[arg-type]

    def _note_time_place(self, tokens: list[Token]) -> None:
        st = self.state
        assert st is not None
        st.time_of_day = find_time_of_day(tokens, 0, len(tokens)) or st.time_of_day
        st.setting = find_setting(tokens, 0, len(tokens)) or st.setting

    # ------------------------------------------------------------------ beats from clauses

    def _clause_beats(
        self,
        tokens: list[Token],
        clauses: list[Clause],
        subjects: list[tuple[str, ...]],
        narration: str,
        tag_clauses: set[int] | None,
    ) -> list[Beat]:
        st = self.state
        assert st is not None
        beats: list[Beat] = []
        intro_caption = ""
        if clauses and clauses[0].intro_end >= 0 and is_time_jump(narration):
            intro_caption = narration[: tokens[clauses[0].intro_end].start].strip() + "…"
        for ci, clause in enumerate(clauses):
            if tag_clauses and ci in tag_clauses:
                continue
            subj = subjects[ci]
            has_chars = bool(subj) or any(tokens[i].char_ids for i in range(clause.start, clause.end))
            has_action = any(tokens[i].low in ACTION_VERBS for i in range(clause.start, clause.end))
            if not any(tokens[i].text[:1].isalpha() for i in range(clause.start, clause.end)):
                continue
            if not has_chars and (not has_action or (ci == 0 and clause.end < len(tokens) and is_time_jump(narration))):
                # "Back in the present, Mara …": the time phrase is narration ("present" is a verb too)
                self._add_caption(self._text(tokens, clause, subj, narration, clause.start), beats)
                continue
            skip_to = clause.intro_end + 1 if ci == 0 and intro_caption else clause.start
            action = self._text(tokens, clause, subj, narration, skip_to)
            chars = list(subj)
            for i in range(clause.start, clause.end):
                for cid in tokens[i].char_ids:
                    if cid not in chars:
                        chars.append(cid)
            actor = subj[0] if subj else None
            after = (max(clause.subject) + 1) if clause.subject else clause.start
            target = next(
                (cid for i in range(after, clause.end) for cid in tokens[i].char_ids if cid not in subj), None
            )
            new_place = find_setting(tokens, clause.start, clause.end)
            if new_place:
                st.setting = new_place
            st.time_of_day = find_time_of_day(tokens, clause.start, clause.end) or st.time_of_day
            words = [tokens[i].low for i in range(clause.start, clause.end)]
            eyes = False
            if clause.subject:
                owner = tokens[clause.subject[-1]]
                nxt = (owner.span_end if owner.span_end >= 0 else clause.subject[-1]) + 1
                eyes = (
                    (owner.possessive or owner.role == "poss")
                    and nxt < clause.end
                    and tokens[nxt].low in ("eyes", "eye")
                )
            shot = choose_shot(
                words, action.lower(), scene_start=st.made == 0, new_place=bool(new_place), eyes_focus=eyes
            )
            caption = intro_caption if ci == 0 else ""
            beats.append(
                self._new_beat(
                    action=action,
                    characters=chars,
                    actor=actor,
                    target=target,
                    shot=shot,
                    mood=choose_mood(words),
                    caption=caption,
                    emit=False,
                )
            )
        return beats

    def _names(self, ids: tuple[str, ...]) -> str:
        names = [self.index.names_by_id.get(c, c) for c in ids]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def _text(
        self,
        tokens: list[Token],
        clause: Clause,
        subj: tuple[str, ...],
        narration: str,
        start: int,
        end_mark: bool = True,
    ) -> str:
        """The clause's words with pronouns replaced by full names, as one tidy sentence."""
        out: list[str] = []
        if clause.inherits_subject and subj:
            out.append(self._names(subj) + " ")
        pos = tokens[start].start if start < clause.end else len(narration)
        agree_at = -1
        for i in range(start, clause.end):
            tok = tokens[i]
            if i == agree_at:
                verb = _third_person(tok.text)
                if verb != tok.text:
                    out.append(narration[pos : tok.start] + verb)
                    pos = tok.end
            if tok.pronoun and tok.char_ids:
                out.append(narration[pos : tok.start])
                if tok.role == "refl" and tuple(tok.char_ids) == tuple(subj):
                    out.append(tok.text)
                else:
                    name = self._names(tok.char_ids)
                    out.append(name + "'s" if tok.role in ("poss", "posspro") else name)
                    if tok.pronoun == "they" and tok.role == "subj" and len(tok.char_ids) == 1:
                        agree_at = i + 1  # singular they: "They hum" → "Sam hums"
                pos = tok.end
        last = tokens[clause.end - 1].end if clause.end > start else pos
        out.append(narration[pos:last])
        text = "".join(out).strip().strip(",;:—– ").strip()
        if not text:
            return ""
        text = text[0].upper() + text[1:]
        if end_mark and text[-1] not in ".!?…\"'”’":
            text += "."
        return text

    def _new_beat(
        self,
        *,
        action: str,
        characters: list[str] | None = None,
        actor: str | None = None,
        target: str | None = None,
        shot: ShotType = ShotType.MEDIUM,
        mood: str = "",
        caption: str = "",
        emit: bool = True,
    ) -> Beat:
        st = self.state
        assert st is not None
        captions = [*st.pending_caption, caption] if caption else st.pending_caption
        st.pending_caption = []
        chars = characters or []
        for cid in chars:
            if cid not in st.present:
                st.present.append(cid)
        beat = Beat(
            action=_clip(action, 5_000),
            characters=chars[:16],
            actor_id=actor if actor in chars[:16] else None,
            target_id=target if target in chars[:16] and target != actor else None,
            setting=_clip(st.setting, 2_000),
            time_of_day=_clip(st.time_of_day, 2_000),
            shot=shot,
            mood=mood,
            caption=_clip(" ".join(c for c in captions if c), 5_000),
            source="rules",
        )
        st.made += 1
        if emit:
            st.scene.beats.append(beat)
        return beat

    # ------------------------------------------------------------------ dialogue

    def _find_tag(
        self, tokens: list[Token], clauses: list[Clause], subjects: list[tuple[str, ...]]
    ) -> tuple[str | None, DialogueKind | None, set[int]]:
        """Speaker and kind from a speech tag ("said Edward", "she whispered"); which clauses are
        nothing but the tag (they make no beat of their own)."""
        for ci, clause in enumerate(clauses):
            verb = next(
                (
                    i
                    for i in range(clause.start, clause.end)
                    if tokens[i].low in SPEECH_VERBS and not tokens[i].text[:1].isupper() and not tokens[i].char_ids
                ),
                -1,
            )
            if verb < 0:
                continue
            subj = subjects[ci]
            if not subj and verb + 1 < clause.end and tokens[verb + 1].char_ids:
                subj = tokens[verb + 1].char_ids  # "said Edward" missed as subject
            if not subj:
                pronoun = next((tokens[i] for i in range(clause.start, verb) if tokens[i].role == "subj"), None)
                if pronoun is not None and verb - clause.start <= 3:
                    # '"Mine," she said.' with "she" unresolved (a name of unknown pronouns): still
                    # a tag, never a caption; the speaker is inferred like an untagged line's.
                    return None, SPEECH_VERBS[tokens[verb].low], {ci}
                nominal = _nominal_tag(tokens, clause.start, clause.end, verb)
                if nominal:
                    # "the captain said." with no captain in the library: a tag all the same. The
                    # line is someone's we cannot name: it must not become a caption, nor be
                    # given to whoever acted last. "the stranger said it softly, looking up"
                    # names the speaker and keeps its beat.
                    return UNNAMED, SPEECH_VERBS[tokens[verb].low], ({ci} if nominal == "pure" else set())
                continue
            kind = SPEECH_VERBS[tokens[verb].low]
            in_name = {
                k
                for i in range(clause.start, clause.end)
                if tokens[i].char_ids
                for k in range(i, max(i, tokens[i].span_end) + 1)
            }
            pure = all(
                i in in_name
                or tokens[i].char_ids
                or i == verb
                or tokens[i].low in SKIPPABLE
                or tokens[i].low.endswith("ly")
                or tokens[i].low in _TAG_FILLER
                or not tokens[i].text[:1].isalpha()
                for i in range(clause.start, clause.end)
            )
            # "Bella sighs." is a visible action as well as a tag: it keeps its beat.
            return subj[0], kind, ({ci} if pure and tokens[verb].low not in ACTION_VERBS else set())
        return None, None, set()

    def _emit(self, events: list[Beat | _QuoteEvent]) -> None:
        """Append the paragraph's beats to the scene in text order, attaching each quote as it
        comes (untagged quotes get their speaker from the paragraph, then the exchange)."""
        st = self.state
        assert st is not None
        quote_events = [e for e in events if isinstance(e, _QuoteEvent)]
        tagged = {e.speaker for e in quote_events if e.tagged}
        para_beats: list[Beat] = []
        resolved: str | None = None
        resolved_kind: DialogueKind | None = None
        first_quote = True
        for ev in events:
            if isinstance(ev, Beat):
                st.scene.beats.append(ev)
                para_beats.append(ev)
                continue
            if ev.speaker is None and resolved == UNNAMED:
                ev.speaker = UNNAMED  # the unnamed speaker goes on in this paragraph
            elif ev.speaker is None:
                if first_quote and self.carry_speaker:
                    ev.speaker = self.carry_speaker
                elif (after := self._actor_just_before(events, ev.position)) is not None and after != resolved:
                    ev.speaker = after  # '"Where were you?" Mara asked. Theo shrugged. "Out."': Theo answers
                elif resolved is not None:
                    ev.speaker = resolved  # an untagged line continues the paragraph's last speaker
                elif len(tagged) == 1:
                    ev.speaker = next(iter(tagged))
                else:
                    ev.speaker = self._nearest_actor(events, ev.position) or self._alternate()
            first_quote = False
            unnamed = ev.speaker == UNNAMED
            if unnamed:
                ev.speaker = None
                ev.kind = ev.kind or (resolved_kind if resolved == UNNAMED else None)
                resolved, resolved_kind = UNNAMED, ev.kind
            if ev.speaker is not None and ev.speaker == resolved and ev.kind is None:
                ev.kind = resolved_kind  # '"Jacob knows," Edward whispered. "He saw us."': still whispering
            if ev.speaker is not None:
                resolved, resolved_kind = ev.speaker, ev.kind
            for quote in ev.quotes:
                text = quote.text[:-1] + "." if quote.text.endswith(",") else quote.text
                if not text.strip(" .,"):
                    continue
                kind = quote.kind_hint or ev.kind or _kind_from_text(text)
                line = DialogueLine(speaker_id=ev.speaker, text=text[:5_000], kind=kind)
                self._attach(line, ev.sentence_beats, para_beats)
                if quote.unterminated:
                    self.carry_speaker = ev.speaker
            if ev.speaker is None and not unnamed:
                self.warnings.append(
                    f"scene {len(self.scenes) + 1}: could not tell who says “{ev.quotes[0].text[:40]}”"
                )

    def _actor_just_before(self, events: list[Beat | _QuoteEvent], position: int) -> str | None:
        """The actor of the action sentence right before an untagged quote, when a quote came
        earlier in the paragraph (an action between two lines hands the turn to its actor)."""
        if position == 0 or not any(isinstance(e, _QuoteEvent) for e in events[:position]):
            return None
        before = events[position - 1]
        return before.actor_id if isinstance(before, Beat) else None

    def _nearest_actor(self, events: list[Beat | _QuoteEvent], position: int) -> str | None:
        for e in reversed(events[:position]):
            if isinstance(e, Beat) and e.actor_id:
                return e.actor_id
        for e in events[position:]:
            if isinstance(e, Beat) and e.actor_id:
                return e.actor_id
        return None

    def _alternate(self) -> str | None:
        """Untagged line in a two-person exchange: the one who spoke before the last speaker."""
        st = self.state
        assert st is not None
        if len(st.speakers) >= 2:
            return st.speakers[-2]
        if len(st.speakers) == 1:
            return self._listener(st.speakers[0])
        return None

    def _listener(self, speaker: str) -> str | None:
        st = self.state
        assert st is not None
        for s in reversed(st.speakers):
            if s != speaker:
                return s
        for cid in self.resolver.recency:
            if cid != speaker and cid in st.present:
                return cid
        return None

    def _attach(self, line: DialogueLine, sentence_beats: list[Beat], para_beats: list[Beat]) -> None:
        st = self.state
        assert st is not None
        speaker = line.speaker_id
        beat = None
        if speaker is None:
            last = st.scene.beats[-1] if st.scene.beats else None
            beat = last if last is not None and any(b is last for b in para_beats) else None
        else:
            beat = next((b for b in sentence_beats if b.actor_id == speaker), None)
            last = st.scene.beats[-1] if st.scene.beats else None
            if beat is None and last is not None and last.actor_id == speaker:
                beat = last
            if beat is None:
                beat = next((b for b in reversed(para_beats) if b.actor_id == speaker), None)
        if beat is not None and len(beat.dialogue) >= _MAX_LINES_PER_BEAT:
            beat = None
        if beat is None:
            beat = self._talking_beat(speaker, line.kind)
        beat.dialogue.append(line)
        if speaker is not None:
            if speaker in st.speakers:
                st.speakers.remove(speaker)
            st.speakers.append(speaker)
            self.resolver.note_mentions([speaker])

    def _talking_beat(self, speaker: str | None, kind: DialogueKind) -> Beat:
        if speaker is None:
            return self._new_beat(action="")
        listener = None if kind == DialogueKind.THOUGHT else self._listener(speaker)
        name = self.index.names_by_id.get(speaker, speaker)
        action = f"{name} {_TALK_VERB[kind]}" + (
            f" to {self.index.names_by_id.get(listener, listener)}." if listener else "."
        )
        chars = [speaker] + ([listener] if listener else [])
        shot = ShotType.CLOSE_UP if kind in (DialogueKind.THOUGHT, DialogueKind.WHISPER) else ShotType.MEDIUM
        return self._new_beat(action=action, characters=chars, actor=speaker, target=listener, shot=shot)


_THIRD_PERSON = {
    "are": "is",
    "were": "was",
    "have": "has",
    "do": "does",
    "aren't": "isn't",
    "weren't": "wasn't",
    "don't": "doesn't",
}


def _third_person(verb: str) -> str:
    """Present-tense verb after a singular subject: "hum" → "hums", "are" → "is"."""
    if verb in _THIRD_PERSON:
        return _THIRD_PERSON[verb]
    if verb not in VERB_BASES or verb in IRREGULAR_PAST:
        return verb
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _clip(text: str, limit: int) -> str:
    """Fit a model field's length limit, cutting at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"


UNNAMED = "\x00unnamed"
"""Speaker of a line whose tag names no character ("the stranger said"): spoken, but by nobody the
library or the suggestions know, so the line gets no speaker rather than a guessed one."""
_TAG_DETERMINERS = frozenset("the a an his her their my our your its this that one another some".split())


def _nominal_tag(tokens: list[Token], start: int, end: int, verb: int) -> str:
    """A speech tag whose subject is a noun phrase ("the captain said", "said an old woman",
    "a voice whispered softly"): a determiner, a few words, the speech verb. "pure" when only
    fillers follow, "action" when more follows ("said it without looking up"), "" otherwise."""
    before = [t for t in tokens[start:verb] if t.text[:1].isalpha()]
    after = [t for t in tokens[verb + 1 : end] if t.text[:1].isalpha()]
    if before:
        phrase, rest = before, after
    else:  # inverted: "said the captain"
        phrase, rest = after, []
        while rest == [] and phrase and phrase[-1].low.endswith("ly"):
            phrase = phrase[:-1]
    if not phrase or phrase[0].low not in _TAG_DETERMINERS or len(phrase) > 4:
        return ""
    if any(t.low in ACTION_VERBS or t.low in SPEECH_VERBS for t in phrase):
        return ""
    return "pure" if all(t.low.endswith("ly") or t.low in _TAG_FILLER or t.low in SKIPPABLE for t in rest) else "action"


def _kind_from_text(text: str) -> DialogueKind:
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 3 and all(c.isupper() for c in letters) and "!" in text:
        return DialogueKind.SHOUT
    return DialogueKind.SPEECH

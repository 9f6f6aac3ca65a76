"""Long stories → windows that fit the model's context, and the state carried between windows.

A window is a run of whole paragraphs (a paragraph longer than the budget is cut at sentence
ends) of one scene; a scene starts a new window with its heading in front. A
window that opens mid-scene is marked ``continues_scene`` so its first scene is appended to the
previous one. Between windows the parse carries a short :class:`RunningState` — where we are, who
was on stage most recently (so "she" at the top of a window still resolves), and the last beats —
instead of the whole story, which would not fit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from comic_studio.core.model import Character, Pronouns, Scene
from comic_studio.parsing.text import Heading, split_scenes, split_sentences, split_title

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate: ~4 bytes per token for English BPE vocabularies."""
    return max(1, len(text.encode("utf-8")) // 4)


@dataclass
class Piece:
    text: str
    scene_start: bool = False
    heading: Heading | None = None

    def render(self) -> str:
        # Headings are re-written in one form both the model and the rule parser read as a heading.
        if self.heading is not None:
            marker = f"## {self.heading.title}" if self.heading.title else "* * *"
            return marker + ("\n\n" + self.text if self.text else "")
        return self.text


@dataclass
class StoryWindow:
    pieces: list[Piece]
    index: int = 0

    @property
    def continues_scene(self) -> bool:
        return bool(self.pieces) and not self.pieces[0].scene_start

    @property
    def text(self) -> str:
        return "\n\n".join(p.render() for p in self.pieces)

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def first_heading(self) -> Heading | None:
        return self.pieces[0].heading if self.pieces else None

    def halves(self) -> list[StoryWindow]:
        """The window cut in two (between paragraphs, else between sentences) for the smaller retry.
        A window that cannot be cut (one sentence) comes back alone."""
        if len(self.pieces) > 1:
            mid = len(self.pieces) // 2
            return [StoryWindow(self.pieces[:mid], self.index), StoryWindow(self.pieces[mid:], self.index)]
        piece = self.pieces[0]
        sentences = split_sentences(piece.text)
        if len(sentences) < 2:
            return [self]
        mid = len(sentences) // 2
        first = Piece(" ".join(sentences[:mid]), piece.scene_start, piece.heading)
        return [StoryWindow([first], self.index), StoryWindow([Piece(" ".join(sentences[mid:]))], self.index)]


def _cut_long(text: str, budget: int, count: TokenCounter) -> list[str]:
    """Cut an over-long paragraph at sentence ends (and a run-on sentence at word boundaries)."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in split_sentences(text) or [text]:
        units = [sentence]
        if count(sentence) > budget:
            words = sentence.split()
            step = max(1, len(words) * budget // max(1, count(sentence)))
            units = [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
        for unit in units:
            if current and count(" ".join([*current, unit])) > budget:
                chunks.append(" ".join(current))
                current = []
            current.append(unit)
    if current:
        chunks.append(" ".join(current))
    return chunks


def split_windows(text: str, budget_tokens: int, count: TokenCounter = approx_tokens) -> tuple[str, list[StoryWindow]]:
    """Split a story into windows of at most ``budget_tokens`` story tokens each.

    Returns ``(title, windows)``. Each scene starts a new window."""
    if budget_tokens < 16:
        raise ValueError(f"a window budget of {budget_tokens} tokens is too small to hold a sentence")
    title, rest = split_title(text)
    pieces: list[Piece] = []
    for raw in split_scenes(rest):
        marker_cost = count(Piece("", True, raw.heading).render()) + 2 if raw.heading is not None else 0
        for i, para in enumerate(raw.paragraphs or [""]):
            room = max(8, budget_tokens - (marker_cost if i == 0 else 0))  # the heading travels with it
            for j, chunk in enumerate(_cut_long(para, room, count) if para else [""]):
                start = i == 0 and j == 0
                pieces.append(Piece(chunk, scene_start=start, heading=raw.heading if start else None))
    pieces = [p for p in pieces if p.text.strip() or (p.heading and p.heading.title)]
    windows: list[StoryWindow] = []
    current: list[Piece] = []
    used = 0
    for piece in pieces:
        cost = count(piece.render()) + 1
        # Every scene starts a window: the model then never has to find a heading mid-text, and a
        # scene's beats can never be merged into the previous scene by a model that skipped it.
        if current and (used + cost > budget_tokens or piece.scene_start):
            windows.append(StoryWindow(current, len(windows)))
            current, used = [], 0
        current.append(piece)
        used += cost
    if current:
        windows.append(StoryWindow(current, len(windows)))
    return title, windows


@dataclass
class RunningState:
    """What the next window needs to know about the story so far."""

    library: list[Character]
    last_beats: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    on_stage: list[tuple[str, str]] = field(default_factory=list)
    """(name, pronouns) most recent first."""
    setting: str = ""
    time_of_day: str = ""

    def update(self, scenes: list[Scene], names: dict[str, tuple[str, str]]) -> None:
        """Fold a window's scenes in; ``names`` maps character id → (name, pronouns)."""
        for scene in scenes:
            self.setting = scene.setting or self.setting
            self.time_of_day = scene.time_of_day or self.time_of_day
            for beat in scene.beats:
                for cid in [*reversed(beat.characters), *(ln.speaker_id for ln in beat.dialogue if ln.speaker_id)]:
                    if cid in names:
                        entry = names[cid]
                        if entry in self.on_stage:
                            self.on_stage.remove(entry)
                        self.on_stage.insert(0, entry)
                summary = beat.action or beat.caption
                for line in beat.dialogue[:2]:
                    who = names.get(line.speaker_id or "", ("someone", ""))[0]
                    summary += f' {who}: "{line.text[:120]}"'
                if summary.strip():
                    self.last_beats.append(summary.strip()[:300])
        del self.on_stage[8:]

    def context(self) -> str:
        lines = []
        where = ", ".join(x for x in (self.setting, self.time_of_day) if x)
        if where:
            lines.append(f"Current place and time: {where}.")
        if self.on_stage:
            lines.append(
                "Characters seen most recently (a pronoun at the start of the text means the first match): "
                + "; ".join(f"{n} ({p})" for n, p in self.on_stage)
                + "."
            )
        if self.last_beats:
            lines.append("Last beats:")
            lines.extend(f"- {b}" for b in self.last_beats)
        return "\n".join(lines)


def names_by_id(characters: list[Character], suggestions: dict[str, object]) -> dict[str, tuple[str, str]]:
    """id → (name, pronouns) for the library and the suggestions found so far."""
    out = {c.id: (c.name, c.pronouns.value) for c in characters}
    for sid, sug in suggestions.items():
        pron = getattr(sug, "pronouns", None)
        out[sid] = (getattr(sug, "name", sid), (pron or Pronouns.THEY).value)
    return out

"""One window through the model, with the recovery ladder the issue asks for.

1. Ask the model for the window; validate the answer strictly and convert it to beats.
2. If that fails (invalid or empty answer, context overflow, the window's time limit, a broken
   beat), cut the window in two and ask again, once, for each half.
3. A half that still fails is parsed by the rule parser; its beats keep ``source="rules"`` so
   the outliner can mark them, and a warning says which text and why.

Cancellation and an unusable model/server are not window failures: they end the parse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from comic_studio.core.model import Character, Scene
from comic_studio.parsing.base import CancelCallback
from comic_studio.parsing.errors import ParseCancelled, ParseError
from comic_studio.parsing.llm.convert import NameResolver, convert_window
from comic_studio.parsing.llm.prompt import build_messages, decode_window_output, window_schema
from comic_studio.parsing.llm.windows import RunningState, StoryWindow, names_by_id


class WindowFailure(ParseError):
    """The model could not produce a usable answer for one window (recoverable)."""


class ContextOverflow(WindowFailure):
    """The window plus its prompt (or the answer) does not fit the model's context."""


class WindowTimeout(WindowFailure):
    """The window took longer than its time limit."""


class ModelUnavailable(ParseError):
    """The model cannot be used at all (file will not load, server unreachable): the parse stops."""


@dataclass
class GenerationControl:
    """What a generation loop checks between tokens: the caller's cancel and the window deadline."""

    cancel: CancelCallback | None
    deadline: float
    time_limit_s: float

    def should_stop(self) -> bool:
        """Non-raising form of :meth:`check`, for callbacks that must return a bool (llama.cpp's abort)."""
        return (self.cancel is not None and bool(self.cancel())) or time.monotonic() > self.deadline

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise ParseCancelled("parsing was cancelled")
        if time.monotonic() > self.deadline:
            raise WindowTimeout(
                f"the window took longer than its limit of {self.time_limit_s:g} s (--window-seconds on the command line)"
            )


Generate = Callable[[list[dict[str, str]], dict[str, Any], GenerationControl], str]
"""(messages, JSON schema, control) → the model's raw answer. Raises WindowFailure subclasses,
ParseCancelled or ModelUnavailable."""


@dataclass
class WindowRunner:
    """Runs windows for one parse and appends their scenes to ``scenes``."""

    generate: Generate
    characters: list[Character]
    resolver: NameResolver
    state: RunningState
    cancel: CancelCallback | None = None
    time_limit_s: float = 120.0
    scenes: list[Scene] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rule_windows: int = 0

    def run(self, window: StoryWindow, total: int) -> list[Scene]:
        """Parse one window (with retry and fallback); returns the scenes it added or extended."""
        label = f"window {window.index + 1}/{total}"
        try:
            return self._attempt(window)
        except (ParseCancelled, ModelUnavailable):
            raise
        except ParseError as first:
            problem = str(first)
        added: list[Scene] = []
        halves = window.halves()
        if len(halves) == 1:
            # Nothing smaller to try: one sentence that the model cannot handle goes to the rules.
            added += self._rules(window, f"{label}: {problem}; the rule parser took over")
            return added
        for i, half in enumerate(halves):
            try:
                added += self._attempt(half)
            except (ParseCancelled, ModelUnavailable):
                raise
            except ParseError as second:
                added += self._rules(
                    half,
                    f"{label} (part {i + 1}/2 after a smaller retry): {second}; first try: {problem}; "
                    f"the rule parser took over for: {_excerpt(half.text)}",
                )
        return added

    # ------------------------------------------------------------------ one attempt

    def _attempt(self, window: StoryWindow) -> list[Scene]:
        checkpoint = self.resolver.checkpoint()
        try:
            words = max(1, window.words)
            messages = build_messages(window.text, self.characters + self._suggested_as_library(), self.state.context())
            schema = window_schema(max_beats=max(4, words // 6))
            control = GenerationControl(self.cancel, time.monotonic() + self.time_limit_s, self.time_limit_s)
            raw = self.generate(messages, schema, control)
            scenes = convert_window(decode_window_output(raw), self.resolver)
        except BaseException:
            self.resolver.rollback(checkpoint)
            raise
        heading = window.first_heading
        if heading is not None and scenes:
            first = scenes[0]
            first.title = first.title or heading.title
            first.setting = first.setting or heading.setting
            first.time_of_day = first.time_of_day or heading.time_of_day
            for beat in first.beats:
                beat.setting = beat.setting or first.setting
                beat.time_of_day = beat.time_of_day or first.time_of_day
        return self._append(scenes, window.continues_scene)

    def _suggested_as_library(self) -> list[Character]:
        # New people found in earlier windows are listed for the model like library characters,
        # so it reuses their names instead of inventing variants.
        return self.resolver.as_characters()[len(self.resolver.library) :]

    def _rules(self, window: StoryWindow, warning: str) -> list[Scene]:
        from comic_studio.parsing.rules import RuleParser

        self.rule_windows += 1
        self.warnings.append(warning[:2_000])
        parsed = RuleParser().parse(window.text, self.resolver.as_characters(), cancel=self.cancel)
        scenes = self.resolver.adopt_rule_scenes(parsed.scenes, parsed.suggestions)
        for beat in (b for s in scenes for b in s.beats):
            beat.source = "rules"
        return self._append(scenes, window.continues_scene)

    def _append(self, scenes: list[Scene], continues: bool) -> list[Scene]:
        """Add a window's scenes to the story: a window that opens mid-scene extends the last scene."""
        added: list[Scene] = []
        for i, scene in enumerate(scenes):
            if i == 0 and continues and self.scenes:
                self.scenes[-1].beats.extend(scene.beats)
                added.append(self.scenes[-1].model_copy(update={"beats": scene.beats}))
            else:
                self.scenes.append(scene)
                # A snapshot: a later window that continues this scene extends the story's list, not this report.
                added.append(scene.model_copy(update={"beats": list(scene.beats)}))
        self.state.update(added, names_by_id(self.characters, self.resolver.suggestions))
        return added


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return '"' + (flat if len(flat) <= limit else flat[: limit - 1] + "…") + '"'

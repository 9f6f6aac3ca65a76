"""The shared body of the LLM parsers: windows in order, progress, cancel, one validated result.

A concrete parser (``llama``, ``openai``) supplies three things: how to generate an answer for
one window, how to count tokens, and how many story tokens a window may hold. Everything else —
splitting, carried state, retries, the rule fallback, progress and the final strict validation —
is the same for both, so both behave the same in the outliner.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from comic_studio.core.model import Beat, Character
from comic_studio.parsing.base import CancelCallback, ProgressCallback, check_cancel
from comic_studio.parsing.forms import StoryForm, detect_form
from comic_studio.parsing.llm.convert import NameResolver
from comic_studio.parsing.llm.fallback import GenerationControl, WindowRunner
from comic_studio.parsing.llm.windows import RunningState, TokenCounter, split_windows
from comic_studio.parsing.names import names_left_out
from comic_studio.parsing.rules import RuleParser
from comic_studio.parsing.schema import ParsedStory


class WindowProgress(float):
    """A progress fraction that also says which window is running and what it produced.

    It *is* the float the :data:`ProgressCallback` contract promises (0.0 … 1.0), so plain
    callbacks keep working; the outliner reads the extra attributes to show "window 3 of 8,
    41 beats" and to append ``new_beats`` as they arrive."""

    window: int
    windows: int
    beats: int
    new_beats: list[Beat]

    def __new__(
        cls, fraction: float, *, window: int, windows: int, beats: int, new_beats: list[Beat] | None = None
    ) -> WindowProgress:
        obj = super().__new__(cls, min(1.0, max(0.0, fraction)))
        obj.window, obj.windows, obj.beats = window, windows, beats
        obj.new_beats = list(new_beats or [])
        return obj

    def describe(self) -> str:
        return f"window {self.window} of {self.windows}, {self.beats} beats so far"


class WindowedLLMParser(ABC):
    name = "llm"
    time_limit_s: float = 120.0

    @abstractmethod
    def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], control: GenerationControl) -> str:
        """One window's raw answer. Raise WindowFailure subclasses, ParseCancelled or ModelUnavailable."""

    @abstractmethod
    def window_budget(self, characters: list[Character]) -> int:
        """Story tokens one window may hold (after the prompt and the room for the answer)."""

    def token_counter(self) -> TokenCounter:
        from comic_studio.parsing.llm.windows import approx_tokens

        return approx_tokens

    def prepare(self) -> None:
        """Called once before the first window (load the model, check the server)."""

    def parse(
        self,
        story_text: str,
        characters: list[Character],
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
    ) -> ParsedStory:
        if not story_text.strip():
            return ParsedStory(parser=self.name)
        check_cancel(cancel)
        form = detect_form(story_text)
        if form is not StoryForm.PROSE:
            # A script already says what each panel or scene holds, and who speaks each line, in
            # its markup: the script reader keeps that structure exactly (pages, panels, cues),
            # which a model reading windows of text could only blur. The model reads prose.
            parsed = RuleParser(form).parse(story_text, characters, progress=progress, cancel=cancel)
            parsed.warnings.insert(
                0, f"read as a {form.value} script by the script reader; the {self.name} model reads prose"
            )
            return parsed
        self.prepare()
        title, windows = split_windows(story_text, self.window_budget(characters), self.token_counter())
        runner = WindowRunner(
            generate=self.generate,
            characters=list(characters),
            resolver=NameResolver(characters),
            state=RunningState(list(characters)),
            cancel=cancel,
            time_limit_s=self.time_limit_s,
        )
        total = len(windows)
        beats = 0
        for window in windows:
            check_cancel(cancel)
            if progress is not None:
                progress(
                    WindowProgress(window.index / max(1, total), window=window.index + 1, windows=total, beats=beats)
                )
            added = runner.run(window, total)
            new_beats = [b for s in added for b in s.beats]
            beats += len(new_beats)
            if progress is not None:
                progress(
                    WindowProgress(
                        (window.index + 1) / total,
                        window=window.index + 1,
                        windows=total,
                        beats=beats,
                        new_beats=new_beats,
                    )
                )
        warnings = list(runner.warnings)
        left_out = len(runner.resolver.left_out)
        if left_out:
            kept = len(runner.resolver.suggestions)
            warnings.insert(0, names_left_out(kept + left_out, kept, which="named first"))
        if runner.rule_windows:
            warnings.insert(
                0,
                f"{runner.rule_windows} part(s) of the story were parsed by the rule parser "
                "(the model's answer was unusable); their beats are marked source=rules",
            )
        parsed = ParsedStory(
            title=title[:200],
            scenes=runner.scenes,
            suggestions=[s for s in runner.resolver.suggestions.values() if s.mentions > 0],
            parser=self.name,
            warnings=warnings[:10_000],
        )
        return parsed.validate_against(characters)

"""The shared LLM driver with a scripted model: windows, progress, retry, rule fallback, cancel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing import ParseCancelled, available_parsers, get_parser, parse
from comic_studio.parsing.llm.driver import WindowedLLMParser, WindowProgress
from comic_studio.parsing.llm.fallback import ContextOverflow, GenerationControl, ModelUnavailable

LIB = [
    Character(id="mara", name="Mara Vance", pronouns=Pronouns.SHE),
    Character(id="tom", name="Old Tom", pronouns=Pronouns.HE),
]
STORY = "\n\n".join(
    ["## The pier"]
    + [f"Mara Vance walks to post {i}. Old Tom waves." for i in range(6)]
    + ["## The lamp room"]
    + [f"Old Tom lights lamp {i}." for i in range(4)]
)


def good_answer(text: str) -> str:
    first = text.strip().split("\n")[-1][:60] or "Something happens."
    return json.dumps(
        {
            "scenes": [
                {
                    "title": "",
                    "setting": "",
                    "time_of_day": "",
                    "beats": [
                        {
                            "action": first,
                            "characters": ["Mara Vance"],
                            "actor": "Mara Vance",
                            "target": "",
                            "shot": "wide",
                            "mood": "",
                            "dialogue": [{"speaker": "Greta Holm", "text": "Hello", "kind": "speech"}],
                            "caption": "",
                        }
                    ],
                }
            ],
            "new_characters": [{"name": "Greta Holm", "pronouns": "she"}],
        }
    )


class Scripted(WindowedLLMParser):
    """Answers from a script: a callable (window text, call number, control) → raw answer."""

    name = "scripted"

    def __init__(self, script: Any, budget: int = 24, time_limit_s: float = 5.0):
        self.script, self.budget, self.time_limit_s = script, budget, time_limit_s
        self.calls: list[str] = []

    def window_budget(self, characters: list[Character]) -> int:
        return self.budget

    def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], control: GenerationControl) -> str:
        text = messages[1]["content"].split("Text to convert:\n", 1)[1]
        self.calls.append(messages[1]["content"])
        return self.script(text, len(self.calls), control)


def test_windows_stream_progress_and_merge_into_scenes() -> None:
    seen: list[WindowProgress] = []
    parser = Scripted(lambda text, n, c: good_answer(text))
    result = parser.parse(STORY, LIB, progress=seen.append)
    n = seen[-1].windows
    assert n == len(parser.calls) > 3
    assert [p.window for p in seen] == [i for i in range(1, n + 1) for _ in (0, 1)]
    assert [float(p) for p in seen] == sorted(float(p) for p in seen) and float(seen[-1]) == 1.0
    assert seen[-1].beats == len(result.beats()) == n and "window 3 of" in seen[5].describe()
    assert sum(len(p.new_beats) for p in seen) == n
    # two headings → two scenes; later windows of a scene extend it
    assert [s.title for s in result.scenes] == ["The pier", "The lamp room"]
    assert all(b.source == "llm" for b in result.beats()) and not result.warnings
    # the carried context reaches the next window, and a new person stays one suggestion
    assert "Last beats:" in parser.calls[1] and "Greta Holm" in parser.calls[1]
    assert [(s.id, s.mentions) for s in result.suggestions] == [("new:greta-holm", n)]
    assert result.suggestions[0].first_beat_id == result.beats()[0].id
    assert result.parser == "scripted"


def test_invalid_answer_is_retried_on_smaller_windows() -> None:
    parser = Scripted(lambda text, n, c: "not json" if n == 1 else good_answer(text), budget=4000)
    result = parser.parse(STORY, LIB)
    assert len(parser.calls) == 4  # scene 1 fails, its two halves, then scene 2
    assert all(b.source == "llm" for b in result.beats()) and not result.warnings


def test_a_half_that_fails_again_is_rule_parsed_and_marked() -> None:
    def script(text: str, n: int, c: GenerationControl) -> str:
        if n == 1:
            raise ContextOverflow("too long")
        return "" if "lamp" in text else good_answer(text)

    result = Scripted(script, budget=4000).parse(STORY, LIB)
    sources = {b.action: b.source for b in result.beats()}
    assert any(src == "rules" and "lamp" in act for act, src in sources.items())
    assert any(src == "llm" for src in sources.values())
    assert "rule parser" in result.warnings[0] and "source=rules" in result.warnings[0]
    # the overflow in window 1 was recovered by the smaller retry: only window 2 (both halves) fell back
    assert len(result.warnings) == 3 and not any("too long" in w for w in result.warnings)
    assert all("window 2/2" in w and "empty answer" in w and "Old Tom lights" in w for w in result.warnings[1:])
    result.validate_against(LIB)


def test_time_limit_per_window_falls_back_to_rules() -> None:
    def slow(text: str, n: int, control: GenerationControl) -> str:
        while True:
            control.check()
            time.sleep(0.01)

    result = Scripted(slow, budget=4000, time_limit_s=0.1).parse("Mara Vance opens the door. Old Tom smiles.", LIB)
    assert [b.source for b in result.beats()] == ["rules", "rules"]
    assert "limit of 0.1 s" in result.warnings[1]


def test_cancel_and_unusable_model_end_the_parse() -> None:
    flag = {"stop": False}

    def cancelling(text: str, n: int, control: GenerationControl) -> str:
        flag["stop"] = True
        control.check()
        return good_answer(text)

    parser = Scripted(cancelling)
    with pytest.raises(ParseCancelled):
        parser.parse(STORY, LIB, cancel=lambda: flag["stop"])
    assert len(parser.calls) == 1

    def broken(text: str, n: int, control: GenerationControl) -> str:
        raise ModelUnavailable("/models/x.gguf: cannot load")

    with pytest.raises(ModelUnavailable, match="x.gguf"):
        Scripted(broken).parse(STORY, LIB)


def test_empty_story_needs_no_model() -> None:
    parser = Scripted(lambda *a: pytest.fail("no call expected"))
    assert parser.parse("  \n", LIB).scenes == []


def test_parsers_are_registered_and_lazy() -> None:
    assert {"rules", "llama", "openai"} <= set(available_parsers())
    from comic_studio.parsing.llm.openai_compat import OpenAIParser

    assert isinstance(get_parser("openai"), OpenAIParser)
    code = (
        "import sys; import comic_studio.parsing as p; import comic_studio.parsing.llm; "
        "assert 'llama' in p.available_parsers(); "
        "assert 'llama_cpp' not in sys.modules and 'comic_studio.parsing.llm.llama' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_llama_parser_without_a_model_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("COMIC_STUDIO_LLAMA_MODEL", raising=False)
    with pytest.raises(Exception, match="needs a model"):
        parse("Mara Vance runs.", LIB, parser="llama")
    from comic_studio.parsing.llm.catalogue import llm_entries

    ids = [e.id for e in llm_entries()]
    if not ids:
        pytest.skip("no model catalogue in this checkout")
    # a catalogue id that is not installed (empty models folder and HF cache) names the repo
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("COMIC_STUDIO_LLAMA_MODEL", ids[0])
    with pytest.raises(Exception, match="not downloaded yet"):
        parse("Mara Vance runs.", LIB, parser="llama")

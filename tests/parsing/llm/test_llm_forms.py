"""LLM parsers and script forms: a comic script or screenplay keeps its structure (the script reader
reads it; the model is never loaded), and the CLI's --context/--window-seconds reach the parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comic_studio.cli import main
from comic_studio.core.errors import ComicStudioError
from comic_studio.parsing.llm.files import make_llm_parser
from comic_studio.parsing.llm.llama import LlamaParser

SCRIPT = """PAGE ONE

PANEL 1
Mara waits on the pier.
MARA: He's late.
SFX: SPLASH

PANEL 2
Close on Tom.
TOM (WHISPER): Not late. Careful.

PAGE TWO

PANEL 1
The boat drifts away.
CAPTION: Too late.
"""


def test_a_script_keeps_its_pages_without_loading_the_model(tiny_gguf: Path) -> None:
    parser = make_llm_parser("llama", model=str(tiny_gguf))
    assert isinstance(parser, LlamaParser)
    parsed = parser.parse(SCRIPT, [])
    assert parsed.form == "comic" and parsed.warnings[0].startswith("read as a comic script")
    assert [(b.page, [d.kind.value for d in b.dialogue], b.sfx) for b in parsed.beats()] == [
        (1, ["speech"], ["SPLASH"]),
        (1, ["whisper"], []),
        (2, [], []),
    ]
    assert parser._worker is None  # nothing was loaded: the script said it all


def test_cli_llm_options_reach_the_parser(tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = make_llm_parser("llama", model=str(tiny_gguf), context=4096, window_seconds=12.5)
    assert parser._worker_options["n_ctx"] == 4096 and parser.time_limit_s == 12.5  # type: ignore[attr-defined]
    story = tmp_path / "story.txt"
    story.write_text("Mara walked to the pier. Tom waved at her.", "utf-8")
    # A context too small for the prompt: the error names the option that fixes it.
    assert main(["parse", str(story), "--parser", "llama", "--model", str(tiny_gguf), "--context", "600", "--quiet"])
    err = capsys.readouterr().err
    assert "leaves no room for the story" in err and "--context TOKENS" in err
    script = tmp_path / "script.txt"
    script.write_text(SCRIPT, "utf-8")
    out = tmp_path / "out.json"
    args = ["parse", str(script), "--parser", "llama", "--model", str(tiny_gguf), "--window-seconds", "5"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text("utf-8"))
    assert data["form"] == "comic" and [b["page"] for s in data["scenes"] for b in s["beats"]] == [1, 1, 2]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"context": 100}, "at least 512"), ({"window_seconds": 0}, "must be positive")],
)
def test_llm_option_values_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ComicStudioError, match=message):
        make_llm_parser("openai", base_url="http://127.0.0.1:9/v1", **options)

"""The ``llama`` parser end to end on a tiny GGUF the test writes: the real llama-cpp-python path."""

from __future__ import annotations

import json
import threading
import time
import traceback
from pathlib import Path

import pytest

from comic_studio.cli import main
from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing import ParseCancelled, from_json
from comic_studio.parsing.llm.fallback import ContextOverflow, GenerationControl, ModelUnavailable

llama_mod = pytest.importorskip("comic_studio.parsing.llm.llama")
pytest.importorskip("llama_cpp")
LlamaParser, LlamaWorker = llama_mod.LlamaParser, llama_mod.LlamaWorker

LIB = [
    Character(id="mara", name="Mara Vance", pronouns=Pronouns.SHE),
    Character(id="tom", name="Old Tom", pronouns=Pronouns.HE),
]
STORY = (
    "## The pier\n\nMara Vance runs along the pier in the rain. Old Tom waits by the lamp.\n\n"
    '"You are late," Old Tom said. She hands him the key.\n\n'
    "## The lamp room\n\nOld Tom climbs the stairs. Mara Vance follows him."
)


@pytest.fixture(scope="module")
def worker(tiny_gguf: Path) -> LlamaWorker:
    # One worker for the module: the model's prompt cache makes later windows cheap.
    w = LlamaWorker(tiny_gguf, n_ctx=4096, idle_release_s=None)
    yield w
    w.shutdown()


def test_end_to_end_with_grammar_chat_template_and_windows(worker: LlamaWorker) -> None:
    parser = LlamaParser(worker=worker, max_window_tokens=200)
    seen = []
    result = parser.parse(STORY, LIB, progress=seen.append)
    assert result.parser == "llama" and not result.warnings
    assert seen[-1].windows >= 2 and float(seen[-1]) == 1.0
    assert len(result.scenes) >= 2 and result.scenes[0].setting == "pier"
    assert result.beats() and all(b.source == "llm" for b in result.beats())
    # the validated result round-trips through the project schema
    assert from_json(result.model_dump_json(), LIB) == result
    info = worker.call(
        lambda llm: (llm.chat_format, llm.metadata.get("tokenizer.chat_template", ""), threading.current_thread().name)
    )
    assert info[0] == "chat_template.default" and "<|assistant|>" in info[1]
    assert info[2].startswith("comic-studio-llama")  # the Llama object lives on its own thread


def test_grammar_free_model_output_falls_back_to_rules(worker: LlamaWorker) -> None:
    # The second fixture: the same tiny model without the grammar writes stray brackets.
    parser = LlamaParser(worker=worker, use_grammar=False, max_output_tokens=24)
    result = parser.parse(STORY, LIB)
    assert result.beats() and {b.source for b in result.beats()} == {"rules"}
    assert "source=rules" in result.warnings[0]
    assert any("not valid JSON" in w or "cut off" in w for w in result.warnings[1:])
    assert [b.action for b in result.beats()][:2] == [
        "Mara Vance runs along the pier in the rain.",
        "Old Tom waits by the lamp.",
    ]
    result.validate_against(LIB)


def test_cancel_stops_within_a_token(worker: LlamaWorker) -> None:
    # Grammar-free with a 4,000-token budget: without cancel this generates for many seconds.
    parser = LlamaParser(worker=worker, use_grammar=False, max_output_tokens=4000)
    LlamaParser(worker=worker, use_grammar=False, max_output_tokens=8).parse(
        "Warm the cache.", LIB
    )  # cancel lands in generation
    start = time.monotonic()
    answered_yes = [0]

    def cancel() -> bool:
        if time.monotonic() - start > 0.3:  # when to cancel: somewhere inside the generation
            answered_yes[0] += 1
            return True
        return False

    with pytest.raises(ParseCancelled):
        parser.parse("Mara Vance opens the door.", LIB, cancel=cancel)
    # Stopped at the next token (or mid-decode): the generation asked again only a few times, where
    # thousands of tokens were left.
    assert 1 <= answered_yes[0] <= 5, answered_yes
    # the worker is usable afterwards
    assert LlamaParser(worker=worker).parse("Old Tom smiles.", LIB).beats()


def test_window_time_limit_falls_back(worker: LlamaWorker) -> None:
    result = LlamaParser(worker=worker, time_limit_s=0.0).parse("Mara Vance opens the door. Old Tom smiles.", LIB)
    assert {b.source for b in result.beats()} == {"rules"}
    assert any("limit of 0 s" in w for w in result.warnings)


def test_context_overflow_is_reported_as_such(worker: LlamaWorker) -> None:
    parser = LlamaParser(worker=worker)
    control = GenerationControl(None, time.monotonic() + 60, 60)
    with pytest.raises(ContextOverflow, match="context"):
        parser.generate([{"role": "user", "content": "x" * 6000}], {"type": "object"}, control)


def test_load_failures_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF not really")
    with pytest.raises(ModelUnavailable, match=r"broken\.gguf: cannot load the GGUF model"):
        LlamaParser(str(bad)).parse("Mara Vance runs.", LIB)
    with pytest.raises(Exception, match=r"missing\.gguf: no such model file"):
        LlamaParser(str(tmp_path / "missing.gguf")).parse("Mara Vance runs.", LIB)


def test_lazy_load_release_and_idle_release(tiny_gguf: Path) -> None:
    w = LlamaWorker(tiny_gguf, n_ctx=2048, idle_release_s=0.3)
    try:
        parser = LlamaParser(worker=w)
        assert not w.loaded and w.loads == 0
        parser.prepare()
        assert w.loaded and w.loads == 1
        parser.release()
        assert not w.loaded
        w.call(lambda llm: None)
        assert w.loaded and w.loads == 2
        deadline = time.monotonic() + 5
        while w.loaded and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not w.loaded  # released after being idle
    finally:
        w.shutdown()


def test_cli_parse_with_llama(tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    out = tmp_path / "beats.json"
    assert main(["parse", str(story), "--parser", "llama", "--model", str(tiny_gguf), "--out", str(out)]) == 0
    data = json.loads(out.read_text("utf-8"))
    assert data["parser"] == "llama" and data["scenes"]
    assert "window" in capsys.readouterr().err
    assert main(["parse", str(story), "--parser", "llama", "--model", str(tmp_path / "nope.gguf")]) == 1
    assert "nope.gguf: no such model file" in capsys.readouterr().err
    assert main(["parse", str(story), "--parser", "rules", "--model", "x.gguf"]) == 1


def test_bench_reports_seconds_per_1000_words(tiny_gguf: Path) -> None:
    from comic_studio.parsing.llm.bench import bench_llm

    report = bench_llm(words=120, model=tiny_gguf, n_ctx=4096)
    assert report["words"] >= 120 and report["windows"] >= 1 and report["beats"] >= 1
    assert report["seconds_per_1000_words"] > 0 and report["llm_beats"] + report["rules_beats"] == report["beats"]


def test_cancel_interrupts_a_long_prompt_evaluation(worker: LlamaWorker) -> None:
    # ~3,000 prompt tokens (the tiny vocabulary is bytes): seconds of decode without the abort callback.
    parser = LlamaParser(worker=worker, max_window_tokens=3000, output_ratio=0.1)
    asked_mid_decode = [0]

    def cancel() -> bool:
        # Cancel as soon as ggml's abort callback asks, i.e. inside the prompt's evaluation: without
        # the callback nobody asks before the whole prompt is evaluated, and the parse would finish.
        if any(frame.name == "should_abort" for frame in traceback.extract_stack()):
            asked_mid_decode[0] += 1
        return asked_mid_decode[0] > 0  # and stays cancelled

    with pytest.raises(ParseCancelled):
        parser.parse(" ".join(f"Old Tom counts lamp number {i}." for i in range(90)), LIB, cancel=cancel)
    assert asked_mid_decode[0] >= 1
    result = parser.parse(" ".join(f"Mara Vance counts boat number {i}." for i in range(90)), LIB)
    assert result.beats() and not result.warnings  # the context is clean after the abort

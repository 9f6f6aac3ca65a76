"""The ``openai`` parser against a real OpenAI-compatible server started on 127.0.0.1 in the test
(llama-cpp-python's bundled server serving the tiny GGUF)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from comic_studio.cli import main
from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing import ParseCancelled
from comic_studio.parsing.llm.fallback import ModelUnavailable
from comic_studio.parsing.llm.openai_compat import OpenAIParser

pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")

LIB = [
    Character(id="mara", name="Mara Vance", pronouns=Pronouns.SHE),
    Character(id="tom", name="Old Tom", pronouns=Pronouns.HE),
]
STORY = "## The pier\n\nMara Vance runs along the pier. Old Tom waits by the lamp.\n\n## Later\n\nOld Tom climbs the stairs."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_gguf: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(tiny_gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/models", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(
                        "the llama-cpp-python server exited: " + proc.stdout.read().decode("utf-8", "replace")[-2000:]
                    )
                if time.monotonic() > deadline:
                    pytest.fail("the llama-cpp-python server did not answer within 60 s")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_round_trip_through_the_server(server: str) -> None:
    parser = OpenAIParser(server)
    seen = []
    result = parser.parse(STORY, LIB, progress=seen.append)
    assert parser.model.endswith("tiny.gguf")  # picked from /v1/models
    # llama-cpp-python rejects OpenAI's json_schema form and takes {type: json_object, schema}
    assert parser.format_mode == "json_object"
    assert result.parser == "openai" and not result.warnings
    assert len(result.scenes) == 2 and all(b.source == "llm" for b in result.beats())
    assert seen[-1].windows == 2 and seen[-1].beats == len(result.beats())
    result.validate_against(LIB)


def test_cancel_during_a_request(server: str) -> None:
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(ParseCancelled):
        OpenAIParser(server).parse(STORY, LIB, cancel=cancel)
    assert calls["n"] == 4  # stopped at the first check that said cancel


def test_cli_with_base_url_and_no_key_in_the_output(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMIC_STUDIO_OPENAI_API_KEY", "sk-test-secret-123")
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    out = tmp_path / "beats.json"
    assert main(["parse", str(story), "--parser", "openai", "--base-url", server, "--out", str(out), "--quiet"]) == 0
    text = out.read_text("utf-8")
    assert json.loads(text)["parser"] == "openai"
    assert "sk-test-secret" not in text


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(
        ModelUnavailable, match=r"cannot reach the OpenAI-compatible server at http://127\.0\.0\.1:\d+/v1"
    ):
        OpenAIParser(f"http://127.0.0.1:{free_port()}/v1", timeout_s=2).parse("Mara Vance runs.", LIB)
    with pytest.raises(ModelUnavailable, match="must start with http"):
        OpenAIParser("ftp://example")

"""The openai parser against a local server on 127.0.0.1 that answers badly: odd stream chunks,
oversized lines and answers, nested answers, broken plain bodies and model lists. Each is a clear
window failure (the window is retried smaller, then parsed by the rules, with a warning naming the
server) or a clear ModelUnavailable — never a traceback, never an unbounded read."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hang_guard import outcome_of

from comic_studio.cli import main
from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing.llm import openai_compat
from comic_studio.parsing.llm.fallback import ModelUnavailable
from comic_studio.parsing.llm.openai_compat import OpenAIParser

LIB = [Character(id="mara", name="Mara Vance", pronouns=Pronouns.SHE)]
STORY = "Mara Vance runs along the pier. Mara Vance stops by the lamp."
GOOD = json.dumps(
    {
        "scenes": [{"title": "", "setting": "pier", "time_of_day": "", "beats": [
            {"action": "Mara Vance runs.", "characters": ["Mara Vance"], "actor": "Mara Vance", "target": "",
             "shot": "wide", "mood": "", "dialogue": [], "caption": ""}]}],
        "new_characters": [],
    }
)  # fmt: skip


def _event(obj: object) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def _content(text: str) -> bytes:
    return _event({"choices": [{"delta": {"content": text}, "finish_reason": None}]})


END = b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'

# Each: the body a streaming answer sends (bytes, or a generator for endless ones), and a fragment
# of the warning the parse must end with.
STREAMS: dict[str, tuple[Callable[[], Iterator[bytes]], str]] = {
    "not-json": (lambda: iter([b"data: {not json\n\n"]), "malformed event"),
    "a-list": (lambda: iter([b"data: [1, 2]\n\n"]), "not a JSON object"),
    "a-number": (lambda: iter([b"data: 42\n\n"]), "not a JSON object"),
    "null": (lambda: iter([b"data: null\n\n"]), "not a JSON object"),
    "nan": (lambda: iter([b'data: {"choices": [{"delta": {"content": NaN}}]}\n\n']), "malformed event"),
    "choices-a-string": (lambda: iter([_event({"choices": "abc"})]), "'choices' that are not a list"),
    "choice-a-number": (lambda: iter([_event({"choices": [5]})]), "without a usable 'delta'"),
    "delta-a-list": (lambda: iter([_event({"choices": [{"delta": [1]}]})]), "without a usable 'delta'"),
    "content-a-number": (lambda: iter([_event({"choices": [{"delta": {"content": 5}}]})]), "not text"),
    "content-an-object": (lambda: iter([_event({"choices": [{"delta": {"content": {"a": 1}}}]})]), "not text"),
    "error-event": (lambda: iter([_event({"error": {"message": "x" * 10_000}})]), "the server reported"),
    "line-over-the-limit": (lambda: iter([b"data: " + b"x" * (openai_compat.MAX_EVENT_BYTES + 10)]), "event over"),
    "endless-tokens": (lambda: (_content("x" * 1000) for _ in iter(int, 1)), "ran past"),
    "endless-keepalives": (lambda: (b": ping " + b"." * 1000 + b"\n" for _ in iter(int, 1)), "ran past"),
    "nested-answer": (lambda: iter([_content("[" * 100_000), END]), "nests more than"),
    "huge-answer": (lambda: iter([_content('{"scenes": "' + "x" * 600_000), _content('"}'), END]), "refused"),
    "plain-html": (lambda: iter([b"<html><body>Captive portal</body></html>\n"]), "not a chat completion"),
    "plain-a-list": (lambda: iter([b"[1, 2, 3]\n"]), "no choices[0].message"),
    "plain-content-a-number": (
        lambda: iter([json.dumps({"choices": [{"message": {"content": 7}}]}).encode()]),
        "message content is not text",
    ),  # fmt: skip
    "plain-deep": (lambda: iter([b"[" * 100_000 + b"]" * 100_000]), "nests more than"),
}


class Server:
    def __init__(self) -> None:
        self.answer: Callable[[], Iterator[bytes]] = lambda: iter([_content(GOOD), END])
        self.models: bytes = json.dumps({"data": [{"id": "m"}]}).encode()
        self.posts = 0
        self.error_body: bytes | None = None


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Server]]:
    # Smaller limits than the shipped ones keep the endless answers quick; the code paths are the same.
    monkeypatch.setattr(openai_compat, "MAX_STREAM_BYTES", 2_000_000)
    monkeypatch.setattr(openai_compat, "MAX_ANSWER_CHARS", 500_000)
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(state.models)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.posts += 1
            if state.error_body is not None:
                self.send_response(500)
                self.send_header("Content-Length", str(len(state.error_body)))
                self.end_headers()
                self.wfile.write(state.error_body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for piece in state.answer():
                    self.wfile.write(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what a bounded reader does to an endless answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_good_answer_with_keepalives_and_usage_events_parses(server) -> None:
    url, state = server
    state.answer = lambda: iter([b": keep-alive\n\n", b"event: message\n", _event({"usage": {"tokens": 3}}),
                                 _event({"choices": [{}]}), _content(GOOD), END])  # fmt: skip
    result = OpenAIParser(url, retries=0).parse(STORY, LIB)
    assert result.warnings == [] and [b.action for b in result.beats()] == ["Mara Vance runs."]


@pytest.mark.parametrize("case", sorted(STREAMS))
def test_a_hostile_answer_falls_back_to_the_rules_with_a_clear_warning(server, case) -> None:
    url, state = server
    state.answer, needle = STREAMS[case]
    outcome = outcome_of(OpenAIParser(url, retries=0, time_limit_s=60).parse, STORY, LIB)
    assert "error" not in outcome, outcome
    result = outcome["value"]
    assert result.beats() and all(b.source == "rules" for b in result.beats())
    assert any(needle in w for w in result.warnings), result.warnings
    assert all(len(w) <= 2_000 for w in result.warnings)


@pytest.mark.parametrize("case", ["content-a-number", "line-over-the-limit", "nested-answer", "plain-html"])
def test_the_cli_reports_hostile_answers_as_warnings(server, tmp_path: Path, capsys, case) -> None:
    url, state = server
    state.answer, needle = STREAMS[case]
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    out = tmp_path / "parsed.json"
    argv = ["parse", str(story), "--parser", "openai", "--base-url", url, "--model", "m", "--out", str(out), "--quiet"]
    outcome = outcome_of(main, argv)
    assert outcome.get("value") == 0, (outcome, capsys.readouterr().err)
    assert "Traceback" not in capsys.readouterr().err
    warnings = json.loads(out.read_text(encoding="utf-8"))["warnings"]
    assert any(needle in w for w in warnings), warnings


@pytest.mark.parametrize(
    ("models", "needle"),
    [
        (b"<html>not json</html>", r"model list is unusable \(not valid JSON"),
        (b"[1, 2]", "lists no models"),
        (json.dumps({"data": "abc"}).encode(), "lists no models"),
        (json.dumps({"data": [{"id": 5}, "x"]}).encode(), "lists no models"),
        (b'{"data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nests more than"),
        (b" " * (openai_compat.MAX_LISTING_BYTES + 10), "over the"),
    ],
)
def test_a_broken_model_list_is_a_clear_error_unless_the_model_is_named(server, models, needle) -> None:
    url, state = server
    state.models = models
    with pytest.raises(ModelUnavailable, match=needle):
        OpenAIParser(url, retries=0).parse(STORY, LIB)
    state.models = models
    assert OpenAIParser(url, "m", retries=0).parse(STORY, LIB).beats()[0].source != "rules"


def test_a_huge_error_body_is_read_only_in_part(server) -> None:
    url, state = server
    state.error_body = b"overloaded " * 2_000_000  # 22 MB: only the start is read
    result = OpenAIParser(url, "m", retries=0).parse(STORY, LIB)
    assert any("HTTP 500: overloaded" in w for w in result.warnings)
    assert all(b.source == "rules" for b in result.beats())


def test_new_names_past_a_projects_worth_stay_plain_text_with_a_warning(server) -> None:
    url, state = server
    library = [Character(id=f"c{i}", name=f"Person {i}") for i in range(998)]
    new = ["Ann Alpha", "Bob Beta", "Cid Gamma", "Dee Delta", "Eve Epsilon"]
    beat = {"action": "Five strangers arrive.", "characters": new, "actor": new[0], "target": new[1], "shot": "wide",
            "mood": "", "dialogue": [{"speaker": new[4], "text": "Hello.", "kind": "speech"}], "caption": ""}  # fmt: skip
    answer = json.dumps({"scenes": [{"title": "", "setting": "", "time_of_day": "", "beats": [beat]}],
                         "new_characters": [{"name": n, "pronouns": "they"} for n in new]})  # fmt: skip
    state.answer = lambda: iter([_content(answer), END])
    result = OpenAIParser(url, "m", retries=0, n_ctx=1_000_000).parse("Five strangers arrive.", library)
    assert [s.name for s in result.suggestions] == new[:2]
    assert result.beats()[0].characters == ["new:ann-alpha", "new:bob-beta"]
    assert result.beats()[0].dialogue[0].speaker_id is None  # the third name on stays plain text
    assert any("names 5 people" in w and "only the 2 named first" in w for w in result.warnings)

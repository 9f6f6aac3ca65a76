"""The openai parser's HTTP behaviour against a scripted local server: the OpenAI json_schema form,
the API key from the environment, retries after 503, and a non-streaming answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from comic_studio.core.model import Character, Pronouns
from comic_studio.parsing.llm.openai_compat import OpenAIParser

LIB = [Character(id="mara", name="Mara Vance", pronouns=Pronouns.SHE)]
ANSWER = json.dumps(
    {
        "scenes": [
            {
                "title": "",
                "setting": "pier",
                "time_of_day": "",
                "beats": [
                    {
                        "action": "Mara Vance runs.",
                        "characters": ["Mara Vance"],
                        "actor": "Mara Vance",
                        "target": "",
                        "shot": "wide",
                        "mood": "",
                        "dialogue": [],
                        "caption": "",
                    }
                ],
            }
        ],
        "new_characters": [],
    }
)


class Script:
    def __init__(self) -> None:
        self.requests: list[tuple[dict, dict]] = []
        self.fail_first = 1
        self.stream = True


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"data": [{"id": "story-model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.requests.append((data, dict(self.headers)))
            if script.fail_first > 0:
                script.fail_first -= 1
                self.send_response(503)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"busy")
                return
            if script.stream:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for i in range(0, len(ANSWER), 7):  # token-sized pieces
                    event = {"choices": [{"delta": {"content": ANSWER[i : i + 7]}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.write(b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')
            else:
                body = json.dumps({"choices": [{"message": {"content": ANSWER}, "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    finally:
        server.shutdown()
        server.server_close()


def test_openai_form_key_and_retry(scripted: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = scripted
    monkeypatch.setenv("COMIC_STUDIO_OPENAI_API_KEY", "sk-local-test")
    parser = OpenAIParser(url)
    result = parser.parse("Mara Vance runs along the pier.", LIB)
    assert parser.model == "story-model" and parser.format_mode == "json_schema"
    assert len(script.requests) == 2  # a 503, then the retry
    body, headers = script.requests[-1]
    assert body["model"] == "story-model" and body["stream"] is True
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["scenes", "new_characters"]
    assert headers["Authorization"] == "Bearer sk-local-test"
    assert [b.action for b in result.beats()] == ["Mara Vance runs."] and result.beats()[0].characters == ["mara"]


def test_a_server_that_ignores_stream_still_works(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.fail_first, script.stream = 0, False
    result = OpenAIParser(url, "story-model").parse("Mara Vance runs.", LIB)
    assert result.beats()[0].source == "llm"


def test_persistent_server_errors_fall_back_to_rules(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.fail_first = 100
    result = OpenAIParser(url, "story-model", retries=1).parse("Mara Vance runs.", LIB)
    assert [b.source for b in result.beats()] == ["rules"]
    assert "HTTP 503" in result.warnings[1]

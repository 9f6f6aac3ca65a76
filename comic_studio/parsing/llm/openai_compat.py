"""The ``openai`` story parser: the same prompt and schema against an OpenAI-compatible server.

Works with Ollama, LM Studio, llama.cpp's ``llama-server`` and llama-cpp-python's server. The base
URL and model come from the caller (preferences, ``--base-url``/``--model``) or the environment;
an API key, if the server wants one, only ever comes from ``$COMIC_STUDIO_OPENAI_API_KEY`` or the
caller — it is never written to a project file.

Structured output is requested the OpenAI way (``response_format: {type: json_schema}``); servers
that reject that form (llama-cpp-python's accepts ``{type: json_object, schema}``) get the second
form on the next try, and the answer is validated strictly either way. Requests stream, and the
HTTP read happens on a helper thread so cancel and the window's time limit are honoured between
tokens even while the server is still thinking. Connection errors, 429 and 5xx are retried.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from comic_studio.core.model import Character
from comic_studio.core.safe_read import UnsafeInputError, parse_json
from comic_studio.parsing.errors import ParseCancelled
from comic_studio.parsing.llm.driver import WindowedLLMParser
from comic_studio.parsing.llm.fallback import ContextOverflow, GenerationControl, ModelUnavailable, WindowFailure
from comic_studio.parsing.llm.prompt import MAX_ANSWER_CHARS, SYSTEM_PROMPT, library_text
from comic_studio.parsing.llm.windows import approx_tokens

BASE_URL_ENV = "COMIC_STUDIO_OPENAI_BASE_URL"
MODEL_ENV = "COMIC_STUDIO_OPENAI_MODEL"
API_KEY_ENV = "COMIC_STUDIO_OPENAI_API_KEY"
DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible endpoint

_END = object()
MAX_EVENT_BYTES = 1024 * 1024
"""One server-sent event line; a token's event is about 200 bytes."""
MAX_STREAM_BYTES = 64 * 1024 * 1024
"""Everything read for one window's answer, events and their framing included."""
MAX_LISTING_BYTES = 4 * 1024 * 1024
"""The server's ``/models`` answer."""
_ERROR_BODY_BYTES = 64 * 1024
"""Of an error answer, only the start is read (it is shown, cut to 300 characters)."""


class _HTTPFailure(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class OpenAIParser(WindowedLLMParser):
    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
        temperature: float = 0.2,
        n_ctx: int = 8192,
        max_window_tokens: int = 700,
        output_ratio: float = 3.0,
        time_limit_s: float = 180.0,
    ):
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ModelUnavailable(f"the server address {self.base_url!r} must start with http:// or https://")
        self.model = model or os.environ.get(MODEL_ENV) or ""
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        self.timeout_s = timeout_s
        self.retries = retries
        self.temperature = temperature
        self.n_ctx = n_ctx
        self.max_window_tokens = max_window_tokens
        self.output_ratio = output_ratio
        self.time_limit_s = time_limit_s
        self.format_mode = "json_schema"
        """"json_schema" (OpenAI form) until a server rejects it, then "json_object" (+ schema)."""

    # ------------------------------------------------------------------ HTTP

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _get_json(self, path: str) -> Any:
        req = urllib.request.Request(self.base_url + path, headers=self._headers())
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            body = resp.read(MAX_LISTING_BYTES + 1)  # at most this much, whatever the server sends
        return parse_json(body, where=self.base_url + path, limit=MAX_LISTING_BYTES)

    def prepare(self) -> None:
        """Check the server answers and pick its first model when none was named."""
        try:
            listing = self._get_json("/models")
        except UnsafeInputError as exc:  # too big, not JSON, too deep
            if self.model:
                return  # the chat request will tell whether the server is usable
            raise ModelUnavailable(f"{exc.where}: the server's model list is unusable ({exc.problem}); "
                                   "name the model explicitly") from None  # fmt: skip
        except urllib.error.HTTPError as exc:
            if self.model:
                return  # some servers have no /models; the chat request will tell
            raise ModelUnavailable(
                f"{self.base_url}: the server answered HTTP {exc.code} to /models; name the model explicitly"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelUnavailable(
                f"cannot reach the OpenAI-compatible server at {self.base_url} ({reason}); is it running?"
            ) from None
        if not self.model:
            models = listing.get("data") if isinstance(listing, dict) else None
            ids = [m["id"] for m in models or [] if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]
            if not isinstance(models, list) or not ids:
                raise ModelUnavailable(f"{self.base_url}: the server lists no models; name one with --model")
            self.model = ids[0]

    def window_budget(self, characters: list[Character]) -> int:
        overhead = approx_tokens(SYSTEM_PROMPT + "\n\n" + library_text(characters)) + 400
        room = self.n_ctx - overhead
        if room < 64:
            raise ModelUnavailable(
                f"a context of {self.n_ctx} tokens leaves no room for the story after the prompt; "
                "give a larger context (--context TOKENS on the command line)"
            )
        return max(32, min(self.max_window_tokens, int(room / (1.0 + self.output_ratio))))

    def _body(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
        if self.format_mode == "json_schema":
            fmt: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": "comic_beats", "strict": True, "schema": schema},
            }
        else:
            fmt = {"type": "json_object", "schema": schema}
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "stream": True,
            "response_format": fmt,
        }

    def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], control: GenerationControl) -> str:
        attempt = 0
        switched = False
        while True:
            control.check()
            try:
                return self._stream(self._body(messages, schema), control)
            except _HTTPFailure as exc:
                text = exc.body.lower()
                if exc.status in (400, 413, 422) and ("context" in text or "too long" in text or "exceed" in text):
                    raise ContextOverflow(
                        f"{self.base_url}: the window does not fit the model's context ({exc})"
                    ) from None
                # llama-cpp-python's server answers the OpenAI form with a 500 naming response_format.
                rejected_format = exc.status in (400, 422) or "response_format" in text or "json_schema" in text
                if rejected_format and self.format_mode == "json_schema" and not switched:
                    self.format_mode, switched = "json_object", True  # the server's own schema form
                    continue
                if exc.status in (401, 403):
                    raise ModelUnavailable(
                        f"{self.base_url}: the server refused the request ({exc}); set {API_KEY_ENV}"
                    ) from None
                if exc.status == 404:
                    raise ModelUnavailable(
                        f"{self.base_url}: no chat endpoint or no model {self.model!r} ({exc})"
                    ) from None
                if exc.status not in (408, 429) and exc.status < 500 or attempt >= self.retries:
                    raise WindowFailure(f"{self.base_url}: {exc}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                if attempt >= self.retries:
                    reason = getattr(exc, "reason", exc)
                    raise ModelUnavailable(
                        f"cannot reach the OpenAI-compatible server at {self.base_url} ({reason})"
                    ) from None
            attempt += 1
            _sleep_checked(0.5 * 2 ** (attempt - 1), control)

    def _stream(self, body: dict[str, Any], control: GenerationControl) -> str:
        """POST a streaming request; read server-sent events on a helper thread; check control
        between events; close the connection on cancel or timeout so the server stops too."""
        req = urllib.request.Request(
            self.base_url + "/chat/completions",
            data=json.dumps(body).encode("utf-8"),
            headers=self._headers(),
            method="POST",
        )
        events: queue.Queue[Any] = queue.Queue()
        holder: dict[str, Any] = {}

        def reader() -> None:
            try:
                resp = urllib.request.urlopen(req, timeout=self.timeout_s)
                holder["resp"] = resp
                total = 0
                while not holder.get("closed"):
                    # Bounded reads: one line (an SSE event) and the whole answer each have a limit,
                    # so a server that streams without end or never sends a newline cannot fill memory.
                    raw = resp.readline(MAX_EVENT_BYTES + 1)
                    if not raw:
                        break
                    total += len(raw)
                    if len(raw) > MAX_EVENT_BYTES:
                        raise WindowFailure(f"{self.base_url}: the server sent an event over {MAX_EVENT_BYTES:,} bytes")
                    if total > MAX_STREAM_BYTES:
                        raise WindowFailure(f"{self.base_url}: the answer ran past {MAX_STREAM_BYTES:,} bytes")
                    events.put(raw)
                events.put(_END)
            except urllib.error.HTTPError as exc:
                events.put(_HTTPFailure(exc.code, exc.read(_ERROR_BODY_BYTES).decode("utf-8", "replace")))
            except BaseException as exc:  # handed to the caller's thread
                events.put(exc)

        thread = threading.Thread(target=reader, name="comic-studio-openai", daemon=True)
        thread.start()
        answer = _Answer(self.base_url)
        try:
            while True:
                try:
                    control.check()
                except (ParseCancelled, WindowFailure):
                    _close(holder)
                    raise
                try:
                    item = events.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                if answer.line(item.decode("utf-8", "replace").strip()):
                    break
        except WindowFailure:
            _close(holder)  # the server stops generating an answer nobody will read
            raise
        finally:
            holder["closed"] = True
        return answer.text()


def _close(holder: dict[str, Any]) -> None:
    holder["closed"] = True
    resp = holder.get("resp")
    if resp is not None:
        resp.close()


class _Answer:
    """The answer being assembled from a server's lines: server-sent events (``data: {...}``), or
    the lines of a plain JSON body from a server that ignored ``stream=True``. Anything odd — a
    line that is not JSON, an event that is not an object, choices or a delta of the wrong type,
    content that is not text, an answer past :data:`MAX_ANSWER_CHARS` — is a :class:`WindowFailure`
    naming the server (the window is retried smaller, then parsed by the rules), never a traceback."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.parts: list[str] = []
        self.size = 0
        self.finish: str | None = None
        self.whole_json: list[str] = []

    def fail(self, problem: str) -> WindowFailure:
        return WindowFailure(f"{self.base_url}: {problem}")

    def line(self, line: str) -> bool:
        """Take one line; True at the end of the stream."""
        if not line.startswith("data:"):
            if line.startswith((":", "event:", "id:", "retry:")):
                return False  # SSE comments and fields without data (keep-alives)
            self.whole_json.append(line)  # a server that ignored stream=True
            self._count(len(line))
            return False
        payload = line[5:].strip()
        if payload == "[DONE]":
            return True
        try:
            chunk = parse_json(payload, where="event", limit=MAX_EVENT_BYTES)
        except UnsafeInputError as exc:
            raise self.fail(f"the server sent a malformed event ({exc.problem}): {payload[:120]!r}") from None
        if not isinstance(chunk, dict):
            raise self.fail(f"the server sent an event that is not a JSON object: {payload[:120]!r}")
        if "error" in chunk:
            raise self.fail(f"the server reported {str(chunk['error'])[:300]}")
        choices = chunk.get("choices")
        if choices is None:
            return False  # a usage or keep-alive event
        if not isinstance(choices, list):
            raise self.fail(f"the server sent 'choices' that are not a list: {payload[:120]!r}")
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(choice, dict) or not isinstance(delta, dict | None):
                raise self.fail(f"the server sent a choice without a usable 'delta': {payload[:120]!r}")
            self._take(choice, (delta or {}).get("content"), payload)
        return False

    def _take(self, choice: dict[str, Any], content: Any, payload: str) -> None:
        if content is not None and not isinstance(content, str):
            raise self.fail(f"the server sent content that is not text: {payload[:120]!r}")
        if content:
            self.parts.append(content)
            self._count(len(content))
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self.finish = finish

    def _count(self, n: int) -> None:
        self.size += n
        if self.size > MAX_ANSWER_CHARS:
            raise self.fail(f"the answer ran past {MAX_ANSWER_CHARS:,} characters; refused")

    def text(self) -> str:
        if not self.parts and self.whole_json:
            self._plain_answer("".join(self.whole_json))
        if self.finish == "length":
            raise ContextOverflow(f"{self.base_url}: the answer was cut off (finish_reason=length)")
        return "".join(self.parts)

    def _plain_answer(self, body: str) -> None:
        try:
            data = parse_json(body, where="answer", limit=MAX_STREAM_BYTES)
        except UnsafeInputError as exc:
            raise self.fail(f"the server's answer is not a chat completion ({exc.problem})") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or not isinstance(message, dict):
            if isinstance(data, dict) and "error" in data:
                raise self.fail(f"the server reported {str(data['error'])[:300]}")
            raise self.fail(f"the server's answer has no choices[0].message: {body[:120]!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise self.fail("the server's message content is not text")
        self.parts = [content or ""]
        finish = choice.get("finish_reason")
        self.finish = finish if isinstance(finish, str) else None


def _sleep_checked(seconds: float, control: GenerationControl) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        control.check()
        time.sleep(0.05)

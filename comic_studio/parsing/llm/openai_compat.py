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
from comic_studio.parsing.errors import ParseCancelled
from comic_studio.parsing.llm.driver import WindowedLLMParser
from comic_studio.parsing.llm.fallback import ContextOverflow, GenerationControl, ModelUnavailable, WindowFailure
from comic_studio.parsing.llm.prompt import SYSTEM_PROMPT, library_text
from comic_studio.parsing.llm.windows import approx_tokens

BASE_URL_ENV = "COMIC_STUDIO_OPENAI_BASE_URL"
MODEL_ENV = "COMIC_STUDIO_OPENAI_MODEL"
API_KEY_ENV = "COMIC_STUDIO_OPENAI_API_KEY"
DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible endpoint

_END = object()


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
            return json.loads(resp.read().decode("utf-8"))

    def prepare(self) -> None:
        """Check the server answers and pick its first model when none was named."""
        try:
            listing = self._get_json("/models")
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
            ids = [m.get("id") for m in (listing.get("data") or []) if isinstance(m, dict) and m.get("id")]
            if not ids:
                raise ModelUnavailable(f"{self.base_url}: the server lists no models; name one with --model")
            self.model = ids[0]

    def window_budget(self, characters: list[Character]) -> int:
        overhead = approx_tokens(SYSTEM_PROMPT + "\n\n" + library_text(characters)) + 400
        room = self.n_ctx - overhead
        if room < 64:
            raise ModelUnavailable(f"a context of {self.n_ctx} tokens leaves no room for the story after the prompt")
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
                for raw in resp:
                    if holder.get("closed"):
                        break
                    events.put(raw)
                events.put(_END)
            except urllib.error.HTTPError as exc:
                events.put(_HTTPFailure(exc.code, exc.read().decode("utf-8", "replace")))
            except BaseException as exc:  # handed to the caller's thread
                events.put(exc)

        thread = threading.Thread(target=reader, name="comic-studio-openai", daemon=True)
        thread.start()
        parts: list[str] = []
        finish = None
        whole_json: list[str] = []
        try:
            while True:
                try:
                    control.check()
                except (ParseCancelled, WindowFailure):
                    holder["closed"] = True
                    resp = holder.get("resp")
                    if resp is not None:
                        resp.close()
                    raise
                try:
                    item = events.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                line = item.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    whole_json.append(line)  # a server that ignored stream=True
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise WindowFailure(
                        f"{self.base_url}: the server sent a malformed event: {payload[:120]!r}"
                    ) from None
                if "error" in chunk:
                    raise WindowFailure(f"{self.base_url}: the server reported {chunk['error']}")
                for choice in chunk.get("choices") or []:
                    parts.append((choice.get("delta") or {}).get("content") or "")
                    finish = choice.get("finish_reason") or finish
        finally:
            holder["closed"] = True
        if not parts and whole_json:
            data = json.loads("".join(whole_json))
            choice = data["choices"][0]
            parts, finish = [choice["message"].get("content") or ""], choice.get("finish_reason")
        if finish == "length":
            raise ContextOverflow(f"{self.base_url}: the answer was cut off (finish_reason=length)")
        return "".join(parts)


def _sleep_checked(seconds: float, control: GenerationControl) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        control.check()
        time.sleep(0.05)

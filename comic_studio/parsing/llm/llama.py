"""The ``llama`` story parser: a local GGUF model through llama-cpp-python.

``Llama`` objects are not thread-safe, so one :class:`LlamaWorker` thread owns the model: it loads
it on first use, runs every tokenisation and generation, and drops it on :meth:`LlamaWorker.release`
or after ``idle_release_s`` without work. The parser itself runs on whatever thread the caller
uses (the outliner's worker thread, the CLI's main thread) and only waits on the worker.

Each window is generated as a stream so cancel and the window's time limit are checked after
every token. The answer is constrained by a grammar built from the window's JSON schema (via
``LlamaGrammar.from_json_schema``) and formatted with the model's own chat template; it is then
validated strictly anyway, because a grammar that fails to build or a grammar-free run must not
let malformed beats through.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from comic_studio.core.model import Character
from comic_studio.parsing.errors import ParseError
from comic_studio.parsing.llm.catalogue import resolve_model
from comic_studio.parsing.llm.driver import WindowedLLMParser
from comic_studio.parsing.llm.fallback import ContextOverflow, GenerationControl, ModelUnavailable, WindowFailure
from comic_studio.parsing.llm.prompt import SYSTEM_PROMPT, library_text
from comic_studio.parsing.llm.windows import TokenCounter

T = TypeVar("T")

INSTALL_HINT = "llama-cpp-python is not installed; install the LLM extra: pip install 'comic-studio[llm]'"


def trained_context_length(path: Path) -> int | None:
    """The context length a GGUF declares (``<arch>.context_length``), read from its header with the
    ``gguf`` package when installed; None when unknown."""
    try:
        from gguf import GGUFReader
    except ImportError:
        return None
    try:
        reader = GGUFReader(str(path))
        arch_field = reader.get_field("general.architecture")
        if arch_field is None:
            return None
        arch = arch_field.contents()
        value = reader.get_field(f"{arch}.context_length")
        return int(value.contents()) if value is not None else None
    except Exception:  # an unreadable header is reported by llama.cpp's own load a moment later
        return None


class LlamaWorker:
    """One thread that owns one ``llama_cpp.Llama``: lazy load, serial calls, release when idle."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        seed: int = 0,
        idle_release_s: float | None = 300.0,
    ):
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.seed = seed
        self.idle_release_s = idle_release_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comic-studio-llama")
        self._llm: Any = None  # touched only on the worker thread
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last_used = time.monotonic()
        self._grammars: dict[str, Any] = {}
        self.loads = 0
        """How many times the model was loaded (tests check lazy load and idle release)."""
        self.abort_check: Callable[[], bool] | None = None
        """Set by a generation on the worker thread: returns True to abort llama.cpp mid-decode."""
        self._abort_cb: Any = None

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def submit(self, fn: Callable[[Any], T]) -> Future[T]:
        """Run ``fn(llm)`` on the worker thread, loading the model first if needed."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return self._executor.submit(self._run, fn)

    def call(self, fn: Callable[[Any], T]) -> T:
        return self.submit(fn).result()

    def _run(self, fn: Callable[[Any], T]) -> T:
        try:
            if self._llm is None:
                self._llm = self._load()
            return fn(self._llm)
        finally:
            self._last_used = time.monotonic()
            self._arm_idle_timer()

    def _load(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelUnavailable(INSTALL_HINT) from None
        if not self.model_path.is_file():
            raise ModelUnavailable(f"{self.model_path}: no such model file")
        n_ctx = self.n_ctx
        trained = trained_context_length(self.model_path)
        if trained:
            n_ctx = min(n_ctx, trained)  # beyond what it was trained on, a model's output degrades
        try:
            llm = Llama(
                model_path=str(self.model_path),
                n_ctx=n_ctx,
                n_threads=self.n_threads,
                n_gpu_layers=self.n_gpu_layers,
                seed=self.seed,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp reports a bad file as ValueError/RuntimeError
            raise ModelUnavailable(
                f"{self.model_path}: cannot load the GGUF model ({exc}); is it a complete llama.cpp GGUF file?"
            ) from None
        self.loads += 1
        self._install_abort_callback(llm)
        return llm

    def _install_abort_callback(self, llm: Any) -> None:
        """Let ggml stop a running decode (a long prompt batch) when the current call is cancelled.

        Generation already stops between tokens; this also covers prompt evaluation, which
        otherwise runs a whole window's prompt without a chance to look at the cancel flag."""
        import llama_cpp

        def should_abort(_data: Any) -> bool:
            check = self.abort_check
            return bool(check is not None and check())

        self._abort_cb = llama_cpp.ggml_abort_callback(should_abort)  # kept: ctypes must not free it
        llama_cpp.llama_set_abort_callback(llm.ctx, self._abort_cb, None)

    def _arm_idle_timer(self) -> None:
        if self.idle_release_s is None:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.idle_release_s, self._idle_check)
            self._timer.daemon = True
            self._timer.start()

    def _idle_check(self) -> None:
        if self.idle_release_s is not None and time.monotonic() - self._last_used >= self.idle_release_s * 0.99:
            try:
                self._executor.submit(self._drop)
            except RuntimeError:  # shut down meanwhile: nothing left to release
                pass

    def _drop(self) -> None:
        self._grammars.clear()
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def release(self, wait: bool = True) -> None:
        """Free the model (on the worker thread, after any running call). Reloaded on next use.
        The GUI passes ``wait=False`` (after cancelling a parse) so it never waits on a generation."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        future = self._executor.submit(self._drop)
        if wait:
            future.result()

    def shutdown(self) -> None:
        self.release()
        self._executor.shutdown(wait=True)

    def grammar(self, llm: Any, schema: dict[str, Any]) -> Any:
        """The schema's grammar, built once per schema (worker thread only)."""
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]


class LlamaParser(WindowedLLMParser):
    """Story → beats with a local GGUF model. ``model`` is a path or catalogue id (default: env)."""

    name = "llama"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        worker: LlamaWorker | None = None,
        n_ctx: int = 8192,
        n_gpu_layers: int = 0,
        use_grammar: bool = True,
        temperature: float = 0.2,
        max_window_tokens: int = 700,
        output_ratio: float = 3.0,
        max_output_tokens: int | None = None,
        time_limit_s: float = 180.0,
        seed: int = 0,
    ):
        self._model_spec = model
        self._worker = worker
        self._worker_options = {"n_ctx": n_ctx, "n_gpu_layers": n_gpu_layers, "seed": seed}
        self.use_grammar = use_grammar
        self.temperature = temperature
        self.max_window_tokens = max_window_tokens
        self.output_ratio = output_ratio
        self.max_output_tokens = max_output_tokens
        self.time_limit_s = time_limit_s
        self.seed = seed

    @property
    def worker(self) -> LlamaWorker:
        if self._worker is None:
            self._worker = LlamaWorker(resolve_model(self._model_spec), **self._worker_options)
        return self._worker

    def prepare(self) -> None:
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelUnavailable(INSTALL_HINT)
        self.worker.call(lambda llm: None)  # load now, so a bad file fails before any window

    def release(self, wait: bool = True) -> None:
        """Free the model now (the outliner's "unload model", or when the parser is switched)."""
        if self._worker is not None:
            self._worker.release(wait)

    def token_counter(self) -> TokenCounter:
        worker = self.worker

        def count(text: str) -> int:
            return max(
                1, worker.call(lambda llm: len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)))
            )

        return count

    def window_budget(self, characters: list[Character]) -> int:
        n_ctx = self.worker.call(lambda llm: llm.n_ctx())
        overhead = self.token_counter()(SYSTEM_PROMPT + "\n\n" + library_text(characters)) + 400  # context + template
        room = n_ctx - overhead
        if room < 64:
            raise ModelUnavailable(
                f"{self.worker.model_path}: a context of {n_ctx} tokens leaves no room for the story after the "
                f"{overhead}-token prompt; give a larger context (--context TOKENS on the command line)"
            )
        return max(32, min(self.max_window_tokens, int(room / (1.0 + self.output_ratio))))

    def generate(self, messages: list[dict[str, str]], schema: dict[str, Any], control: GenerationControl) -> str:
        worker = self.worker
        return worker.call(lambda llm: self._generate_on_worker(worker, llm, messages, schema, control))

    def _generate_on_worker(
        self,
        worker: LlamaWorker,
        llm: Any,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        control: GenerationControl,
    ) -> str:
        kwargs: dict[str, Any] = {}
        if self.use_grammar:
            try:
                kwargs["grammar"] = worker.grammar(llm, schema)
            except Exception as exc:  # a schema feature the grammar converter lacks: validate without it
                raise WindowFailure(f"cannot build the JSON grammar ({exc})") from None
        control.check()
        worker.abort_check = control.should_stop
        try:
            stream = llm.create_chat_completion(
                messages=messages,
                stream=True,
                temperature=self.temperature,
                max_tokens=self.max_output_tokens,
                seed=self.seed,
                **kwargs,
            )
            parts: list[str] = []
            finish = None
            try:
                for chunk in stream:
                    control.check()  # cancel / time limit after every token
                    choice = chunk["choices"][0]
                    parts.append(choice.get("delta", {}).get("content") or "")
                    finish = choice.get("finish_reason") or finish
            finally:
                stream.close()
        except ValueError as exc:
            if "exceed context window" in str(exc):
                raise ContextOverflow(f"the window does not fit the model's context: {exc}") from None
            raise WindowFailure(f"the model failed: {exc}") from None
        except ParseError:  # cancel, time limit: already what the caller expects
            raise
        except Exception as exc:  # llama.cpp decode errors (and an abort) surface as RuntimeError
            control.check()  # an abort we asked for becomes ParseCancelled / WindowTimeout
            raise WindowFailure(f"the model failed: {exc}") from None
        finally:
            worker.abort_check = None
        text = "".join(parts)
        if finish == "length":
            raise ContextOverflow(f"the answer was cut off after {len(text)} characters (context or token limit)")
        return text

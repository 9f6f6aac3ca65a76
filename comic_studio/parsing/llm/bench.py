"""Parse time per 1,000 words with the ``llama`` parser: ``python -m comic_studio.parsing.llm.bench``.

Without a model argument it writes the tests' tiny random-weight GGUF (``tests/parsing/llm/
tiny_gguf.py``, needs a source checkout and the ``gguf`` package): that measures the *mechanics*
(windowing, prompt, grammar, validation, llama.cpp calls), not what a real model costs. Pass a
real GGUF (``--model PATH``) to measure one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def _tiny_model(folder: Path) -> Path:
    writer = Path(__file__).resolve().parents[3] / "tests" / "parsing" / "llm" / "tiny_gguf.py"
    if not writer.is_file():
        raise FileNotFoundError(
            f"{writer}: the tiny GGUF writer is part of the source checkout; pass --model PATH.gguf instead"
        )
    spec = importlib.util.spec_from_file_location("tiny_gguf", writer)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_tiny_gguf(folder / "tiny.gguf")


def bench_llm(
    words: int = 1_000, model: str | Path | None = None, *, n_ctx: int = 4096, use_grammar: bool = True
) -> dict[str, Any]:
    """Parse a generated ~``words``-word story once (after a warm-up load); report seconds per 1,000 words."""
    from comic_studio.parsing.bench import BENCH_CHARACTERS, generate_story
    from comic_studio.parsing.llm.llama import LlamaParser, LlamaWorker

    with tempfile.TemporaryDirectory(prefix="comic-studio-llm-bench-") as tmp:
        path = Path(model) if model is not None else _tiny_model(Path(tmp))
        worker = LlamaWorker(path, n_ctx=n_ctx, idle_release_s=None)
        try:
            t_load = time.perf_counter()
            worker.call(lambda llm: None)
            load_s = time.perf_counter() - t_load
            text = generate_story(words)
            n_words = len(text.split())
            windows: list[int] = []
            parser = LlamaParser(worker=worker, use_grammar=use_grammar)
            t0 = time.perf_counter()
            result = parser.parse(text, BENCH_CHARACTERS, progress=lambda p: windows.append(getattr(p, "windows", 0)))
            seconds = time.perf_counter() - t0
        finally:
            worker.shutdown()
    beats = result.beats()
    return {
        "model": "tiny-random (mechanics only)" if model is None else str(model),
        "words": n_words,
        "windows": max(windows or [0]),
        "load_s": round(load_s, 3),
        "seconds": round(seconds, 3),
        "seconds_per_1000_words": round(seconds * 1000 / max(1, n_words), 3),
        "beats": len(beats),
        "llm_beats": sum(b.source == "llm" for b in beats),
        "rules_beats": sum(b.source == "rules" for b in beats),
    }


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--words", type=int, default=1_000)
    cli.add_argument("--model", default=None)
    cli.add_argument("--n-ctx", type=int, default=4096)
    args = cli.parse_args()
    print(json.dumps(bench_llm(args.words, args.model, n_ctx=args.n_ctx)))

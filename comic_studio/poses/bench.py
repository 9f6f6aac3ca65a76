"""Retrieval throughput: ``python -m comic_studio.poses.bench`` prints JSON.

Queries are distinct sentences (no memo hits), so the MiniLM number includes encoding each query.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from comic_studio.poses.library import load_library
from comic_studio.poses.retrieval import PoseRetriever, minilm_available

_ACTIONS = ("punches", "hugs", "runs after", "kneels before", "waves at", "kisses", "kicks", "carries",
            "talks to", "points at", "pulls", "grabs the arm of")  # fmt: skip


def _queries(n: int) -> list[tuple[str, int]]:
    return [
        (f"Character {i} {_ACTIONS[i % len(_ACTIONS)]} person {i * 7 % 13} in room {i}", 1 + i % 3) for i in range(n)
    ]


def _rate(retriever: PoseRetriever, queries: list[tuple[str, int]]) -> float:
    start = time.perf_counter()
    for text, n in queries:
        retriever.search(text, n, k=5)
    return len(queries) / (time.perf_counter() - start)


def bench_retrieval(n_queries: int = 300, cache_dir: Path | None = None) -> dict[str, float | int | str | None]:
    """Queries per second for each embedder, plus library size and MiniLM start-up costs (s)."""
    entries = load_library()
    out: dict[str, float | int | str | None] = {"entries": len(entries), "queries": n_queries}
    out["overlap_qps"] = round(_rate(PoseRetriever(entries, embedder="overlap"), _queries(n_queries)), 1)
    if not minilm_available():
        out["minilm_qps"] = None
        out["minilm_note"] = "ML extra not installed"
        return out
    with tempfile.TemporaryDirectory() as tmp:
        cache = cache_dir or Path(tmp)
        t0 = time.perf_counter()
        cold = PoseRetriever(entries, embedder="minilm", cache_dir=cache)  # loads the model, embeds
        out["minilm_cold_start_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        warm = PoseRetriever(entries, embedder="minilm", cache_dir=cache)  # model loaded, cache hit
        out["minilm_cached_start_s"] = round(time.perf_counter() - t0, 3)
        assert cold.embedded_captions and not warm.embedded_captions
        out["minilm_qps"] = round(_rate(warm, _queries(n_queries)), 1)
    return out


def main() -> int:
    print(json.dumps(bench_retrieval(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Storyboard throughput: panels per second at a typical thumbnail size.

``python -m comic_studio.backends.storyboard.bench`` prints the JSON of :func:`bench_storyboard`.
Target: ≥ 20 panels/s at 600×400 on a laptop-class CPU core.
"""

from __future__ import annotations

import json
import time
from typing import Any

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.core.model import ShotType
from comic_studio.generation.request import GenerationRequest, RequestCharacter

_CAST = [
    RequestCharacter(id="a", name="Bella", colour="#c0392b"),
    RequestCharacter(id="b", name="Edward", colour="#2e6fb8"),
    RequestCharacter(id="c", name="Jacob", colour="#3f9a4a"),
]
_ACTIONS = ["Bella runs down the street", "Edward hugs Bella", "Jacob punches Edward", "Bella sits and reads",
            "Edward points at the door", "they argue loudly"]  # fmt: skip
_SETTINGS = [("kitchen", "evening"), ("street", "night"), ("park", "morning"), ("office", "")]


def _requests(n: int, width: int, height: int, matching: str, unique: bool = False) -> list[GenerationRequest]:
    """``unique``: every panel gets its own action text, as in a real story (no query reuse)."""
    shots = list(ShotType)
    out = []
    for i in range(n):
        setting, tod = _SETTINGS[i % len(_SETTINGS)]
        out.append(
            GenerationRequest(
                width=width,
                height=height,
                seed=i,
                shot=shots[i % len(shots)],
                characters=_CAST[: 1 + i % 3],
                actor_id="a",
                action=_ACTIONS[i % len(_ACTIONS)] + (f" beside crate number {i}" if unique else ""),
                setting=setting,
                time_of_day=tod,
                backend_settings={"pose_matching": matching},
            )
        )
    return out


def _rate(backend: StoryboardBackend, requests: list[GenerationRequest]) -> float:
    backend.generate(requests[0])  # warm: fonts, pose library, retriever index
    t0 = time.perf_counter()
    for r in requests:
        backend.generate(r)
    return len(requests) / (time.perf_counter() - t0)


def bench_storyboard(n: int = 60, width: int = 600, height: int = 400, include_minilm: bool = False) -> dict[str, Any]:
    """Panels/s for the whole ``generate`` (pose retrieval, framing, drawing, 2× supersampling)."""
    backend = StoryboardBackend()
    result: dict[str, Any] = {"panel_size": [width, height], "panels": n, "supersample": 2}
    result["panels_per_s_overlap_matching"] = round(_rate(backend, _requests(n, width, height, "overlap")), 1)
    fast = _requests(n, width, height, "overlap")
    for r in fast:
        r.backend_settings["supersample"] = 1
    result["panels_per_s_no_supersample"] = round(_rate(backend, fast), 1)
    if include_minilm:
        # Pose retrieval with the MiniLM model: each new action text costs one sentence encoding.
        result["panels_per_s_minilm_repeated_actions"] = round(_rate(backend, _requests(n, width, height, "auto")), 1)
        result["panels_per_s_minilm_unique_actions"] = round(
            _rate(backend, _requests(n, width, height, "auto", True)), 1
        )
    return result


if __name__ == "__main__":
    print(json.dumps(bench_storyboard(include_minilm=True), indent=2))

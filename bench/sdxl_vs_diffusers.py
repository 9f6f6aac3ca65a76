"""Engine + ``sdxl`` backend vs raw diffusers, same tiny components, same process. Prints JSON.

    python bench/sdxl_vs_diffusers.py [--runs 10] [--steps 4] [--size 64] [--threads 1] [--out FILE]

* ``raw_s``: ``StableDiffusionXLPipeline(**components)(...)`` called directly (median per image).
* ``backend_s``: ``SdxlBackend.generate`` (model lookup, cache hit, fresh scheduler, previews off).
* ``engine_s``: submit → FINISHED through the :class:`Engine` worker thread (adds queueing,
  messages and PNG encoding of the result). Target (issue 6): ``engine_s / raw_s`` ≤ 1.05.
* ``switch_reloads``: component loads caused by switching to a second backend on the same base
  model (target 0).

Each measurement alternates raw/backend/engine so machine load drifts hit all three alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import emit_result  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--kit", help="tiny kit folder (default: a temporary one)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers import StableDiffusionXLPipeline

    from comic_studio.backends.sdxl import SdxlBackend
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.messages import JobEvent
    from comic_studio.generation.models.loading import load_sdxl_components, sdxl_source
    from comic_studio.generation.registry import register_backend, unregister_backend
    from comic_studio.generation.request import GenerationRequest
    from comic_studio.testing.tiny import build_tiny_kit

    class SdxlTwin(SdxlBackend):
        name = "sdxl-bench-twin"

    with tempfile.TemporaryDirectory() as tmp:
        kit = build_tiny_kit(Path(args.kit) if args.kit else Path(tmp) / "kit")
        request = GenerationRequest(
            backend="sdxl", width=args.size, height=args.size, seed=1, prompt="a lighthouse in the rain, comic style",
            backend_settings={"model": str(kit.sdxl), "steps": args.steps, "preview_every": 0},
        )  # fmt: skip
        register_backend("sdxl", SdxlBackend)
        register_backend(SdxlTwin.name, SdxlTwin)
        engine = Engine()
        try:
            finished: dict[str, threading.Event] = {}

            def on_message(msg) -> None:
                if msg.event in (JobEvent.FINISHED, JobEvent.ERROR, JobEvent.CANCELLED):
                    if msg.event is JobEvent.ERROR:
                        print(msg.detail, file=sys.stderr)
                    finished.setdefault(msg.job_id, threading.Event()).set()

            engine.subscribe(on_message)

            def via_engine(req: GenerationRequest) -> float:
                start = time.perf_counter()
                job = engine.submit(req)
                finished.setdefault(job, threading.Event()).wait(120)
                return time.perf_counter() - start

            # The engine's backend loads the models into the engine's cache; raw diffusers and the
            # direct backend get the very same component objects (no second copy, no load skew).
            load_s = via_engine(request)
            parts = load_sdxl_components(sdxl_source(kit.sdxl), cache=engine.resources.models)
            raw_pipe = StableDiffusionXLPipeline(**parts)
            raw_pipe.set_progress_bar_config(disable=True)
            direct = SdxlBackend()
            direct.bind_resources(engine.resources)

            def raw() -> float:
                start = time.perf_counter()
                raw_pipe(request.prompt, num_inference_steps=args.steps, guidance_scale=5.0, height=args.size,
                         width=args.size, generator=torch.Generator("cpu").manual_seed(1))  # fmt: skip
                return time.perf_counter() - start

            def backend() -> float:
                start = time.perf_counter()
                direct.generate(request)
                return time.perf_counter() - start

            raw(), backend()  # warm-up
            times: dict[str, list[float]] = {"raw": [], "backend": [], "engine": []}
            for _ in range(args.runs):
                times["raw"].append(raw())
                times["backend"].append(backend())
                times["engine"].append(via_engine(request))
            loads_before = engine.resources.models.loads()
            via_engine(request.model_copy(update={"backend": SdxlTwin.name}))
            switch_reloads = engine.resources.models.loads() - loads_before
        finally:
            engine.shutdown()
            unregister_backend("sdxl")
            unregister_backend(SdxlTwin.name)

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "size": args.size, "steps": args.steps, "runs": args.runs, "threads": torch.get_num_threads(),
        "first_job_with_load_s": round(load_s, 4),
        "raw_s": round(med["raw"], 4), "backend_s": round(med["backend"], 4), "engine_s": round(med["engine"], 4),
        "backend_ratio": round(med["backend"] / med["raw"], 3), "engine_ratio": round(med["engine"] / med["raw"], 3),
        "engine_ratio_target": 1.05, "switch_reloads": switch_reloads,
    }  # fmt: skip
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()

"""A book on a local Ray cluster: 1 vs 2 workers, and the cluster's per-job overhead. Prints JSON.

    python bench/cluster.py [--panels 40] [--steps 4] [--size 64] [--out r.json]

The panels are tiny random-weight SDXL jobs (the tiny kit), one torch thread per worker, so two
workers on a 2-core machine can at best halve the time. Reported, each after a warm-up job per worker
(model loading excluded): wall seconds for the book on the local engine (this process, one thread),
on the cluster with 1 worker and with 2; ``speedup_2_vs_1`` (target ≥ 1.7 on 2 cores) and
``overhead_1_worker_vs_local`` (seconds per panel, cluster with one worker / local engine; target
≤ 1.1), ``per_job_overhead_s`` (the same as seconds per panel); ``load_average_1min`` before and
after (the machine may be shared); and ``cluster_start_s``: a private local Ray instance plus its workers answering.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import emit_result  # noqa: E402


def requests(kit, panels: int, steps: int, size: int):
    from comic_studio.generation.request import GenerationRequest

    settings = {"model": str(kit.sdxl), "steps": steps, "preview_every": 0}
    return [
        GenerationRequest(
            backend="sdxl", width=size, height=size, seed=1000 + i, prompt=f"panel {i}", backend_settings=settings
        )  # fmt: skip
        for i in range(panels)
    ]


def run_book(engine, batch) -> float:
    """Seconds from the first submit to the last final message."""
    done = threading.Semaphore(0)
    errors: list[str] = []

    def on_message(message) -> None:
        if message.event.is_final:
            if message.event.value != "finished":
                errors.append(message.error or message.event.value)
            done.release()

    unsubscribe = engine.subscribe(on_message)
    try:
        start = time.perf_counter()
        for request in batch:
            engine.submit(request)
        for _ in batch:
            done.acquire()
        elapsed = time.perf_counter() - start
    finally:
        unsubscribe()
    if errors:
        raise SystemExit(f"jobs failed: {errors[:3]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=40)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out")
    args = parser.parse_args()

    import torch

    from comic_studio.generation.cluster import ClusterEngine
    from comic_studio.generation.engine import Engine
    from comic_studio.testing.tiny import build_tiny_kit

    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]  # a shared machine: the figures mean little without it
    with tempfile.TemporaryDirectory() as folder:
        kit = build_tiny_kit(Path(folder) / "kit")
        batch = requests(kit, args.panels, args.steps, args.size)
        warm = requests(kit, 2, args.steps, args.size)
        with Engine() as local:
            run_book(local, warm[:1])
            local_s = run_book(local, batch)
        figures: dict[str, float] = {}
        for workers in (1, 2):
            start = time.perf_counter()
            with ClusterEngine(workers=workers) as cluster:
                figures[f"cluster_start_s_{workers}"] = round(time.perf_counter() - start, 2)
                run_book(cluster, warm[:workers])  # each worker loads the models once
                figures[f"cluster_{workers}_s"] = round(run_book(cluster, batch), 3)
    result = {
        "bench": "cluster",
        "panels": args.panels,
        "steps": args.steps,
        "size": args.size,
        "local_s": round(local_s, 3),
        **figures,
        "speedup_2_vs_1": round(figures["cluster_1_s"] / figures["cluster_2_s"], 3),
        "overhead_1_worker_vs_local": round(figures["cluster_1_s"] / local_s, 3),
        "per_job_overhead_s": round((figures["cluster_1_s"] - local_s) / args.panels, 4),
        "cpus": os.cpu_count(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cluster_start_s": figures["cluster_start_s_2"],
    }
    emit_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""racig cost of regional references: wall time per panel with 1, 2 and 4 referenced characters vs
1 (targets ≤1.3× for 2, ≤1.6× for 4), plus the ControlNet-only run (no references, no adapters)
and peak memory, on the tiny kit's components. Prints JSON.

    python bench/racig.py [--size 512x320] [--steps 8] [--runs 3] [--device cpu|cuda] [--out r.json]

Every character is one masked image on each adapter, all in the same UNet pass, so extra characters
add IP key/value projections of 16 tokens per layer (tiny next to the UNet), not UNet passes.
Each panel is timed after a warm-up, so reference embeddings come from the cache (as in a book
render) but attaching/removing the adapters on the shared UNet is included (it is per job).
Peak memory: CUDA's max_memory_allocated per configuration on a GPU; on the CPU, the process's
peak RSS after each configuration (monotone: read the increments).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "backends"))

from bench.run import emit_result  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="512x320")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--kit", help="kit folder to reuse (default: a temporary one)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    import torch
    from test_racig_support import REFS, build_kit, kit_settings, panel_request

    from comic_studio.backends.racig import RacigBackend
    from comic_studio.backends.racig.adapters import reference_images_setting
    from comic_studio.generation.resources import EngineResources
    from comic_studio.generation.settings import EngineSettings

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    root = Path(args.kit or tmp.name)
    tiny, strong = build_kit(root)
    torch.set_num_threads(args.threads)  # build_kit pins one thread for tests
    settings = kit_settings(tiny, strong, steps=args.steps, reference_images=reference_images_setting(REFS))
    backend = RacigBackend()
    if args.device != "cpu":
        backend.bind_resources(EngineResources(EngineSettings(device=args.device)))
    cuda = backend.resources.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    configs = {"controlnet_only_1": (1, False), "refs_1": (1, True), "refs_2": (2, True), "refs_4": (4, True)}
    rows: dict[str, dict] = {}
    for name, (n, refs) in configs.items():
        request = panel_request(settings, n=n, refs=refs, width=width, height=height)
        backend.generate(request)  # warm-up: loads, embeddings, kernels
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = []
        for run in range(args.runs):
            sync()
            start = time.perf_counter()
            backend.generate(request.model_copy(update={"seed": 100 + run}))
            sync()
            times.append(time.perf_counter() - start)
        row = {"characters": n, "references": refs, "median_s": round(statistics.median(times), 4),
               "runs_s": [round(t, 4) for t in times]}  # fmt: skip
        if cuda:
            row["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        else:
            row["process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        rows[name] = row
    one = rows["refs_1"]["median_s"]
    result = {
        "device": backend.resources.device, "size": [width, height], "steps": args.steps, "runs": args.runs,
        "threads": args.threads, "configs": rows,
        "ratio_2_vs_1": round(rows["refs_2"]["median_s"] / one, 3),
        "ratio_4_vs_1": round(rows["refs_4"]["median_s"] / one, 3),
        "refs_1_vs_controlnet_only": round(one / rows["controlnet_only_1"]["median_s"], 3),
        "targets": {"ratio_2_vs_1": 1.3, "ratio_4_vs_1": 1.6},
        "embeddings_computed": backend.embeddings.computed,
    }  # fmt: skip
    emit_result(result, args.out)
    tmp.cleanup()
    return result


if __name__ == "__main__":
    main()

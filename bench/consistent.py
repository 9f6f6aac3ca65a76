"""Consistent self-attention cost: per-panel time with 1, 2 and 4 banked characters vs plain SDXL on
the same tiny components (ratios), measured bank bytes, and the bank-size formula at SDXL 1024²'s real
shapes (36 patched layers: 30 at 32×32×1280, 6 at 64×64×640). Prints JSON.

    python bench/consistent.py [--size 128] [--steps 10] [--runs 3] [--out result.json]

The tiny kit has SDXL's architecture at toy width, so the *ratios* show the extra attention work the
bank adds relative to a UNet forward at that width; at real width attention is a larger share of
the UNet, so treat them as a lower bound. Anchors are built once (timed separately), then panels read
the cached banks, as in a whole-story run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import emit_result  # noqa: E402

CAST = [("ana", "Ana", "green raincoat"), ("ben", "Ben", "grey sweater"), ("cid", "Cid", "red scarf"),
        ("dee", "Dee", "yellow hat")]  # fmt: skip


def real_shape_figures(strength: float = 0.5, steps: int = 30, start_step: int = 5, characters: int = 4) -> dict:
    """Bank sizes for SDXL 1024² from the formula (fp16, CFG batch of 2, one anchor)."""
    from comic_studio.backends.consistent.bank import bank_bytes_formula, sdxl_1024_layers
    from comic_studio.backends.consistent.schedule import ConsistencySchedule

    full_step = bank_bytes_formula(sdxl_1024_layers(1.0, 1.0), steps=1, batch=1)
    banked_steps = len(ConsistencySchedule(start_step=start_step).banked_steps(steps))
    ours = bank_bytes_formula(sdxl_1024_layers(strength, strength), steps=banked_steps, batch=2)
    # StoryDiffusion keeps every token of both CFG halves for every step, on the GPU.
    storydiffusion = bank_bytes_formula(sdxl_1024_layers(1.0, 1.0), steps=steps, batch=2)
    largest_layer = max(2 * round(n * strength) * ch * 2 for n, ch, _ in sdxl_1024_layers(1, 1))
    return {
        "layers": 36, "steps": steps, "start_step": start_step, "strength": strength,
        "full_tokens_per_step_per_anchor_fp16_mb": round(full_step / 1e6, 1),
        "ours_host_bytes_per_anchor": ours, "ours_host_gb_per_anchor": round(ours / 1e9, 2),
        "storydiffusion_gpu_bytes_per_anchor": storydiffusion,
        "storydiffusion_gpu_gb_per_anchor": round(storydiffusion / 1e9, 2),
        "ours_vs_storydiffusion": round(ours / storydiffusion, 3),
        f"ours_gpu_peak_bytes_with_{characters}_characters": largest_layer * characters,
        f"ours_gpu_peak_mb_with_{characters}_characters": round(largest_layer * characters / 1e6, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import torch

    from comic_studio.backends.consistent import ConsistentBackend
    from comic_studio.backends.sdxl import SdxlBackend
    from comic_studio.generation.request import GenerationRequest, RequestCharacter
    from comic_studio.testing.tiny import build_tiny_kit

    torch.set_num_threads(args.threads)
    cast = [RequestCharacter(id=i, name=n, description=d) for i, n, d in CAST]
    with tempfile.TemporaryDirectory() as tmp:
        kit = build_tiny_kit(Path(tmp) / "kit")
        common = {"model": str(kit.sdxl), "steps": args.steps, "preview_every": 0}

        def req(backend: str, characters: list, extra: dict) -> GenerationRequest:
            return GenerationRequest(backend=backend, width=args.size, height=args.size, seed=1, prompt="a busy harbour",
                                     characters=characters, backend_settings={**common, **extra})  # fmt: skip

        plain_backend, backend = SdxlBackend(), ConsistentBackend()
        extra = {"anchor_size": args.size, "start_step": 1}

        def timed(fn) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        plain_req = req("sdxl", cast[:1], {})
        plain_backend.generate(plain_req)  # warm-up: loads the components into the cache
        anchor_s = [timed(lambda c=c: backend.generate(req("consistent", [c], extra))) for c in cast]
        plain = statistics.median(timed(lambda: plain_backend.generate(plain_req)) for _ in range(args.runs))
        panels: dict[str, dict] = {}
        for count in (1, 2, 4):
            r = req("consistent", cast[:count], extra)
            backend.generate(r)
            seconds = statistics.median(timed(lambda: backend.generate(r)) for _ in range(args.runs))  # noqa: B023 (called in this iteration)
            panels[str(count)] = {"panel_s": round(seconds, 4), "vs_plain": round(seconds / plain, 3)}
        banks = list(backend._banks.values())
        bank_bytes = banks[0].nbytes()

    result = {
        "device": "cpu", "threads": args.threads, "size": args.size, "steps": args.steps, "runs": args.runs,
        "components": "tiny kit (SDXL architecture, toy width)",
        "plain_sdxl_panel_s": round(plain, 4),
        "consistent_by_banked_characters": panels,
        "anchor_run_s_per_character": round(statistics.median(anchor_s), 4),
        "tiny_bank_bytes_per_character": bank_bytes,
        "tiny_bank_file_bytes": len(banks[0].to_bytes()),
        "sdxl_1024_real_shapes": real_shape_figures(),
    }  # fmt: skip
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()

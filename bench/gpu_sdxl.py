"""Full-size SDXL throughput on a GPU: raw diffusers vs the engine + ``sdxl`` backend. Prints JSON.

    python bench/gpu_sdxl.py [--size 1024] [--steps 20] [--runs 3] [--dtype float16]
    python bench/gpu_sdxl.py --smoke          # CPU, tiny architecture, 64², 2 steps: checks it runs

The UNet, VAE and both text encoders are built **from SDXL's real configurations with random
weights** (the bundled comic_studio/resources/sdxl/base-1.0; no download possible here), so the numbers are SDXL's
real compute cost. Both paths use the very same component objects: the backend finds them in the
engine's model cache under the id of the weights-free config folder. Reported: denoising it/s
measured between step callbacks (steps 2..N, so text encoding and VAE decoding are excluded), and
whole-image seconds.
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

from bench.run import EngineSteps, emit_result, steps_per_second  # noqa: E402


def full_size_models(device: str) -> dict:
    """SDXL base's UNet, VAE and both text encoders from the bundled configs (comic_studio/resources/sdxl/base-1.0,
    the same files single-file checkpoints load with), random weights, built on ``device``."""
    from comic_studio.generation.models.sdxl_config import random_sdxl_models

    return random_sdxl_models(device)


def build_components(smoke: bool, dtype, device: str) -> dict:
    import torch

    from comic_studio.generation.models.loading import load_tokenizers_and_scheduler
    from comic_studio.generation.models.sdxl_config import bundled_sdxl_configs
    from comic_studio.testing import tiny

    if smoke:
        parts = tiny.tiny_sdxl_components(0)
    else:
        torch.manual_seed(0)
        parts = full_size_models(device)
        # The real CLIP tokenizers and SDXL's Euler scheduler, from the same bundled folder.
        parts.update(load_tokenizers_and_scheduler(bundled_sdxl_configs()[0]))
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        parts[name] = parts[name].to(device=device, dtype=dtype).eval()
    return parts


def write_config_folder(parts: dict, folder: Path) -> None:
    """model_index.json, configs, tokenizers, scheduler of the tiny parts: everything but weights."""
    import json as _json

    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True}
    for name, obj in parts.items():
        library = "diffusers" if type(obj).__module__.startswith("diffusers") else "transformers"
        index[name] = [library, type(obj).__name__]
        if name.startswith("tokenizer"):
            obj.save_pretrained(folder / name)
        elif name == "scheduler" or library == "diffusers":
            obj.save_config(folder / name)
        else:
            obj.config.save_pretrained(folder / name)
    (folder / "model_index.json").write_text(_json.dumps(index), encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny architecture, 64², 2 steps (tests)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.smoke:
        args.size, args.steps, args.runs, args.dtype = 64, 2, 1, "float32"

    import torch
    from diffusers import StableDiffusionXLPipeline

    from comic_studio.backends.sdxl import SdxlBackend
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.models.loading import SDXL_COMPONENTS, sdxl_source
    from comic_studio.generation.models.sdxl_config import bundled_sdxl_configs
    from comic_studio.generation.registry import register_backend, unregister_backend
    from comic_studio.generation.request import GenerationRequest
    from comic_studio.generation.settings import EngineSettings

    device = "cpu" if args.smoke else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.smoke:
        print("no CUDA GPU: use --smoke for a CPU check", file=sys.stderr)
    dtype = getattr(torch, args.dtype)
    build_start = time.perf_counter()
    parts = build_components(args.smoke, dtype, device)
    build_s = time.perf_counter() - build_start

    with tempfile.TemporaryDirectory() as tmp:
        # The backend reads tokenizers and scheduler from a config folder and finds the models in
        # the engine's cache: the bundled SDXL folder at full size, a written one for the tiny parts.
        folder = Path(tmp) / "sdxl-config" if args.smoke else bundled_sdxl_configs()[0]
        if args.smoke:
            write_config_folder(parts, folder)
        engine = Engine(EngineSettings(device=device, dtype=args.dtype))
        source = sdxl_source(folder)
        for name in SDXL_COMPONENTS:
            engine.resources.models.put(source.cache_id, name, args.dtype, device, parts[name])
        register_backend("sdxl", SdxlBackend)
        engine_steps = EngineSteps(engine)
        request = GenerationRequest(backend="sdxl", width=args.size, height=args.size, seed=1, prompt="a lighthouse",
                                    backend_settings={"model": str(folder), "steps": args.steps, "preview_every": 0})  # fmt: skip
        pipe = StableDiffusionXLPipeline(**parts)
        pipe.set_progress_bar_config(disable=True)

        def sync() -> None:
            if device == "cuda":
                torch.cuda.synchronize()

        def raw_run() -> tuple[float, float]:
            stamps: list[float] = []

            def cb(_pipe, _i, _t, tensors):
                sync()
                stamps.append(time.perf_counter())
                return tensors

            start = time.perf_counter()
            pipe(request.prompt, num_inference_steps=args.steps, height=args.size, width=args.size,
                 generator=torch.Generator("cpu").manual_seed(1), callback_on_step_end=cb)  # fmt: skip
            sync()
            return time.perf_counter() - start, steps_per_second(stamps)

        def engine_run() -> tuple[float, float]:
            return engine_steps.run(request)

        try:
            raw_run(), engine_run()  # warm-up (cuDNN autotune, allocator)
            raw, ours = [], []
            for _ in range(args.runs):
                raw.append(raw_run())
                ours.append(engine_run())
        finally:
            engine.shutdown()
            unregister_backend("sdxl")

    result = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "smoke": args.smoke, "size": args.size, "steps": args.steps, "dtype": args.dtype, "runs": args.runs,
        "build_s": round(build_s, 2),
        "unet_params_m": round(sum(p.numel() for p in parts["unet"].parameters()) / 1e6, 1),
        "raw_its": round(statistics.median(r[1] for r in raw), 3),
        "engine_its": round(statistics.median(r[1] for r in ours), 3),
        "raw_image_s": round(statistics.median(r[0] for r in raw), 3),
        "engine_image_s": round(statistics.median(r[0] for r in ours), 3),
    }  # fmt: skip
    result["engine_vs_raw"] = round(result["engine_image_s"] / result["raw_image_s"], 3)
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()

"""StoryBooth LoRA training on a GPU: peak VRAM and seconds per optimizer step of each memory recipe,
on full-size SDXL (random weights from the bundled configs) at 1024². Prints JSON.

    python bench/gpu_train_lora.py [--resolution 1024] [--steps 3] [--out r.json]
    python bench/gpu_train_lora.py --smoke     # CPU, tiny SDXL, 64²: checks that it runs

Recipes (``LoraRecipe.memory``): ``as-the-seed-ran`` (fp16 frozen model, no gradient checkpointing,
full AdamW — StoryBooth's own settings, ≈20 GB reported), ``16gb`` (gradient checkpointing, 8-bit
AdamW when bitsandbytes is installed), ``12gb`` (that, plus the VAE and text encoders off the GPU
after the pictures are encoded). Each recipe runs in a fresh set of models; the peak is
``torch.cuda.max_memory_allocated`` over encoding and ``--steps`` optimizer steps of one picture
(gradient accumulation 1, so every step is one forward/backward). A recipe that runs out of memory
is reported as such, not fatal.
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
from bench.train_lora import components, pictures  # noqa: E402

RECIPES = ("as-the-seed-ran", "16gb", "12gb")


def run_recipe(recipe_name: str, args: argparse.Namespace, device: str) -> dict:
    import torch

    from comic_studio.training.lora import LoraRecipe, LoraTrainer

    parts = components(not args.smoke, device)
    if device == "cuda":
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            parts[name] = parts[name].to(dtype=torch.float16)
        # Counted from here: building the random models in float32 first is not the recipe's cost.
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    recipe = LoraRecipe(steps=args.steps + 1, gradient_accumulation=1, resolution=args.resolution,
                        checkpoint_every=10**6, memory=recipe_name)  # fmt: skip
    stamps: list[float] = []

    def stamp(_progress) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    out: dict = {"recipe": recipe_name}
    try:
        trainer = LoraTrainer(parts, pictures(args.resolution), recipe, device=device)
        with tempfile.TemporaryDirectory() as folder:
            trainer.train(Path(folder) / "ck.safetensors", on_progress=stamp)
        trainer.close()
        steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]  # the first step warms up
        out["s_per_step"] = round(statistics.median(steps), 3) if steps else None
        out["out_of_memory"] = False
    except torch.cuda.OutOfMemoryError:
        out["out_of_memory"] = True
    if device == "cuda":
        out["peak_vram_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    del parts
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny SDXL, 64² (tests)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    import torch

    if args.smoke:
        args.resolution, args.steps = 64, 2
    device = "cpu" if args.smoke else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.smoke:
        print("no CUDA GPU: use --smoke for a CPU check", file=sys.stderr)
    try:
        import bitsandbytes  # noqa: F401

        eight_bit = True
    except ImportError:
        eight_bit = False
    result = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "smoke": args.smoke,
        "resolution": args.resolution,
        "steps": args.steps,
        "bitsandbytes": eight_bit,
        "recipes": [run_recipe(name, args, device) for name in RECIPES],
    }
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()

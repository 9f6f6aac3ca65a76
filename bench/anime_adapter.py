"""AnimeAdapter's inference overhead: seconds per denoising step of the same UNet with the adapter's
processors and 1, 2, 3 references vs without the adapter (ratios), plus the fused-token encoding.
Prints JSON.

    python bench/anime_adapter.py                 # CPU, the tiny SD 1.5 kit (K = 3), 256² — seconds
    python bench/anime_adapter.py --train         # also: training s/step on the tiny kit (T2I-Adapter, K = 3)
    python bench/anime_adapter.py --full --device cuda
        # SD 1.5 UNet at 512² from the bundled config and the paper's adapter (ViT-L/14 widths, K = 7,
        # 257 tokens), random weights, float16: s/step and peak VRAM, with and without the adapter

A step is one UNet call on a CFG batch of 2 (negative tokens first, as the backend runs it), each
reference with a token mask dropping a third of the tokens and an output region of half the image.
Reported: the median of ``--runs`` timings of ``--steps`` steps after a warm-up. Timings compare
only within one run of this script on one machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import emit_result  # noqa: E402


def _models(full: bool, device: str, dtype: Any) -> tuple[Any, Any, int]:
    from comic_studio.generation.models.anime_adapter import AnimeAdapter
    from comic_studio.generation.models.sd15 import random_sd15_unet
    from comic_studio.testing.tiny_sd15 import tiny_anime_adapter, tiny_sd15_components

    if full:
        import torch

        unet = random_sd15_unet(device).to(dtype).eval()
        with torch.device(device):
            adapter = AnimeAdapter.for_unet(unet, clip_hidden=1024, encoder_layers=24, tokens=257)
        return unet, adapter.to(dtype).eval(), 64
    unet = tiny_sd15_components(0)["unet"].to(device).eval()
    return unet, tiny_anime_adapter(unet, 0).to(device).eval(), 32


def _time(fn: Any, steps: int, runs: int, sync: Any) -> float:
    fn()
    sync()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        samples.append((time.perf_counter() - start) / steps)
    return statistics.median(samples)


def _train_steps(steps: int, runs: int) -> dict[str, Any]:
    """Seconds per optimizer step (batch 1, no accumulation) of the trainer on the tiny kit, 64²."""
    import tempfile

    import diffusers
    from transformers import CLIPImageProcessor, CLIPVisionModel

    from comic_studio.generation.models.sd15 import load_sd15_components, resolve_sd15
    from comic_studio.testing.tiny import character_picture
    from comic_studio.testing.tiny_sd15 import TINY_K, build_tiny_sd15_kit
    from comic_studio.training.anime_adapter import AnimeAdapterRecipe, AnimeAdapterTrainer, AnimeSample

    with tempfile.TemporaryDirectory() as tmp:
        kit = build_tiny_sd15_kit(Path(tmp) / "kit")
        parts = load_sd15_components(resolve_sd15(str(kit.sd15)))
        encoder = CLIPVisionModel.from_pretrained(kit.clip_vision).eval()
        processor = CLIPImageProcessor.from_pretrained(kit.clip_vision)
        t2i = diffusers.T2IAdapter.from_pretrained(kit.t2i_adapter).eval()
        picture = character_picture(1, 64, 64)
        samples = [AnimeSample(picture, None, picture, "1girl", "a.png")]
        recipe = AnimeAdapterRecipe(
            k_layers=TINY_K, resolution=64, gradient_accumulation=1, steps=1, checkpoint_every=10**6
        )
        trainer = AnimeAdapterTrainer(parts, encoder, processor, samples, recipe, controller=t2i)
        checkpoint = Path(tmp) / "c.safetensors"

        def step() -> None:
            trainer.recipe = trainer.recipe.model_copy(update={"steps": trainer.step + 1})
            trainer.train(checkpoint)

        seconds = _time(step, steps, runs, lambda: None)
    return {"s_per_step": round(seconds, 4), "resolution": 64, "controller": "t2i-adapter", "k_layers": TINY_K}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="SD 1.5 at 512² with the paper's adapter size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-refs", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="also time training steps on the tiny kit (CPU)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    import torch

    from comic_studio.generation.models.anime_adapter import AdapterState, Reference, attached, trainable_parameters

    cuda = args.device.startswith("cuda")
    dtype = torch.float16 if cuda else torch.float32
    if not cuda:
        torch.set_num_threads(1)
    unet, adapter, side = _models(args.full, args.device, dtype)
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, side, side, generator=gen).to(args.device, dtype)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=gen).to(args.device, dtype)
    tokens_n, width = adapter.config.tokens, adapter.config.context_dim
    region = torch.zeros(1, side * 8, side * 8, device=args.device)
    region[:, :, : side * 4] = 1.0
    mask = torch.ones(tokens_n, device=args.device)
    mask[1 + (tokens_n - 1) * 2 // 3 :] = 0.0

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def step() -> None:
        with torch.no_grad():
            unet(latents, 500, encoder_hidden_states=context)

    results: dict[str, Any] = {
        "model": "sd15-512 (random weights)" if args.full else "tiny sd15 kit",
        "device": torch.cuda.get_device_name() if cuda else "cpu (1 thread)",
        "dtype": str(dtype).removeprefix("torch."),
        "adapter_parameters": trainable_parameters(adapter),
        "k_layers": adapter.config.k_layers,
        "tokens": tokens_n,
        "latent": [side, side],
        "steps": args.steps,
        "runs": args.runs,
    }
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    base = _time(step, args.steps, args.runs, sync)
    results["s_per_step_without_adapter"] = round(base, 5)
    if cuda:
        results["peak_gib_without_adapter"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    per_refs = {}
    for n in range(0, args.max_refs + 1):
        refs = [
            Reference(torch.randn(2, tokens_n, width, generator=gen).to(args.device, dtype), mask, 0.8, region)
            for _ in range(n)
        ]
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with attached(unet, adapter, AdapterState(refs)):  # 0: attached, no reference (delegates)
            seconds = _time(step, args.steps, args.runs, sync)
        entry = {"s_per_step": round(seconds, 5), "ratio": round(seconds / base, 3)}
        if cuda:
            entry["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        per_refs[str(n)] = entry
    results["with_adapter_by_references"] = per_refs
    if args.train:
        results["training_tiny"] = _train_steps(args.steps, args.runs)
    emit_result(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

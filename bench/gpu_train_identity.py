"""StableIdentity training on a GPU: peak VRAM and seconds per step with and without UNet gradient
checkpointing, on full-size SDXL (random weights from the bundled configs) and a full-size random
ViT-B/16 face encoder, at 512² (the seed's size). Prints JSON.

    python bench/gpu_train_identity.py [--resolution 512] [--steps 3] [--out r.json]
    python bench/gpu_train_identity.py --smoke     # CPU, tiny SDXL and ViT, 64²: checks that it runs

The frozen UNet, VAE and text encoders are float16 on the GPU and the two MLPs float32, as the
recipe says. Every step backpropagates through the UNet *and* both text encoders to the MLPs, so
the peak is far above inference. Each variant runs in a fresh set of models; the peak is
``torch.cuda.max_memory_allocated`` over the face encoding and ``--steps`` steps (the first one,
warm-up, is left out of the s/step median). A variant that runs out of memory is reported as such.
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
from bench.train_lora import components  # noqa: E402

PHOTO = ROOT / "tests" / "vision" / "fixtures" / "emma_1female.png"


def face_encoder(full: bool, device: str):
    import torch
    from transformers import ViTConfig, ViTModel

    config = ViTConfig() if full else ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                intermediate_size=37, image_size=32, patch_size=8)  # fmt: skip
    torch.manual_seed(0)
    return ViTModel(config, add_pooling_layer=False).to(device).eval().requires_grad_(False)


def run_variant(checkpointing: bool, args: argparse.Namespace, device: str) -> dict:
    import torch
    from PIL import Image

    from comic_studio.training.identity import IdentityRecipe, IdentityTrainer
    from comic_studio.vision.faces import align_face

    parts = components(not args.smoke, device)
    if device == "cuda":
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            parts[name] = parts[name].to(dtype=torch.float16)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    face = align_face(Image.open(PHOTO).convert("RGB"), args.resolution, where=str(PHOTO))
    recipe = IdentityRecipe(steps=args.steps + 1, resolution=args.resolution, checkpoint_every=10**6,
                            gradient_checkpointing=checkpointing)  # fmt: skip
    stamps: list[float] = []

    def stamp(_progress) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    out: dict = {"gradient_checkpointing": checkpointing}
    try:
        trainer = IdentityTrainer(parts, [face], face_encoder(not args.smoke, device), recipe, device=device)
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
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny SDXL and ViT, 64², 1 step (tests)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    import torch

    if args.smoke:
        args.resolution, args.steps = 64, 1  # one timed step after the warm-up: keeps the test short
    device = "cpu" if args.smoke else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.smoke:
        print("no CUDA GPU: use --smoke for a CPU check", file=sys.stderr)
    result = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "smoke": args.smoke,
        "resolution": args.resolution,
        "steps": args.steps,
        "variants": [run_variant(on, args, device) for on in (False, True)],
    }
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()

"""LoRA training speed: the app's trainer against a reference loop built the way diffusers' example
``train_text_to_image_lora_sdxl.py`` trains, on the same components. Prints JSON.

    python bench/train_lora.py [--resolution 128] [--steps 12] [--device cpu|cuda] [--out r.json]

Both train the same LoRA (rank 4 on every attention projection, AdamW 1e-4, clip 1.0, one picture
per step). The reference does per step what the example does: encode the picture with the VAE and
the caption with both text encoders, then the UNet forward/backward and the optimizer step. The
app's trainer encodes each picture and caption once and samples the latent from the cached
distribution (same law), so only the UNet and the optimizer remain per step. Reported: median
seconds per optimizer step of each after two warm-up steps, and their ratio (target ≤ 1.0).
Tiny random-weight SDXL by default (``--full`` builds full-size SDXL from the bundled configs:
a GPU job, see ``bench/gpu_train_lora.py`` for memory recipes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import emit_result  # noqa: E402


def pictures(resolution: int) -> list[Any]:
    from comic_studio.testing.tiny import character_picture
    from comic_studio.training.data import TrainingPicture

    return [TrainingPicture(character_picture(seed, resolution, resolution), "a photo of sks woman") for seed in (1, 2)]


def components(full: bool, device: str) -> dict[str, Any]:
    if not full:
        from comic_studio.testing.tiny import tiny_sdxl_components

        parts = tiny_sdxl_components(0)
    else:
        import torch

        from comic_studio.generation.models.loading import load_tokenizers_and_scheduler
        from comic_studio.generation.models.sdxl_config import bundled_sdxl_configs, random_sdxl_models

        torch.manual_seed(0)
        parts = random_sdxl_models(device)
        parts.update(load_tokenizers_and_scheduler(bundled_sdxl_configs()[0]))
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        parts[name] = parts[name].to(device)
    return parts


def ours(parts: dict[str, Any], resolution: int, steps: int, device: str) -> list[float]:
    from comic_studio.training.lora import LoraRecipe, LoraTrainer

    recipe = LoraRecipe(steps=steps, gradient_accumulation=1, resolution=resolution, checkpoint_every=10**6)
    trainer = LoraTrainer(parts, pictures(resolution), recipe, device=device)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        trainer.train(Path(folder) / "ck.safetensors", on_progress=lambda _p: stamps.append(_now(device)))
    trainer.close()
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def reference(parts: dict[str, Any], resolution: int, steps: int, device: str) -> list[float]:
    """One optimizer step per picture, encoding as the diffusers example does inside its loop."""
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812
    from diffusers import DDPMScheduler, StableDiffusionXLPipeline
    from peft import LoraConfig

    from comic_studio.training.lora import STORYBOOTH_TARGETS

    unet, vae = parts["unet"], parts["vae"]
    pipe = StableDiffusionXLPipeline(**parts, add_watermarker=False)
    noise_scheduler = DDPMScheduler.from_config(parts["scheduler"].config)
    unet.requires_grad_(False)
    torch.manual_seed(42)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=list(STORYBOOTH_TARGETS)),
                     adapter_name="reference")  # fmt: skip
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2)
    batch = []
    for picture in pictures(resolution):
        pixels = np.asarray(picture.image.resize((resolution, resolution)), dtype=np.float32) / 127.5 - 1.0
        batch.append((torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device), picture.caption))
    time_ids = torch.tensor(
        [[resolution, resolution, 0, 0, resolution, resolution]], dtype=torch.float32, device=device
    )
    generator = torch.Generator("cpu").manual_seed(0)
    stamps: list[float] = []
    unet.train()
    for step in range(steps):
        pixel_values, caption = batch[step % len(batch)]
        with torch.no_grad():
            latents = vae.encode(pixel_values).latent_dist.sample(generator=generator) * vae.config.scaling_factor
            embeds, _n, pooled, _np = pipe.encode_prompt(caption, device=device, num_images_per_prompt=1,
                                                         do_classifier_free_guidance=False)  # fmt: skip
        noise = torch.randn(latents.shape, generator=generator).to(device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (1,), generator=generator).to(device)
        noisy = noise_scheduler.add_noise(latents, noise, t)
        pred = unet(noisy, t, encoder_hidden_states=embeds,
                    added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample  # fmt: skip
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stamps.append(_now(device))
    unet.delete_adapters("reference")
    unet.requires_grad_(False)
    unet.eval()
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def _now(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full", action="store_true", help="full-size SDXL from the bundled configs (a GPU job)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    warm = 2  # the first steps pay for allocator and kernel warm-up in both loops
    ours_steps = ours(components(args.full, args.device), args.resolution, args.steps + warm, args.device)[warm:]
    ref_steps = reference(components(args.full, args.device), args.resolution, args.steps + warm, args.device)[warm:]
    result = {
        "device": args.device,
        "full_size": args.full,
        "resolution": args.resolution,
        "steps": args.steps,
        "ours_s_per_step": round(statistics.median(ours_steps), 4),
        "reference_s_per_step": round(statistics.median(ref_steps), 4),
    }
    result["ours_vs_reference"] = round(result["ours_s_per_step"] / result["reference_s_per_step"], 3)
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()

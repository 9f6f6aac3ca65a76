"""A tiny SD 2.x-style model (a diffusers folder): the tiny SD 1.5 kit's parts with SD 2.x's
transformer layout (linear projections) and no SDXL size conditioning, for the tests that a base of
neither AnimeAdapter family is refused clearly."""

from __future__ import annotations

from pathlib import Path


def write_tiny_sd2(folder: str | Path, seed: int = 0) -> Path:
    """Write the model under ``folder`` (a few MB) and return it."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    from comic_studio.testing.tiny_sd15 import tiny_sd15_components, tiny_sd15_unet_config

    parts = tiny_sd15_components(seed)
    torch.manual_seed(seed)
    parts["unet"] = UNet2DConditionModel(**{**tiny_sd15_unet_config(), "use_linear_projection": True}).eval()
    target = Path(folder)
    StableDiffusionPipeline(**parts, requires_safety_checker=False).save_pretrained(target, safe_serialization=True)
    return target

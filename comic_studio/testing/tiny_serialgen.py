"""Tiny SerialGen stage-1 weights in Moore-AnimateAnyone's layout, for the ``serialgen`` standardizer's
tests and ``--models tiny``: seeded random ReferenceNet / denoising UNet / PoseGuider for the tiny
SD 1.5 kit's UNet, and a CLIP image encoder whose projection is that UNet's context width.

What :func:`build_tiny_serialgen` writes under a folder::

    sd15/ ...                the tiny SD 1.5 kit (:mod:`comic_studio.testing.tiny_sd15`)
    moore/                   reference_unet.safetensors, denoising_unet.safetensors, pose_guider.safetensors
                             (the keys of Moore's .pth files; safetensors so no pickle is needed)
    image-encoder/           CLIPVisionModelWithProjection + image processor
    tiny-serialgen.json      marker: version + seed
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comic_studio.testing.tiny import tiny_image_encoder
from comic_studio.testing.tiny_sd15 import build_tiny_sd15_kit

TINY_SERIALGEN_VERSION = 1
TINY_POSE_GUIDER = (4, 8, 8, 16)
"""Toy PoseGuider widths (Moore's are 16-32-96-256); still three stride-2 steps to latent size."""


@dataclass(frozen=True)
class TinySerialgen:
    root: Path
    sd15: Path
    moore: Path
    image_encoder: Path


def random_state(module: Any, seed: int, std: float = 0.05) -> dict[str, Any]:
    """``module``'s state dict with every tensor redrawn from a seeded normal."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(v.shape, generator=gen) * std).contiguous() for k, v in module.state_dict().items()}


def build_tiny_serialgen(folder: str | Path, seed: int = 0, *, sd15_kit: str | Path | None = None,
                         force: bool = False) -> TinySerialgen:  # fmt: skip
    """Write the weights under ``folder`` (the tiny SD 1.5 kit under ``sd15_kit``, default
    ``folder/sd15-kit``); a build already there with the same version and seed is reused."""
    root = Path(folder)
    kit = build_tiny_sd15_kit(Path(sd15_kit) if sd15_kit else root / "sd15-kit", seed)
    found = TinySerialgen(root, kit.sd15, root / "moore", root / "image-encoder")
    marker = root / "tiny-serialgen.json"
    wanted = {"version": TINY_SERIALGEN_VERSION, "seed": seed}
    if not force and marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == wanted:
                return found
        except (OSError, ValueError):
            pass
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from comic_studio.generation.models.serialgen_stage1 import PoseGuider

    marker.unlink(missing_ok=True)
    found.moore.mkdir(parents=True, exist_ok=True)
    unet = UNet2DConditionModel.from_pretrained(str(kit.sd15), subfolder="unet")
    # Start from the base UNet (as Moore's training does) and perturb it, so the two nets differ.
    base = unet.state_dict()
    for i, name in enumerate(("reference_unet", "denoising_unet")):
        delta = random_state(unet, seed + 300 + i, std=0.02)
        state = {k: (base[k] if "norm" in k else base[k] + delta[k]).contiguous() for k in base}
        save_file(state, str(found.moore / f"{name}.safetensors"))
    guider = PoseGuider(unet.config.block_out_channels[0], TINY_POSE_GUIDER)
    save_file(random_state(guider, seed + 310, std=0.1), str(found.moore / "pose_guider.safetensors"))
    encoder, processor = tiny_image_encoder(seed + 320)
    encoder.save_pretrained(found.image_encoder, safe_serialization=True)
    processor.save_pretrained(found.image_encoder)
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return found


TINY_STEPS = 2


def use_tiny_serialgen(folder: str | Path, sd15_kit: str | Path | None = None) -> TinySerialgen | None:
    """Build the weights under ``folder`` and make them the ``serialgen`` standardizer's defaults for
    this process (``standardize --standardizer serialgen --models tiny``). None without the backend."""
    from comic_studio.generation.backend_api import set_default_settings
    from comic_studio.generation.registry import BackendNotFoundError, get_backend_class

    try:
        backend = get_backend_class("serialgen")  # by name: the testing kit knows no concrete backend
    except BackendNotFoundError:
        return None
    kit = build_tiny_serialgen(folder, sd15_kit=sd15_kit)
    set_default_settings(backend, standardizer_weights=str(kit.moore), standardizer_base=str(kit.sd15),
                         standardizer_image_encoder=str(kit.image_encoder), standardizer_steps=TINY_STEPS)  # fmt: skip
    return kit

"""Shared helpers for the racig tests (no tests here): the tiny kit, IP-Adapter weights with a
larger spread (the kit's std-0.02 weights barely move a tiny UNet), reference images, requests."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from comic_studio.generation.request import GenerationRequest, RequestCharacter

STRONG_STD = 0.2


def build_kit(root: Path) -> tuple[Any, Path]:
    """The tiny kit plus ``strong/{face,plus}.safetensors``: random h94-layout adapters, std 0.2."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from comic_studio.testing.tiny import build_tiny_kit, ip_adapter_plus_state_dict

    torch.set_num_threads(1)
    kit = build_tiny_kit(root / "tiny-kit")
    strong = root / "strong-ip"
    if not (strong / "plus.safetensors").is_file():
        strong.mkdir(parents=True, exist_ok=True)
        unet = UNet2DConditionModel.from_pretrained(kit.sdxl, subfolder="unet")
        for offset, name in enumerate(("face", "plus")):
            state = ip_adapter_plus_state_dict(unet, 100 + offset, std=STRONG_STD)
            save_file({k: v.contiguous() for k, v in state.items()}, str(strong / f"{name}.safetensors"))
    return kit, strong


def kit_settings(kit: Any, strong: Path | None = None, **extra: Any) -> dict[str, Any]:
    weights = kit.ip_adapter / "sdxl_models"
    face = strong / "face.safetensors" if strong else weights / kit.ip_adapter_weights[1]
    plus = strong / "plus.safetensors" if strong else weights / kit.ip_adapter_weights[0]
    settings = dict(
        model=str(kit.sdxl), controlnet=str(kit.controlnet), image_encoder=str(kit.image_encoder),
        ip_adapter_face=str(face), ip_adapter_plus=str(plus),
        size="panel", steps=3, pose_matching="overlap",
    )  # fmt: skip
    settings.update(extra)
    return settings


def reference_png(seed: int, size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


REFS = [reference_png(i) for i in range(12)]
HASHES = [hashlib.sha256(b).hexdigest() for b in REFS]

NAMES = ["Ana", "Ben", "Cy", "Dee"]


def characters(n: int, refs: bool = True) -> list[RequestCharacter]:
    """``n`` characters; character i has face ref 2i and body ref 2i+1 (when ``refs``)."""
    return [
        RequestCharacter(id=name.lower(), name=name, colour=["#d0563b", "#3b6fd0", "#3bd06f", "#d0c03b"][i],
                         face_refs=[HASHES[2 * i]] if refs else [], body_refs=[HASHES[2 * i + 1]] if refs else [])
        for i, name in enumerate(NAMES[:n])
    ]  # fmt: skip


def panel_request(settings: dict[str, Any], n: int = 2, refs: bool = True, width: int = 160, height: int = 96,
                  seed: int = 3, **fields: Any) -> GenerationRequest:  # fmt: skip
    chars = fields.pop("characters", None) or characters(n, refs)
    return GenerationRequest(
        backend="racig", width=width, height=height, seed=seed, prompt="two people on a pier, comic style",
        action="Ana hands Ben a brass key", characters=chars, actor_id="ana", target_id="ben" if n > 1 else None,
        backend_settings=settings, **fields,
    )  # fmt: skip


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)

"""Training pictures: bucketed to SDXL sizes, encoded once, and handed out in a checkpointed order.

Every picture is resized to cover the bucket of the nearest aspect ratio (SDXL was trained on such
buckets around one megapixel) and centre-cropped; the crop and sizes become SDXL's ``time_ids``.
Its VAE latent distribution (mean and standard deviation) and its caption's embeddings from both
text encoders are computed once: a step then samples the latent from the cached distribution
with the trainer's generator — the same law as encoding the picture again every step, as
diffusers' example scripts do, at none of the cost, and the VAE and text encoders can leave the
GPU afterwards (the 12 GB recipe).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

MIN_EXAMPLES = 1
SDXL_ASPECTS = (0.5, 0.5714, 0.6667, 0.75, 0.8, 1.0, 1.25, 1.3333, 1.5, 1.75, 2.0)
"""Width/height ratios of the buckets (SDXL's training buckets span about 1:2 to 2:1)."""


@dataclass(frozen=True)
class TrainingPicture:
    """One picture and its caption (e.g. "a photo of sks woman, green raincoat")."""

    image: Image.Image
    caption: str

    @property
    def digest(self) -> str:
        """sha256 of the picture's pixels and caption: the dataset manifest names it."""
        buf = io.BytesIO()
        self.image.convert("RGB").save(buf, format="PNG")
        return hashlib.sha256(buf.getvalue() + self.caption.encode("utf-8")).hexdigest()


def bucket_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The bucket (width, height) of about ``resolution``² pixels whose aspect is nearest to the
    picture's, in multiples of 64 (8 below 512 px, for the tiny test models)."""
    step = 64 if resolution >= 512 else 8
    aspect = width / height
    best = min(SDXL_ASPECTS, key=lambda a: abs(math.log(a / aspect)))
    w = max(step, round(resolution * math.sqrt(best) / step) * step)
    h = max(step, round(resolution / math.sqrt(best) / step) * step)
    return w, h


@dataclass
class EncodedPicture:
    """What a training step needs from one picture, on the CPU in float32."""

    latent_mean: Any
    latent_std: Any
    prompt_embeds: Any
    pooled_embeds: Any
    time_ids: Any
    caption: str = ""
    """Encoded again every step when the text encoders train (their LoRA moves the embeddings)."""


def encode_pictures(
    pictures: list[TrainingPicture], components: dict[str, Any], resolution: int, device: str
) -> list[EncodedPicture]:
    """Encode every picture and caption once with the frozen VAE and text encoders."""
    import numpy as np
    import torch

    encode_text = sdxl_text_encoder(components, device)
    vae = components["vae"]
    if getattr(vae.config, "force_upcast", False) and vae.dtype != torch.float32:
        vae.to(torch.float32)  # SDXL's own VAE overflows in float16 (the trainer's copy, not the renders')
    out: list[EncodedPicture] = []
    with torch.no_grad():
        for picture in pictures:
            image = picture.image.convert("RGB")
            w, h = bucket_size(image.width, image.height, resolution)
            scale = max(w / image.width, h / image.height)
            resized = image.resize((max(w, round(image.width * scale)), max(h, round(image.height * scale))),
                                   Image.Resampling.LANCZOS)  # fmt: skip
            left, top = (resized.width - w) // 2, (resized.height - h) // 2
            cropped = resized.crop((left, top, left + w, top + h))
            pixels = torch.from_numpy(np.asarray(cropped, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
            dist = vae.encode(pixels.to(device=device, dtype=vae.dtype)).latent_dist
            embeds, pooled = encode_text(picture.caption)
            time_ids = torch.tensor([[h, w, top, left, h, w]], dtype=torch.float32)  # SDXL: (orig, crop, target)
            out.append(EncodedPicture(dist.mean.float().cpu(), dist.std.float().cpu(), embeds, pooled, time_ids,
                                      picture.caption))  # fmt: skip
    return out


def sdxl_text_encoder(components: dict[str, Any], device: str) -> Callable[[str], tuple[Any, Any]]:
    """caption → ``(prompt_embeds, pooled_embeds)`` of an SDXL pipeline's two frozen text encoders,
    on the CPU in float32: both encoders' penultimate hidden states concatenated, pooled from the
    second. The pipeline's own ``encode_prompt``, so training conditions as rendering does (the LoRA
    and the AnimeAdapter trainers share it)."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**components, add_watermarker=False)

    def encode(caption: str) -> tuple[Any, Any]:
        with torch.no_grad():
            embeds, _neg, pooled, _neg_pooled = pipe.encode_prompt(
                caption, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
        return embeds.float().cpu(), pooled.float().cpu()

    return encode


class DataOrder:
    """Which picture comes next: a fresh permutation per epoch from the trainer's data generator.
    Its state (the current permutation and the position in it) is part of every checkpoint."""

    def __init__(self, count: int, generator: Any):
        self.count = count
        self.generator = generator
        self.order: list[int] = []
        self.position = 0

    def next(self) -> int:
        import torch

        if self.position >= len(self.order):
            self.order = torch.randperm(self.count, generator=self.generator).tolist()
            self.position = 0
        index = self.order[self.position]
        self.position += 1
        return index

    def state(self) -> dict[str, Any]:
        return {"order": list(self.order), "position": self.position, "generator": self.generator.get_state()}

    def restore(self, state: dict[str, Any]) -> None:
        self.order = [int(i) for i in state["order"]]
        self.position = int(state["position"])
        self.generator.set_state(state["generator"])

"""The tiny SD1.5 kit: seeded random-weight models with the real SD1.5 architecture at toy width,
written in the real formats, for the ``anime`` backend's tests, its benchmark and ``--models tiny``.

What :func:`build_tiny_sd15_kit` writes under a folder::

    sd15/              a diffusers SD1.5 folder (model_index.json, unet/, vae/, text_encoder/,
                       tokenizer/, scheduler/; no safety checker)
    clip-vision/       a CLIPVisionModel + its image processor (the ViT-L/14 encoder's layout,
                       6 layers, 32 px, patch 8: 17 tokens = CLS + 4×4 patches)
    anime-adapter/     AnimeAdapter weights for them (K = 3) in the real format
                       (anime_adapter.safetensors + config.json)
    controlnet/        an OpenPose-style SD1.5 ControlNet (diffusers folder)
    t2i-adapter/       an OpenPose-style full T2I-Adapter for that UNet (diffusers folder)
    ip-adapter/        the stand-in's h94 layout: image_encoder/ (CLIPVisionModelWithProjection, the
                       ViT-H encoder's kind) and ip-adapter-plus_sd15.safetensors for the UNet
    tiny-sd15-kit.json a marker: kit version + seed

The UNet has SD1.5's layout (no added time conditioning, one text encoder whose last hidden state is
the context) and its cross-attention width is the tiny text encoder's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comic_studio.testing.tiny import (
    TEXT_HIDDEN,
    _text_config,
    ip_adapter_plus_state_dict,
    tiny_image_encoder,
    tiny_tokenizer,
)

KIT_VERSION = 3
VISION_HIDDEN = 32
VISION_LAYERS = 6
VISION_SIZE = 32
VISION_PATCH = 8
TINY_K = 3
"""The tests' K (the issue's "K = 3"; the paper's default is 7, too deep for a 6-layer encoder)."""


@dataclass(frozen=True)
class TinySd15Kit:
    root: Path
    sd15: Path
    clip_vision: Path
    adapter: Path
    controlnet: Path
    seed: int

    @property
    def t2i_adapter(self) -> Path:
        return self.root / "t2i-adapter"

    @property
    def ip_image_encoder(self) -> Path:
        return self.root / "ip-adapter" / "image_encoder"

    @property
    def ip_adapter(self) -> Path:
        return self.root / "ip-adapter" / "ip-adapter-plus_sd15.safetensors"


def tiny_sd15_unet_config() -> dict[str, Any]:
    """SD1.5's UNet layout at toy width: cross-attention in the first down and last up block and
    in the middle block, like SD1.5's (which has them in three of four)."""
    return {
        "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
        "block_out_channels": (32, 64), "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"), "attention_head_dim": 4,
        "cross_attention_dim": TEXT_HIDDEN, "norm_num_groups": 32,
    }  # fmt: skip


def tiny_sd15_components(seed: int = 0) -> dict[str, Any]:
    """The SD1.5 pipeline components with seeded random weights (float32, CPU, eval mode)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**tiny_sd15_unet_config())
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16), in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64, scaling_factor=0.18215, mid_block_add_attention=False,
    )  # fmt: skip
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, skip_prk_steps=True,
        set_alpha_to_one=False, timestep_spacing="leading",
    )  # fmt: skip
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(len(tokenizer), TEXT_HIDDEN))
    for model in (unet, vae, text_encoder):
        model.eval()
    return {"unet": unet, "vae": vae, "scheduler": scheduler, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "safety_checker": None, "feature_extractor": None, "image_encoder": None}  # fmt: skip


def tiny_clip_vision(seed: int = 0) -> tuple[Any, Any]:
    """A CLIPVisionModel (ViT-L/14's layout at toy size) and its image processor."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed + 40)
    config = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN, num_hidden_layers=VISION_LAYERS, num_attention_heads=4, intermediate_size=37,
        image_size=VISION_SIZE, patch_size=VISION_PATCH, projection_dim=VISION_HIDDEN,
    )  # fmt: skip
    processor = CLIPImageProcessor(
        size={"shortest_edge": VISION_SIZE}, crop_size={"height": VISION_SIZE, "width": VISION_SIZE}
    )
    return CLIPVisionModel(config).eval(), processor


def tiny_anime_adapter(unet: Any, seed: int = 0, k_layers: int = TINY_K, std: float = 0.2, family: str = "sd15") -> Any:  # fmt: skip
    """AnimeAdapter weights for ``unet`` (of ``family``) and the tiny encoder, random (large enough
    to change renders)."""
    import torch

    from comic_studio.generation.models.anime_adapter import AnimeAdapter

    tokens = (VISION_SIZE // VISION_PATCH) ** 2 + 1
    adapter = AnimeAdapter.for_unet(unet, clip_hidden=VISION_HIDDEN, encoder_layers=VISION_LAYERS, tokens=tokens,
                                    encoder="tiny-clip-vision", k_layers=k_layers, family=family)  # fmt: skip
    gen = torch.Generator().manual_seed(seed + 50)
    with torch.no_grad():
        for p in adapter.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return adapter.eval()


def tiny_sd15_controlnet(unet: Any, seed: int = 0) -> Any:
    """An SD1.5 ControlNet shaped after ``unet`` (as the OpenPose ControlNets are), random weights."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed + 60)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 32))
    with torch.no_grad():  # from_unet leaves zero convs: they would make it a no-op
        for p in net.parameters():
            if not p.abs().sum():
                p.normal_(0.0, 0.02)
    return net.eval()


def tiny_t2i_adapter(seed: int = 0) -> Any:
    """A full T2I-Adapter (TencentARC's OpenPose adapter's kind) whose two features fit the tiny
    UNet's two down blocks (32 channels at 1/8, 64 at 1/16), random weights."""
    import torch
    from diffusers import T2IAdapter

    torch.manual_seed(seed + 70)
    adapter = T2IAdapter(in_channels=3, channels=[32, 64], num_res_blocks=1, downscale_factor=8,
                         adapter_type="full_adapter")  # fmt: skip
    return adapter.eval()


def build_tiny_sd15_kit(folder: str | Path, seed: int = 0, *, force: bool = False) -> TinySd15Kit:
    """Write the kit under ``folder`` (a few MB, seconds) and return its paths; a kit already there
    with the same version and seed is reused unless ``force``."""
    root = Path(folder)
    kit = TinySd15Kit(root, root / "sd15", root / "clip-vision", root / "anime-adapter", root / "controlnet", seed)
    marker = root / "tiny-sd15-kit.json"
    wanted = {"version": KIT_VERSION, "seed": seed}
    if not force and marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == wanted:
                return kit
        except (OSError, ValueError):
            pass
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    from comic_studio.generation.models.anime_adapter import save_adapter

    root.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    parts = tiny_sd15_components(seed)
    StableDiffusionPipeline(**parts, requires_safety_checker=False).save_pretrained(kit.sd15, safe_serialization=True)
    encoder, processor = tiny_clip_vision(seed)
    encoder.save_pretrained(kit.clip_vision, safe_serialization=True)
    processor.save_pretrained(kit.clip_vision)
    save_adapter(tiny_anime_adapter(parts["unet"], seed), kit.adapter)
    tiny_sd15_controlnet(parts["unet"], seed).save_pretrained(kit.controlnet, safe_serialization=True)
    tiny_t2i_adapter(seed).save_pretrained(kit.t2i_adapter, safe_serialization=True)
    ip_encoder, ip_processor = tiny_image_encoder(seed)
    ip_encoder.save_pretrained(kit.ip_image_encoder, safe_serialization=True)
    ip_processor.save_pretrained(kit.ip_image_encoder)
    plus = ip_adapter_plus_state_dict(parts["unet"], seed + 80, std=0.2)
    save_file({k: v.contiguous() for k, v in plus.items()}, str(kit.ip_adapter))
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return kit


def write_tiny_anime_dataset(folder: str | Path, count: int = 2) -> Path:
    """An AnimeAdapter dataset folder (``metadata.jsonl``) of ``count`` 64² character pictures, each
    with its box mask and a stick-figure OpenPose-style pose image, tag prompts without a name."""
    import numpy as np
    from PIL import Image, ImageDraw

    from comic_studio.testing.tiny import character_picture
    from comic_studio.training.anime_adapter import write_manifest

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        character_picture(10 + i, 64, 64).save(root / f"c{i}.png")
        mask = np.zeros((64, 64), np.uint8)
        mask[16:48, 16:48] = 255
        Image.fromarray(mask).save(root / f"c{i}-mask.png")
        pose = Image.new("RGB", (64, 64))
        ImageDraw.Draw(pose).line([(32, 10), (32, 40), (20 + 10 * i, 60)], fill=(255, 0, 0), width=3)
        pose.save(root / f"c{i}-pose.png")
        rows.append({"image": f"c{i}.png", "mask": f"c{i}-mask.png", "pose": f"c{i}-pose.png",
                     "prompt": "1girl, red hair, school uniform, standing"})  # fmt: skip
    write_manifest(root, rows)
    return root


def use_tiny_anime(folder: str | Path) -> TinySd15Kit | None:
    """Build the kit under ``folder`` and make it the ``anime`` backend's default models for this
    process (part of ``--models tiny``). Builds nothing when no ``anime`` backend is installed."""
    from comic_studio.generation.backend_api import set_default_settings
    from comic_studio.generation.registry import BackendNotFoundError, get_backend_class

    try:
        backend = get_backend_class("anime")  # by name: the testing kit knows no concrete backend
    except BackendNotFoundError:
        return None  # nothing to point at the kit: not worth building
    kit = build_tiny_sd15_kit(folder)
    set_default_settings(backend, steps=4, preview_every=0, max_side=128, model=str(kit.sd15),
                         image_encoder=str(kit.clip_vision), adapter=str(kit.adapter),
                         controlnet=str(kit.controlnet), t2i_adapter=str(kit.t2i_adapter), ip_adapter=str(kit.ip_adapter),
                         ip_image_encoder=str(kit.ip_image_encoder))  # fmt: skip
    return kit

"""The SDXL configuration bundled with the app, and the check that a single-file checkpoint fits one.

A single-file checkpoint (A1111 / ComfyUI ``.safetensors``) holds weights only: diffusers needs a
config folder (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder(_2)/`` configs, the
tokenizers and the scheduler) to build the models around them. ``comic_studio/resources/sdxl/base-1.0/`` is that
folder for SDXL base 1.0 — the architecture nearly every SDXL fine-tune (anime, Turbo, Lightning,
Pony…) keeps — so such checkpoints load offline with no download.

Before any weights are read, a checkpoint's safetensors header (tensor names and shapes, a few kB
read from the start of the file) is compared with a config folder: a checkpoint of another
architecture (SD 1.5, the SDXL refiner, a 9-channel inpainting model) is then refused with the
difference named, instead of failing deep inside diffusers with a tensor size error.

No torch, no diffusers here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from comic_studio.core.resources import resource
from comic_studio.generation.models.ldm_format import CLIP_PREFIX, OPENCLIP_PREFIX, UNET_PREFIX, VAE_PREFIX
from comic_studio.weights.header import Shapes, read_safetensors_shapes

SD1_TEXT_PREFIX = "cond_stage_model."
"""Where SD 1.x/2.x single-file checkpoints keep their one text encoder (SDXL's are ``conditioner.*``)."""

__all__ = [
    "Shapes", "bundled_sdxl_configs", "config_mismatch", "random_sdxl_models", "read_safetensors_shapes",
    "shared_vocabulary",
]  # fmt: skip
"""``read_safetensors_shapes`` moved to :mod:`comic_studio.weights.header` (the weights layer checks
headers too); it stays importable from here."""

BUNDLED_SDXL_CONFIGS = (("sdxl", "base-1.0"),)
"""Resource folders tried, in order, for a single-file checkpoint given without a config folder."""


def bundled_sdxl_configs() -> list[Path]:
    return [resource(*parts) for parts in BUNDLED_SDXL_CONFIGS]


def shared_vocabulary(folder: Path, subfolder: str) -> dict[str, str]:
    """Extra ``from_pretrained`` arguments for a CLIP tokenizer folder that stores no vocabulary.

    SDXL's two tokenizers are the same CLIP BPE tokenizer (``tokenizer_2`` only pads with ``!``), so
    the bundled config keeps ``vocab.json`` / ``merges.txt`` once, under ``tokenizer/``. Without
    these arguments transformers would silently build a 3-token tokenizer from the folder."""
    own = folder / subfolder
    if (own / "vocab.json").is_file() or (own / "tokenizer.json").is_file():
        return {}
    first = folder / "tokenizer"
    if subfolder == "tokenizer" or not (first / "vocab.json").is_file():
        return {}
    return {"vocab_file": str(first / "vocab.json"), "merges_file": str(first / "merges.txt")}


def config_mismatch(shapes: Shapes, folder: Path) -> str | None:
    """Why the checkpoint with these tensor shapes cannot load with the config ``folder`` (None: it
    fits). Checks each component is present and the shapes that tell architectures apart: UNet
    input/output channels and width, cross-attention width, the size/crop conditioning, the
    transformer depth of the middle block, the VAE's latent channels, both text encoders' width,
    depth and projection."""
    try:
        expected, depths = _expectations(folder)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"the config folder {folder} is unreadable: {exc}"
    if any(name.startswith(SD1_TEXT_PREFIX) for name in shapes) and not any(
        n.startswith(OPENCLIP_PREFIX) for n in shapes
    ):
        # Named first: "no CLIP-L weights" would send the user looking for a broken download.
        return "it is a Stable Diffusion 1.x/2.x checkpoint (one text encoder, cond_stage_model.*), not SDXL"
    for prefix, what in ((UNET_PREFIX, "UNet"), (VAE_PREFIX, "VAE"), (CLIP_PREFIX, "CLIP-L text encoder"),
                         (OPENCLIP_PREFIX, "OpenCLIP-G text encoder")):  # fmt: skip
        if not any(name.startswith(prefix) for name in shapes):
            return f"it has no {what} weights ({prefix}*); only complete SDXL checkpoints load as one file"
    for key, (what, shape) in expected.items():
        found = shapes.get(key)
        if found is None:
            return f"{what}: the checkpoint has no {key}"
        if found != shape:
            return f"{what}: the checkpoint has {list(found)}, the config expects {list(shape)}"
    for pattern, (what, count) in depths.items():
        regex = re.compile(re.escape(pattern).replace(r"\{n\}", r"(\d+)"))
        found_layers = {m.group(1) for name in shapes if (m := regex.match(name))}
        if len(found_layers) != count:
            return f"{what}: the checkpoint has {len(found_layers)}, the config expects {count}"
    return None


def _read(folder: Path, sub: str) -> dict[str, Any]:
    return json.loads((folder / sub / "config.json").read_text(encoding="utf-8"))


def _expectations(folder: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, tuple[str, int]]]:
    """(key → (what, shape), key pattern with ``{n}`` → (what, distinct n expected)) from the configs.
    Missing config values take diffusers' / transformers' defaults."""
    unet, vae = _read(folder, "unet"), _read(folder, "vae")
    clip_l, clip_g = _read(folder, "text_encoder"), _read(folder, "text_encoder_2")
    widths = list(unet.get("block_out_channels", [320, 640, 1280, 1280]))
    k_in, k_out = unet.get("conv_in_kernel", 3), unet.get("conv_out_kernel", 3)
    cross = unet.get("cross_attention_dim", 1280)
    cross = cross[-1] if isinstance(cross, list) else cross
    layers = unet.get("transformer_layers_per_block", 1)
    mid_depth = layers[-1] if isinstance(layers, list) else layers
    expected = {
        UNET_PREFIX + "input_blocks.0.0.weight": ("UNet input", (widths[0], unet.get("in_channels", 4), k_in, k_in)),
        UNET_PREFIX + "out.2.weight": ("UNet output", (unet.get("out_channels", 4), widths[0], k_out, k_out)),
        UNET_PREFIX + "middle_block.1.transformer_blocks.0.attn2.to_k.weight":
            ("UNet cross-attention (text embedding width)", (widths[-1], cross)),
        VAE_PREFIX + "quant_conv.weight": ("VAE latent channels", (2 * vae.get("latent_channels", 4),) * 2 + (1, 1)),
        VAE_PREFIX + "encoder.conv_in.weight":
            ("VAE input", (list(vae.get("block_out_channels", [64]))[0], vae.get("in_channels", 3), 3, 3)),
        CLIP_PREFIX + "text_model.embeddings.token_embedding.weight":
            ("CLIP-L vocabulary × width", (clip_l.get("vocab_size", 49408), clip_l.get("hidden_size", 512))),
        OPENCLIP_PREFIX + "token_embedding.weight":
            ("OpenCLIP-G vocabulary × width", (clip_g.get("vocab_size", 49408), clip_g.get("hidden_size", 512))),
        OPENCLIP_PREFIX + "text_projection":
            ("OpenCLIP-G projection", (clip_g.get("hidden_size", 512), clip_g.get("projection_dim", 512))),
    }  # fmt: skip
    if unet.get("addition_embed_type") == "text_time":
        time_dim = unet.get("time_embedding_dim") or 4 * widths[0]
        expected[UNET_PREFIX + "label_emb.0.0.weight"] = (
            "UNet size/crop conditioning",
            (time_dim, unet.get("projection_class_embeddings_input_dim")),
        )
    depths = {
        UNET_PREFIX + "middle_block.1.transformer_blocks.{n}.attn1.to_q.weight": ("UNet middle-block transformer layers", mid_depth),
        CLIP_PREFIX + "text_model.encoder.layers.{n}.self_attn.q_proj.weight": ("CLIP-L layers", clip_l.get("num_hidden_layers", 12)),
        OPENCLIP_PREFIX + "transformer.resblocks.{n}.attn.in_proj_weight": ("OpenCLIP-G layers", clip_g.get("num_hidden_layers", 12)),
    }  # fmt: skip
    return expected, depths


def random_sdxl_models(device: str = "meta", folder: Path | None = None) -> dict[str, Any]:
    """SDXL's UNet, VAE and both text encoders built from a config folder (default: the bundled base
    1.0) with random weights on ``device`` — ``"meta"`` for shapes and parameter counts without
    memory, ``"cuda"`` for the full-size GPU benchmark. torch is imported here, not at module load."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = folder or bundled_sdxl_configs()[0]
    with torch.device(device):  # built where they will live: 3.5 B parameters
        return {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config, subfolder="unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config, subfolder="vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config, subfolder="text_encoder")),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(config, subfolder="text_encoder_2")),
        }  # fmt: skip

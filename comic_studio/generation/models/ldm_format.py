"""Write SDXL components in the original (LDM / A1111 / ComfyUI) single-file key layout.

Real users bring ``.safetensors`` checkpoints in this layout; diffusers' ``from_single_file``
converts them on load. The tiny-model kit writes its weights this way so the single-file path is
tested exactly as real checkpoints use it. The mapping is the inverse of what diffusers reads:

* UNet under ``model.diffusion_model.``: ``input_blocks`` / ``middle_block`` / ``output_blocks``
  numbered by (layers_per_block + 1) per level, resnets renamed (``norm1`` → ``in_layers.0``, ...).
* VAE under ``first_stage_model.``: ``down.{i}.block.{j}``, decoder levels reversed, mid attention
  as 1×1 convolutions.
* CLIP-L under ``conditioner.embedders.0.transformer.`` (transformers key names).
* OpenCLIP-G under ``conditioner.embedders.1.model.`` (fused ``in_proj`` attention, transposed
  ``text_projection``).
"""

from __future__ import annotations

from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "conditioner.embedders.0.transformer."
OPENCLIP_PREFIX = "conditioner.embedders.1.model."

_UNET_TOP = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}
_UNET_RESNET = {
    "norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.", "conv2.": "out_layers.3.", "conv_shortcut.": "skip_connection.",
}  # fmt: skip
_VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def sdxl_to_ldm_state_dict(components: dict[str, Any]) -> dict[str, Any]:
    """One original-format state dict from the diffusers ``unet``, ``vae``, ``text_encoder`` and
    ``text_encoder_2`` of an SDXL pipeline (tensors are shared, not copied, except fused ones)."""
    out = _unet_vae_clip(components, CLIP_PREFIX)
    out.update(_openclip(components["text_encoder_2"]))
    return {k: v.contiguous() for k, v in out.items()}


SD15_CLIP_PREFIX = "cond_stage_model.transformer."
"""Where SD 1.x checkpoints keep their one CLIP text encoder."""


def sd15_to_ldm_state_dict(components: dict[str, Any]) -> dict[str, Any]:
    """One original-format (SD 1.x) state dict from the diffusers ``unet``, ``vae`` and
    ``text_encoder`` of an SD 1.5 pipeline: what A1111/ComfyUI single files hold."""
    out = _unet_vae_clip(components, SD15_CLIP_PREFIX)
    return {k: v.contiguous() for k, v in out.items()}


def _unet_vae_clip(components: dict[str, Any], clip_prefix: str) -> dict[str, Any]:
    """The parts SD 1.x and SDXL single files share: the UNet, the VAE and the CLIP-L text encoder
    (under ``clip_prefix``, which differs between the two families)."""
    out: dict[str, Any] = {}
    unet = components["unet"]
    for key, value in unet.state_dict().items():
        out[UNET_PREFIX + _unet_key(key, unet.config)] = value
    for key, value in components["vae"].state_dict().items():
        ldm_key, value = _vae_key(key, value, len(components["vae"].config.block_out_channels))
        out[VAE_PREFIX + ldm_key] = value
    for key, value in components["text_encoder"].state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel; checkpoints keep the ``text_model.`` level.
        if not key.startswith("text_model."):
            key = "text_model." + key
        out[clip_prefix + key] = value
    return out


def _swap(key: str, table: dict[str, str]) -> str:
    for new, old in table.items():
        if key.startswith(new):
            return old + key[len(new) :]
    return key


def _unet_key(key: str, config: Any) -> str:
    per_level = config.layers_per_block + 1  # resnets (+attention) per level, then one downsampler
    parts = key.split(".")
    if parts[0] == "down_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.i.downsamplers.0.conv.* → input_blocks.N.0.op.*
            return f"input_blocks.{per_level * (level + 1)}.0.op." + ".".join(parts[5:])
        index = 1 + per_level * level + int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"input_blocks.{index}.0." + _swap(rest, _UNET_RESNET)
        return f"input_blocks.{index}.1." + rest
    if parts[0] == "up_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":  # after the resnet (.0) and, when present, the attention (.1)
            has_attention = config.up_block_types[level].startswith("CrossAttn")
            index = per_level * level + per_level - 1
            return f"output_blocks.{index}.{2 if has_attention else 1}." + ".".join(parts[4:])
        index = per_level * level + int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"output_blocks.{index}.0." + _swap(rest, _UNET_RESNET)
        return f"output_blocks.{index}.1." + rest
    if parts[0] == "mid_block":
        kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "resnets":
            return f"middle_block.{2 * j}." + _swap(rest, _UNET_RESNET)
        return "middle_block.1." + rest
    return _swap(key, _UNET_TOP)


def _vae_key(key: str, value: Any, levels: int) -> tuple[str, Any]:
    parts = key.split(".")
    coder = parts[0]
    if coder not in ("encoder", "decoder"):
        return key, value  # quant_conv / post_quant_conv keep their names
    sub = parts[1]
    if sub in ("down_blocks", "up_blocks"):
        level = int(parts[2]) if sub == "down_blocks" else levels - 1 - int(parts[2])
        name = "down" if sub == "down_blocks" else "up"
        if parts[3] in ("downsamplers", "upsamplers"):
            return f"{coder}.{name}.{level}.{'downsample' if name == 'down' else 'upsample'}." + ".".join(
                parts[5:]
            ), value
        rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
        return f"{coder}.{name}.{level}.block.{parts[4]}.{rest}", value
    if sub == "mid_block":
        if parts[2] == "resnets":
            rest = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
            return f"{coder}.mid.block_{int(parts[3]) + 1}.{rest}", value
        rest = _swap(".".join(parts[4:]), _VAE_ATTENTION)
        if value.ndim == 2:  # LDM's attention projections are 1×1 convolutions
            value = value[:, :, None, None]
        return f"{coder}.mid.attn_1.{rest}", value
    if sub == "conv_norm_out":
        return f"{coder}.norm_out." + ".".join(parts[2:]), value
    return key, value


def _openclip(model: Any) -> dict[str, Any]:
    import torch

    sd = model.state_dict()
    tm = "text_model."
    out = {
        OPENCLIP_PREFIX + "token_embedding.weight": sd[tm + "embeddings.token_embedding.weight"],
        OPENCLIP_PREFIX + "positional_embedding": sd[tm + "embeddings.position_embedding.weight"],
        OPENCLIP_PREFIX + "ln_final.weight": sd[tm + "final_layer_norm.weight"],
        OPENCLIP_PREFIX + "ln_final.bias": sd[tm + "final_layer_norm.bias"],
        # OpenCLIP multiplies by text_projection; a Linear layer stores the transpose.
        OPENCLIP_PREFIX + "text_projection": sd["text_projection.weight"].T,
    }
    renames = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
               "self_attn.out_proj": "attn.out_proj"}  # fmt: skip
    for i in range(model.config.num_hidden_layers):
        src, dst = f"{tm}encoder.layers.{i}.", f"{OPENCLIP_PREFIX}transformer.resblocks.{i}."
        for suffix in ("weight", "bias"):
            out[dst + "attn.in_proj_" + suffix] = torch.cat(
                [sd[f"{src}self_attn.{p}_proj.{suffix}"] for p in ("q", "k", "v")], dim=0
            )
            for old, new in renames.items():
                out[f"{dst}{new}.{suffix}"] = sd[f"{src}{old}.{suffix}"]
    return out

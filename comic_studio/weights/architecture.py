"""Is a single weights file usable as a catalogue model? A cheap header check, no tensor data read.

A ComfyUI/A1111 models folder keeps the diffusers-format models (the OpenPose ControlNet, the ViT-H
image encoder, the fp16-fix VAE) as one ``.safetensors`` file with no ``config.json``. The app loads
such a file around a configuration bundled under ``comic_studio/resources/model_configs/<catalogue id>/``, so a
file counts as installed only when its tensor names and shapes fit that configuration: a canny or
"small" ControlNet, an SD 1.5 model or an OpenCLIP-layout encoder under the same folder is not the
model the backend needs and must not be reported as installed.

The probes below are derived from the configuration's numbers (channels, depths, widths), so they
check the architecture, not a copy of one file's header. Two models of one architecture (xinsir's
OpenPose and canny ControlNets; the stock SDXL VAE and its fp16 fix) cannot be told apart by shapes:
a pinned catalogue entry's exact size does (see :func:`comic_studio.weights.locate.usable_file`).

No torch here (the weights layer sits below generation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comic_studio.core.resources import resource
from comic_studio.core.safe_read import UnsafeInputError, read_json
from comic_studio.weights.header import Shapes, read_safetensors_shapes

BUNDLED_CONFIGS = {
    "controlnet-openpose-sdxl": ("model_configs", "controlnet-openpose-sdxl"),
    "clip-vit-h-image-encoder": ("model_configs", "clip-vit-h-image-encoder"),
    "sdxl-vae-fp16-fix": ("model_configs", "sdxl-vae-fp16-fix"),
    # RaCig fine-tuned xinsir's OpenPose ControlNet (its README: stock control is lost once IP features
    # are injected) and loads its file onto that architecture (racig/pipeline.py): the same config.
    "controlnet-openpose-sdxl-racig": ("model_configs", "controlnet-openpose-sdxl"),
}
"""Catalogue id → the resource folder holding its ``config.json`` (one place for each)."""

KEY_PREFIXES = {"controlnet": ("controlnet.",)}
"""Prefixes under which training checkpoints keep a model's keys: RaCig's fine-tuned ControlNet file
holds ``controlnet.<diffusers key>`` (its pipeline loads the keys with that prefix, stripped)."""
ENTRY_KEY_PREFIX = {"controlnet-openpose-sdxl-racig": "controlnet."}
"""Catalogue entries whose file must keep its keys under a prefix: RaCig's ControlNet is named
``model.safetensors``, and a stock (unprefixed) ControlNet of that name is not it."""

Probe = tuple[str, tuple[int, ...] | None]
"""A tensor name and its shape; ``None``: the tensor must be absent (a deeper model of the kind)."""


def bundled_config(entry_id: str) -> Path | None:
    """The folder with ``config.json`` a single file of ``entry_id`` is loaded with, if bundled."""
    parts = BUNDLED_CONFIGS.get(entry_id)
    return resource(*parts) if parts else None


def read_config(folder: Path) -> dict[str, Any]:
    try:
        data = read_json(folder / "config.json")
    except UnsafeInputError as exc:
        raise ValueError(f"{folder / 'config.json'}: {exc.problem}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{folder / 'config.json'}: not a JSON object")
    return data


def probes(kind: str, config: dict[str, Any]) -> list[list[Probe]]:
    """What a file of ``kind`` built as ``config`` holds: alternative key layouts (any may match)."""
    if kind == "controlnet":
        return [_controlnet(config)]
    if kind == "vae":
        return [_vae_diffusers(config), _vae_ldm(config)]
    if kind == "clip_vision":
        return [_clip_vision(config)]
    raise ValueError(f"no architecture check for {kind!r} files")


def mismatch(shapes: Shapes, kind: str, config: dict[str, Any]) -> str | None:
    """``None`` when ``shapes`` fit; else the first difference of the closest layout, in words."""
    problems = []
    for layout in probes(kind, config):
        problem = _first_difference(shapes, layout)
        if problem is None:
            return None
        problems.append(problem)
    return problems[0]


def file_mismatch(path: Path, kind: str, config_folder: Path, prefix: str | None = None) -> str | None:
    """Why ``path`` is not a ``kind`` model of ``config_folder``'s architecture (``None``: it is).
    Reads only the safetensors header; a pickle or an unreadable file is a reason too. A file keeping
    the model under one of :data:`KEY_PREFIXES` fits when its prefixed keys do; ``prefix`` (not
    ``None``) requires the keys under exactly that prefix ("" for none)."""
    if path.suffix.lower() != ".safetensors":
        return f"{path.name} is not a .safetensors file (its shapes cannot be checked without loading it)"
    try:
        shapes = read_safetensors_shapes(path)
        config = read_config(config_folder)
        found = key_prefix(shapes, kind)
        if prefix is not None and found != prefix:
            return f"its {kind} keys are under {found or 'no prefix'!r}, not {prefix or 'no prefix'!r}"
        return mismatch(stripped(shapes, found), kind, config)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"{path.name}: {exc}"


def key_prefix(shapes: Shapes, kind: str) -> str:
    """The prefix of :data:`KEY_PREFIXES` the model's keys sit under in ``shapes`` ("" for none: a
    file with any unprefixed key of the model's first tensor is read as it is)."""
    for prefix in KEY_PREFIXES.get(kind, ()):
        if any(name.startswith(prefix) for name in shapes) and "conv_in.weight" not in shapes:
            return prefix
    return ""


def stripped(shapes: Shapes, prefix: str) -> Shapes:
    """The tensors under ``prefix``, named without it (all of ``shapes`` for no prefix)."""
    if not prefix:
        return shapes
    return {name[len(prefix) :]: shape for name, shape in shapes.items() if name.startswith(prefix)}


def _first_difference(shapes: Shapes, layout: list[Probe]) -> str | None:
    for name, shape in layout:
        have = shapes.get(name)
        if shape is None:
            if have is not None:
                return f"{name} is present (a deeper model than the configuration)"
        elif have is None:
            return f"{name} is missing"
        elif have != shape:
            return f"{name} is {list(have)}, expected {list(shape)}"
    return None


def _depths(config: dict[str, Any], blocks: int) -> list[int]:
    depth = config.get("transformer_layers_per_block", 1)
    return list(depth) if isinstance(depth, list) else [int(depth)] * blocks


def _controlnet(c: dict[str, Any]) -> list[Probe]:
    """diffusers' ControlNetModel key layout (xinsir ships its single file in it)."""
    out_ch = c["block_out_channels"]
    cond = c["conditioning_embedding_out_channels"]
    layers = c["layers_per_block"]
    cross = c["cross_attention_dim"]
    time = out_ch[0] * 4
    found: list[Probe] = [
        ("conv_in.weight", (out_ch[0], c["in_channels"], 3, 3)),
        ("time_embedding.linear_1.weight", (time, out_ch[0])),
        ("controlnet_cond_embedding.conv_in.weight", (cond[0], c.get("conditioning_channels", 3), 3, 3)),
        ("controlnet_cond_embedding.conv_out.weight", (out_ch[0], cond[-1], 3, 3)),
        ("controlnet_mid_block.weight", (out_ch[-1], out_ch[-1], 1, 1)),
    ]
    if c.get("addition_embed_type") == "text_time":
        found.append(("add_embedding.linear_1.weight", (time, c["projection_class_embeddings_input_dim"])))
    depths = _depths(c, len(out_ch))
    zero_convs = 1
    for i, (kind, ch) in enumerate(zip(c["down_block_types"], out_ch)):
        final = i == len(out_ch) - 1
        found.append((f"down_blocks.{i}.resnets.{layers - 1}.conv2.weight", (ch, ch, 3, 3)))
        if "CrossAttn" in kind:
            last = f"down_blocks.{i}.attentions.0.transformer_blocks"
            found += [
                (f"{last}.{depths[i] - 1}.attn2.to_k.weight", (ch, cross)),
                (f"{last}.{depths[i]}.attn2.to_k.weight", None),
            ]
        zero_convs += layers + (0 if final else 1)
    found += [(f"controlnet_down_blocks.{zero_convs - 1}.weight", (out_ch[-1], out_ch[-1], 1, 1)),
              (f"controlnet_down_blocks.{zero_convs}.weight", None)]  # fmt: skip
    mid = "mid_block.attentions.0.transformer_blocks"
    found += [
        (f"{mid}.{depths[-1] - 1}.attn2.to_k.weight", (out_ch[-1], cross)),
        (f"{mid}.{depths[-1]}.attn2.to_k.weight", None),
    ]
    return found


def _vae_diffusers(c: dict[str, Any]) -> list[Probe]:
    ch, lat, layers = c["block_out_channels"], c["latent_channels"], c["layers_per_block"]
    n = len(ch)
    return [
        ("encoder.conv_in.weight", (ch[0], c["in_channels"], 3, 3)),
        (f"encoder.down_blocks.{n - 1}.resnets.{layers - 1}.conv1.weight", (ch[-1], ch[-1], 3, 3)),
        ("encoder.conv_out.weight", (2 * lat, ch[-1], 3, 3)),
        ("quant_conv.weight", (2 * lat, 2 * lat, 1, 1)),
        ("post_quant_conv.weight", (lat, lat, 1, 1)),
        ("decoder.conv_in.weight", (ch[-1], lat, 3, 3)),
        (f"decoder.up_blocks.{n - 1}.resnets.{layers}.conv2.weight", (ch[0], ch[0], 3, 3)),
        (f"decoder.up_blocks.{n}.resnets.0.conv1.weight", None),
        ("decoder.conv_out.weight", (c["out_channels"], ch[0], 3, 3)),
    ]


def _vae_ldm(c: dict[str, Any]) -> list[Probe]:
    """The original (A1111/ComfyUI ``sdxl_vae.safetensors``) layout: ``down.i.block.j``, ``up`` by resolution."""
    ch, lat, layers = c["block_out_channels"], c["latent_channels"], c["layers_per_block"]
    n = len(ch)
    return [
        ("encoder.conv_in.weight", (ch[0], c["in_channels"], 3, 3)),
        (f"encoder.down.{n - 1}.block.{layers - 1}.conv1.weight", (ch[-1], ch[-1], 3, 3)),
        ("encoder.conv_out.weight", (2 * lat, ch[-1], 3, 3)),
        ("quant_conv.weight", (2 * lat, 2 * lat, 1, 1)),
        ("post_quant_conv.weight", (lat, lat, 1, 1)),
        ("decoder.conv_in.weight", (ch[-1], lat, 3, 3)),
        (f"decoder.up.0.block.{layers}.conv2.weight", (ch[0], ch[0], 3, 3)),
        (f"decoder.up.{n}.block.0.conv1.weight", None),
        ("decoder.conv_out.weight", (c["out_channels"], ch[0], 3, 3)),
    ]


def _clip_vision(c: dict[str, Any]) -> list[Probe]:
    """transformers' CLIPVisionModelWithProjection layout (h94's ``model.safetensors``, which ComfyUI
    users keep as ``CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors``)."""
    hidden, layers, patch = c["hidden_size"], c["num_hidden_layers"], c["patch_size"]
    positions = (c["image_size"] // patch) ** 2 + 1
    last = f"vision_model.encoder.layers.{layers - 1}"
    return [
        ("vision_model.embeddings.patch_embedding.weight", (hidden, c.get("num_channels", 3), patch, patch)),
        ("vision_model.embeddings.position_embedding.weight", (positions, hidden)),
        (f"{last}.self_attn.q_proj.weight", (hidden, hidden)),
        (f"{last}.mlp.fc1.weight", (c["intermediate_size"], hidden)),
        (f"vision_model.encoder.layers.{layers}.mlp.fc1.weight", None),
        ("visual_projection.weight", (c["projection_dim"], hidden)),
    ]

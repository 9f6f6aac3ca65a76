"""The tiny-model kit: seeded random-weight models with the real SDXL architecture, written to disk in
the real formats, so tests, benchmarks and the ``--models tiny`` smoke preset go through exactly the
loaders real weights use (no download is possible on CI machines).

What :func:`build_tiny_kit` writes under a folder::

    sdxl/                    a diffusers SDXL folder (model_index.json, unet/, vae/, text_encoder/,
                             text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/)
    tiny-sdxl.safetensors    the same weights as one original-format (LDM) single-file checkpoint
    controlnet/              an OpenPose-style SDXL ControlNet (diffusers folder)
    ip-adapter/              h94 layout: models/image_encoder/ (CLIPVisionModelWithProjection) and
                             sdxl_models/ip-adapter-plus{,-face}_sdxl_vit-h.safetensors
    tiny-kit.json            a marker: kit version + seed (a matching kit is reused, not rebuilt)

:func:`use_tiny_models` (the ``--models tiny`` smoke preset) builds the kit once and makes it the
default models of the diffusion backends for this process.

The architecture follows SDXL at toy width: UNet with ``addition_embed_type="text_time"``, two CLIP
text encoders (the second with a projection, whose pooled output feeds the time embedding), an 8×
VAE with SDXL's scaling factor, and SDXL's Euler scheduler configuration. torch/diffusers are
imported lazily inside the functions.
"""

from __future__ import annotations

import copy
import json
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KIT_VERSION = 3
TEXT_HIDDEN = 32
TEXT_HIDDEN_2 = 48
"""Widths of the two tiny CLIP text encoders (CLIP-L and OpenCLIP-G stand-ins). They must differ, as
in real SDXL (768 vs 1280): diffusers' single-file loader tells the encoders apart by width. The
UNet's cross-attention width is the two concatenated."""
CROSS_ATTENTION_DIM = TEXT_HIDDEN + TEXT_HIDDEN_2
TIME_EMBED_DIM = 8
VISION_HIDDEN = 32
IP_QUERIES = 16
IP_RESAMPLER_WIDTH = 64
"""The Resampler's width; diffusers derives its head count as ``to_q rows // 64``, so 64 → one head."""
IP_ADAPTER_WEIGHTS = ("ip-adapter-plus_sdxl_vit-h.safetensors", "ip-adapter-plus-face_sdxl_vit-h.safetensors")
TINY_STEPS = 4
"""Denoising steps that are plenty for the random-weight smoke models."""
TINY_MAX_SIDE = 256
"""Smoke renders generate small and upscale to the panel: the point is the path, not the pixels."""


@dataclass(frozen=True)
class TinyKit:
    """Paths of one built kit (see the module docstring)."""

    root: Path
    sdxl: Path
    single_file: Path
    controlnet: Path
    ip_adapter: Path
    image_encoder: Path
    seed: int

    @property
    def ip_adapter_weights(self) -> tuple[str, str]:
        """``(plus, plus_face)`` file names inside ``ip_adapter / "sdxl_models"``."""
        return IP_ADAPTER_WEIGHTS


# ------------------------------------------------------------------------------ components in memory


def tiny_tokenizer():
    """A CLIP tokenizer built offline: every printable character (plus its end-of-word form) is a
    token and there are no merges, so any ASCII prompt tokenizes without a vocabulary download."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in string.ascii_letters + string.digits + string.punctuation:
        for token in (ch, ch + "</w>"):
            vocab.setdefault(token, len(vocab))
    # model_max_length is required: without it the pipeline's truncation length is unbounded.
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77, pad_token="!")


def _text_config(vocab_size: int, hidden: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=2, hidden_size=hidden, intermediate_size=37,
        layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=3, vocab_size=vocab_size,
        hidden_act="gelu", projection_dim=hidden, max_position_embeddings=77,
    )  # fmt: skip


def tiny_unet_config() -> dict[str, Any]:
    """SDXL's UNet layout at toy width: text_time added conditioning, linear projections."""
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": (32, 64),
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": (2, 4),
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": TIME_EMBED_DIM,
        "transformer_layers_per_block": (1, 2),
        # six size/crop numbers, each embedded to TIME_EMBED_DIM, plus text_encoder_2's pooled output
        "projection_class_embeddings_input_dim": 6 * TIME_EMBED_DIM + TEXT_HIDDEN_2,
        "cross_attention_dim": CROSS_ATTENTION_DIM,
        "norm_num_groups": 32,
    }


def tiny_sdxl_components(seed: int = 0) -> dict[str, Any]:
    """The SDXL pipeline components with seeded random weights (float32, CPU, eval mode)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**tiny_unet_config())
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),  # four blocks → the 8× down-sampling of the real SDXL VAE
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64, scaling_factor=0.13025, force_upcast=True,
        # No mid-block self-attention: it is quadratic in the latent area, and smoke renders of
        # full-size panels would spend minutes there. The real SDXL VAE has it; loaders handle both.
        mid_block_add_attention=False,
    )  # fmt: skip
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
        timestep_spacing="leading", prediction_type="epsilon", interpolation_type="linear",
        use_karras_sigmas=False,
    )  # fmt: skip
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(len(tokenizer), TEXT_HIDDEN))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(len(tokenizer), TEXT_HIDDEN_2))
    for model in (unet, vae, text_encoder, text_encoder_2):
        model.eval()
    return {
        "unet": unet, "vae": vae, "scheduler": scheduler,
        "text_encoder": text_encoder, "tokenizer": tokenizer,
        "text_encoder_2": text_encoder_2, "tokenizer_2": tiny_tokenizer(),
    }  # fmt: skip


def tiny_controlnet(unet: Any, seed: int = 0):
    """An SDXL ControlNet shaped after ``unet`` (as OpenPose ControlNets are), random weights."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed + 10)
    # four stages: the pose image is reduced 8× to the latent size, as in real SDXL ControlNets
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 32))
    with torch.no_grad():  # from_unet copies the UNet; fresh zero convs would make it a no-op
        for p in net.parameters():
            if not p.abs().sum():
                p.normal_(0.0, 0.02)
    return net.eval()


def tiny_image_encoder(seed: int = 0):
    """A CLIPVisionModelWithProjection (the ViT-H image encoder's architecture, toy width) and its
    image processor."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed + 20)
    config = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN, projection_dim=VISION_HIDDEN, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, image_size=32, patch_size=4,
    )  # fmt: skip
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return CLIPVisionModelWithProjection(config).eval(), processor


def ip_adapter_plus_state_dict(unet: Any, seed: int, std: float = 0.02, *, vision_hidden: int = VISION_HIDDEN,
                               width: int = IP_RESAMPLER_WIDTH, heads: int = 1, queries: int = IP_QUERIES,
                               depth: int = 4) -> dict[str, Any]:  # fmt: skip
    """Random IP-Adapter Plus weights in h94's key layout: ``image_proj.*`` (the Resampler) and
    ``ip_adapter.{i}.to_k_ip/to_v_ip.weight`` for every cross-attention processor (odd indices:
    self- and cross-attention processors alternate in ``unet.attn_processors`` order).

    The defaults are the tiny kit's; h94's ``ip-adapter-plus{,-face}_sdxl_vit-h`` on full-size SDXL
    is ``vision_hidden=1280, width=1280, heads=20`` (16 queries, depth 4: diffusers reads the head
    count as ``to_q rows // 64`` and the rest from the shapes), 848 MB in float16."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    cross = unet.config.cross_attention_dim

    def rand(*shape: int) -> Any:
        return torch.randn(*shape, generator=gen) * std

    inner = heads * 64
    sd: dict[str, Any] = {
        "image_proj.latents": torch.randn(1, queries, width, generator=gen) / width**0.5,
        "image_proj.proj_in.weight": rand(width, vision_hidden), "image_proj.proj_in.bias": torch.zeros(width),
        "image_proj.proj_out.weight": rand(cross, width),
        "image_proj.proj_out.bias": torch.zeros(cross),
        "image_proj.norm_out.weight": torch.ones(cross),
        "image_proj.norm_out.bias": torch.zeros(cross),
    }  # fmt: skip
    for i in range(depth):
        p = f"image_proj.layers.{i}."
        for norm in ("0.norm1", "0.norm2", "1.0"):
            sd[p + norm + ".weight"], sd[p + norm + ".bias"] = torch.ones(width), torch.zeros(width)
        sd[p + "0.to_q.weight"] = rand(inner, width)
        sd[p + "0.to_kv.weight"] = rand(2 * inner, width)
        sd[p + "0.to_out.weight"] = rand(width, inner)
        sd[p + "1.1.weight"] = rand(4 * width, width)
        sd[p + "1.3.weight"] = rand(width, 4 * width)
    for index, (name, _proc) in enumerate(unet.attn_processors.items()):
        if name.endswith("attn1.processor"):
            continue
        hidden = _attn_hidden_size(unet, name)
        sd[f"ip_adapter.{index}.to_k_ip.weight"] = rand(hidden, cross)
        sd[f"ip_adapter.{index}.to_v_ip.weight"] = rand(hidden, cross)
    return sd


def _attn_hidden_size(unet: Any, name: str) -> int:
    channels = unet.config.block_out_channels
    if name.startswith("mid_block"):
        return channels[-1]
    block = int(name.split(".")[1])
    return channels[block] if name.startswith("down_blocks") else list(reversed(channels))[block]


# ------------------------------------------------------------------------------ the kit on disk


def build_tiny_kit(folder: str | Path, seed: int = 0, *, force: bool = False) -> TinyKit:
    """Write the whole kit under ``folder`` (about 15 MB, a few seconds) and return its paths. A kit
    already there with the same version and seed is reused unless ``force``."""
    root = Path(folder)
    kit = TinyKit(
        root=root, sdxl=root / "sdxl", single_file=root / "tiny-sdxl.safetensors",
        controlnet=root / "controlnet", ip_adapter=root / "ip-adapter",
        image_encoder=root / "ip-adapter" / "models" / "image_encoder", seed=seed,
    )  # fmt: skip
    marker = root / "tiny-kit.json"
    wanted = {"version": KIT_VERSION, "seed": seed}
    if not force and marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == wanted:
                return kit
        except (OSError, ValueError):
            pass  # a damaged marker: rebuild
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    from comic_studio.generation.models.ldm_format import sdxl_to_ldm_state_dict

    root.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # a crash mid-build leaves no marker, so the next call rebuilds
    parts = tiny_sdxl_components(seed)
    pipe = StableDiffusionXLPipeline(**parts)
    pipe.save_pretrained(kit.sdxl, safe_serialization=True)
    save_file(sdxl_to_ldm_state_dict(parts), str(kit.single_file))
    tiny_controlnet(parts["unet"], seed).save_pretrained(kit.controlnet, safe_serialization=True)
    encoder, processor = tiny_image_encoder(seed)
    encoder.save_pretrained(kit.image_encoder, safe_serialization=True)
    processor.save_pretrained(kit.image_encoder)
    weights = kit.ip_adapter / "sdxl_models"
    weights.mkdir(parents=True, exist_ok=True)
    for offset, name in enumerate(IP_ADAPTER_WEIGHTS):
        state = {k: v.contiguous() for k, v in ip_adapter_plus_state_dict(parts["unet"], seed + 30 + offset).items()}
        save_file(state, str(weights / name))
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return kit


def character_picture(seed: int, width: int = 64, height: int = 64) -> Any:
    """A stand-in reference picture for training and LoRA tests: a plain background and a box of
    another colour over the middle half, both colours drawn from ``seed``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = rng.integers(0, 255, 3)
    pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = rng.integers(0, 255, 3)
    return Image.fromarray(pixels)


def write_tiny_lora(path: str | Path, seed: int = 3, unet: Any = None) -> Path:
    """A LoRA file for the tiny SDXL (or the given ``unet``, e.g. the tiny SD1.5's) in the diffusers
    layout with StoryBooth's targets and random A *and* B matrices, so it visibly changes renders as
    a trained one would, without training. ``unet`` is left as it was."""
    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from comic_studio.training.lora import STORYBOOTH_TARGETS

    unet = tiny_sdxl_components(0)["unet"] if unet is None else copy.deepcopy(unet)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=list(STORYBOOTH_TARGETS))
        unet.add_adapter(config)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file({f"unet.{k}": v.contiguous() for k, v in state.items()}, str(target))
    return target


# ------------------------------------------------------------------------------ the smoke preset


def use_tiny_models(folder: str | Path | None = None) -> TinyKit:
    """Build the tiny kit under ``folder`` (default: the user cache) if needed, and make its models
    the defaults of the sdxl, consistent and racig backends for this process, at :data:`TINY_STEPS`
    steps (``--models tiny``). :func:`~comic_studio.generation.backend_api.reset_default_settings` and
    unsetting ``COMIC_STUDIO_SDXL_MODEL`` undo it. Returns the kit."""
    from comic_studio.generation.backend_api import set_default_settings
    from comic_studio.generation.models.sdxl import DEFAULT_SDXL_ENV
    from comic_studio.generation.registry import get_backend_class

    if folder is None:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("comic-studio")) / "tiny-models"
    kit = build_tiny_kit(folder)
    os.environ[DEFAULT_SDXL_ENV] = str(kit.sdxl)
    # By name through the registry: the testing kit sits above the backends and knows none of them.
    quick = {"steps": TINY_STEPS, "preview_every": 0, "max_side": TINY_MAX_SIDE}
    set_default_settings(get_backend_class("sdxl"), **quick)  # consistent inherits the sdxl settings
    plus, face = kit.ip_adapter_weights
    weights = kit.ip_adapter / "sdxl_models"
    set_default_settings(get_backend_class("racig"), **quick, model=str(kit.sdxl), controlnet=str(kit.controlnet),
                         image_encoder=str(kit.image_encoder), ip_adapter_face=str(weights / face),
                         ip_adapter_plus=str(weights / plus))  # fmt: skip
    from comic_studio.testing.tiny_sd15 import use_tiny_anime

    use_tiny_anime(Path(folder) / "sd15")  # the anime backend's SD1.5 kit, beside the SDXL one
    return kit


# ------------------------------------------------------------------------------------ OpenCLIP

TINY_OPENCLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    # The real CLIP vocabulary size, so open_clip's bundled BPE tokenizer (offline) is used as it is.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_tiny_openclip(folder: str | Path, arch: str = "tiny-pose-clip", seed: int = 0) -> tuple[Path, Any, Any]:
    """A seeded random OpenCLIP model at toy width, written under ``folder`` in the laion repos'
    layout (``open_clip_config.json`` + ``open_clip_model.safetensors``, what the pose-search loader
    reads) and registered with open_clip as ``arch``. Returns (weights file, the model, its eval
    preprocessing) so tests can compare the loader's features with the original model's."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from comic_studio.poses.openclip_embedder import quiet_random_init

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{arch}.json").write_text(json.dumps(TINY_OPENCLIP_CONFIG), encoding="utf-8")
    open_clip.add_model_config(folder / f"{arch}.json")
    torch.manual_seed(seed)
    with quiet_random_init():
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
    model.eval()
    weights = folder / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPENCLIP_CONFIG, "preprocess_cfg": {}}),
                                                  encoding="utf-8")  # fmt: skip
    return weights, model, preprocess

"""SD 1.5-family base models: a diffusers folder or one ``.safetensors`` checkpoint (A1111 /
ComfyUI), the second built around the SD 1.5 configuration bundled with the app
(``comic_studio/resources/sd15/v1-5``) after a header check, offline.

The anime backend's AnimeAdapter is SD 1.5-family (seed 003's 24.7 M parameters fit SD 1.5 with
ViT-L/14, see :mod:`.anime_adapter`); most anime SD 1.5 fine-tunes keep this architecture.
Components are shared through the engine's model cache like SDXL's (:mod:`.loading`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comic_studio.core.resources import resource
from comic_studio.core.safe_read import UnsafeInputError, read_json
from comic_studio.generation.models.ldm_format import UNET_PREFIX
from comic_studio.generation.models.loading import (
    ComponentCache,
    ModelLoadError,
    SdxlSource,
    _NoCache,
    check_weights_file,
    torch_dtype,
)
from comic_studio.weights.catalogue import CatalogueError, load_catalogue
from comic_studio.weights.header import read_safetensors_shapes
from comic_studio.weights.locate import Places, locate

DEFAULT_SD15_ID = "sd15-base"
SD15_COMPONENTS = ("unet", "vae", "text_encoder")
SD15_CROSS_ATTENTION = 768
SDXL_MARKER = "conditioner.embedders.1."
"""SDXL checkpoints keep their second text encoder under this prefix; SD 1.5 ones have none."""


def bundled_sd15_config() -> Path:
    return resource("sd15", "v1-5")


def resolve_sd15(spec: str, config: str = "", *, places: Places | None = None) -> SdxlSource:
    """An SD 1.5 model spec (catalogue id, diffusers folder or ``.safetensors`` checkpoint) → a
    loadable source (the same record SDXL's loader uses). :class:`ModelLoadError` says what to do."""
    spec = spec.strip() or DEFAULT_SD15_ID
    path = Path(spec).expanduser()
    if not path.exists() and "/" not in spec and not spec.endswith(".safetensors"):
        try:
            entry = load_catalogue().get(spec)
        except CatalogueError as exc:
            raise ModelLoadError(str(exc)) from exc
        if entry.kind != "sd15":
            raise ModelLoadError(f"{spec!r} is a {entry.kind} model, not an SD 1.5 base model")
        found = locate(entry, places or Places.from_settings())
        if found is None:
            raise ModelLoadError(f"the model {spec!r} is not installed: run `comic-studio models download {spec}`")
        path = found.path
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(f"{path}: not a diffusers model folder (no model_index.json)")
        if (path / "text_encoder_2").is_dir():  # SDXL's second text encoder: refused by name, not by shapes later
            raise ModelLoadError(f"{path}: an SDXL model folder, not an SD 1.5 base model (use SD 1.5 weights, or "
                                 "AnimeAdapter weights of the SDXL family)")  # fmt: skip
        return SdxlSource(path, single_file=False)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file or folder")
    check_weights_file(path)
    folder = Path(config).expanduser() if config else bundled_sd15_config()
    problem = sd15_mismatch(path, folder)
    if problem:
        raise ModelLoadError(f"{path.name} is not an SD 1.5-architecture checkpoint: {problem}")
    return SdxlSource(path, single_file=True, config=folder)


def sd15_mismatch(path: Path, folder: Path | None = None) -> str | None:
    """Why the single-file checkpoint ``path`` does not fit the SD 1.5 config ``folder`` (default:
    the bundled one; ``None``: it fits), from its header: no SDXL second text encoder, and the UNet's
    cross-attention width is the config's (768 for SD 1.5; 1024 would be SD 2.x)."""
    try:
        shapes = read_safetensors_shapes(path)
    except (OSError, ValueError) as exc:
        return f"not a readable .safetensors file ({exc})"
    try:
        unet = read_json((folder or bundled_sd15_config()) / "unet" / "config.json")
        width = int(unet.get("cross_attention_dim", SD15_CROSS_ATTENTION))
    except (UnsafeInputError, AttributeError, TypeError, ValueError) as exc:
        return f"the config folder {folder} has no readable unet/config.json ({exc})"
    if any(k.startswith(SDXL_MARKER) for k in shapes):
        return "it is an SDXL checkpoint (choose the sdxl backend, or an SD 1.5 model here)"
    key = UNET_PREFIX + "middle_block.1.transformer_blocks.0.attn2.to_k.weight"
    if key not in shapes:
        return f"it has no UNet cross-attention weights ({key})"
    if shapes[key][1] != width:
        return f"its cross-attention width is {shapes[key][1]}, the config's is {width} (SD 1.5: 768; an SD 2.x model?)"
    return None


def load_sd15_components(
    source: SdxlSource, *, dtype: str = "float32", device: str = "cpu", cache: ComponentCache | None = None
) -> dict[str, Any]:
    """``unet``, ``vae``, ``text_encoder``, ``tokenizer`` and ``scheduler``; heavy parts from ``cache``."""
    cache = _NoCache() if cache is None else cache
    mid = f"sd15:{source.path.resolve()}"
    light = cache.get(mid, "light", "-", "-", lambda: _light(source))
    if source.single_file and any(cache.peek(mid, c, dtype, device) is None for c in SD15_COMPONENTS):
        read = _single_file(source, dtype, device, light)
        for name in SD15_COMPONENTS:
            cache.put(mid, name, dtype, device, read[name])
        return {**{c: read[c] for c in SD15_COMPONENTS}, **light}
    heavy = {
        c: cache.get(mid, c, dtype, device, lambda c=c: _component(source, c, dtype, device)) for c in SD15_COMPONENTS
    }
    return {**heavy, **light}


def _light(source: SdxlSource) -> dict[str, Any]:
    from diffusers import PNDMScheduler
    from transformers import CLIPTokenizer

    folder = source.config if source.single_file else source.path
    assert folder is not None
    own = folder / "tokenizer"
    # The bundled config keeps no vocabulary: it is the CLIP BPE one bundled for SDXL.
    vocab = {} if (own / "vocab.json").is_file() else {
        "vocab_file": str(resource("sdxl", "base-1.0", "tokenizer", "vocab.json")),
        "merges_file": str(resource("sdxl", "base-1.0", "tokenizer", "merges.txt")),
    }  # fmt: skip
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(folder), subfolder="tokenizer", local_files_only=True, **vocab)
        scheduler = PNDMScheduler.from_pretrained(str(folder), subfolder="scheduler", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: cannot read the tokenizer/scheduler: {exc}") from exc
    return {"tokenizer": tokenizer, "scheduler": scheduler}


def _component(source: SdxlSource, name: str, dtype: str, device: str) -> Any:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    cls = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel}[name]
    folder = source.path / name
    if not any(folder.glob("*.safetensors")):
        raise ModelLoadError(f"{folder}: no .safetensors weights (pickled weights are refused here)")
    try:
        model = cls.from_pretrained(str(source.path), subfolder=name, torch_dtype=torch_dtype(dtype),
                                    local_files_only=True, use_safetensors=True)  # fmt: skip
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{folder}: cannot load {name}: {exc}") from exc
    return model.to(device).eval()


def _single_file(source: SdxlSource, dtype: str, device: str, light: dict[str, Any]) -> dict[str, Any]:
    from diffusers import StableDiffusionPipeline

    try:
        pipe = StableDiffusionPipeline.from_single_file(
            str(source.path), config=str(source.config), local_files_only=True, torch_dtype=torch_dtype(dtype),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False, **light,
        )  # fmt: skip
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{source.path.name}: not a loadable SD 1.5 checkpoint: {exc}") from exc
    return {name: getattr(pipe, name).to(device).eval() for name in SD15_COMPONENTS}


def random_sd15_unet(device: str = "meta") -> Any:
    """SD 1.5's UNet from the bundled config with random weights on ``device`` (``meta``: shapes only)."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device(device):
        return UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(bundled_sd15_config(), subfolder="unet")
        )

"""Load SDXL weights the way real users have them: a diffusers folder, or one ``.safetensors``
checkpoint (A1111 / ComfyUI), plus kohya-format LoRAs. Offline: nothing here touches the network.
A single-file checkpoint is built around the SDXL configuration bundled with the app unless the
user names another, after its tensor shapes are checked against it (:mod:`.sdxl_config`).

Loaded components go through a cache object with the engine's ``ModelCache.get`` signature
(``get(model_id, component, dtype, device, loader)``), so two backends on one base model share the
UNet / VAE / text encoders. Without a cache every call loads afresh.

Pickled formats (``.ckpt``, ``.bin``, ``.pt``, ``.pth``) can run arbitrary code when unpickled; they are
refused unless the caller passes ``allow_pickle=True`` (a user's explicit choice), and even then are
read only with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, open_regular
from comic_studio.generation.models.sdxl_config import (
    bundled_sdxl_configs,
    config_mismatch,
    read_safetensors_shapes,
    shared_vocabulary,
)
from comic_studio.weights.architecture import bundled_config, key_prefix

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = frozenset({".ckpt", ".bin", ".pt", ".pth"})
SDXL_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
"""The heavy components worth caching; tokenizers and the scheduler config are cheap to rebuild."""


class ModelLoadError(ComicStudioError):
    """A model could not be loaded; the message names the file and what to do."""


class ComponentCache(Protocol):
    def get(self, model_id: str, component: str, dtype: str, device: str, loader: Any) -> Any: ...
    def put(self, model_id: str, component: str, dtype: str, device: str, value: Any) -> None: ...
    def peek(self, model_id: str, component: str, dtype: str, device: str) -> Any | None: ...


class _NoCache:
    """Loads every time (scripts and tests that want no sharing)."""

    def get(self, model_id: str, component: str, dtype: str, device: str, loader: Any) -> Any:
        return loader()

    def put(self, *args: Any) -> None:
        pass

    def peek(self, *args: Any) -> None:
        return None


@dataclass(frozen=True)
class SdxlSource:
    """Where an SDXL base model's weights are: a diffusers folder or a single-file checkpoint (whose
    ``config`` is a diffusers folder with the configs and tokenizers, no weights needed: the bundled
    SDXL base configuration unless the user names another)."""

    path: Path
    single_file: bool
    config: Path | None = None

    @property
    def cache_id(self) -> str:
        return f"sdxl:{self.path.resolve()}"


def sdxl_source(
    path: str | Path,
    config: str | Path | None = None,
    *,
    allow_pickle: bool = False,
    candidates: Sequence[Path] | None = None,
) -> SdxlSource:
    """Classify ``path`` and check it is loadable before any weights are read.

    A single-file checkpoint loads with ``config`` when given (after checking its tensor shapes fit
    it), else with the first of ``candidates`` (default: the bundled SDXL configs) that fits."""
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "model_index.json").is_file():
            raise ModelLoadError(f"{p}: not a diffusers model folder (no model_index.json)")
        return SdxlSource(p, single_file=False)
    if not p.exists():  # a FIFO or device is not "missing": the header check below names it
        raise ModelLoadError(f"{p}: no such model file or folder")
    check_weights_file(p, allow_pickle=allow_pickle)
    if config:
        cfg = Path(config).expanduser()
        if not (cfg / "model_index.json").is_file():
            raise ModelLoadError(f"{cfg}: the configuration folder for {p.name} has no model_index.json")
        problem = config_mismatch(_checkpoint_shapes(p), cfg) if _has_header(p) else None
        if problem:
            raise ModelLoadError(f"{p.name} does not fit the configuration folder {cfg}: {problem}")
        return SdxlSource(p, single_file=True, config=cfg)
    return SdxlSource(
        p, single_file=True, config=choose_config(p, bundled_sdxl_configs() if candidates is None else candidates)
    )


def choose_config(checkpoint: Path, candidates: Sequence[Path]) -> Path:
    """The first config folder whose architecture fits ``checkpoint`` (see :mod:`.sdxl_config`)."""
    if not candidates:
        raise ModelLoadError(f"{checkpoint.name}: no configuration folder to load this single-file checkpoint with")
    if not _has_header(checkpoint):
        return candidates[0]  # a pickle (when allowed): nothing to compare without unpickling
    shapes = _checkpoint_shapes(checkpoint)
    problems = [config_mismatch(shapes, folder) for folder in candidates]
    for folder, problem in zip(candidates, problems):
        if problem is None:
            return folder
    raise ModelLoadError(
        f"{checkpoint.name} is not an SDXL base-architecture checkpoint ({problems[0]}). "
        "If it is a diffusers-convertible model of another shape, set 'Checkpoint config folder' to a "
        "diffusers folder with its configs."
    )


def _has_header(path: Path) -> bool:
    return path.suffix.lower() == ".safetensors"


def _checkpoint_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        return read_safetensors_shapes(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path.name}: not a readable .safetensors checkpoint: {exc}") from exc


def check_weights_file(path: Path, *, allow_pickle: bool = False) -> None:
    """Refuse pickled weights unless explicitly allowed (see the module docstring)."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelLoadError(
            f"{path.name}: {suffix} files are Python pickles, which can run code when opened; refused. "
            "Use a .safetensors version, or turn on 'Allow pickled weights' in Edit → Preferences (or pass "
            "--allow-pickle to the command); they are then read with weights_only=True."
        )
    if suffix not in PICKLE_SUFFIXES and suffix != ".safetensors":
        raise ModelLoadError(f"{path.name}: unknown weights format {suffix!r} (expected .safetensors)")


def read_state_dict(path: str | Path, *, allow_pickle: bool = False) -> dict[str, Any]:
    """A state dict from ``.safetensors`` (or, when allowed, a pickle read with weights_only=True)."""
    p = Path(path)
    check_weights_file(p, allow_pickle=allow_pickle)
    if p.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:  # a broken header is named here, not by the loader's own error
            read_safetensors_shapes(p)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{p.name}: not a readable .safetensors file: {exc}") from exc
        try:
            return load_file(str(p))
        except Exception as exc:  # noqa: BLE001 — SafetensorError and friends, for a file that changed since
            raise ModelLoadError(f"{p.name}: not a readable .safetensors file: {exc}") from exc
    import torch

    try:
        fh = open_regular(p, what="weights file")  # a FIFO must not hang the unpickler
    except UnsafeInputError as exc:
        raise ModelLoadError(f"{p.name}: {exc.problem}") from exc
    try:
        with fh:
            data = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — an unpickler refusal, a truncated archive, a foreign file
        raise ModelLoadError(f"{p.name}: cannot read these pickled weights: {exc}") from exc
    return data.get("state_dict", data) if isinstance(data, dict) else data


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def load_sdxl_components(
    source: SdxlSource, *, dtype: str = "float32", device: str = "cpu", cache: ComponentCache | None = None
) -> dict[str, Any]:
    """The SDXL pipeline components (``unet``, ``vae``, ``text_encoder(_2)``, ``tokenizer(_2)``,
    ``scheduler``), heavy ones from ``cache`` when already loaded."""
    cache = _NoCache() if cache is None else cache  # an empty cache is falsy (it has __len__)
    mid = source.cache_id
    # Tokenizers and the scheduler template are cheap but not free (~70 ms to parse the CLIP
    # vocabulary): cache them too, under one "light" entry.
    light = cache.get(
        mid,
        "light",
        "-",
        "-",
        lambda: load_tokenizers_and_scheduler(source.config if source.single_file else source.path),
    )
    read: dict[str, Any] = {}
    if source.single_file and any(cache.peek(mid, c, dtype, device) is None for c in SDXL_COMPONENTS):
        # One read of the checkpoint yields every component; store them all at once (and hand them
        # out from here too: a caller without a cache must not read the checkpoint four more times).
        read = _load_single_file(source, dtype, device, light)
        for name in SDXL_COMPONENTS:
            cache.put(mid, name, dtype, device, read[name])

    def loader(name: str) -> Any:
        return (lambda: read[name]) if read else (lambda: _load_component(source, name, dtype, device, light))

    heavy = {c: cache.get(mid, c, dtype, device, loader(c)) for c in SDXL_COMPONENTS}
    return {**heavy, **light}


FP16_FIX_VAE_ID = "sdxl-vae-fp16-fix"


def fp16_fix_vae(dtype: str, device: str, cache: ComponentCache | None = None, places: Any | None = None) -> Any | None:
    """The fp16-fix SDXL VAE when running in float16 and it is installed, else None.

    SDXL's own VAE overflows to NaN (black images) in float16; diffusers then upcasts it to float32
    for every decode, which is slower and needs more memory. The fp16-fix VAE (same latent space,
    rescaled internals) decodes in half precision. bfloat16 and float32 need no swap."""
    if dtype != "float16":
        return None
    from comic_studio.weights.catalogue import CatalogueError, load_catalogue
    from comic_studio.weights.locate import Places, locate

    try:
        entry = load_catalogue().get(FP16_FIX_VAE_ID)
    except CatalogueError:
        return None
    found = locate(entry, places or Places.from_settings())
    if found is None:
        return None
    cache = _NoCache() if cache is None else cache

    def load() -> Any:
        from diffusers import AutoencoderKL

        if found.path.is_file():  # a ComfyUI/A1111 vae/ file, checked against this config by locate
            config = bundled_config(FP16_FIX_VAE_ID)
            assert config is not None
            return load_single_file_model("vae", found.path, config, dtype).to(device).eval()
        try:
            vae = AutoencoderKL.from_pretrained(str(found.path), torch_dtype=torch_dtype(dtype),
                                                local_files_only=True, use_safetensors=True)  # fmt: skip
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{found.path}: cannot load the fp16-fix VAE: {exc}") from exc
        return vae.to(device).eval()

    return cache.get(FP16_FIX_VAE_ID, "vae", dtype, device, load)


SINGLE_FILE_CLASSES = {"controlnet": "ControlNetModel", "vae": "AutoencoderKL"}


def load_single_file_model(kind: str, path: Path, config: Path, dtype: str) -> Any:
    """A ControlNet or VAE from one ``.safetensors`` file (a ComfyUI/A1111 ``controlnet/`` or ``vae/``
    file) built around ``config`` (a folder with its ``config.json``), on the CPU.

    The header is checked against the config first (:mod:`comic_studio.weights.architecture`), so a
    file of another architecture is named with its first difference instead of failing in diffusers;
    then diffusers' own ``from_single_file`` reads it (it keeps diffusers-layout keys as they are and
    converts the original LDM layout)."""
    import diffusers

    from comic_studio.weights.architecture import file_mismatch

    problem = file_mismatch(path, kind, config)
    if problem:
        raise ModelLoadError(f"{path}: not usable as this {kind} ({problem})")
    cls = getattr(diffusers, SINGLE_FILE_CLASSES[kind])
    prefix = key_prefix(read_safetensors_shapes(path), kind)
    if prefix:  # a training checkpoint (RaCig's ControlNet): its model's keys, the prefix stripped
        return _load_prefixed(cls, path, config, dtype, prefix)
    try:
        model = cls.from_single_file(str(path), config=str(config), torch_dtype=torch_dtype(dtype),
                                     local_files_only=True)  # fmt: skip
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{path}: cannot load this single-file {kind}: {exc}") from exc
    return model.eval()


def _load_prefixed(cls: Any, path: Path, config: Path, dtype: str, prefix: str) -> Any:
    """``cls`` built from ``config`` with the tensors of ``path`` under ``prefix`` (stripped), exactly
    and strictly (RaCig's own loader: ``load_state_dict(strict=True)``). The model is built on the
    ``meta`` device and takes the file's tensors as they are: no random initialisation, no second
    copy of the weights."""
    import torch
    from safetensors import safe_open

    try:
        with torch.device("meta"):
            model = cls.from_config(cls.load_config(str(config)))
        with safe_open(str(path), framework="pt", device="cpu") as weights:
            state = {
                name[len(prefix) :]: weights.get_tensor(name) for name in weights.keys() if name.startswith(prefix)
            }
        model.load_state_dict(state, strict=True, assign=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{path}: cannot load the {prefix.rstrip('.')} in this file: {exc}") from exc
    return model.to(torch_dtype(dtype)).eval()


def _load_component(source: SdxlSource, name: str, dtype: str, device: str, light: dict[str, Any]) -> Any:
    if source.single_file:  # only reached when the cache held some but not all parts
        return _load_single_file(source, dtype, device, light)[name]
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    cls = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
           "text_encoder_2": CLIPTextModelWithProjection}[name]  # fmt: skip
    folder = source.path / name
    if not folder.is_dir():
        raise ModelLoadError(f"{source.path}: the model folder has no {name}/")
    weights = list(folder.glob("*.safetensors"))
    if not weights:
        pickles = [p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        raise ModelLoadError(
            f"{folder}: no .safetensors weights" + (f" (only {pickles[0].name}, a pickle; refused)" if pickles else "")
        )
    try:
        model = cls.from_pretrained(str(source.path), subfolder=name, torch_dtype=torch_dtype(dtype),
                                    local_files_only=True, use_safetensors=True)  # fmt: skip
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{folder}: cannot load {name}: {exc}") from exc
    return model.to(device).eval()


def load_tokenizers_and_scheduler(folder: Path | None) -> dict[str, Any]:
    """``tokenizer``, ``tokenizer_2`` and ``scheduler`` from an SDXL config or model folder."""
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPTokenizer

    if folder is None:
        raise ModelLoadError("no configuration folder for tokenizers and scheduler")
    try:
        return {
            name: CLIPTokenizer.from_pretrained(str(folder), subfolder=name, local_files_only=True,
                                                **shared_vocabulary(folder, name))
            for name in ("tokenizer", "tokenizer_2")
        } | {"scheduler": EulerDiscreteScheduler.from_pretrained(str(folder), subfolder="scheduler", local_files_only=True)}  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: cannot read tokenizers/scheduler: {exc}") from exc


def _load_single_file(source: SdxlSource, dtype: str, device: str, light: dict[str, Any]) -> dict[str, Any]:
    from diffusers import StableDiffusionXLPipeline

    if source.config is None:  # sdxl_source always sets one; a hand-made SdxlSource may not
        raise ModelLoadError(f"{source.path.name}: a single-file checkpoint needs a configuration folder")
    if source.path.suffix.lower() != ".safetensors":
        # Even when pickles are allowed: diffusers would open this file itself, outside our
        # weights_only guard. LoRAs and other state dicts we read ourselves are fine.
        raise ModelLoadError(
            f"{source.path.name}: pickled single-file checkpoints are not supported; use a .safetensors file"
        )
    # The tokenizers and scheduler are passed in so diffusers builds only the four models from the
    # checkpoint (and never reads a tokenizer folder that keeps its vocabulary elsewhere).
    kwargs: dict[str, Any] = {
        "config": str(source.config),
        "local_files_only": True,
        "torch_dtype": torch_dtype(dtype),
        **light,
    }
    try:
        pipe = StableDiffusionXLPipeline.from_single_file(str(source.path), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{source.path.name}: not a loadable SDXL checkpoint: {exc}") from exc
    parts = dict(pipe.components)
    for name in SDXL_COMPONENTS:
        parts[name] = parts[name].to(device).eval()
    return parts


# ------------------------------------------------------------------------------------------ LoRAs


def load_lora_state_dict(path: str | Path, *, allow_pickle: bool = False) -> dict[str, Any]:
    """Read a LoRA file (kohya ``lora_unet_*`` / ``lora_te1_*`` keys, or diffusers/peft keys) after
    the pickle check; diffusers' ``load_lora_weights`` converts the kohya layout."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"{p}: no such LoRA file")
    state = read_state_dict(p, allow_pickle=allow_pickle)
    if not state:
        raise ModelLoadError(f"{p.name}: the LoRA file is empty")
    return state


def apply_loras(pipe: Any, loras: list[tuple[Path, float]], *, allow_pickle: bool = False) -> list[str]:
    """Load ``(file, weight)`` LoRAs into ``pipe`` as named adapters and activate them together.
    Returns the adapter names; :func:`remove_loras` undoes it (the cached UNet is shared)."""
    names: list[str] = []
    for index, (path, _weight) in enumerate(loras):
        # An adapter name becomes a module name, which cannot hold dots ("detail-v1.5", "x.kohya").
        name = re.sub(r"[^A-Za-z0-9_]", "_", f"lora{index}_{Path(path).stem}")[:64]
        state = load_lora_state_dict(path, allow_pickle=allow_pickle)
        try:
            pipe.load_lora_weights(state, adapter_name=name)
        except (ValueError, KeyError, RuntimeError) as exc:
            remove_loras(pipe, names)
            raise ModelLoadError(f"{Path(path).name}: not a LoRA for this SDXL model: {exc}") from exc
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=[w for _p, w in loras])
    return names


def remove_loras(pipe: Any, names: list[str]) -> None:
    if names:
        pipe.delete_adapters(names)

"""The ``sdxl`` backend: plain SDXL txt2img / img2img / inpaint through stock diffusers pipelines.

It adds nothing to the numerics: with the same components, scheduler and seed, its latents are
bit-identical to calling ``StableDiffusionXLPipeline`` directly (tested). What it adds is the app's
plumbing — models found by the model manager and shared through the engine's cache, a fresh
scheduler per job, live latent previews, cancel within one step, LoRAs loaded for one job and
removed after, and a result that records the effective settings for an exact replay.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from comic_studio.backends.base import GenerationBackend, ModelNeed, with_default_overrides
from comic_studio.backends.sdxl.inputs import fit, parse_region, read_image_setting, region_mask
from comic_studio.backends.sdxl.long_prompt import apply_long_prompt
from comic_studio.backends.sdxl.previews import latents_to_rgb
from comic_studio.backends.sdxl.schedulers import DEFAULT_SCHEDULER, UnknownScheduler, make_scheduler, scheduler_names
from comic_studio.generation.models.loading import (
    ModelLoadError,
    apply_loras,
    fp16_fix_vae,
    load_sdxl_components,
    remove_loras,
)
from comic_studio.generation.models.locate import DEFAULT_SDXL_ID, default_sdxl_model, resolve_file, resolve_sdxl
from comic_studio.generation.request import Cancelled, GenerationError, GenerationRequest, GenerationResult, StepCallback

if TYPE_CHECKING:
    from comic_studio.generation.resources import EngineResources

log = logging.getLogger(__name__)

MODES = ("auto", "txt2img", "img2img", "inpaint")
IMAGE_SETTING_MAX = 64 * 1024 * 1024
"""Data URIs for init images and masks are long; 64 MB of text is a 48 MB PNG."""


class SdxlBackend(GenerationBackend):
    name = "sdxl"
    display_name = "SDXL"
    capabilities = frozenset({"txt2img", "img2img", "inpaint", "lora", "negative_prompt", "preview"})
    required_models = (ModelNeed("sdxl", "an SDXL base model", DEFAULT_SDXL_ID, setting="model", interchangeable=True),)

    def __init__(self) -> None:
        self._resources: EngineResources | None = None

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        return with_default_overrides(cls._base_schema(), SdxlBackend.name)

    @classmethod
    def _base_schema(cls) -> dict[str, dict[str, Any]]:
        return {
            "model": {"type": "str", "default": "", "label": "Base model", "max_length": 4096,
                      "help": "A catalogue id (sdxl-base-1.0), a diffusers folder or a .safetensors checkpoint; "
                              "empty = the default SDXL model."},
            "model_config": {"type": "str", "default": "", "label": "Checkpoint config folder", "max_length": 4096,
                             "help": "For single-file checkpoints only: a diffusers folder with the matching configs "
                                     "(empty = the SDXL base configuration bundled with the app)."},
            "steps": {"type": "int", "default": 30, "min": 1, "max": 200, "label": "Steps"},
            "guidance": {"type": "float", "default": 5.0, "min": 0.0, "max": 30.0, "label": "Guidance (CFG)"},
            "scheduler": {"type": "choice", "default": DEFAULT_SCHEDULER, "choices": scheduler_names(),
                          "label": "Sampler"},
            "mode": {"type": "choice", "default": "auto", "choices": list(MODES), "label": "Mode",
                     "help": "auto: inpaint when a mask is given, img2img with an init image, else txt2img."},
            "strength": {"type": "float", "default": 0.75, "min": 0.01, "max": 1.0, "label": "Strength",
                         "help": "img2img/inpaint: how much of the init image is re-noised (1 = all)."},
            "init_image": {"type": "str", "default": "", "label": "Init image", "max_length": IMAGE_SETTING_MAX,
                           "help": "A PNG data URI or a file path."},
            "mask_image": {"type": "str", "default": "", "label": "Inpaint mask", "max_length": IMAGE_SETTING_MAX,
                           "help": "White = repaint. A PNG data URI or a file path."},
            "mask_region": {"type": "str", "default": "", "label": "Inpaint region", "max_length": 20_000,
                            "help": "Panel-normalised polygon 'x,y x,y x,y ...' to repaint."},
            "loras": {"type": "str", "default": "", "label": "LoRAs", "max_length": 20_000,
                      "help": "Comma-separated 'file-or-id[:weight]' entries (kohya or diffusers format)."},
            "max_side": {"type": "int", "default": 0, "min": 0, "max": 8192, "label": "Largest generated side",
                         "help": "Generate at most this many pixels on the long side and upscale to the panel "
                                 "(0 = the panel's own size)."},
            "preview_every": {"type": "int", "default": 1, "min": 0, "max": 1000, "label": "Preview every N steps",
                              "help": "0 turns live previews off."},
            "allow_pickle": {"type": "bool", "default": False, "label": "Allow pickled weights",
                             "help": "Permit .ckpt/.bin/.pt files (read with weights_only=True)."},
        }  # fmt: skip

    # ------------------------------------------------------------------ engine hooks

    def bind_resources(self, resources: "EngineResources") -> None:
        """The engine lends its device choice and shared model cache (called on the worker thread)."""
        self._resources = resources
        resources.add_free_hook(_empty_cuda_cache)

    @property
    def resources(self) -> "EngineResources":
        if self._resources is None:  # used outside an engine (workflows.batch.render_panel, scripts)
            from comic_studio.generation.resources import EngineResources

            self._resources = EngineResources()
        return self._resources

    # ------------------------------------------------------------------ generation

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        settings = self.validate_settings(request.backend_settings)
        settings["model"] = settings["model"] or default_sdxl_model()
        settings["steps"] = request.steps or settings["steps"]
        settings["guidance"] = request.guidance or settings["guidance"]
        pipe, call = self.prepare_call(request, settings)
        loras = _parse_loras(settings["loras"])
        adapters: list[str] = []
        try:
            if loras:
                files = [(resolve_file(spec, "lora"), weight) for spec, weight in loras]
                adapters = apply_loras(pipe, files, allow_pickle=settings["allow_pickle"])
            apply_long_prompt(pipe, call)  # after the LoRAs: they may patch the text encoders
            images = pipe(**call, callback_on_step_end=step_reporter(on_step, settings["preview_every"])).images
        finally:
            if adapters:
                remove_loras(pipe, adapters)
        image = images[0]
        if image.size != (request.width, request.height):  # generated at a multiple of 8
            from PIL import Image

            image = image.resize((request.width, request.height), Image.Resampling.LANCZOS)
        return GenerationResult(images=[image], seed=request.seed, backend=self.name, settings=settings)

    def prepare_call(self, request: GenerationRequest, settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The diffusers pipeline and the keyword arguments for one job (the parity test and the
        benchmarks call this too, then compare with a hand-written stock call)."""
        import torch

        res = self.resources
        device = res.device
        offload = device == "cuda" and res.memory_mode != "gpu"
        try:
            source = resolve_sdxl(settings["model"], settings["model_config"], allow_pickle=settings["allow_pickle"])
            parts = load_sdxl_components(source, dtype=res.dtype, device="cpu" if offload else device, cache=res.models)
            fixed_vae = fp16_fix_vae(res.dtype, "cpu" if offload else device, res.models)
            if fixed_vae is not None:
                parts = {**parts, "vae": fixed_vae}
            scheduler = make_scheduler(settings["scheduler"], parts["scheduler"].config, seed=request.seed)
        except (ModelLoadError, UnknownScheduler) as exc:
            raise GenerationError(str(exc)) from exc
        mode, init, mask = _inputs(settings, request.width, request.height)
        pipe = _pipeline_class(mode)(**{**parts, "scheduler": scheduler})
        pipe.set_progress_bar_config(disable=True)
        if offload:
            if res.memory_mode == "sequential-offload":
                pipe.enable_sequential_cpu_offload(device=device)
            else:
                pipe.enable_model_cpu_offload(device=device)
        scale = pipe.vae_scale_factor
        shrink = min(1.0, settings["max_side"] / max(request.width, request.height)) if settings["max_side"] else 1.0
        width, height = _multiple(request.width * shrink, scale), _multiple(request.height * shrink, scale)
        call: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,  # None keeps SDXL's zeroed negative
            "num_inference_steps": settings["steps"],
            "guidance_scale": settings["guidance"],
            # A CPU generator gives the same noise on every device: a seed means one image everywhere.
            "generator": torch.Generator("cpu").manual_seed(request.seed),
        }
        if mode == "txt2img":
            call.update(height=height, width=width)
        else:
            call.update(image=fit(init, (width, height), "RGB"), strength=settings["strength"])
            if mode == "inpaint":
                call.update(mask_image=fit(mask, (width, height), "L"), height=height, width=width)
        return pipe, call


# ---------------------------------------------------------------------------------- helpers


def _pipeline_class(mode: str) -> Any:
    import diffusers

    return {
        "txt2img": diffusers.StableDiffusionXLPipeline,
        "img2img": diffusers.StableDiffusionXLImg2ImgPipeline,
        "inpaint": diffusers.StableDiffusionXLInpaintPipeline,
    }[mode]


def _inputs(settings: dict[str, Any], width: int, height: int) -> tuple[str, Any, Any]:
    init = read_image_setting(settings["init_image"], "init_image")
    mask = read_image_setting(settings["mask_image"], "mask_image")
    if mask is None and settings["mask_region"].strip():
        mask = region_mask(parse_region(settings["mask_region"]), (width, height))
    mode = settings["mode"]
    if mode == "auto":
        mode = "inpaint" if mask is not None and init is not None else "img2img" if init is not None else "txt2img"
    if mode in ("img2img", "inpaint") and init is None:
        raise GenerationError(f"sdxl {mode} needs an init image (setting 'init_image')")
    if mode == "inpaint" and mask is None:
        raise GenerationError("sdxl inpaint needs a mask ('mask_image' or 'mask_region')")
    return mode, init, mask


def _multiple(value: float, step: int) -> int:
    return max(step, int(round(value / step)) * step)


def _parse_loras(text: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        spec, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head:
            try:  # "C:\\x.safetensors" has a colon too: only a number after the last one is a weight
                weight, spec = float(tail), head
            except ValueError:
                pass
        if not -5.0 <= weight <= 5.0:
            raise GenerationError(f"sdxl setting 'loras': weight {weight} for {spec!r} is outside -5..5")
        out.append((spec, weight))
    return out


def step_reporter(on_step: StepCallback | None, every: int) -> Any:
    """A diffusers ``callback_on_step_end`` that reports progress, sends a latent preview every
    ``every`` steps, and stops the run (raising :class:`Cancelled`) as soon as ``on_step`` says so."""

    def callback(pipe: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if on_step is None:
            return tensors
        step, total = index + 1, int(getattr(pipe, "num_timesteps", 0) or 0)
        preview = None
        if every and (step % every == 0 or step == total) and "latents" in tensors:
            preview = latents_to_rgb(_unit_variance(pipe.scheduler, tensors["latents"]))
        if on_step(step, total, preview) is False:
            raise Cancelled(f"cancelled at step {step} of {total}")
        return tensors

    return callback


def _unit_variance(scheduler: Any, latents: Any) -> Any:
    """Sigma-parameterised samplers (Euler, DPM++, ...) carry latents scaled by sqrt(sigma² + 1);
    undo that so early previews are muted noise instead of saturated confetti. Variance-preserving
    samplers (DDIM) have no ``sigmas`` and are left alone."""
    sigmas, index = getattr(scheduler, "sigmas", None), getattr(scheduler, "step_index", None)
    if sigmas is None or index is None or index >= len(sigmas):
        return latents
    return latents / float(sigmas[index] ** 2 + 1) ** 0.5


def _empty_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")  # never import torch just to free memory
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()

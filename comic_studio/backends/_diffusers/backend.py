"""The base classes of the backends that run SDXL through diffusers pipelines.

:class:`DiffusersBackend` is the plumbing every such backend repeats: the engine's device, dtype,
memory mode and model cache; SDXL components loaded once and shared through that cache (on the CPU
when the engine offloads); a fresh, seeded scheduler per job; offloading; the job's effective
settings; the result resized to the panel. :class:`SdxlPipelineBackend` adds plain SDXL
txt2img / img2img / inpaint through the stock pipelines, with its settings: the ``sdxl`` backend is
that class under a name, and ``consistent`` extends it. ``racig`` builds its ControlNet pipelines on
:class:`DiffusersBackend`.

Nothing here changes the numerics: with the same components, scheduler and seed, the latents are
bit-identical to calling the diffusers pipeline directly (tests/backends compare them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from comic_studio.backends._diffusers.inputs import (
    check_denoising_steps,
    fit,
    parse_region,
    read_image_setting,
    region_mask,
)
from comic_studio.backends._diffusers.long_prompt import apply_long_prompt
from comic_studio.backends._diffusers.loras import JobLoras
from comic_studio.backends._diffusers.progress import StepReporter
from comic_studio.backends._diffusers.schedulers import (
    DEFAULT_SCHEDULER,
    UnknownScheduler,
    make_scheduler,
    scheduler_names,
)
from comic_studio.generation.backend_api import GenerationBackend, ModelNeed, with_default_overrides
from comic_studio.generation.models.loading import ModelLoadError, fp16_fix_vae, load_sdxl_components
from comic_studio.generation.models.pickle_policy import pickles_allowed
from comic_studio.generation.models.sdxl import DEFAULT_SDXL_ID, default_sdxl_model, resolve_sdxl
from comic_studio.generation.request import GenerationError, GenerationRequest, GenerationResult, StepCallback

if TYPE_CHECKING:
    from PIL import Image

    from comic_studio.generation.resources import EngineResources

MODES = ("auto", "txt2img", "img2img", "inpaint")
IMAGE_SETTING_MAX = 64 * 1024 * 1024
"""Data URIs for init images and masks are long; 64 MB of text is a 48 MB PNG."""
VAE_TILING_PIXELS = 1536 * 1024
"""Above this many generated pixels the ``auto`` VAE-tiling setting decodes in tiles. Every SDXL
training bucket (≈1 MP, up to 1536×640) stays below it and decodes whole, exactly as before; larger
panels (``size=panel`` on a big page, or a large ``max_side``) are where the decoder's activations
(mid-block attention over every latent pixel) grow past a small card."""
SDXL_VRAM_GB = {"gpu": 10.0, "model-offload": 7.0, "sequential-offload": 3.0}
"""Estimated peak GiB of SDXL base at ~1 MP in float16: 6.9 GiB of weights (UNet 5.1, text encoders
1.6, VAE 0.2) plus activations with CFG; whole-model offload keeps only the UNet resident while it
denoises. Estimates until bench/gpu_sdxl.py-style measurements replace them."""
SDXL_DEFAULTS_OWNER = "sdxl"
"""Whose process-wide default overrides (``set_default_settings``) the plain SDXL settings take:
the sdxl backend's, for every backend with those settings (``--models tiny`` sets them once and
the consistent backend follows)."""


class DiffusersBackend(GenerationBackend):
    """A backend that runs SDXL components through diffusers pipelines (see the module docstring).
    Subclasses declare their settings and implement ``generate``."""

    required_models = (ModelNeed("sdxl", "an SDXL base model", DEFAULT_SDXL_ID, setting="model", interchangeable=True),)

    def __init__(self) -> None:
        self._resources: EngineResources | None = None

    # ------------------------------------------------------------------ engine hooks

    def bind_resources(self, resources: EngineResources) -> None:
        """The engine lends its device choice and shared model cache (called on the worker thread)."""
        self._resources = resources
        resources.add_free_hook(empty_cuda_cache)

    @property
    def resources(self) -> EngineResources:
        if self._resources is None:  # used outside an engine (workflows.batch.render_panel, scripts)
            from comic_studio.generation.resources import EngineResources

            self._resources = EngineResources()
        return self._resources

    # ------------------------------------------------------------------ building blocks

    @property
    def offloads(self) -> bool:
        """Whether whole models move to the GPU in turn (loaded on the CPU, placed per call)."""
        res = self.resources
        return res.device == "cuda" and res.memory_mode_for(self) != "gpu"

    @property
    def load_device(self) -> str:
        """Where components are loaded: the CPU when the engine offloads (same cache keys for every
        diffusers backend, so they share one copy of the SDXL weights)."""
        return "cpu" if self.offloads else self.resources.device

    def job_settings(self, request: GenerationRequest) -> dict[str, Any]:
        """The validated settings with the job's effective values filled in (the default SDXL model
        for an empty one, the request's steps and guidance when it sets them): what the result
        records, so a replay elsewhere is exact."""
        settings = self.validate_settings(request.backend_settings)
        if "allow_pickle" in settings:
            # Never the request's (it comes from a project): the user's app setting or CLI flag.
            settings["allow_pickle"] = pickles_allowed()
        settings["model"] = settings["model"] or default_sdxl_model()
        settings["steps"] = request.steps or settings["steps"]
        settings["guidance"] = request.guidance or settings["guidance"]
        return settings

    def sdxl_components(self, settings: dict[str, Any], seed: int, *, allow_pickle: bool = False,
                        fp16_vae_fix: bool = False) -> dict[str, Any]:  # fmt: skip
        """The SDXL components of ``settings["model"]`` (and ``["model_config"]``) from the shared
        cache, with a new ``settings["scheduler"]`` seeded for this job. ``fp16_vae_fix`` swaps in
        the fp16-fix VAE when running in float16 and it is installed (sdxl and consistent always,
        racig by its ``fp16_vae_fix`` setting). Model and scheduler problems raise
        :class:`GenerationError`."""
        res = self.resources
        device = self.load_device
        try:
            source = resolve_sdxl(settings["model"], settings["model_config"], allow_pickle=allow_pickle)
            parts = load_sdxl_components(source, dtype=res.dtype, device=device, cache=res.models)
            if fp16_vae_fix:
                fixed_vae = fp16_fix_vae(res.dtype, device, res.models)
                if fixed_vae is not None:
                    parts = {**parts, "vae": fixed_vae}
            scheduler = make_scheduler(settings["scheduler"], parts["scheduler"].config, seed=seed)
        except (ModelLoadError, UnknownScheduler) as exc:
            raise GenerationError(str(exc)) from exc
        return {**parts, "scheduler": scheduler}

    def place(self, pipe: Any) -> Any:
        """Quiet the pipeline's progress bar and set up offloading when the engine asks for it."""
        pipe.set_progress_bar_config(disable=True)
        if self.offloads:
            res = self.resources
            if res.memory_mode_for(self) == "sequential-offload":
                pipe.enable_sequential_cpu_offload(device=res.device)
            else:
                pipe.enable_model_cpu_offload(device=res.device)
        return pipe


class SdxlPipelineBackend(DiffusersBackend):
    """Plain SDXL txt2img / img2img / inpaint through the stock diffusers pipelines, with the app's
    plumbing: live latent previews, cancel within one step, LoRAs for one job, long prompts, and a
    result that records the effective settings for an exact replay."""

    capabilities = frozenset({"txt2img", "img2img", "inpaint", "lora", "negative_prompt", "preview"})
    vram_gb = SDXL_VRAM_GB

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        return with_default_overrides(sdxl_settings(), SDXL_DEFAULTS_OWNER)

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        settings = self.job_settings(request)
        pipe, call = self.prepare_call(request, settings)
        loras = JobLoras(settings["loras"], settings["allow_pickle"], settings["character_loras"])
        try:
            loras.apply(pipe)
            apply_long_prompt(pipe, call)  # after the LoRAs: they may patch the text encoders
            reporter = StepReporter(on_step, settings["preview_every"])
            images = pipe(**call, callback_on_step_end=reporter.callback()).images
        finally:
            loras.remove()
        image = resized_to_panel(images[0], request)
        return GenerationResult(images=[image], seed=request.seed, backend=self.name, settings=settings)

    def prepare_call(self, request: GenerationRequest, settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The diffusers pipeline and the keyword arguments for one job (the parity test and the
        benchmarks call this too, then compare with a hand-written stock call)."""
        import torch

        mode, init, mask = _inputs(settings, request.width, request.height)  # before loading: bad inputs fail fast
        if mode != "txt2img":
            check_denoising_steps(self.name, settings["steps"], settings["strength"])
        parts = self.sdxl_components(settings, request.seed, allow_pickle=settings["allow_pickle"], fp16_vae_fix=True)
        # No invisible watermark even where the package is installed: it alters the panel's pixels.
        pipe = self.place(pipeline_class(mode)(**parts, add_watermarker=False))
        scale = pipe.vae_scale_factor
        shrink = min(1.0, settings["max_side"] / max(request.width, request.height)) if settings["max_side"] else 1.0
        width, height = multiple_of(request.width * shrink, scale), multiple_of(request.height * shrink, scale)
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


def sdxl_settings() -> dict[str, dict[str, Any]]:
    """The plain SDXL settings as declared (without process-wide default overrides)."""
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
                       "image": True, "help": "An image file (added to the project) or a PNG data URI."},
        "mask_image": {"type": "str", "default": "", "label": "Inpaint mask", "max_length": IMAGE_SETTING_MAX,
                       "image": True, "help": "White = repaint. An image file (added to the project) or a PNG data URI."},
        "mask_region": {"type": "str", "default": "", "label": "Inpaint region", "max_length": 20_000,
                        "help": "Panel-normalised polygon 'x,y x,y x,y ...' to repaint."},
        "loras": {"type": "str", "default": "", "label": "LoRAs", "max_length": 20_000,
                  "help": "Comma-separated 'file-or-id[:weight]' entries (kohya or diffusers format)."},
        # Set by the workflows for one job from the panel's characters (never stored): their trained
        # LoRAs as JSON [[file, weight], ...], applied with the 'loras' above.
        "character_loras": {"type": "str", "default": "", "label": "Character LoRAs", "max_length": 200_000,
                            "hidden": True, "help": "Filled in for each job from the characters' trained LoRAs."},
        "max_side": {"type": "int", "default": 0, "min": 0, "max": 8192, "label": "Largest generated side",
                     "help": "Generate at most this many pixels on the long side and upscale to the panel "
                             "(0 = the panel's own size)."},
        "preview_every": {"type": "int", "default": 1, "min": 0, "max": 1000, "label": "Preview every N steps",
                          "help": "0 turns live previews off."},
        # Kept so projects that stored it still validate; the job records the user's choice instead.
        "allow_pickle": {"type": "bool", "default": False, "label": "Allow pickled weights", "hidden": True,
                         "help": "Ignored: pickled weights are allowed only in Edit → Preferences or with --allow-pickle."},
    }  # fmt: skip


# ---------------------------------------------------------------------------------- helpers


def pipeline_class(mode: str) -> Any:
    """The stock SDXL pipeline for ``mode`` ("txt2img", "img2img" or "inpaint")."""
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


def multiple_of(value: float, step: int) -> int:
    """``value`` rounded to a multiple of ``step`` (at least ``step``): SDXL generates at multiples of 8."""
    return max(step, int(round(value / step)) * step)


def resized_to_panel(image: Image.Image, request: GenerationRequest) -> Image.Image:
    """``image`` at the panel's size (it was generated at a multiple of 8, or smaller)."""
    if image.size != (request.width, request.height):
        from PIL import Image

        image = image.resize((request.width, request.height), Image.Resampling.LANCZOS)
    return image


def vae_tiles(setting: str, width: int, height: int) -> bool:
    """Whether the VAE-tiling setting (``auto``/``on``/``off``) tiles a ``width``×``height`` image."""
    return setting == "on" or (setting == "auto" and width * height > VAE_TILING_PIXELS)


@contextmanager
def vae_tiling(vae: Any, on: bool) -> Iterator[None]:
    """The VAE decodes in tiles and one image at a time (slicing) inside the block when ``on``, whole
    when not; either way it is put back as it was afterwards, because the VAE is shared with the other
    backends through the model cache and their images must not change."""
    before = (getattr(vae, "use_tiling", False), getattr(vae, "use_slicing", False))
    if on:
        vae.enable_tiling()
        vae.enable_slicing()
    else:
        vae.disable_tiling()
        vae.disable_slicing()
    try:
        yield
    finally:
        vae.use_tiling, vae.use_slicing = before


def empty_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")  # never import torch just to free memory
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()

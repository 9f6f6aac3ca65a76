"""The ``anime`` backend: SD 1.5 + AnimeAdapter (seed 003) + the panel's pose (OpenPose T2I-Adapter or
ControlNet) + LoRAs.

One job: stage the panel's pose and per-character masks (:mod:`comic_studio.poses.staging`, shared
with racig and the storyboard), encode one reference per character through the CLIP vision encoder
into fine-grained tokens, with its token mask (the reference's foreground), and run SD 1.5 once
with the adapter's processors on every cross-attention layer: each character's reference at its
strength λ, its image attention only inside that character's region of the panel.

The base family follows the adapter weights' config.json: SD 1.5 (the paper's: its 24.7 M
parameters fit SD 1.5) or SDXL (the variant the issue asks for; SDXL pipelines on the shared SDXL
models, 1024² area, the SDXL OpenPose ControlNet; no catalogue T2I-Adapter for SDXL yet).

The pose goes through the OpenPose T2I-Adapter when one is installed (the controller the paper
trains with and finds best, §3.4 / Tab. 5; :mod:`.t2i`), else through the OpenPose ControlNet; the
``pose_control`` setting picks one explicitly.

No AnimeAdapter weights are public (the paper says they will be released): without the ``adapter``
setting the job is refused with what to do (train them, or use the stand-in — IP-Adapter Plus on a
background-masked reference, the racig backend — which is not AnimeAdapter).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.backends._diffusers.backend import DiffusersBackend, resized_to_panel
from comic_studio.backends._diffusers.loras import JobLoras
from comic_studio.backends._diffusers.progress import StepReporter
from comic_studio.backends._diffusers.references import json_object_setting, parse_images_setting
from comic_studio.backends._diffusers.schedulers import UnknownScheduler, make_scheduler, scheduler_names
from comic_studio.backends.anime.t2i import PoseFeatures
from comic_studio.generation.backend_api import ModelNeed, with_default_overrides
from comic_studio.generation.models.loading import ModelLoadError, torch_dtype
from comic_studio.generation.models.pickle_policy import pickles_allowed
from comic_studio.generation.models.sd15 import DEFAULT_SD15_ID, load_sd15_components, resolve_sd15
from comic_studio.generation.request import GenerationError, GenerationRequest, GenerationResult, StepCallback
from comic_studio.poses.staging.conditioning import Conditioning, build_conditioning
from comic_studio.poses.staging.figures import UnknownPoseError
from comic_studio.vision.detect import person_mask, plain_background_mask
from comic_studio.weights.catalogue import CatalogueError, load_catalogue
from comic_studio.weights.locate import Places, locate

NAME = "anime"
SD15_AREA = 512 * 512
"""SD 1.5's training area: panels are generated at about this many pixels, at their own shape."""
SDXL_AREA = 1024 * 1024
"""SDXL's, for adapter weights of the SDXL family."""
MAX_CHARACTERS = 4
IMAGE_SETTING_MAX = 256 * 1024 * 1024
DEFAULT_IDS = {
    "image_encoder": "clip-vit-l-14-vision",
    "controlnet": "controlnet-openpose-sd15",
    "t2i_adapter": "t2i-adapter-openpose-sd14",
    "ip_adapter": "ip-adapter-plus-sd15",
    "ip_image_encoder": "clip-vit-h-image-encoder",
}
DEFAULT_CONTROLNETS = {"sd15": "controlnet-openpose-sd15", "sdxl": "controlnet-openpose-sdxl"}
"""The OpenPose ControlNet per base family (an empty 'controlnet' setting)."""
DEFAULT_T2I_ADAPTERS = {"sd15": "t2i-adapter-openpose-sd14"}
"""The catalogue's OpenPose T2I-Adapter per family: none for SDXL yet (set 't2i_adapter' to a
folder, e.g. TencentARC's t2i-adapter-openpose-sdxl-1.0, to use one)."""
METHODS = ("animeadapter", "stand-in")
STAND_IN_LABEL = "IP-Adapter Plus stand-in (not AnimeAdapter)"
"""What results made with ``method=stand-in`` record under the ``label`` setting."""
STAND_IN_BACKGROUND = (255, 255, 255)
"""The stand-in's reference has its background painted white (IP-Adapter has no token mask)."""
REFERENCE_MASKS = ("auto", "plain-background", "whole")
POSE_CONTROLS = ("auto", "t2i-adapter", "controlnet", "off")
"""auto: the T2I-Adapter when one is installed (the paper's controller), else the ControlNet."""
STAND_IN = (
    "Until AnimeAdapter weights exist, set 'method' to stand-in: IP-Adapter Plus on the background-masked "
    "reference plus the OpenPose ControlNet, the paper's nearest baseline (it is not AnimeAdapter)."
)
VRAM_GB = {"gpu": 5.0, "model-offload": 4.0, "sequential-offload": 2.0}
"""Estimates for SD 1.5 at 512² in float16 with the adapter (49 MB), ViT-L/14 (0.6 GB, parked
between references) and an SD 1.5 ControlNet (0.7 GB); bench/gpu_anime.py is to measure them."""


class AnimeBackend(DiffusersBackend):
    name = NAME
    display_name = "AnimeAdapter (SD 1.5 anime characters)"
    capabilities = frozenset({"txt2img", "pose", "masks", "characters", "body_refs", "face_refs", "negative_prompt",
                              "preview", "lora"})  # fmt: skip
    needs_reference_images = True
    vram_gb = VRAM_GB
    required_models = (
        ModelNeed("sd15", "an SD 1.5 base model (an anime fine-tune)", DEFAULT_SD15_ID, setting="model",
                  interchangeable=True),
        ModelNeed("clip_vision", "the CLIP ViT-L/14 image encoder", DEFAULT_IDS["image_encoder"],
                  setting="image_encoder"),
        # Either pose controller will do (pose_control=auto takes the T2I-Adapter when installed).
        ModelNeed("controlnet", "the OpenPose ControlNet (or T2I-Adapter) for SD 1.5", DEFAULT_IDS["controlnet"],
                  setting="controlnet", alternatives=(DEFAULT_IDS["t2i_adapter"],)),
    )  # fmt: skip

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        path = {"type": "str", "default": "", "max_length": 4096}
        return with_default_overrides({
            "model": {**path, "label": "Base model (SD 1.5)", "help": f"Catalogue id, diffusers folder or .safetensors checkpoint (empty = {DEFAULT_SD15_ID}); an SDXL model for AnimeAdapter weights of the SDXL family (empty = the default SDXL model)."},
            "model_config": {**path, "label": "Checkpoint config folder", "help": "Single files only (empty = the bundled SD 1.5 config)."},
            "method": {"type": "choice", "default": "animeadapter", "choices": list(METHODS), "label": "Method",
                       "help": "animeadapter: the paper's adapter (needs its weights); stand-in: IP-Adapter Plus on the "
                               "background-masked reference + the OpenPose ControlNet, NOT AnimeAdapter (its nearest baseline)."},
            "ip_adapter": {**path, "label": "Stand-in: IP-Adapter Plus (SD 1.5)", "help": f"h94 .safetensors file or catalogue id (empty = {DEFAULT_IDS['ip_adapter']})."},
            "ip_image_encoder": {**path, "label": "Stand-in: image encoder (ViT-H)", "help": f"h94 models/image_encoder folder or catalogue id (empty = {DEFAULT_IDS['ip_image_encoder']})."},
            "adapter": {**path, "label": "AnimeAdapter weights", "help": "Folder with anime_adapter.safetensors and config.json (trained with `comic-studio train anime-adapter`, or released by the authors)."},
            "image_encoder": {**path, "label": "Image encoder (CLIP ViT-L/14)", "help": f"Folder or catalogue id (empty = {DEFAULT_IDS['image_encoder']})."},
            "pose_control": {"type": "choice", "default": "auto", "choices": list(POSE_CONTROLS), "label": "Pose control",
                             "help": "The panel's pose (when it has characters) through the OpenPose T2I-Adapter (the paper's "
                                     "controller) or ControlNet; auto: the T2I-Adapter when installed, else the ControlNet."},
            "t2i_adapter": {**path, "label": "OpenPose T2I-Adapter (SD 1.5)", "help": f"Folder or catalogue id (empty = {DEFAULT_IDS['t2i_adapter']})."},
            "controlnet": {**path, "label": "OpenPose ControlNet", "help": f"Folder or catalogue id (empty = {DEFAULT_CONTROLNETS['sd15']}, or {DEFAULT_CONTROLNETS['sdxl']} for SDXL)."},
            "controlnet_scale": {"type": "float", "default": 0.8, "min": 0.0, "max": 2.0, "label": "Pose strength",
                                 "help": "Scales the ControlNet's residuals or the T2I-Adapter's features."},
            # λ of Eq. 4; the paper gives no inference value (IP-Adapter's usual range is 0.5–1).
            "scale": {"type": "float", "default": 0.8, "min": 0.0, "max": 2.0, "label": "Appearance strength (λ)"},
            "character_scales": {"type": "str", "default": "", "max_length": 20_000, "label": "Per-character strengths",
                                 "help": 'JSON {"character id": λ}; wins over the character\'s own body strength and the panel\'s.'},
            "reference_mask": {"type": "choice", "default": "auto", "choices": list(REFERENCE_MASKS), "label": "Reference foreground",
                               "help": "auto: a mask from 'reference_masks', else the person segmenter, else the plain-background rule; "
                                       "plain-background: pixels unlike the border colour; whole: every token (no masking)."},
            "reference_masks": {"type": "str", "default": "", "max_length": IMAGE_SETTING_MAX, "label": "Reference masks",
                                "help": "JSON {reference asset hash: PNG data URI of a white-on-black foreground mask} (hand-made masks)."},
            "placement": {"type": "choice", "default": "masks", "choices": ["masks", "everywhere"], "label": "Where each character applies",
                          "help": "masks: each reference only inside its character's head and body region of the panel."},
            "steps": {"type": "int", "default": 30, "min": 1, "max": 200, "label": "Steps"},
            "guidance": {"type": "float", "default": 7.0, "min": 0.0, "max": 30.0, "label": "Guidance (CFG)"},
            "scheduler": {"type": "choice", "default": "DPM++ 2M", "choices": scheduler_names(), "label": "Sampler"},
            "max_side": {"type": "int", "default": 0, "min": 0, "max": 8192, "label": "Largest generated side (0 = no limit)"},
            "top_k": {"type": "int", "default": 5, "min": 1, "max": 50, "label": "Pose candidates (top-k)"},
            "pose_choice": {"type": "choice", "default": "panel", "choices": ["panel", "retrieved"], "label": "Pose"},
            "pose_matching": {"type": "choice", "default": "auto", "choices": ["auto", "minilm", "overlap", "openclip"], "label": "Pose matching"},
            "mask_dilation": {"type": "float", "default": 0.01, "min": 0.0, "max": 0.1, "label": "Mask dilation"},
            "reference_images": {"type": "str", "default": "", "max_length": IMAGE_SETTING_MAX, "label": "Reference images",
                                 "help": "JSON {asset hash: PNG data URI} for every reference (filled by the app)."},
            "preview_every": {"type": "int", "default": 1, "min": 0, "max": 1000, "label": "Preview every N steps"},
            "loras": {"type": "str", "default": "", "label": "LoRAs", "max_length": 20_000,
                      "help": "Comma-separated 'file-or-id[:weight]' entries for SD 1.5 (kohya or diffusers format)."},
            "character_loras": {"type": "str", "default": "", "label": "Character LoRAs", "max_length": 200_000, "hidden": True,
                                "help": "Filled in for each job from the characters' trained LoRAs."},
        }, cls.name)  # fmt: skip

    # ------------------------------------------------------------------ generation

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        settings = self.validate_settings(request.backend_settings)
        settings["steps"] = request.steps or settings["steps"]
        settings["guidance"] = request.guidance or settings["guidance"]
        if settings["method"] == "stand-in":
            settings["label"] = STAND_IN_LABEL
            pipe, call, cond, pose = self._pipeline(request, settings)
            image = self._run_stand_in(pipe, call, request, settings, cond, pose, on_step)
        else:
            job = self.prepare_call(request, settings)
            image = self._run(job, settings, on_step)
            cond = job.cond
        return GenerationResult(images=[resized_to_panel(image, request)], seed=request.seed, backend=self.name,
                                settings=settings, heads=cond.placements if cond else [],
                                pose_id=cond.pose_id if cond else None)  # fmt: skip

    def prepare_call(self, request: GenerationRequest, settings: dict[str, Any]) -> AnimeJob:
        """The pipeline, its keyword arguments, the adapter state (references), the adapter, the
        staging (``None`` without characters) and the T2I-Adapter's pose features. The bench and
        tests call this too (``settings`` validated, with ``pose_control`` chosen)."""
        from comic_studio.generation.models.anime_adapter import AdapterState

        adapter = self._adapter(settings["adapter"])  # first: refuse before loading anything heavy
        pipe, call, cond, pose = self._pipeline(request, settings, adapter.config.family)
        self.place(pipe)
        device = pipe._execution_device
        adapter = adapter.to(device=device, dtype=pipe.unet.dtype)
        refs = self._references(request, settings, cond, adapter, settings["guidance"] > 1.0, device, pipe.unet.dtype)
        return AnimeJob(pipe, call, AdapterState(refs), adapter, cond, pose)

    def _pipeline(self, request: GenerationRequest, settings: dict[str, Any], family: str = "sd15") -> tuple[Any, dict[str, Any], Conditioning | None, PoseFeatures | None]:  # fmt: skip
        """The SD 1.5 (or SDXL) pipeline (with the OpenPose ControlNet when the panel has characters
        and the pose goes through it), not placed yet, its keyword arguments, the staging and the
        T2I-Adapter's features of the panel's pose (when the pose goes through it)."""
        import diffusers
        import torch

        width, height = self.generation_size(request, settings, family)
        cond = self._conditioning(request, settings, (width, height)) if request.characters else None
        xl = family == "sdxl"
        parts = self._sdxl_parts(settings, request.seed) if xl else self._components(settings, request.seed)
        control = self.pose_control(settings, family) if cond is not None else "off"
        pose = control == "controlnet"
        features = None
        if control == "t2i-adapter":
            assert cond is not None  # control is "off" without a staging
            features = PoseFeatures.compute(self._t2i_adapter(settings["t2i_adapter"], family), cond.control_image,
                                            width, height, settings["controlnet_scale"], parts["unet"])  # fmt: skip
        common: dict[str, Any] = (
            {} if xl else {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
        )
        if pose:
            controlnet = self._controlnet(settings["controlnet"] or DEFAULT_CONTROLNETS[family])
            cls = diffusers.StableDiffusionXLControlNetPipeline if xl else diffusers.StableDiffusionControlNetPipeline
            pipe: Any = cls(**parts, controlnet=controlnet, **common)
        else:
            pipe = (diffusers.StableDiffusionXLPipeline if xl else diffusers.StableDiffusionPipeline)(**parts, **common)
        pipe.set_progress_bar_config(disable=True)
        call: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": settings["steps"],
            "guidance_scale": settings["guidance"],
            "height": height,
            "width": width,
            "generator": torch.Generator("cpu").manual_seed(request.seed),
        }
        if pose:
            assert cond is not None
            call.update(image=cond.control_image, controlnet_conditioning_scale=settings["controlnet_scale"])
        return pipe, call, cond, features

    def pose_control(self, settings: dict[str, Any], family: str = "sd15") -> str:
        """How the pose goes in: the setting, with "auto" chosen here (the T2I-Adapter when one is
        installed or set, else the ControlNet). The result keeps "auto" (the validated settings, as
        the backend contract asks): a replay on a machine with other models may choose otherwise."""
        chosen = settings["pose_control"]
        if chosen == "auto":
            chosen = "t2i-adapter" if self._t2i_path(settings["t2i_adapter"], family) else "controlnet"
        return str(chosen)

    def generation_size(self, request: GenerationRequest, settings: dict[str, Any], family: str = "sd15") -> tuple[int, int]:  # fmt: skip
        k = math.sqrt((SDXL_AREA if family == "sdxl" else SD15_AREA) / (request.width * request.height))
        w, h = request.width * k, request.height * k
        if settings["max_side"]:
            shrink = min(1.0, settings["max_side"] / max(w, h))
            w, h = w * shrink, h * shrink
        return max(8, int(round(w / 8)) * 8), max(8, int(round(h / 8)) * 8)

    def _run(self, job: AnimeJob, settings: dict[str, Any], on_step: StepCallback | None) -> Any:
        from comic_studio.generation.models.anime_adapter import AdapterFormatError, attached

        reporter = StepReporter(on_step, settings["preview_every"]).callback()
        loras = JobLoras(settings["loras"], pickles_allowed(), settings["character_loras"])
        pipe = job.pipe
        try:
            loras.apply(pipe)
            with attached(pipe.unet, job.adapter, job.state), _posed(pipe.unet, job.pose):
                return pipe(**job.call, callback_on_step_end=reporter).images[0]
        except AdapterFormatError as exc:  # weights of another UNet than the base model's
            raise GenerationError(f"anime setting 'adapter': {exc}") from exc
        finally:
            loras.remove()

    def _run_stand_in(self, pipe: Any, call: dict[str, Any], request: GenerationRequest, settings: dict[str, Any],
                      cond: Conditioning | None, pose: PoseFeatures | None, on_step: StepCallback | None) -> Any:  # fmt: skip
        """IP-Adapter Plus on each character's background-masked reference, under its region, at its
        λ, with the pose ControlNet: the paper's nearest baseline (Tab. 1), labelled as not AnimeAdapter."""
        import torch

        reporter = StepReporter(on_step, settings["preview_every"]).callback()
        loras = JobLoras(settings["loras"], pickles_allowed(), settings["character_loras"])
        items, negative = self._stand_in_items(request, settings, cond)
        try:
            loras.apply(pipe)
            if not items:
                self.place(pipe)
                with _posed(pipe.unet, pose):
                    return pipe(**call, callback_on_step_end=reporter).images[0]
            # The adapter goes on before the offload hooks (as racig's: the hooks must cover it).
            pipe.load_ip_adapter(self._ip_state(settings["ip_adapter"]), subfolder="", weight_name="stand-in",
                                 image_encoder_folder=None)  # fmt: skip
            try:
                self.place(pipe)
                device, dtype = pipe._execution_device, pipe.unet.dtype
                positive = torch.stack([e for e, _, _ in items])[None]
                cfg = call["guidance_scale"] > 1.0
                embeds = torch.cat([negative.expand_as(positive), positive]) if cfg else positive
                masks = torch.from_numpy(np.stack([m for _, m, _ in items]).astype(np.float32))[None]
                for processor in pipe.unet.attn_processors.values():
                    if hasattr(processor, "to_k_ip"):
                        processor.scale = [[s for _, _, s in items]]  # one λ per character's image
                with _posed(pipe.unet, pose):
                    return pipe(**call, ip_adapter_image_embeds=[embeds.to(device, dtype)],
                                cross_attention_kwargs={"ip_adapter_masks": [masks]},
                                callback_on_step_end=reporter).images[0]  # fmt: skip
            finally:
                pipe.unload_ip_adapter()
        finally:
            loras.remove()

    def _stand_in_items(self, request: GenerationRequest, settings: dict[str, Any],
                        cond: Conditioning | None) -> tuple[list[tuple[Any, np.ndarray, float]], Any]:  # fmt: skip
        """``(embedding, region mask, λ)`` per character with a reference (the penultimate ViT-H
        hidden states of the reference with its background painted white), and the negative
        embedding (an all-zero input, diffusers' convention for Plus adapters)."""
        import torch
        from PIL import Image

        chosen = self._chosen(request)
        if not chosen:
            return [], None
        images = parse_images_setting(settings["reference_images"], NAME)
        masks = parse_images_setting(settings["reference_masks"], NAME, "reference_masks")
        overrides = _character_scales(settings["character_scales"], [c.id for c in request.characters])
        encoder, processor = self._ip_encoder(settings["ip_image_encoder"])
        items = []
        with torch.no_grad():
            size = processor.crop_size
            zeros = torch.zeros(1, 3, size["height"], size["width"], dtype=encoder.dtype)
            negative = encoder(zeros, output_hidden_states=True).hidden_states[-2][0].float()[None, None]
            for index, asset in chosen:
                c = request.characters[index]
                scale = overrides.get(c.id, c.body_scale if c.body_scale is not None else settings["scale"])
                if scale <= 0:
                    continue
                picture = _decode(images, asset).convert("RGB")
                foreground = _foreground(picture, masks.get(asset), settings["reference_mask"])
                if foreground is not None:
                    white = Image.new("RGB", picture.size, STAND_IN_BACKGROUND)
                    picture = Image.composite(picture, white, Image.fromarray(foreground.astype(np.uint8) * 255))
                pixels = processor(images=picture, return_tensors="pt").pixel_values.to(encoder.dtype)
                embedding = encoder(pixels, output_hidden_states=True).hidden_states[-2][0].float()
                if cond is not None and settings["placement"] == "masks":
                    where = cond.head_masks[index] | cond.body_masks[index]
                else:
                    where = np.ones((8, 8), bool)  # everywhere (diffusers resizes masks per layer)
                if where.any():
                    items.append((embedding, where, float(scale)))
        return items, negative

    def _chosen(self, request: GenerationRequest) -> list[tuple[int, str]]:
        """(character index, its one reference): the first body reference, else the first face one."""
        return [
            (i, (c.body_refs or c.face_refs)[0]) for i, c in enumerate(request.characters) if c.body_refs or c.face_refs
        ]

    # ------------------------------------------------------------------ references

    def _references(self, request: GenerationRequest, settings: dict[str, Any], cond: Conditioning | None,
                    adapter: Any, cfg: bool, device: Any, dtype: Any) -> list[Any]:  # fmt: skip
        """One :class:`Reference` per character with a reference image and λ > 0: its fused tokens
        (the "no image" tokens first under CFG), its token mask and its region of the panel."""
        import torch

        from comic_studio.generation.models.anime_adapter import Reference, encode_hidden, square, token_mask

        chosen = self._chosen(request)
        if not chosen:
            return []
        images = parse_images_setting(settings["reference_images"], NAME)
        masks = parse_images_setting(settings["reference_masks"], NAME, "reference_masks")
        overrides = _character_scales(settings["character_scales"], [c.id for c in request.characters])
        encoder, processor = self._image_encoder(settings["image_encoder"])
        side = int(encoder.config.image_size)
        out = []
        try:
            encoder.to(device)
            with torch.no_grad():
                negative = adapter.fuse([torch.zeros(1, adapter.config.tokens, adapter.config.clip_hidden,
                                                     device=device, dtype=dtype)] * adapter.config.k_layers)  # fmt: skip
                for index, asset in chosen:
                    c = request.characters[index]
                    scale = overrides.get(c.id, c.body_scale if c.body_scale is not None else settings["scale"])
                    if scale <= 0:
                        continue
                    picture = _decode(images, asset)
                    foreground = _foreground(picture, masks.get(asset), settings["reference_mask"])
                    square_image, square_mask = square(picture, foreground, side)
                    hidden = encode_hidden(encoder, processor, square_image, adapter)
                    tokens = adapter.fuse([h.to(device=device, dtype=dtype) for h in hidden])
                    if cfg:
                        tokens = torch.cat([negative, tokens])
                    region = None
                    if settings["placement"] == "masks" and cond is not None:
                        where = cond.head_masks[index] | cond.body_masks[index]
                        if not where.any():
                            continue  # the character is not in the picture: nothing to condition
                        region = torch.from_numpy(where.astype(np.float32))[None].to(device)
                    mask = token_mask(square_mask, adapter.config).to(device)
                    out.append(Reference(tokens, mask, float(scale), region))
        finally:
            encoder.to("cpu")  # idle through the denoising steps
        return out

    # ------------------------------------------------------------------ models

    def _adapter(self, spec: str) -> Any:
        from comic_studio.generation.models.anime_adapter import WEIGHTS_FILE, load_adapter

        if not spec.strip():
            raise GenerationError(
                "anime: no AnimeAdapter weights are installed (setting 'adapter'). No public weights exist yet; "
                "train them with `comic-studio train anime-adapter`, or set 'adapter' to a folder with "
                f"{WEIGHTS_FILE} and config.json. {STAND_IN}"
            )
        folder = Path(spec).expanduser()
        res = self.resources
        try:
            # Cached where it computes (49 MB at full size): the processors are not UNet submodules,
            # so offload hooks never move it.
            return res.models.get(str(folder.resolve()), "anime-adapter", res.dtype, res.device,
                                  lambda: load_adapter(folder, dtype=torch_dtype(res.dtype), device=res.device))  # fmt: skip
        except ModelLoadError as exc:
            raise GenerationError(f"anime setting 'adapter': {exc}") from exc

    def _components(self, settings: dict[str, Any], seed: int) -> dict[str, Any]:
        res = self.resources
        try:
            source = resolve_sd15(settings["model"], settings["model_config"])
            parts = load_sd15_components(source, dtype=res.dtype, device=self.load_device, cache=res.models)
            scheduler = make_scheduler(settings["scheduler"], parts["scheduler"].config, seed=seed)
        except (ModelLoadError, UnknownScheduler) as exc:
            raise GenerationError(f"anime: {exc}") from exc
        return {**parts, "scheduler": scheduler}

    def _conditioning(
        self, request: GenerationRequest, settings: dict[str, Any], size: tuple[int, int]
    ) -> Conditioning:
        if len(request.characters) > MAX_CHARACTERS:
            raise GenerationError(
                f"anime renders at most {MAX_CHARACTERS} characters per panel, this one has {len(request.characters)}"
            )
        try:
            return build_conditioning(request, size[0], size[1], top_k=settings["top_k"], embedder=settings["pose_matching"],
                                      dilation=settings["mask_dilation"], use_request_pose=settings["pose_choice"] == "panel")  # fmt: skip
        except UnknownPoseError as exc:
            raise GenerationError(str(exc)) from exc

    def _sdxl_parts(self, settings: dict[str, Any], seed: int) -> dict[str, Any]:
        """SDXL's components for adapter weights of the SDXL family (the shared cache: the sdxl
        backend's copy); an empty 'model' is the default SDXL model."""
        from comic_studio.generation.models.sdxl import default_sdxl_model

        try:
            return self.sdxl_components({**settings, "model": settings["model"] or default_sdxl_model()}, seed)
        except GenerationError as exc:
            raise GenerationError(f"anime (SDXL adapter weights): {exc}") from exc

    def _controlnet(self, spec: str) -> Any:
        path = _model_path(spec or DEFAULT_IDS["controlnet"], "controlnet", "controlnet")
        return self._cached_pretrained("ControlNetModel", path, "controlnet", "controlnet")

    def _cached_pretrained(self, cls: str, path: Path, kind: str, setting: str) -> Any:
        """diffusers' ``cls`` from the folder ``path`` (local safetensors only) in the run's dtype on
        the load device, in eval mode, through the shared model cache under ``kind``; a folder that
        does not load is a :class:`GenerationError` naming the ``setting``."""
        res = self.resources
        device = self.load_device

        def load() -> Any:
            import diffusers

            try:
                net = getattr(diffusers, cls).from_pretrained(path, torch_dtype=torch_dtype(res.dtype),
                                                              local_files_only=True, use_safetensors=True)  # fmt: skip
            except (OSError, ValueError, RuntimeError) as exc:
                raise GenerationError(f"anime setting '{setting}': cannot load {path} ({exc})") from exc
            return net.to(device).eval()

        return res.models.get(str(path), kind, res.dtype, device, load)

    def _t2i_path(self, spec: str, family: str = "sd15") -> Path | None:
        """The T2I-Adapter's folder: the setting's (which must exist) or the family's installed
        default; None when there is none (auto pose control then uses the ControlNet)."""
        if spec.strip():
            return _model_path(spec, "T2I-Adapter", "t2i_adapter")
        if family not in DEFAULT_T2I_ADAPTERS:
            return None
        found = locate(load_catalogue().get(DEFAULT_T2I_ADAPTERS[family]), Places.from_settings())
        return found.path if found is not None else None

    def _t2i_adapter(self, spec: str, family: str = "sd15") -> Any:
        path = self._t2i_path(spec, family)
        if path is None:
            if family not in DEFAULT_T2I_ADAPTERS:
                raise GenerationError(
                    f"anime: the catalogue has no OpenPose T2I-Adapter for {family}: set 't2i_adapter' to one's "
                    "folder, or set 'pose_control' to controlnet"
                )
            path = _model_path(DEFAULT_T2I_ADAPTERS[family], "T2I-Adapter", "t2i_adapter")
        # Run once per render where it was loaded (its features then go to the UNet's device).
        return self._cached_pretrained("T2IAdapter", path, "t2i-adapter", "t2i_adapter")

    def _ip_state(self, spec: str) -> dict[str, Any]:
        from comic_studio.generation.models.loading import read_state_dict

        path = _model_path(spec or DEFAULT_IDS["ip_adapter"], "IP-Adapter Plus", "ip_adapter")
        if path.suffix != ".safetensors":
            raise GenerationError(f"anime setting 'ip_adapter': {path.name} must be a .safetensors IP-Adapter file")
        try:
            flat = self.resources.models.get(
                str(path), "ip-adapter-flat", "float32", "cpu", lambda: read_state_dict(path)
            )
        except ModelLoadError as exc:
            raise GenerationError(f"anime setting 'ip_adapter': {exc}") from exc
        return _nested_ip_state(flat, path)

    def _ip_encoder(self, spec: str) -> tuple[Any, Any]:
        path = _model_path(spec or DEFAULT_IDS["ip_image_encoder"], "IP-Adapter image encoder", "ip_image_encoder")
        res = self.resources

        def load() -> tuple[Any, Any]:
            from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

            try:
                model = CLIPVisionModelWithProjection.from_pretrained(path, torch_dtype=torch_dtype(res.dtype),
                                                                      local_files_only=True, use_safetensors=True)  # fmt: skip
            except (OSError, ValueError) as exc:
                raise GenerationError(f"anime setting 'ip_image_encoder': cannot load {path} ({exc})") from exc
            try:
                processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
            except (OSError, ValueError):
                processor = CLIPImageProcessor()  # h94 ships no preprocessor config: CLIP's 224 px defaults
            return model.eval(), processor

        return res.models.get(str(path), "anime-ip-encoder", res.dtype, "cpu", load)

    def _image_encoder(self, spec: str) -> tuple[Any, Any]:
        path = _model_path(spec or DEFAULT_IDS["image_encoder"], "image encoder", "image_encoder")
        res = self.resources

        def load() -> tuple[Any, Any]:
            from transformers import CLIPImageProcessor, CLIPVisionModel

            try:
                model = CLIPVisionModel.from_pretrained(path, torch_dtype=torch_dtype(res.dtype), local_files_only=True,
                                                        use_safetensors=True)  # fmt: skip
                processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise GenerationError(f"anime setting 'image_encoder': cannot load {path} ({exc})") from exc
            return model.eval(), processor

        return res.models.get(str(path), "anime-image-encoder", res.dtype, "cpu", load)


# ---------------------------------------------------------------------------------- helpers


@dataclass
class AnimeJob:
    """One AnimeAdapter render, ready to run (:meth:`AnimeBackend.prepare_call`)."""

    pipe: Any
    call: dict[str, Any]
    state: Any
    """The adapter's :class:`~comic_studio.generation.models.anime_adapter.AdapterState`."""
    adapter: Any
    cond: Conditioning | None
    pose: PoseFeatures | None


def _posed(unet: Any, pose: PoseFeatures | None) -> Any:
    """The T2I-Adapter's pose features on ``unet`` for the block (nothing when the pose does not go
    through a T2I-Adapter)."""
    return pose.attached(unet) if pose is not None else nullcontext()


def _model_path(spec: str, what: str, field: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path
    try:
        entry = load_catalogue().get(spec)
    except CatalogueError as exc:
        raise GenerationError(
            f"anime setting {field!r}: {spec!r} is neither a folder nor a catalogue id ({exc})"
        ) from exc
    found = locate(entry, Places.from_settings())
    if found is None:
        raise GenerationError(
            f"anime: the {what} {spec!r} is not installed: run `comic-studio models download {spec}`"
            + (" (or set 'pose_control' to off)" if field in ("controlnet", "t2i_adapter") else "")
        )
    return found.path


def _decode(images: dict[str, bytes], asset: str) -> Any:
    from comic_studio.core import safe_read

    if asset not in images:
        raise GenerationError(
            f"anime: reference image {asset[:12]}… is not in the request (setting 'reference_images')"
        )
    try:
        return safe_read.decode_image(images[asset], where="anime", what="reference image")
    except safe_read.UnsafeInputError as exc:
        raise GenerationError(str(exc)) from exc


def _nested_ip_state(flat: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """An h94 ``.safetensors`` IP-Adapter (flat ``image_proj.*`` / ``ip_adapter.*`` keys) → the nested
    dict diffusers' ``load_ip_adapter`` takes."""
    nested: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if head not in nested:
            raise GenerationError(f"anime setting 'ip_adapter': {path.name} is not an h94 IP-Adapter (key {key!r})")
        nested[head][rest] = value
    return nested


def _foreground(picture: Any, mask_bytes: bytes | None, mode: str) -> np.ndarray | None:
    """The reference's foreground (boolean, the picture's size) or ``None`` (every token attended)."""
    if mode == "whole":
        return None
    if mask_bytes is not None:
        mask = read_image_setting_bytes(mask_bytes)
        if mask.size != picture.size:
            from PIL import Image

            mask = mask.resize(picture.size, Image.Resampling.NEAREST)
        return np.asarray(mask.convert("L")) > 127
    if mode == "auto":
        found = person_mask(picture)
        if found is not None:
            return found
    return plain_background_mask(picture)


def read_image_setting_bytes(data: bytes) -> Any:
    from comic_studio.core import safe_read

    try:
        return safe_read.decode_image(data, where="anime", what="reference mask")
    except safe_read.UnsafeInputError as exc:
        raise GenerationError(str(exc)) from exc


def _character_scales(text: str, ids: list[str]) -> dict[str, float]:
    raw = json_object_setting(text, "character_scales", "{character id: λ}", NAME)
    out: dict[str, float] = {}
    for cid, value in raw.items():
        if cid not in ids:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 2.0:
            raise GenerationError(f"anime setting 'character_scales': {cid!r} must be a number in 0..2")
        out[cid] = float(value)
    return out


__all__ = ["AnimeBackend"]

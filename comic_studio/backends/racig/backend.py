"""The ``racig`` backend: RaCig's multi-character panels on stock diffusers.

One job: pick and frame a pose, draw it as an OpenPose image for the ControlNet and cut the
characters' head and body masks (:mod:`comic_studio.poses.staging`, shared with the storyboard and
the UI), and run SDXL once with both IP-Adapters attached — each character's face references
under its head mask (Plus-Face) and its outfit references under its body mask (Plus); the prompt
drives the whole image and alone drives the background. Try-on mode repaints one character's body
with a new outfit (:mod:`.tryon`).

With no reference images at all no adapter is attached and the call is exactly a stock
``StableDiffusionXLControlNetPipeline`` call (tested bit-for-bit).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from comic_studio.backends._diffusers.backend import (
    DiffusersBackend,
    resized_to_panel,
    vae_tiles,
    vae_tiling,
)
from comic_studio.backends._diffusers.identities import identity_prompt as named_identities, optional_identities
from comic_studio.backends._diffusers.inputs import check_denoising_steps, fit, read_image_setting
from comic_studio.backends._diffusers.long_prompt import apply_long_prompt
from comic_studio.backends._diffusers.loras import JobLoras
from comic_studio.backends._diffusers.progress import StepReporter
from comic_studio.backends._diffusers.regional_prompts import (
    RegionalText,
    apply_regional_prompts,
    identity_region_tags,
    regional_text,
)
from comic_studio.backends._diffusers.schedulers import RACIG_SCHEDULER, scheduler_names
from comic_studio.backends.racig import adapters as ipa
from comic_studio.backends.racig.tryon import mask_image, paste_inside, tryon_target, with_outfit
from comic_studio.generation.backend_api import ModelNeed, with_default_overrides
from comic_studio.generation.models.loading import PICKLE_SUFFIXES, ModelLoadError
from comic_studio.generation.models.pickle_policy import folder_uses_safetensors, pickles_allowed, refusal
from comic_studio.generation.models.sdxl import resolve_file
from comic_studio.generation.request import GenerationError, GenerationRequest, GenerationResult, StepCallback
from comic_studio.poses.segmentation import PAPER_DILATION
from comic_studio.poses.staging.conditioning import MASKS_FROM, Conditioning, build_conditioning
from comic_studio.poses.staging.figures import UnknownPoseError
from comic_studio.poses.staging.openpose import DEFAULT_LINE_STYLE, LINE_STYLES
from comic_studio.weights.architecture import bundled_config
from comic_studio.weights.catalogue import CatalogueError, load_catalogue
from comic_studio.weights.locate import Places, locate

MAX_CHARACTERS = 4
"""The most characters one racig panel renders; a panel with more fails with a message saying so."""
PAPER_AREA = 1344 * 768
"""RaCig's generation size (and SDXL's training area); portrait panels get 768×1344."""
IMAGE_SETTING_MAX = 256 * 1024 * 1024
DEFAULT_IDS = {
    "controlnet": "controlnet-openpose-sdxl",
    "ip_adapter_face": "ip-adapter-plus-face-sdxl-vit-h",
    "ip_adapter_plus": "ip-adapter-plus-sdxl-vit-h",
    "image_encoder": "clip-vit-h-image-encoder",
}
VRAM_GB = {"gpu": 14.0, "model-offload": 11.0, "sequential-offload": 4.0}
"""Estimated peak GiB at ~1 MP in float16 with references (bench/gpu_racig.py measures them).
Weights: UNet 5.1 + both IP-Adapters 1.7 + ControlNet 2.5 + text encoders 1.6 + VAE 0.2 (the ViT-H
encoder, 1.3, visits the GPU only while embedding new references). Whole-model offload keeps UNet,
adapters and ControlNet resident while denoising (≈9.3 GiB) plus activations: a 12 GB card."""


RACIG_DEFAULTS_OWNER = "racig"
"""Whose process-wide default overrides the racig settings take: racig's, also for backends built on
it (serialgen), so ``--models tiny`` and a user's defaults reach them too."""


class RacigBackend(DiffusersBackend):
    name = "racig"
    display_name = "RaCig (consistent characters)"
    # What the UI offers for racig panels, by capability: "pose" the pose browser and canvas overlay
    # (poses.staging), "masks" the inspector's "Show masks" preview of the per-character head/body
    # regions its references condition, "tryon" the inspector's "Try on…" (mode "tryon" below).
    capabilities = frozenset({"txt2img", "pose", "masks", "characters", "face_refs", "body_refs", "tryon",
                              "negative_prompt", "preview", "lora", "identity"})  # fmt: skip
    needs_reference_images = True
    vram_gb = VRAM_GB
    required_models = DiffusersBackend.required_models + (
        ModelNeed("controlnet", "the OpenPose ControlNet for SDXL", DEFAULT_IDS["controlnet"], setting="controlnet"),
        ModelNeed(
            "ipadapter", "IP-Adapter Plus-Face (faces)", DEFAULT_IDS["ip_adapter_face"], setting="ip_adapter_face"
        ),
        ModelNeed("ipadapter", "IP-Adapter Plus (outfits)", DEFAULT_IDS["ip_adapter_plus"], setting="ip_adapter_plus"),
        ModelNeed("clip_vision", "the ViT-H image encoder", DEFAULT_IDS["image_encoder"], setting="image_encoder"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = ipa.ReferenceCache()
        """Reference embeddings, kept while this backend instance lives (the open project)."""

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        path = {"type": "str", "default": "", "max_length": 4096}
        return with_default_overrides({
            "model": {**path, "label": "Base model", "help": "SDXL catalogue id, diffusers folder or checkpoint (empty = default)."},
            "model_config": {**path, "label": "Checkpoint config folder"},
            "controlnet": {**path, "label": "OpenPose ControlNet", "help": f"Folder, single .safetensors file or catalogue id (empty = {DEFAULT_IDS['controlnet']})."},
            "controlnet_config": {**path, "label": "ControlNet config folder", "help": "Folder with the config.json a single-file ControlNet is built with (empty = the bundled xinsir OpenPose SDXL config)."},
            "ip_adapter_face": {**path, "label": "IP-Adapter Plus-Face", "help": "h94 .safetensors file or catalogue id."},
            "ip_adapter_plus": {**path, "label": "IP-Adapter Plus", "help": "h94 .safetensors file or catalogue id."},
            "image_encoder": {**path, "label": "Image encoder (ViT-H)", "help": "h94 models/image_encoder folder, single .safetensors file or catalogue id."},
            "image_encoder_config": {**path, "label": "Image encoder config folder", "help": "Folder with the config.json a single-file encoder is built with (empty = the bundled ViT-H config)."},
            # The paper's preset (ZulutionAI/RaCig inference.py: 17 steps, guidance_scale 2.5, ~1344×768)
            # with its sampler, DPM++ SDE on Karras σ (racig/pipeline.py sets DPMSolverPlusSDEScheduler(),
            # use_karras_sigmas=True by default; see _diffusers/schedulers.py).
            "steps": {"type": "int", "default": 17, "min": 1, "max": 200, "label": "Steps"},
            "guidance": {"type": "float", "default": 2.5, "min": 0.0, "max": 30.0, "label": "Guidance (CFG)"},
            "scheduler": {"type": "choice", "default": RACIG_SCHEDULER, "choices": scheduler_names(), "label": "Sampler"},
            "size": {"type": "choice", "default": "sdxl", "choices": ["sdxl", "panel"], "label": "Generation size",
                     "help": "sdxl: ~1344×768 pixels at the panel's shape, then resized to the panel; panel: the panel's own size."},
            "max_side": {"type": "int", "default": 0, "min": 0, "max": 8192, "label": "Largest generated side (0 = no limit)"},
            "controlnet_scale": {"type": "float", "default": 0.7, "min": 0.0, "max": 2.0, "label": "Pose strength (ControlNet)"},
            "pose_lines": {"type": "choice", "default": DEFAULT_LINE_STYLE, "choices": list(LINE_STYLES), "label": "Pose line thickness",
                           "help": "racig: as thick as xinsir's OpenPose ControlNet was trained on (RaCig's renderer); "
                                   "annotator: the original annotator's thinner lines, for ControlNets trained on those."},
            "face_scale": {"type": "float", "default": 0.7, "min": 0.0, "max": 2.0, "label": "Face reference strength"},
            "body_scale": {"type": "float", "default": 0.6, "min": 0.0, "max": 2.0, "label": "Outfit reference strength"},
            "multi_reference": {"type": "choice", "default": "images", "choices": list(ipa.MULTI_REFERENCE),
                                "label": "Several references",
                                "help": "images: each reference its own image under the character's mask, sharing the "
                                        "character's strength (combined after the Resampler, as RaCig); mean-patches: "
                                        "the pictures averaged before it (older panels)."},
            "outfit_cutout": {"type": "choice", "default": "person", "choices": list(ipa.OUTFIT_CUTOUTS),
                              "label": "Outfit references",
                              "help": "person: the person segmenter cuts the outfit out of each outfit reference "
                                      "(background whitened) when it finds a person; none: the whole picture."},
            "character_scales": {"type": "str", "default": "", "max_length": 20_000, "label": "Per-character strengths",
                                 "help": 'JSON {"character id": {"face": 0.8, "body": 0.5}}; wins over the character\'s own strength; missing values use that, else the panel\'s.'},
            "top_k": {"type": "int", "default": 5, "min": 1, "max": 50, "label": "Pose candidates (top-k)"},
            "pose_choice": {"type": "choice", "default": "panel", "choices": ["panel", "retrieved"], "label": "Pose",
                            "help": "panel: the pose picked or nudged in the panel when there is one, else retrieved; "
                                    "retrieved: always retrieve from the action text."},
            "pose_matching": {"type": "choice", "default": "auto", "choices": ["auto", "minilm", "overlap", "openclip"], "label": "Pose matching"},
            "mask_dilation": {"type": "float", "default": 0.01, "min": 0.0, "max": 0.1, "label": "Mask dilation",
                              "help": "Grow head/body masks by this fraction of the panel's shorter side."},
            # RaCig cuts its masks from the retrieved image's Sapiens segmentations (paper §3; dilated by a
            # 30×30 box in racig/pipeline.py): imported RaCig data keeps them (poses.segmentation).
            "masks_from": {"type": "choice", "default": "auto", "choices": list(MASKS_FROM), "label": "Masks from",
                           "help": "auto: the pose's person/face/head segmentation when it has one (imported RaCig "
                                   "data), else the skeleton; skeleton: always head and limb shapes from the skeleton."},
            "segment_dilation": {"type": "int", "default": PAPER_DILATION, "min": 0, "max": 200,
                                 "label": "Segmentation mask dilation (px at 1344×768)",
                                 "help": "Grow segmentation masks by a box this wide (RaCig: 30), scaled with the generated area."},
            "character_prompts": {"type": "bool", "default": False, "label": "Add character descriptions to the prompt"},
            # RaCig gives each character region its own prompt and the background its own (racig/pipeline.py,
            # IPAttnProcessor2_0_RP*): on by default, as in RaCig. Off: one global prompt (before issue 15).
            "regional_prompts": {"type": "bool", "default": True, "label": "Regional prompts",
                                 "help": "Each character's region reads the prompt with the names replaced by a neutral "
                                         "tag plus its own description, the background the prompt without identities: "
                                         "descriptions stop bleeding between characters."},
            "reference_images": {"type": "str", "default": "", "max_length": IMAGE_SETTING_MAX, "label": "Reference images",
                                 "help": "JSON {asset hash: PNG data URI} for every face/body reference (filled by the app)."},
            "mode": {"type": "choice", "default": "generate", "choices": ["generate", "tryon"], "label": "Mode"},
            "tryon_character": {"type": "str", "default": "", "max_length": 64, "label": "Try-on character id"},
            "tryon_outfit": {"type": "str", "default": "", "max_length": 64, "label": "Try-on outfit (asset hash)"},
            "tryon_scope": {"type": "choice", "default": "body", "choices": ["body", "panel"], "label": "Try-on repaints",
                            "help": "body: only the character's body region of the current image; panel: the whole panel."},
            "init_image": {"type": "str", "default": "", "max_length": IMAGE_SETTING_MAX, "label": "Current panel image",
                           "image": True, "help": "Body try-on repaints this image (a project image or a PNG data URI)."},
            "strength": {"type": "float", "default": 0.99, "min": 0.01, "max": 1.0, "label": "Try-on strength"},
            "preview_every": {"type": "int", "default": 1, "min": 0, "max": 1000, "label": "Preview every N steps"},
            "loras": {"type": "str", "default": "", "label": "LoRAs", "max_length": 20_000,
                      "help": "Comma-separated 'file-or-id[:weight]' entries (kohya or diffusers format)."},
            "character_loras": {"type": "str", "default": "", "label": "Character LoRAs", "max_length": 200_000,
                                "hidden": True, "help": "Filled in for each job from the characters' trained LoRAs."},
            # StableIdentity tokens (optional here): each character that has them gets its own pair
            # in its own region's prompt (_diffusers/identities.py, regional_prompts.py).
            "character_identities": {"type": "str", "default": "", "label": "Character identities",
                                     "max_length": 200_000, "hidden": True,
                                     "help": "Filled in for each job from the characters' learned identity tokens."},
            "fp16_vae_fix": {"type": "bool", "default": True, "label": "fp16-fix VAE in float16",
                             "help": "Decode with the fp16-fix SDXL VAE when running in float16 and it is installed: "
                                     "SDXL's own VAE must be upcast to float32 (slower, more memory). Turn off to "
                                     "reproduce images made before it was used (its decodes differ slightly)."},
            "vae_tiling": {"type": "choice", "default": "auto", "choices": ["auto", "on", "off"], "label": "VAE tiling",
                           "help": "Decode in tiles to save GPU memory. auto: only above 1536×1024 generated pixels "
                                   "(every SDXL size decodes whole); tiles can leave faint seams."},
        }, RACIG_DEFAULTS_OWNER)  # fmt: skip

    # ------------------------------------------------------------------ engine hooks

    def prepare(self, requests: list[GenerationRequest]) -> None:
        """Embed the pose queries of a batch (a page, a book) at once; retrieval then only looks up."""
        from comic_studio.poses.retrieval import shared_retriever

        by_matcher: dict[str, list[str]] = {}
        for request in requests:
            checked = self.validate_settings(request.backend_settings)
            if request.characters and (
                checked["pose_choice"] == "retrieved" or request.pose_id is None and request.figures_override is None
            ):
                by_matcher.setdefault(checked["pose_matching"], []).append(request.action or request.prompt)
        for matcher, texts in by_matcher.items():
            shared_retriever(matcher).prepare(texts)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ generation

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        settings = self.job_settings(request)
        tryon = settings["mode"] == "tryon"
        job = request
        if tryon:
            index = tryon_target(request, settings["tryon_character"], settings["tryon_outfit"])
            job = with_outfit(request, settings["tryon_character"], settings["tryon_outfit"])
            if settings["tryon_scope"] == "body":
                return self._tryon_body(job, settings, index, on_step)
        pipe, call, cond = self.prepare_call(job, settings)
        image = resized_to_panel(self._run(pipe, call, job, settings, cond, on_step), request)
        panel = (
            cond
            if cond.head_masks and cond.head_masks[0].shape == (request.height, request.width)
            else self.conditioning(request, settings)
        )
        return GenerationResult(images=[image], seed=request.seed, backend=self.name, settings=settings,
                                heads=panel.placements, pose_id=cond.pose_id)  # fmt: skip

    def conditioning(
        self, request: GenerationRequest, settings: dict[str, Any], size: tuple[int, int] | None = None
    ) -> Conditioning:
        """Pose, OpenPose image and masks at ``size`` (default: the panel's)."""
        n = len(request.characters)
        if n > MAX_CHARACTERS:
            raise GenerationError(f"racig renders at most {MAX_CHARACTERS} characters per panel, this panel has {n}")
        width, height = size or (request.width, request.height)
        try:
            return build_conditioning(
                request, width, height, top_k=settings["top_k"], embedder=settings["pose_matching"],
                dilation=settings["mask_dilation"], use_request_pose=settings["pose_choice"] == "panel",
                pose_lines=settings["pose_lines"], masks_from=settings["masks_from"],
                segment_dilation=settings["segment_dilation"],
            )  # fmt: skip
        except UnknownPoseError as exc:  # a job's failure, like every other bad request
            raise GenerationError(str(exc)) from exc

    def generation_size(self, request: GenerationRequest, settings: dict[str, Any]) -> tuple[int, int]:
        w, h = float(request.width), float(request.height)
        if settings["size"] == "sdxl":
            k = math.sqrt(PAPER_AREA / (w * h))
            w, h = w * k, h * k
        if settings["max_side"]:
            k = min(1.0, settings["max_side"] / max(w, h))
            w, h = w * k, h * k
        step = 64 if settings["size"] == "sdxl" else 8
        return max(step, int(round(w / step)) * step), max(step, int(round(h / step)) * step)

    def prepare_call(
        self, request: GenerationRequest, settings: dict[str, Any], *, inpaint: bool = False
    ) -> tuple[Any, dict[str, Any], Conditioning]:
        """The diffusers pipeline, its keyword arguments (without IP-Adapter inputs) and the
        conditioning at the generation size (tests compare this with a hand-written stock call)."""
        import torch

        width, height = self.generation_size(request, settings)
        cond = self.conditioning(request, settings, (width, height))
        parts = self.sdxl_components(settings, request.seed, fp16_vae_fix=settings["fp16_vae_fix"])
        try:
            controlnet = self._controlnet(settings["controlnet"], settings["controlnet_config"])
        except ModelLoadError as exc:
            raise GenerationError(str(exc)) from exc
        # Not placed yet: under offload the IP-Adapters must be attached before the hooks (see _run).
        pipe = _pipeline_class(inpaint)(**{**parts, "controlnet": controlnet}, add_watermarker=False)
        pipe.set_progress_bar_config(disable=True)
        call: dict[str, Any] = {
            "prompt": _prompt(request, settings["character_prompts"]),
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": settings["steps"],
            "guidance_scale": settings["guidance"],
            "controlnet_conditioning_scale": settings["controlnet_scale"],
            "height": height,
            "width": width,
            "generator": torch.Generator("cpu").manual_seed(request.seed),
        }
        call["control_image" if inpaint else "image"] = cond.control_image
        return pipe, call, cond

    def _run(self, pipe: Any, call: dict[str, Any], request: GenerationRequest, settings: dict[str, Any],
             cond: Conditioning, on_step: StepCallback | None) -> Any:  # fmt: skip
        """One denoising run, with the adapters attached when any character has references."""
        reporter = StepReporter(on_step, settings["preview_every"]).callback()
        face, body, negative = self._regional_items(request, settings, cond)
        # The LoRAs (the user's and the panel's characters' trained ones), like the IP-Adapters, go
        # on the shared UNet before the offload hooks, and come off when the job ends.
        loras = JobLoras(settings["loras"], pickles_allowed(), settings["character_loras"])
        identities, phrases = optional_identities(request, settings["character_identities"])
        try:
            if phrases:
                identities.apply(pipe)
            if phrases and not (settings["regional_prompts"] and request.characters):
                # Without regions the one prompt carries every pair; with them each region carries its
                # own (_text) and the global prompt, read only for SDXL's pooled embedding, none, so
                # no identity leaks into the whole picture through it.
                names = {c.id: c.name for c in request.characters}
                call["prompt"] = named_identities(call["prompt"], [names[cid] for cid in phrases])
            loras.apply(pipe)
            with vae_tiling(pipe.vae, vae_tiles(settings["vae_tiling"], call["width"], call["height"])):
                if not face and not body:
                    self.place(pipe)
                    with _text(pipe, call, request, settings, cond):
                        return pipe(**call, callback_on_step_end=reporter).images[0]
                return self._run_with_adapters(pipe, call, request, settings, cond, face, body, negative, reporter)
        finally:
            loras.remove()
            identities.remove()

    def _run_with_adapters(self, pipe: Any, call: dict[str, Any], request: GenerationRequest,
                           settings: dict[str, Any], cond: Conditioning, face: list[Any], body: list[Any],
                           negative: Any, reporter: Any) -> Any:  # fmt: skip
        inputs = ipa.regional_inputs(face, body, negative, settings["guidance"] > 1.0)
        states = (
            self._adapter_state(settings["ip_adapter_face"], "ip_adapter_face"),
            self._adapter_state(settings["ip_adapter_plus"], "ip_adapter_plus"),
        )
        # Adapters first, offload hooks second (issue 15 item 1): diffusers puts new adapter weights
        # on the UNet's device, which is `meta` once layer-by-layer offload has taken the weights;
        # hooks installed afterwards cover the adapters like every other layer.
        with ipa.attached_adapters(pipe, *states):
            self.place(pipe)
            stack = _text(pipe, call, request, settings, cond)
            # Cached embeddings are CPU float32; they go where the UNet computes (the execution
            # device: under offload the UNet's own device is the CPU or `meta`), in its precision.
            device = pipe._execution_device
            inputs.image_embeds = [e.to(device=device, dtype=pipe.unet.dtype) for e in inputs.image_embeds]
            ipa.set_regional_scales(pipe.unet, inputs.scales)
            with stack:  # inside the adapters: the wrapped attn2 processors are the adapters' own
                images = pipe(**call, ip_adapter_image_embeds=inputs.image_embeds,
                              cross_attention_kwargs={"ip_adapter_masks": inputs.masks},
                              callback_on_step_end=reporter).images  # fmt: skip
        return images[0]

    def _regional_items(
        self, request: GenerationRequest, settings: dict[str, Any], cond: Conditioning
    ) -> tuple[list[Any], list[Any], Any]:
        """Per adapter, ``(embedding, mask, scale)`` of each reference image it conditions with (a
        character's references share its mask and strength: ``multi_reference``), and the negative
        embedding (``None`` without references). The image encoder leaves the GPU before denoising."""
        refs = [(c.face_refs, c.body_refs) for c in request.characters]
        if not any(f or b for f, b in refs):
            return [], [], None
        images = ipa.parse_reference_images(settings["reference_images"])
        overrides = _character_scales(settings["character_scales"], [c.id for c in request.characters])
        encoder = self._image_encoder(settings["image_encoder"], settings["image_encoder_config"])
        try:
            face, body = self._embedded_items(request, settings, cond, encoder, images, overrides)
            return face, body, self._negative(encoder)
        finally:
            encoder.park()

    def _embedded_items(self, request: GenerationRequest, settings: dict[str, Any], cond: Conditioning,
                        encoder: ipa.ImageEncoder, images: dict[str, bytes],
                        overrides: dict[str, dict[str, float]]) -> tuple[list[Any], list[Any]]:  # fmt: skip
        face: list[Any] = []
        body: list[Any] = []
        for i, c in enumerate(request.characters):
            mine = overrides.get(c.id, {})
            for kind, refs_i, masks, items in (
                ("face", c.face_refs, cond.head_masks, face),
                ("body", c.body_refs, cond.body_masks, body),
            ):
                cutout = settings["outfit_cutout"] if kind == "body" else "none"
                embeddings = ipa.character_embeddings(
                    encoder, self.embeddings, refs_i, images, settings["multi_reference"], cutout
                )
                scale = ipa.character_scale(mine.get(kind), getattr(c, f"{kind}_scale"), settings[f"{kind}_scale"])
                # A character with no references here, an empty mask or scale 0 is left out entirely;
                # k references are k images under the same mask at 1/k of the scale each.
                if embeddings and masks[i].any() and scale > 0:
                    items += [(embedding, masks[i], scale / len(embeddings)) for embedding in embeddings]
        return face, body

    def _tryon_body(
        self, request: GenerationRequest, settings: dict[str, Any], index: int, on_step: StepCallback | None
    ) -> GenerationResult:
        from PIL import Image

        init = read_image_setting(settings["init_image"], "init_image")
        if init is None:
            raise GenerationError("racig try-on needs the current panel image (setting 'init_image')")
        init = fit(init, (request.width, request.height), "RGB")
        check_denoising_steps(self.name, settings["steps"], settings["strength"])
        # Only the try-on character's outfit conditions the repaint (the rest of the image is kept).
        only = request.model_copy(update={"characters": [
            c.model_copy(update={"face_refs": []}) if i == index else c.model_copy(update={"face_refs": [], "body_refs": []})
            for i, c in enumerate(request.characters)
        ]})  # fmt: skip
        pipe, call, cond = self.prepare_call(only, settings, inpaint=True)
        size = (call["width"], call["height"])
        call.update(
            image=fit(init, size, "RGB"), mask_image=mask_image(cond.body_masks[index]), strength=settings["strength"]
        )
        repainted = self._run(pipe, call, only, settings, cond, on_step)
        if repainted.size != init.size:
            repainted = repainted.resize(init.size, Image.Resampling.LANCZOS)
        panel = self.conditioning(request, settings)
        image = paste_inside(init, repainted, panel.body_masks[index])
        return GenerationResult(images=[image], seed=request.seed, backend=self.name, settings=settings,
                                heads=panel.placements, pose_id=panel.pose_id)  # fmt: skip

    # ------------------------------------------------------------------ models

    def _controlnet(self, spec: str, config: str = "") -> Any:
        path = _model_path(spec or DEFAULT_IDS["controlnet"], "controlnet")
        res = self.resources
        device = self.load_device
        if path.is_file():  # a ComfyUI/A1111 controlnet/ file: built around a config.json
            folder = _config_folder(config, DEFAULT_IDS["controlnet"], "controlnet_config")

            def load_file() -> Any:
                from comic_studio.generation.models.loading import load_single_file_model

                return load_single_file_model("controlnet", path, folder, res.dtype).to(device)

            try:
                return res.models.get(f"{path}|{folder}", "controlnet", res.dtype, device, load_file)
            except ModelLoadError as exc:
                raise GenerationError(f"racig setting 'controlnet': {exc}") from exc
        safetensors = _weights_format(path, "OpenPose ControlNet")

        def load() -> Any:
            import diffusers

            from comic_studio.generation.models.loading import torch_dtype

            return (
                diffusers.ControlNetModel.from_pretrained(
                    path, torch_dtype=torch_dtype(res.dtype), local_files_only=True, use_safetensors=safetensors
                )
                .to(device)
                .eval()
            )

        return res.models.get(str(path), "controlnet", res.dtype, device, load)

    def _image_encoder(self, spec: str, config: str = "") -> ipa.ImageEncoder:
        path = _model_path(spec or DEFAULT_IDS["image_encoder"], "clip_vision")
        res = self.resources
        folder = (
            _config_folder(config, DEFAULT_IDS["image_encoder"], "image_encoder_config") if path.is_file() else None
        )
        safetensors = True if folder else _weights_format(path, "IP-Adapter image encoder")
        from comic_studio.generation.models.loading import torch_dtype

        # Cached under the device it computes on; its weights rest on the CPU (ImageEncoder.park).
        return res.models.get(f"{path}|{folder}" if folder else str(path), "ip-image-encoder", res.dtype, res.device,
                              lambda: ipa.load_image_encoder(path, torch_dtype(res.dtype), res.device,
                                                             use_safetensors=safetensors, config=folder))  # fmt: skip

    def _negative(self, encoder: ipa.ImageEncoder) -> Any:
        return self.embeddings.get(encoder.cache_id, "negative", encoder.negative)

    def _adapter_state(self, spec: str, field: str) -> dict[str, Any]:
        try:
            path = resolve_file(spec or DEFAULT_IDS[field], "ipadapter")
        except ModelLoadError as exc:
            raise GenerationError(f"racig setting {field!r}: {exc}") from exc
        if path.suffix.lower() in PICKLE_SUFFIXES and not pickles_allowed():
            raise GenerationError(f"racig setting {field!r}: {refusal(path, 'IP-Adapter')}")
        # Kept on the CPU: diffusers copies them into the processors it builds on the UNet's device.
        return self.resources.models.get(
            str(path), "ip-adapter-state", "float32", "cpu", lambda: ipa.read_adapter_state(path)
        )


# ---------------------------------------------------------------------------------- helpers


def _pipeline_class(inpaint: bool) -> Any:
    import diffusers

    return (
        diffusers.StableDiffusionXLControlNetInpaintPipeline
        if inpaint
        else diffusers.StableDiffusionXLControlNetPipeline
    )


def _model_path(spec: str, kind: str) -> Path:
    """A diffusers folder or a single ``.safetensors`` file, from a path or a catalogue id (an
    installed id found in a ComfyUI/A1111 folder is its single file, checked usable by locate)."""
    path = Path(spec).expanduser()
    if path.is_dir() or path.is_file():
        return path
    try:
        entry = load_catalogue().get(spec)
    except CatalogueError as exc:
        raise GenerationError(f"racig: {spec!r} is neither a folder, a file nor a catalogue id ({exc})") from exc
    found = locate(entry, Places.from_settings())
    if found is None:
        raise GenerationError(
            f"racig: the {kind} model {spec!r} is not installed: run `comic-studio models download {spec}`"
        )
    return found.path


def _config_folder(setting: str, default_id: str, field: str) -> Path:
    """The folder whose config.json a single file is built with: the setting, else the bundled one."""
    if setting:
        folder = Path(setting).expanduser()
        if not (folder / "config.json").is_file():
            raise GenerationError(f"racig setting {field!r}: {folder} has no config.json")
        return folder
    bundled = bundled_config(default_id)
    assert bundled is not None  # every default diffusers-format id has one (weights.architecture)
    return bundled


def _weights_format(folder: Path, what: str) -> bool:
    """Whether ``folder`` loads from ``.safetensors`` (``False``: its pickled ``.bin``, which only the
    user may allow); a folder with only pickles, not allowed, is a :class:`GenerationError` naming
    the file and the setting to change."""
    try:
        return folder_uses_safetensors(folder, what)
    except ValueError as exc:
        raise GenerationError(f"racig: {exc}") from exc


def _text(
    pipe: Any, call: dict[str, Any], request: GenerationRequest, settings: dict[str, Any], cond: Conditioning
) -> Any:
    """The job's text conditioning, set in ``call`` (after the LoRAs and the offload hooks: the text
    encoders may be patched, and run where the hooks put them). Returns the context to denoise in:
    with ``regional_prompts`` and characters present, each region's own prompt under its mask
    (:mod:`.._diffusers.regional_prompts`); otherwise the global prompt, as a stock call."""
    if not settings["regional_prompts"] or not request.characters:
        apply_long_prompt(pipe, call)
        return contextlib.nullcontext()
    masks = [cond.head_masks[i] | cond.body_masks[i] for i in range(len(request.characters))]
    _identities, phrases = optional_identities(request, settings["character_identities"])
    regions: RegionalText = apply_regional_prompts(pipe, call, request, masks, identity_region_tags(request, phrases))
    models = [pipe.unet] + ([pipe.controlnet] if getattr(pipe, "controlnet", None) is not None else [])
    return regional_text(models, regions)


def _prompt(request: GenerationRequest, with_characters: bool) -> str:
    if not with_characters:
        return request.prompt
    described = [f"{c.name}: {c.description}" for c in request.characters if c.description.strip()]
    return ", ".join(filter(None, [request.prompt, *described]))


def _character_scales(text: str, ids: list[str]) -> dict[str, dict[str, float]]:
    raw = ipa.json_object_setting(text, "character_scales", "{character id: {face, body}}")
    out: dict[str, dict[str, float]] = {}
    for cid, values in raw.items():
        if cid not in ids:
            continue  # a character that left the panel: its override is simply unused
        if not isinstance(values, dict) or not set(values) <= {"face", "body"}:
            raise GenerationError(f"racig setting 'character_scales': {cid!r} needs {{'face': x, 'body': y}}")
        for kind, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 2.0:
                raise GenerationError(f"racig setting 'character_scales': {cid!r} {kind} must be a number in 0..2")
        out[cid] = {k: float(v) for k, v in values.items()}
    return out


__all__ = ["RacigBackend", "MAX_CHARACTERS"]

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

import math
from pathlib import Path
from typing import Any

from comic_studio.backends._diffusers.backend import DiffusersBackend, resized_to_panel
from comic_studio.backends._diffusers.inputs import check_denoising_steps, fit, read_image_setting
from comic_studio.backends._diffusers.long_prompt import apply_long_prompt
from comic_studio.backends._diffusers.progress import StepReporter
from comic_studio.backends._diffusers.schedulers import scheduler_names
from comic_studio.backends.racig import adapters as ipa
from comic_studio.backends.racig.tryon import mask_image, paste_inside, tryon_target, with_outfit
from comic_studio.generation.backend_api import ModelNeed, with_default_overrides
from comic_studio.generation.models.loading import ModelLoadError
from comic_studio.generation.models.sdxl import resolve_file
from comic_studio.generation.request import GenerationError, GenerationRequest, GenerationResult, StepCallback
from comic_studio.poses.staging.conditioning import Conditioning, build_conditioning
from comic_studio.poses.staging.figures import UnknownPoseError
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


class RacigBackend(DiffusersBackend):
    name = "racig"
    display_name = "RaCig (consistent characters)"
    # What the UI offers for racig panels, by capability: "pose" the pose browser and canvas overlay
    # (poses.staging), "masks" the inspector's "Show masks" preview of the per-character head/body
    # regions its references condition, "tryon" the inspector's "Try on…" (mode "tryon" below).
    capabilities = frozenset({"txt2img", "pose", "masks", "characters", "face_refs", "body_refs", "tryon",
                              "negative_prompt", "preview"})  # fmt: skip
    needs_reference_images = True
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
            "controlnet": {**path, "label": "OpenPose ControlNet", "help": f"Folder or catalogue id (empty = {DEFAULT_IDS['controlnet']})."},
            "ip_adapter_face": {**path, "label": "IP-Adapter Plus-Face", "help": "h94 .safetensors file or catalogue id."},
            "ip_adapter_plus": {**path, "label": "IP-Adapter Plus", "help": "h94 .safetensors file or catalogue id."},
            "image_encoder": {**path, "label": "Image encoder (ViT-H)", "help": "h94 models/image_encoder folder or catalogue id."},
            # The paper's preset: DPM++ SDE, 17 steps, CFG 2.5, ~1344×768.
            "steps": {"type": "int", "default": 17, "min": 1, "max": 200, "label": "Steps"},
            "guidance": {"type": "float", "default": 2.5, "min": 0.0, "max": 30.0, "label": "Guidance (CFG)"},
            "scheduler": {"type": "choice", "default": "DPM++ SDE", "choices": scheduler_names(), "label": "Sampler"},
            "size": {"type": "choice", "default": "sdxl", "choices": ["sdxl", "panel"], "label": "Generation size",
                     "help": "sdxl: ~1344×768 pixels at the panel's shape, then resized to the panel; panel: the panel's own size."},
            "max_side": {"type": "int", "default": 0, "min": 0, "max": 8192, "label": "Largest generated side (0 = no limit)"},
            "controlnet_scale": {"type": "float", "default": 0.7, "min": 0.0, "max": 2.0, "label": "Pose strength (ControlNet)"},
            "face_scale": {"type": "float", "default": 0.7, "min": 0.0, "max": 2.0, "label": "Face reference strength"},
            "body_scale": {"type": "float", "default": 0.6, "min": 0.0, "max": 2.0, "label": "Outfit reference strength"},
            "character_scales": {"type": "str", "default": "", "max_length": 20_000, "label": "Per-character strengths",
                                 "help": 'JSON {"character id": {"face": 0.8, "body": 0.5}}; wins over the character\'s own strength; missing values use that, else the panel\'s.'},
            "top_k": {"type": "int", "default": 5, "min": 1, "max": 50, "label": "Pose candidates (top-k)"},
            "pose_choice": {"type": "choice", "default": "panel", "choices": ["panel", "retrieved"], "label": "Pose",
                            "help": "panel: the pose picked or nudged in the panel when there is one, else retrieved; "
                                    "retrieved: always retrieve from the action text."},
            "pose_matching": {"type": "choice", "default": "auto", "choices": ["auto", "minilm", "overlap", "openclip"], "label": "Pose matching"},
            "mask_dilation": {"type": "float", "default": 0.01, "min": 0.0, "max": 0.1, "label": "Mask dilation",
                              "help": "Grow head/body masks by this fraction of the panel's shorter side."},
            "character_prompts": {"type": "bool", "default": False, "label": "Add character descriptions to the prompt"},
            "reference_images": {"type": "str", "default": "", "max_length": IMAGE_SETTING_MAX, "label": "Reference images",
                                 "help": "JSON {asset hash: PNG data URI} for every face/body reference (filled by the app)."},
            "mode": {"type": "choice", "default": "generate", "choices": ["generate", "tryon"], "label": "Mode"},
            "tryon_character": {"type": "str", "default": "", "max_length": 64, "label": "Try-on character id"},
            "tryon_outfit": {"type": "str", "default": "", "max_length": 64, "label": "Try-on outfit (asset hash)"},
            "tryon_scope": {"type": "choice", "default": "body", "choices": ["body", "panel"], "label": "Try-on repaints",
                            "help": "body: only the character's body region of the current image; panel: the whole panel."},
            "init_image": {"type": "str", "default": "", "max_length": IMAGE_SETTING_MAX, "label": "Current panel image",
                           "help": "Body try-on repaints this image (PNG data URI or file path)."},
            "strength": {"type": "float", "default": 0.99, "min": 0.01, "max": 1.0, "label": "Try-on strength"},
            "preview_every": {"type": "int", "default": 1, "min": 0, "max": 1000, "label": "Preview every N steps"},
        }, cls.name)  # fmt: skip

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
        parts = self.sdxl_components(settings, request.seed)
        try:
            controlnet = self._controlnet(settings["controlnet"])
        except ModelLoadError as exc:
            raise GenerationError(str(exc)) from exc
        pipe = self.place(_pipeline_class(inpaint)(**{**parts, "controlnet": controlnet}))
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
        apply_long_prompt(pipe, call)
        face, body = self._regional_items(request, settings, cond)
        if not face and not body:
            return pipe(**call, callback_on_step_end=reporter).images[0]
        encoder = self._image_encoder(settings["image_encoder"])
        inputs = ipa.regional_inputs(face, body, self._negative(encoder), settings["guidance"] > 1.0)
        # Cached embeddings are CPU float32; the UNet's image projection may be half precision on a GPU.
        inputs.image_embeds = [e.to(device=pipe.unet.device, dtype=pipe.unet.dtype) for e in inputs.image_embeds]
        states = (
            self._adapter_state(settings["ip_adapter_face"], "ip_adapter_face"),
            self._adapter_state(settings["ip_adapter_plus"], "ip_adapter_plus"),
        )
        with ipa.attached_adapters(pipe, *states):
            ipa.set_regional_scales(pipe.unet, inputs.scales)
            images = pipe(**call, ip_adapter_image_embeds=inputs.image_embeds,
                          cross_attention_kwargs={"ip_adapter_masks": inputs.masks},
                          callback_on_step_end=reporter).images  # fmt: skip
        return images[0]

    def _regional_items(
        self, request: GenerationRequest, settings: dict[str, Any], cond: Conditioning
    ) -> tuple[list[Any], list[Any]]:
        refs = [(c.face_refs, c.body_refs) for c in request.characters]
        if not any(f or b for f, b in refs):
            return [], []
        images = ipa.parse_reference_images(settings["reference_images"])
        overrides = _character_scales(settings["character_scales"], [c.id for c in request.characters])
        encoder = self._image_encoder(settings["image_encoder"])
        face, body = [], []
        for i, c in enumerate(request.characters):
            mine = overrides.get(c.id, {})
            for kind, refs_i, masks, items in (
                ("face", c.face_refs, cond.head_masks, face),
                ("body", c.body_refs, cond.body_masks, body),
            ):
                embedding = ipa.character_embedding(encoder, self.embeddings, refs_i, images)
                scale = ipa.character_scale(mine.get(kind), getattr(c, f"{kind}_scale"), settings[f"{kind}_scale"])
                # A character with no references here, an empty mask or scale 0 is left out entirely.
                if embedding is not None and masks[i].any() and scale > 0:
                    items.append((embedding, masks[i], scale))
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

    def _controlnet(self, spec: str) -> Any:
        folder = _folder(spec or DEFAULT_IDS["controlnet"], "controlnet")
        res = self.resources
        device = self.load_device

        def load() -> Any:
            import diffusers

            from comic_studio.generation.models.loading import torch_dtype

            return (
                diffusers.ControlNetModel.from_pretrained(
                    folder, torch_dtype=torch_dtype(res.dtype), local_files_only=True
                )
                .to(device)
                .eval()
            )

        return res.models.get(str(folder), "controlnet", res.dtype, device, load)

    def _image_encoder(self, spec: str) -> ipa.ImageEncoder:
        folder = _folder(spec or DEFAULT_IDS["image_encoder"], "clip_vision")
        res = self.resources
        from comic_studio.generation.models.loading import torch_dtype

        return res.models.get(str(folder), "ip-image-encoder", res.dtype, res.device,
                              lambda: ipa.load_image_encoder(folder, torch_dtype(res.dtype), res.device))  # fmt: skip

    def _negative(self, encoder: ipa.ImageEncoder) -> Any:
        return self.embeddings.get(encoder.cache_id, "negative", encoder.negative)

    def _adapter_state(self, spec: str, field: str) -> dict[str, Any]:
        try:
            path = resolve_file(spec or DEFAULT_IDS[field], "ipadapter")
        except ModelLoadError as exc:
            raise GenerationError(f"racig setting {field!r}: {exc}") from exc
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


def _folder(spec: str, kind: str) -> Path:
    """A diffusers folder from a path or a catalogue id."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    try:
        entry = load_catalogue().get(spec)
    except CatalogueError as exc:
        raise GenerationError(f"racig: {spec!r} is neither a folder nor a catalogue id ({exc})") from exc
    found = locate(entry, Places.from_settings())
    if found is None:
        raise GenerationError(
            f"racig: the {kind} model {spec!r} is not installed: run `comic-studio models download {spec}`"
        )
    return found.path if found.path.is_dir() else found.path.parent


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

"""The ``serialgen`` backend: SerialGen's two stages.

Stage 1 (standardize) is a job of its own (:mod:`comic_studio.workflows.standardize`): each
character's reference becomes a standard sheet. With the ``kit`` standardizer that job is a racig
job; with the ``serialgen`` standardizer it is this backend's ``stage = "standardize"``: the paper's
standardization model (:mod:`comic_studio.generation.models.serialgen_stage1`: ReferenceNet,
PoseGuider, CLIP image context, FBDM and RPIM) on Moore-AnimateAnyone's stage-1 weights over SD 1.5,
from the character's reference, its background mask and its own pose
(:mod:`comic_studio.poses.standard_inputs`) to the standard A-pose.

Stage 2 (personalize) is, until someone trains the paper's personalizer, the racig path with each
character's sheet as its only outfit reference — so the method can be chosen for a panel by name
and compared with racig on the author's own references. A character without a sheet is refused by
name (no silent fallback to the raw reference: that would be plain racig under another name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comic_studio.backends._diffusers.inputs import fit
from comic_studio.backends.racig import adapters as ipa
from comic_studio.backends.racig.backend import RacigBackend
from comic_studio.generation.backend_api import with_default_overrides
from comic_studio.generation.models.loading import ModelLoadError, torch_dtype
from comic_studio.generation.models.pickle_policy import pickles_allowed
from comic_studio.generation.request import (
    Cancelled,
    GenerationError,
    GenerationRequest,
    GenerationResult,
    StepCallback,
)

STAGES = ("personalize", "standardize")


class SerialgenBackend(RacigBackend):
    name = "serialgen"
    display_name = "SerialGen (standard sheets → RaCig)"
    capabilities = RacigBackend.capabilities - {"tryon"}

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        path = {"type": "str", "default": "", "max_length": 4096}
        stage1 = with_default_overrides({
            "stage": {"type": "choice", "default": "personalize", "choices": list(STAGES), "label": "Stage",
                      "help": "personalize: a panel from the characters' standard sheets (racig); standardize: "
                              "a character's sheet with the paper's stage-1 model (set by the Standardize job)."},
            "standardizer_weights": {**path, "label": "Stage-1 weights (Moore-AnimateAnyone)",
                                     "help": "Folder with denoising_unet, reference_unet and pose_guider (.pth or "
                                             ".safetensors) or catalogue id (empty = animateanyone-stage1)."},
            "standardizer_base": {**path, "label": "Stage-1 SD 1.5 base", "help": "Catalogue id, folder or checkpoint (empty = sd15-base)."},
            "standardizer_image_encoder": {**path, "label": "Stage-1 image encoder",
                                           "help": "CLIPVisionModelWithProjection folder or catalogue id (empty = sd-image-variations-image-encoder)."},
            "standardizer_modules": {**path, "label": "Trained FBDM/RPIM",
                                     "help": "Folder from `train serialgen` (empty = zero FBDM/RPIM: the paper's baseline)."},
            "standardizer_steps": {"type": "int", "default": 20, "min": 1, "max": 200, "label": "Stage-1 steps (DDIM)"},  # §4.1
            "standardizer_guidance": {"type": "float", "default": 3.5, "min": 0.0, "max": 30.0, "label": "Stage-1 guidance"},
        }, cls.name)  # fmt: skip
        return {**super().settings_schema(), **stage1}

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        if request.backend_settings.get("stage") == "standardize":
            return self._standardize(request, on_step)
        missing = [c.name for c in request.characters if c.standard_sheet is None]
        if missing:
            who = ", ".join(missing)
            raise GenerationError(
                f"the serialgen method draws each character from its standard sheet and {who} "
                f"{'has' if len(missing) == 1 else 'have'} none: Standardize… the character first "
                "(comic-studio standardize PROJECT --character NAME), or choose another method"
            )
        characters = [c.model_copy(update={"body_refs": [c.standard_sheet]}) for c in request.characters]
        return super().generate(request.model_copy(update={"characters": characters}), on_step)

    # ------------------------------------------------------------------ stage 1

    def _standardize(self, request: GenerationRequest, on_step: StepCallback | None) -> GenerationResult:
        import io

        from PIL import Image

        from comic_studio.poses.standard_inputs import ReferenceInputError, standard_inputs, standard_pose_image

        settings = self.validate_settings(request.backend_settings)
        if len(request.characters) != 1 or not request.characters[0].body_refs:
            raise GenerationError("serialgen standardize: a job standardizes one character from one reference")
        who = request.characters[0]
        images = ipa.parse_reference_images(settings["reference_images"])
        data = images.get(who.body_refs[0])
        if data is None:
            raise GenerationError(f"serialgen standardize: {who.name}'s reference picture is not in the job")
        reference = Image.open(io.BytesIO(data)).convert("RGB")
        try:
            inputs = standard_inputs(reference, f"{who.name}'s reference", aspect=request.width / request.height)
        except ReferenceInputError as exc:
            raise GenerationError(str(exc)) from exc
        pipeline = self._stage1(settings)
        steps = settings["standardizer_steps"]
        # The sheet's own size (512 × 768, §4.1) unless 'max_side' caps it; drawn back at the job's size.
        width, height = self.generation_size(request, {**settings, "size": "panel"})

        def progress(step: int, total: int) -> bool:
            if on_step is not None and on_step(step, total, None) is False:
                raise Cancelled(f"cancelled at step {step} of {total}")
            return True

        image = pipeline.generate(inputs.image, inputs.background, inputs.pose, standard_pose_image(width, height),
                                  width=width, height=height, seed=request.seed, steps=steps,
                                  guidance=settings["standardizer_guidance"], on_step=progress)  # fmt: skip
        image = fit(image, (request.width, request.height), "RGB")
        return GenerationResult(images=[image], seed=request.seed, backend=self.name, settings=settings)

    def _stage1(self, settings: dict[str, Any]) -> Any:
        from comic_studio.generation.models.sd15 import load_sd15_components, resolve_sd15
        from comic_studio.generation.models.serialgen_stage1 import build_pipeline, encoder_folder, stage1_folder

        res = self.resources
        allow = pickles_allowed()
        try:
            weights = stage1_folder(settings["standardizer_weights"])
            encoder = encoder_folder(settings["standardizer_image_encoder"])
            source = resolve_sd15(settings["standardizer_base"])
            key = "|".join(str(p) for p in (weights.resolve(), encoder.resolve(), source.path.resolve(),
                                            settings["standardizer_modules"], allow))  # fmt: skip

            def load() -> Any:
                parts = load_sd15_components(source, dtype=res.dtype, device=res.device, cache=res.models)
                return build_pipeline(parts["unet"], parts["vae"], weights, encoder,
                                      modules_folder=str(Path(settings["standardizer_modules"]).expanduser())
                                      if settings["standardizer_modules"] else "",
                                      dtype=torch_dtype(res.dtype), device=res.device, allow_pickle=allow)  # fmt: skip

            return res.models.get(key, "serialgen-stage1", res.dtype, res.device, load)
        except ModelLoadError as exc:
            raise GenerationError(f"serialgen standardize: {exc}") from exc

"""The ``sdxl`` backend: plain SDXL txt2img / img2img / inpaint through stock diffusers pipelines.

It adds nothing to the numerics: with the same components, scheduler and seed, its latents are
bit-identical to calling ``StableDiffusionXLPipeline`` directly (tested). What it adds is the app's
plumbing — models found by the model manager and shared through the engine's cache, a fresh
scheduler per job, live latent previews, cancel within one step, LoRAs loaded for one job and
removed after, and a result that records the effective settings for an exact replay — all of it
in :class:`~comic_studio.backends._diffusers.backend.SdxlPipelineBackend`, shared with the other
diffusers backends.
"""

from __future__ import annotations

from comic_studio.backends._diffusers.backend import SdxlPipelineBackend


class SdxlBackend(SdxlPipelineBackend):
    name = "sdxl"
    display_name = "SDXL"


__all__ = ["SdxlBackend"]

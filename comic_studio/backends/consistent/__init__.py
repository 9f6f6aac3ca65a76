"""The ``consistent`` backend: training-free consistent characters (StoryDiffusion-style consistent
self-attention over an identity bank of anchor tokens), on top of the plain SDXL pipeline backend
the ``sdxl`` backend is too (:class:`~comic_studio.backends._diffusers.backend.SdxlPipelineBackend`).

Register with the entry point ``consistent = "comic_studio.backends.consistent:ConsistentBackend"``;
``storybooth = "comic_studio.backends.consistent:StoryboothBackend"`` is the same backend that
refuses a character without a trained LoRA (StoryBooth: consistent attention + DreamBooth-LoRA).
Importing this package does not import torch or diffusers; the first job does.
"""

from comic_studio.backends.consistent.backend import ConsistentBackend
from comic_studio.backends.consistent.storybooth import StoryboothBackend

__all__ = ["ConsistentBackend", "StoryboothBackend"]

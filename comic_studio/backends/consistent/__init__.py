"""The ``consistent`` backend: training-free consistent characters (StoryDiffusion-style consistent
self-attention over an identity bank of anchor tokens), on top of the plain SDXL pipeline backend
the ``sdxl`` backend is too (:class:`~comic_studio.backends._diffusers.backend.SdxlPipelineBackend`).

Register with the entry point ``consistent = "comic_studio.backends.consistent:ConsistentBackend"``.
Importing this package does not import torch or diffusers; the first job does.
"""

from comic_studio.backends.consistent.backend import ConsistentBackend

__all__ = ["ConsistentBackend"]

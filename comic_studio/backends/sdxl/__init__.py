"""The ``sdxl`` backend (plain SDXL through stock diffusers pipelines).

Registered through the ``comic_studio.backends`` entry point as ``sdxl``, like any plugin. Importing
this package does not import torch or diffusers; the first job does.
"""

from comic_studio.backends.sdxl.backend import SdxlBackend

__all__ = ["SdxlBackend"]

"""The SDXL/diffusers toolkit shared by the diffusers backends (sdxl, consistent, racig, and
plugins built like them); no backend imports another.

- :mod:`.backend`: ``DiffusersBackend`` (engine resources, shared SDXL components, offloading,
  effective settings) and ``SdxlPipelineBackend`` (plain SDXL txt2img / img2img / inpaint);
- :mod:`.inputs`: init images and masks carried in the settings (data URIs, paths, polygons);
- :mod:`.long_prompt`: prompts longer than one CLIP window;
- :mod:`.loras`: the ``loras`` setting, loaded for one job;
- :mod:`.previews` and :mod:`.progress`: live latent previews, progress and cancel per step;
- :mod:`.schedulers`: sampler names → fresh, seeded diffusers schedulers.

The UI and the workflows never import this package (they ask the registry). Importing it does not
import torch or diffusers; the first job does.
"""

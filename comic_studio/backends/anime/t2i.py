"""The panel's pose through an OpenPose T2I-Adapter, on the stock SD 1.5 pipeline.

AnimeAdapter is trained with a frozen OpenPose T2I-Adapter as its pose controller (seed 003 §3.4,
Tab. 5: it disentangles pose better than ControlNet) and composes with it at inference (§5.4). The
T2I-Adapter's features depend on the pose image only, not on the timestep, so they are computed
once per render and added to the UNet's down blocks at every step (diffusers'
``down_intrablock_additional_residuals``, as ``StableDiffusionAdapterPipeline`` does).

Why not that pipeline: it has no LoRA or IP-Adapter loading and no ``callback_on_step_end``, which
the backend needs (character LoRAs, the stand-in's IP-Adapter, previews and cancel). So the
features ride on the plain :class:`~diffusers.StableDiffusionPipeline` through a forward pre-hook
on the UNet, attached for one call and removed after it (the UNet is shared through the model cache).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from comic_studio.generation.request import GenerationError


@dataclass(frozen=True)
class PoseFeatures:
    """The T2I-Adapter's features of one pose image, already multiplied by the pose strength."""

    features: list[Any]
    """One ``[1, C_i, H_i, W_i]`` tensor per UNet down block it conditions (4 for SD 1.5)."""

    @classmethod
    def compute(cls, adapter: Any, pose: Any, width: int, height: int, scale: float, unet: Any) -> PoseFeatures:
        """Run ``adapter`` on ``pose`` (a PIL OpenPose image) at the render's size. Its features
        must fit ``unet``'s down blocks (count and channels): a T2I-Adapter of another family is
        refused here, by the setting's name, rather than failing inside the UNet."""
        import torch
        from PIL import Image

        # diffusers' adapter preprocessing: resized to the render, RGB in [0, 1], no normalisation.
        pixels = np.asarray(pose.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), np.float32) / 255.0
        param = next(adapter.parameters())
        image = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(param.device, param.dtype)
        with torch.no_grad():
            features = [f * scale for f in adapter(image)]
        channels = list(unet.config.block_out_channels)
        got = [int(f.shape[1]) for f in features]
        # One feature per down block; SDXL's adapters give one more, which the UNet adds in its mid block.
        expected = channels + [channels[-1]] * max(0, len(got) - len(channels))
        if len(got) > len(channels) + 1 or got != expected[: len(got)]:
            raise GenerationError(
                f"anime setting 't2i_adapter': this T2I-Adapter gives features of {got} channels, the base model's "
                f"down blocks have {channels}: use the T2I-Adapter made for this base model's family "
                "(t2i-adapter-openpose-sd14 for SD 1.5), or set 'pose_control' to controlnet"
            )
        return cls(features)

    @contextmanager
    def attached(self, unet: Any) -> Iterator[None]:
        """Every UNet call in the block gets the features (repeated over the batch: CFG doubles it)."""

        def add_features(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            sample = args[0] if args else kwargs["sample"]
            batch = sample.shape[0]
            # A fresh list each call: the UNet pops its entries as it goes.
            kwargs["down_intrablock_additional_residuals"] = [
                f.to(sample.device, sample.dtype).expand(batch, -1, -1, -1) for f in self.features
            ]
            return args, kwargs

        handle = unet.register_forward_pre_hook(add_features, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

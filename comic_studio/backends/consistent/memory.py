"""GPU memory of the consistent backend per memory mode: a panel, and a character's anchors rendered
as one batch (issue 11: the anchors attend to each other), the backend's largest job.

The engine picks one memory mode per backend (``generation.resources``: from the card's total
memory and the backend's ``vram_gb``, before any out-of-memory error), and every job of the backend
runs in it — a panel, or an anchor job of up to :data:`MAX_ANCHORS` anchors. So ``vram_gb`` is the
figure of the largest job at the default anchor size, :func:`anchor_batch_vram_gb` below; the Models
dialog and ``comic-studio models`` show it.

The arithmetic (estimates until ``bench/gpu_racig.py``-style measurements replace them):

- a panel (one ~1 MP image with CFG): SDXL's figure plus ≈1 GiB for the banked keys/values the
  decoder's self-attention reads (:data:`PANEL_VRAM_GB`);
- each further anchor adds two latent images to the UNet batch (CFG), each ≈
  :data:`UNET_ACTIVATION_GIB` of activations at 1024² (scaled with the anchor area);
- mutual attention: at the steps it runs, each anchor's self-attention also reads the others'
  sampled tokens, so its input, keys and values grow by ``rate · (anchors − 1)`` times the layer's
  tokens; the largest such layer (the 1/16 grid: 4096 tokens of 640 channels at 1024²) is what
  stands at the peak (:func:`mutual_attention_gib`);
- the VAE decodes the anchor batch one image at a time (the backend slices it), so the decode peak,
  already in the panel figure, does not grow with the batch.
"""

from __future__ import annotations

from collections.abc import Mapping

PANEL_VRAM_GB: Mapping[str, float] = {"gpu": 11.0, "model-offload": 8.0, "sequential-offload": 4.0}
"""One ~1 MP panel with CFG: SDXL's estimate (``_diffusers.backend.SDXL_VRAM_GB``) plus ≈1 GiB of banked
tokens read by the decoder's self-attention (banks themselves stay in host RAM)."""
UNET_ACTIVATION_GIB = 0.5
"""UNet activations per latent image at 1024² in float16 with PyTorch's memory-efficient attention
(the largest residual and skip tensors of SDXL's UNet at 128² latents, a few hundred MiB)."""
MAX_ANCHORS = 4
"""The most anchors the ``anchors`` setting allows: the largest batch the backend renders."""
DEFAULT_ANCHOR_SIZE = 1024
REFERENCE_SIDE = 1024
BYTES_FP16 = 2
_LARGEST_LAYER = (64 * 64, 640)
"""(tokens, channels) at 1024² of the decoder self-attention layer whose mutual inputs are largest:
up_blocks.1 (1/16 grid); the 1/32 grid has a quarter of the tokens at twice the channels."""
_TENSORS = 3
"""Concatenated hidden states, keys and values alive together in one mutual attention call."""


def mutual_attention_gib(anchors: int, anchor_size: int = DEFAULT_ANCHOR_SIZE, rate: float = 0.5) -> float:
    """Extra GiB one mutual self-attention call holds for a batch of ``anchors`` (with CFG) beyond
    plain self-attention: the other anchors' sampled tokens (``rate`` of theirs) in its inputs."""
    if anchors < 2:
        return 0.0
    tokens, channels = _LARGEST_LAYER
    tokens = tokens * (anchor_size / REFERENCE_SIDE) ** 2
    borrowed = tokens * rate * (anchors - 1)
    return _TENSORS * 2 * anchors * borrowed * channels * BYTES_FP16 / 2**30


def anchor_batch_vram_gb(anchors: int, anchor_size: int = DEFAULT_ANCHOR_SIZE, rate: float = 0.5) -> dict[str, float]:
    """Estimated peak GiB per memory mode of rendering ``anchors`` anchors of ``anchor_size``² as one
    batch (``rate``: the token share they lend each other, ``strength_16``); one anchor of the
    default size is exactly a panel. Rounded up to 0.1 GiB."""
    import math

    if anchors < 1:
        raise ValueError(f"anchors must be at least 1, got {anchors}")
    area = (anchor_size / REFERENCE_SIDE) ** 2
    extra = 2 * (anchors - 1) * UNET_ACTIVATION_GIB * area + mutual_attention_gib(anchors, anchor_size, rate)
    return {mode: math.ceil((need + extra) * 10 - 1e-9) / 10 for mode, need in PANEL_VRAM_GB.items()}


VRAM_GB = anchor_batch_vram_gb(MAX_ANCHORS)
"""The backend's declared figure: its largest job, :data:`MAX_ANCHORS` anchors at the default size."""

"""The consistent backend's GPU memory figure accounts for its largest job, a batch of anchors
(issue 15: anchors render as one batch), and the batch decodes one image at a time so the VAE's peak
does not grow with it. The arithmetic is checked here; the anchor batch's decodes on the tiny kit."""

from __future__ import annotations

import pytest

from comic_studio.backends.consistent.memory import (
    MAX_ANCHORS,
    PANEL_VRAM_GB,
    UNET_ACTIVATION_GIB,
    VRAM_GB,
    anchor_batch_vram_gb,
    mutual_attention_gib,
)  # fmt: skip
from comic_studio.generation.backend_api import describe_vram
from comic_studio.generation.settings import choose_memory_mode


def test_one_anchor_is_a_panel_and_each_more_adds_its_cfg_pair_and_mutual_tokens():
    assert anchor_batch_vram_gb(1) == dict(PANEL_VRAM_GB)
    # Four anchors at 1024²: 3 more anchors × 2 CFG images × 0.5 GiB, plus the borrowed tokens of the
    # largest mutual layer: 3 tensors × 8 images × (4096 · 0.5 · 3) tokens × 640 channels × 2 bytes.
    mutual = 3 * 8 * 4096 * 0.5 * 3 * 640 * 2 / 2**30
    assert mutual_attention_gib(4) == pytest.approx(mutual) and mutual_attention_gib(1) == 0.0
    four = anchor_batch_vram_gb(4)
    for mode, panel in PANEL_VRAM_GB.items():
        assert four[mode] == pytest.approx(panel + 6 * UNET_ACTIVATION_GIB + mutual, abs=0.1)
        assert four[mode] >= panel + 6 * UNET_ACTIVATION_GIB + mutual  # rounded up, never down
    needs = [anchor_batch_vram_gb(n)["gpu"] for n in range(1, MAX_ANCHORS + 1)]
    assert needs == sorted(needs) and len(set(needs)) == MAX_ANCHORS
    # Smaller anchors: activations and borrowed tokens shrink with the area.
    assert anchor_batch_vram_gb(4, 512)["gpu"] < four["gpu"]
    with pytest.raises(ValueError):
        anchor_batch_vram_gb(0)


def test_the_declared_figure_is_the_largest_batch_and_preselects_the_mode():
    pytest.importorskip("diffusers")
    from comic_studio.backends.consistent import ConsistentBackend

    assert ConsistentBackend.vram_gb == VRAM_GB == anchor_batch_vram_gb(MAX_ANCHORS)
    assert ConsistentBackend.settings_schema()["anchors"]["max"] == MAX_ANCHORS
    # What the Models dialog and `comic-studio models` print.
    assert describe_vram(ConsistentBackend.vram_gb).startswith(
        f"GPU memory (estimate, ~1 MP panel): {VRAM_GB['gpu']:g} GiB"
    )
    # A 12 GB card (11.76 GiB reported) no longer starts consistent in full-GPU mode, whose 4-anchor
    # batch would not fit; 16 GB and up do; 8 GB cards go layer by layer.
    assert choose_memory_mode(11.76, VRAM_GB) == "model-offload"
    assert choose_memory_mode(16.0, VRAM_GB) == choose_memory_mode(24.0, VRAM_GB) == "gpu"
    assert choose_memory_mode(8.0, VRAM_GB) == "sequential-offload"


def test_an_anchor_batch_decodes_one_image_at_a_time_and_leaves_the_vae_as_it_was(tiny_kit):
    torch = pytest.importorskip("torch")
    from comic_studio.backends.consistent import ConsistentBackend
    from comic_studio.generation.request import GenerationRequest, RequestCharacter

    backend = ConsistentBackend()
    ana = RequestCharacter(id="ana", name="Ana", description="green raincoat")
    settings = {"model": str(tiny_kit.sdxl), "steps": 2, "anchor_size": 64, "anchors": 3, "start_step": 1}
    request = GenerationRequest(backend="consistent", width=64, height=64, seed=3, prompt="on a pier",
                                characters=[ana], backend_settings=settings)  # fmt: skip
    pipe, _call = backend.prepare_call(request, backend.job_settings(request))
    batches: list[int] = []
    hook = pipe.vae.decoder.register_forward_pre_hook(lambda _m, args: batches.append(int(args[0].shape[0])))
    try:
        with torch.no_grad():
            backend.generate(request)
    finally:
        hook.remove()
    assert batches and set(batches) == {1} and len(batches) >= 3  # three anchors, decoded one by one
    assert not pipe.vae.use_slicing

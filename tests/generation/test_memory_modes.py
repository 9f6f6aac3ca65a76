"""The engine's ``auto`` memory mode: chosen per backend from the card's total memory and the
backend's declared ``vram_gb``, instead of discovered by running out of memory."""

from __future__ import annotations

import pytest

from comic_studio.backends._diffusers.backend import SDXL_VRAM_GB
from comic_studio.backends.racig.backend import VRAM_GB as RACIG_VRAM_GB
from comic_studio.generation.backend_api import describe_vram
from comic_studio.generation.resources import EngineResources
from comic_studio.generation.settings import (
    HEADROOM_GIB,
    EngineSettings,
    EngineSettingsError,
    choose_memory_mode,
)


@pytest.mark.parametrize(
    ("total", "need", "mode"),
    [
        (None, RACIG_VRAM_GB, "gpu"),  # no CUDA: nothing to offload
        (24.0, RACIG_VRAM_GB, "gpu"),
        (16.0, RACIG_VRAM_GB, "gpu"),
        (12.0, RACIG_VRAM_GB, "model-offload"),  # the 12 GB card of issue 15
        (11.4, RACIG_VRAM_GB, "sequential-offload"),  # 11 GiB + headroom no longer fits
        (8.0, RACIG_VRAM_GB, "sequential-offload"),
        (2.0, RACIG_VRAM_GB, "sequential-offload"),  # nothing fits: the leanest has the best chance
        (12.0, SDXL_VRAM_GB, "gpu"),
        (8.0, SDXL_VRAM_GB, "model-offload"),
        (6.0, SDXL_VRAM_GB, "sequential-offload"),
        (12.0, {}, "gpu"),  # nothing declared: the fastest, the out-of-memory retry still steps down
        (6.0, {"gpu": 5.0}, "gpu"),
        (6.0, {"gpu": 9.0, "model-offload": 5.0}, "model-offload"),
        (4.0, {"gpu": 9.0, "model-offload": 5.0}, "model-offload"),  # the leanest *declared* mode
    ],
)
def test_choose_memory_mode(total, need, mode):
    assert choose_memory_mode(total, need) == mode


def test_headroom_is_the_margin():
    need = {"gpu": 10.0, "model-offload": 4.0}
    assert choose_memory_mode(10.0 + HEADROOM_GIB, need) == "gpu"
    assert choose_memory_mode(10.0 + HEADROOM_GIB - 0.01, need) == "model-offload"


class _Card(EngineResources):
    """Resources on a CUDA card of ``total`` GiB (this machine has none: the card's size is the one
    hardware reading ``auto`` makes)."""

    def __init__(self, total: float, settings: EngineSettings | None = None):
        super().__init__(settings or EngineSettings(device="cpu"))
        self.total = total

    def total_memory_gib(self) -> float | None:
        return self.total


class _Racig:
    name, vram_gb = "racig", RACIG_VRAM_GB


class _Sdxl:
    name, vram_gb = "sdxl", SDXL_VRAM_GB


def test_auto_is_per_backend_and_an_oom_lowers_only_that_backend():
    res = _Card(12.0)
    assert res.settings.memory_mode == "auto"  # the default
    assert res.memory_mode_for(_Racig()) == "model-offload"
    assert res.memory_mode_for(_Sdxl()) == "gpu"
    assert res.memory_mode_for(None) == "gpu"
    assert res.lower_after_oom(_Racig()) == "sequential-offload"
    assert res.memory_mode_for(_Racig()) == "sequential-offload"
    assert res.memory_mode_for(_Sdxl()) == "gpu"  # untouched
    assert res.lower_after_oom(_Racig()) is None  # already the leanest
    # A new choice starts afresh; an explicit choice applies to every backend.
    res.set_settings(EngineSettings(device="cpu", memory_mode="gpu"))
    assert res.memory_mode_for(_Racig()) == "gpu"
    assert res.lower_after_oom(_Sdxl()) == "model-offload"
    assert res.settings.memory_mode == "model-offload" and res.memory_mode_for(_Racig()) == "model-offload"
    res.set_settings(EngineSettings(device="cpu", memory_mode="auto"))
    assert res.memory_mode_for(_Racig()) == "model-offload"


def test_the_cpu_never_reads_a_card_and_auto_is_a_valid_saved_choice():
    res = EngineResources(EngineSettings(device="cpu"))
    assert res.total_memory_gib() is None
    assert res.memory_mode_for(_Racig()) == "gpu"
    assert EngineSettings.from_dict({"memory_mode": "auto"}).memory_mode == "auto"
    with pytest.raises(EngineSettingsError, match="'memory_mode'"):
        EngineSettings(memory_mode="automatic")


def test_declared_figures_and_their_wording():
    from comic_studio.backends.consistent.backend import ConsistentBackend
    from comic_studio.backends.racig import RacigBackend
    from comic_studio.backends.sdxl import SdxlBackend
    from comic_studio.backends.storyboard import StoryboardBackend

    for cls in (RacigBackend, SdxlBackend, ConsistentBackend):
        figures = [cls.vram_gb[m] for m in ("gpu", "model-offload", "sequential-offload")]
        assert figures == sorted(figures, reverse=True), cls.name  # leaner modes need less
    assert RacigBackend.vram_gb["model-offload"] <= 12.0 - HEADROOM_GIB  # racig fits a 12 GB card
    assert not StoryboardBackend.vram_gb and describe_vram({}) == ""
    assert describe_vram(RACIG_VRAM_GB) == (
        "GPU memory (estimate, ~1 MP panel): 14 GiB everything on the GPU, 11 GiB whole-model offload, "
        "4 GiB layer-by-layer offload"
    )

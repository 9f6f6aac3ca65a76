"""How the engine uses the machine: device, dtype and memory mode. Pure data.

No torch at module level: the window opens (and the storyboard backend runs) without it. Only
:func:`resolve_device` / :func:`resolve_dtype` import torch, and only when a diffusion backend asks
for the concrete device through :class:`~comic_studio.generation.resources.EngineResources`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from comic_studio.core.errors import ComicStudioError

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "float32", "float16", "bfloat16")
MEMORY_MODES = ("gpu", "model-offload", "sequential-offload")
"""From fastest (everything resident on the GPU) to leanest (weights streamed layer by layer)."""
MEMORY_MODE_CHOICES = ("auto", *MEMORY_MODES)
"""What the user may choose: ``auto`` picks one of :data:`MEMORY_MODES` per backend (see
:func:`choose_memory_mode`)."""
HEADROOM_GIB = 0.5
"""GPU memory ``auto`` leaves unclaimed: the desktop, the CUDA context and allocator fragmentation
take a few hundred MiB that ``total_memory`` still counts."""


class EngineSettingsError(ComicStudioError):
    """An engine setting has a value the engine does not know; the message names the field."""


@dataclass(frozen=True)
class EngineSettings:
    device: str = "auto"
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    dtype: str = "auto"
    """``auto``: float16 on CUDA/MPS (backends swap in the fp16-fixed SDXL VAE), float32 on the CPU."""
    memory_mode: str = "auto"
    """``gpu`` keeps every component on the device; ``model-offload`` moves whole models to the device
    while they run; ``sequential-offload`` streams weights per layer (slowest, least memory); ``auto``
    chooses per backend from the card's total memory and the backend's declared need, so a small card
    starts in the mode that fits instead of finding it by running out of memory."""

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("device", self.device, DEVICES),
            ("dtype", self.dtype, DTYPES),
            ("memory_mode", self.memory_mode, MEMORY_MODE_CHOICES),
        ):
            if value not in allowed:
                raise EngineSettingsError(f"engine setting {field!r}: {value!r} is not one of {list(allowed)}")

    def with_memory_mode(self, mode: str) -> EngineSettings:
        return replace(self, memory_mode=mode)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineSettings:
        """Read saved preferences; unknown keys are an error (a typo must not silently reset)."""
        unknown = sorted(set(data) - {"device", "dtype", "memory_mode"})
        if unknown:
            raise EngineSettingsError(f"engine setting {unknown[0]!r} is unknown (known: device, dtype, memory_mode)")
        return cls(**data)


def lower_memory_mode(mode: str) -> str | None:
    """The next leaner memory mode, or ``None`` when ``mode`` is already the leanest."""
    index = MEMORY_MODES.index(mode)
    return MEMORY_MODES[index + 1] if index + 1 < len(MEMORY_MODES) else None


def choose_memory_mode(total_gib: float | None, need_gib: Mapping[str, float]) -> str:
    """The fastest memory mode whose declared need fits a card of ``total_gib`` (less
    :data:`HEADROOM_GIB`). ``need_gib`` maps modes to GiB (a backend's ``vram_gb``).

    No GPU (``None``) or no declared figures: ``gpu`` (there is nothing to offload, or nothing to go
    by; the engine's out-of-memory retry still steps down). Nothing fits: the leanest declared mode,
    the one with the best chance."""
    if total_gib is None or not need_gib:
        return MEMORY_MODES[0]
    usable = total_gib - HEADROOM_GIB
    declared = [m for m in MEMORY_MODES if m in need_gib]
    for mode in declared:
        if need_gib[mode] <= usable:
            return mode
    return declared[-1]


def gpu_total_memory_gib(device: str) -> float | None:
    """The CUDA card's total memory in GiB, or ``None`` for any other device. Imports torch."""
    if device != "cuda":
        return None
    import torch

    return float(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory) / 2**30


def resolve_device(settings: EngineSettings) -> str:
    """The concrete device (``cuda``/``mps``/``cpu``). Imports torch: call it only for ML backends.

    An explicit device that is not available is an error rather than a silent CPU fallback: a user
    who chose CUDA wants to know the driver is missing, not wait ten minutes for a CPU render."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if settings.device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if settings.device == "cuda" and not cuda:
        raise EngineSettingsError(
            "engine setting 'device': CUDA was chosen but no CUDA GPU is available (choose 'auto' or 'cpu')"
        )
    if settings.device == "mps" and not mps:
        raise EngineSettingsError(
            "engine setting 'device': MPS was chosen but Apple Metal is not available (choose 'auto' or 'cpu')"
        )
    return settings.device


def resolve_dtype(settings: EngineSettings, device: str) -> str:
    """The dtype name for ``device``: half precision on accelerators, float32 on the CPU (CPU fp16
    kernels are slow or missing). No torch import: backends map the name with ``getattr(torch, name)``."""
    if settings.dtype != "auto":
        return settings.dtype
    return "float32" if device == "cpu" else "float16"

"""What the engine lends to backends: the device choice, the memory mode and a shared model cache.

A backend that wants these declares a ``bind_resources(resources)`` method; the engine calls it once,
on the worker thread, before the backend's first job. Two backends on the same base model then share
the loaded UNet/VAE/text encoders through :class:`ModelCache` instead of loading them twice.

No torch import here: the cache is generic over loader callables, and the device is resolved (which
imports torch) only when a backend first reads :attr:`EngineResources.device`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from comic_studio.core import garbage
from comic_studio.generation.settings import (
    EngineSettings,
    choose_memory_mode,
    gpu_total_memory_gib,
    lower_memory_mode,
    resolve_device,
    resolve_dtype,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class CacheKey:
    """One loaded component: ``("stabilityai/sdxl-base-1.0", "unet", "float16", "cuda")``."""

    model_id: str
    component: str
    dtype: str
    device: str


class ModelCache:
    """Loaded model components by (model id, component, dtype, device), with load counters.

    ``get`` calls the loader only on a miss; :meth:`loads` tells tests and benchmarks how often a
    component was really loaded (switching backends on one base model must not reload). Thread-safe,
    though in practice only the engine's worker thread uses it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._items: dict[CacheKey, Any] = {}
        self._load_counts: dict[CacheKey, int] = {}

    def get(self, model_id: str, component: str, dtype: str, device: str, loader: Callable[[], T]) -> T:
        key = CacheKey(model_id, component, dtype, device)
        with self._lock:
            if key in self._items:
                return self._items[key]
            # Loading under the lock: two loads of one multi-GB component at once would be the bug.
            value = loader()
            self._items[key] = value
            self._load_counts[key] = self._load_counts.get(key, 0) + 1
            log.info("loaded %s/%s (%s on %s)", model_id, component, dtype, device)
            return value

    def put(self, model_id: str, component: str, dtype: str, device: str, value: Any) -> None:
        """Store a component loaded elsewhere (e.g. one pipeline call loading several at once)."""
        key = CacheKey(model_id, component, dtype, device)
        with self._lock:
            self._items[key] = value
            self._load_counts[key] = self._load_counts.get(key, 0) + 1

    def peek(self, model_id: str, component: str, dtype: str, device: str) -> Any | None:
        with self._lock:
            return self._items.get(CacheKey(model_id, component, dtype, device))

    def loads(self, model_id: str | None = None, component: str | None = None) -> int:
        """How many loads happened (since creation), optionally for one model and/or component."""
        with self._lock:
            return sum(
                n for k, n in self._load_counts.items()
                if (model_id is None or k.model_id == model_id) and (component is None or k.component == component)
            )  # fmt: skip

    def keys(self) -> list[CacheKey]:
        with self._lock:
            return list(self._items)

    def evict(self, model_id: str | None = None, predicate: Callable[[CacheKey], bool] | None = None) -> int:
        """Drop cached components (all of ``model_id``, or those ``predicate`` selects, or all).
        Returns how many were dropped; the objects are freed once nothing else holds them."""
        with self._lock:
            doomed = [
                k for k in self._items
                if (model_id is None or k.model_id == model_id) and (predicate is None or predicate(k))
            ]  # fmt: skip
            for k in doomed:
                del self._items[k]
            return len(doomed)

    def clear(self) -> int:
        return self.evict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items


class EngineResources:
    """The engine's machine state as backends see it. One instance per :class:`Engine`.

    The memory mode is per backend (:meth:`memory_mode_for`): the user's choice, or under ``auto``
    the fastest mode the backend's declared ``vram_gb`` fits on this card. The engine lowers it after
    an out-of-memory error (:meth:`lower_after_oom`), and it stays lowered for the rest of the
    session, since the next job would run out of memory the same way.
    Backends register ``add_free_hook`` callbacks for device-specific clean-up (e.g.
    ``torch.cuda.empty_cache``) so this module never needs torch.
    """

    def __init__(self, settings: EngineSettings | None = None, models: ModelCache | None = None):
        self._settings = settings or EngineSettings()
        self.models = models or ModelCache()
        self._device: str | None = None
        self._free_hooks: list[Callable[[], None]] = []
        self._lowered: dict[str, str] = {}
        """Under ``auto``: backend name → the mode an out-of-memory error stepped it down to."""
        self._total_gib: float | None = None
        self.frees = 0
        """How often :meth:`free` ran (tests, the log)."""

    @property
    def settings(self) -> EngineSettings:
        return self._settings

    @property
    def memory_mode(self) -> str:
        """The mode of a backend that declares no VRAM need (see :meth:`memory_mode_for`)."""
        return self.memory_mode_for(None)

    def memory_mode_for(self, backend: object | None) -> str:
        """The memory mode ``backend`` runs in: the user's explicit choice, else (``auto``) the one
        :func:`~comic_studio.generation.settings.choose_memory_mode` picks from the card's total
        memory and the backend's ``vram_gb``, or what an out-of-memory error lowered it to."""
        chosen = self._settings.memory_mode
        if chosen != "auto":
            return chosen
        name = getattr(backend, "name", "")
        if name in self._lowered:
            return self._lowered[name]
        need: Mapping[str, float] = getattr(backend, "vram_gb", None) or {}
        return choose_memory_mode(self.total_memory_gib() if need else None, need)

    def lower_after_oom(self, backend: object | None) -> str | None:
        """Step ``backend`` down to the next leaner mode after an out-of-memory error; returns it, or
        ``None`` when it already ran in the leanest. An explicit user choice is lowered for every
        backend (as the setting itself); under ``auto`` only this backend steps down."""
        lower = lower_memory_mode(self.memory_mode_for(backend))
        if lower is None:
            return None
        if self._settings.memory_mode == "auto":
            self._lowered[getattr(backend, "name", "")] = lower
        else:
            self.set_memory_mode(lower)
        return lower

    def total_memory_gib(self) -> float | None:
        """The GPU's total memory (GiB), ``None`` off CUDA; read once (imports torch)."""
        if self._total_gib is None and self.device == "cuda":
            self._total_gib = gpu_total_memory_gib(self.device)
        return self._total_gib

    def set_settings(self, settings: EngineSettings) -> None:
        """New preferences. A device or dtype change empties the cache (those components are useless)."""
        old = self._settings
        self._settings = settings
        if old.memory_mode != settings.memory_mode:
            self._lowered.clear()  # a new choice starts afresh
        if (old.device, old.dtype) != (settings.device, settings.dtype):
            self._device = None
            self._total_gib = None
            self.free()

    def set_memory_mode(self, mode: str) -> None:
        self._settings = self._settings.with_memory_mode(mode)

    @property
    def device(self) -> str:
        """The concrete device; the first read imports torch (only diffusion backends read it)."""
        if self._device is None:
            self._device = resolve_device(self._settings)
        return self._device

    @property
    def dtype(self) -> str:
        return resolve_dtype(self._settings, self.device)

    def add_free_hook(self, hook: Callable[[], None]) -> None:
        if hook not in self._free_hooks:
            self._free_hooks.append(hook)

    def trim(self) -> None:
        """Give back transient memory a finished, failed or cancelled job held (keeps loaded models).
        The cycles (a cancelled pipeline's frames in its traceback) are collected by the thread that
        owns collection (core/garbage.py: the GUI thread in the app, never this worker), a moment later;
        the young generations only — they hold what the job allocated, and a full collection would walk
        every imported module again (a stall of the window in the app)."""
        garbage.collect(generation=1)
        self._run_hooks()

    def free(self, wait_s: float = 0.0) -> None:
        """Drop every cached model and give the memory back. After an out-of-memory error the retry
        needs that memory now: the caller waits up to ``wait_s`` for the collection."""
        self.frees += 1
        self.models.clear()
        garbage.collect(wait_s=wait_s)
        self._run_hooks()

    def _run_hooks(self) -> None:
        for hook in list(self._free_hooks):
            try:
                hook()
            except Exception:  # a clean-up hook must never turn into a job failure
                log.exception("memory free hook %r failed", hook)

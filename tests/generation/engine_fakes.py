"""Small real backends for engine tests, registered in-process like a plugin from a folder."""

from __future__ import annotations

import threading
import time
from typing import Any

from PIL import Image

from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent, JobMessage
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.generation.request import Cancelled, GenerationRequest, GenerationResult


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError: the engine matches the type *name*."""


def solid(request: GenerationRequest, value: int) -> Image.Image:
    return Image.new("RGB", (request.width, request.height), (value % 256, 40, 90))


class StepsBackend(GenerationBackend):
    """``steps`` steps of ``delay`` seconds; records every on_step call and its answer."""

    name = "test-steps"
    capabilities = frozenset({"txt2img"})

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.calls: list[tuple[int, bool]] = []
        self.released = 0

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        return {
            "steps": {"type": "int", "default": 4, "min": 1, "max": 1000},
            "delay": {"type": "float", "default": 0.0, "min": 0.0, "max": 5.0},
            "preview": {"type": "bool", "default": False},
        }

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        self.thread = threading.current_thread()
        s = self.validate_settings(request.backend_settings)
        for i in range(s["steps"] + 1):
            if i:
                time.sleep(s["delay"])
            if on_step is not None:
                answer = on_step(i, s["steps"], solid(request, i) if s["preview"] else None)
                self.calls.append((i, answer))
                if answer is False:
                    raise Cancelled(f"stopped at step {i}")
        return GenerationResult([solid(request, request.seed)], request.seed, self.name, settings=s)

    def release_job(self) -> None:
        self.released += 1


class GateBackend(GenerationBackend):
    """Blocks the worker until ``gate`` is set: lets a test fill the queue deterministically."""

    name = "test-gate"
    gate = threading.Event()
    entered = threading.Event()

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        GateBackend.entered.set()
        if not GateBackend.gate.wait(10):
            raise RuntimeError("gate never opened")
        return GenerationResult([solid(request, 1)], request.seed, self.name)


class BoomBackend(GenerationBackend):
    name = "test-boom"

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        raise ValueError("the flux capacitor is unplugged\nsecond line never shown")


class OomBackend(GenerationBackend):
    """Runs out of memory in every mode listed in ``fails_in``; remembers the modes it ran in."""

    name = "test-oom"
    fails_in: set[str] = {"gpu"}

    def __init__(self) -> None:
        self.resources = None
        self.modes: list[str] = []

    def bind_resources(self, resources) -> None:
        self.resources = resources

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        mode = self.resources.memory_mode_for(self)
        self.modes.append(mode)
        # Something that holds "GPU memory" in the cache, so free() has something to drop.
        self.resources.models.get("base", "unet", "float16", "cuda", lambda: bytearray(1024))
        if mode in OomBackend.fails_in:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return GenerationResult([solid(request, 7)], request.seed, self.name, settings={"mode": mode})


class SharedModelBackendA(GenerationBackend):
    """Two backends on one base model: the second must reuse the first one's components."""

    name = "test-shared-a"
    loads: list[str] = []

    def bind_resources(self, resources) -> None:
        self.resources = resources

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
            self.resources.models.get(
                "tiny-sdxl",
                component,
                "float32",
                "cpu",
                lambda c=component: SharedModelBackendA.loads.append(c) or object(),
            )
        return GenerationResult([solid(request, 3)], request.seed, self.name)


class SharedModelBackendB(SharedModelBackendA):
    name = "test-shared-b"


class NoImageBackend(GenerationBackend):
    name = "test-noimage"

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        return GenerationResult([], request.seed, self.name)


FAKES = [StepsBackend, GateBackend, BoomBackend, OomBackend, SharedModelBackendA, SharedModelBackendB, NoImageBackend]


def register_fakes() -> None:
    for cls in FAKES:
        register_backend(cls.name, cls)


def unregister_fakes() -> None:
    for cls in FAKES:
        unregister_backend(cls.name)


class Recorder:
    """Collects an engine's messages; ``wait(job_id)`` blocks until that job's final message."""

    def __init__(self, engine: Engine):
        self.messages: list[JobMessage] = []
        self.threads: list[str] = []
        self._cond = threading.Condition()
        self.unsubscribe = engine.subscribe(self._on)

    def _on(self, msg: JobMessage) -> None:
        with self._cond:
            self.messages.append(msg)
            self.threads.append(threading.current_thread().name)
            self._cond.notify_all()

    def of(self, job_id: str) -> list[JobMessage]:
        with self._cond:
            return [m for m in self.messages if m.job_id == job_id]

    def events(self, job_id: str) -> list[JobEvent]:
        return [m.event for m in self.of(job_id)]

    def final(self, job_id: str) -> JobMessage | None:
        return next((m for m in self.of(job_id) if m.event.is_final), None)

    def wait(self, job_id: str, timeout: float = 10.0) -> JobMessage:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = next((m for m in self.messages if m.job_id == job_id and m.event.is_final), None)
                if done is not None:
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"job {job_id} did not finish; got {[m.event for m in self.messages]}")
                self._cond.wait(left)

    def started_order(self) -> list[str]:
        with self._cond:
            return [m.job_id for m in self.messages if m.event is JobEvent.STARTED]

"""The consistent backend passes the engine's backend contract (tiny kit, anchors built in the job)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from contract import BackendContract  # noqa: E402

from comic_studio.backends.consistent import ConsistentBackend  # noqa: E402
from comic_studio.generation.registry import register_backend, unregister_backend  # noqa: E402
from comic_studio.generation.tiny import build_tiny_kit  # noqa: E402

_KIT: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def registered(tmp_path_factory):
    torch.set_num_threads(1)
    _KIT["kit"] = build_tiny_kit(tmp_path_factory.getbasetemp() / "tiny-kit")
    register_backend("consistent", ConsistentBackend)
    yield
    unregister_backend("consistent")


class TestConsistentBackendContract(BackendContract):
    backend_name = "consistent"

    def make_request(self, seed: int = 7, **overrides: Any):
        settings = {"model": str(_KIT["kit"].sdxl), "steps": 3, "anchor_size": 64, "start_step": 1,
                    "preview_every": 1, **overrides.pop("backend_settings", {})}
        return super().make_request(seed, backend_settings=settings, **overrides)

"""The identity backend passes the engine's backend contract on the tiny kit, directly and through
the engine, with both contract characters carrying learned identity tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from comic_studio.generation.request import GenerationRequest
from comic_studio.testing.contract import BackendContract

torch = pytest.importorskip("torch")


def _identity(path, seed: int) -> str:
    from comic_studio.training.identity import save_identity

    g = torch.Generator().manual_seed(seed)
    rows = {"clip_l": torch.randn(2, 32, generator=g), "clip_g": torch.randn(2, 48, generator=g)}
    return str(save_identity(path, rows, {"method": "test"}))


class TestIdentityContract(BackendContract):
    backend_name = "identity"
    backend_target = "comic_studio.backends.identity:IdentityBackend"
    reports_heads = False  # text-to-image: it cannot tell where it drew the characters

    @pytest.fixture
    def quick_settings(self, tiny_kit, tmp_path_factory):
        folder = tmp_path_factory.mktemp("identities")
        files = {"ana": _identity(folder / "ana.safetensors", 1), "ben": _identity(folder / "ben.safetensors", 2)}
        return {"model": str(tiny_kit.sdxl), "steps": 3, "preview_every": 1, "character_identities": json.dumps(files)}

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        request = super().make_request(seed, **overrides)
        characters = [c.model_copy(update={"identity": "a" * 63 + str(i)}) for i, c in enumerate(request.characters)]
        return request.model_copy(update={"characters": characters})

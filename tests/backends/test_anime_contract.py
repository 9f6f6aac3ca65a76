"""The anime backend passes the backend contract on the tiny SD 1.5 kit, with one reference per
character (so the contract runs through AnimeAdapter's masked processors), directly and through
the engine."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.generation.request import GenerationRequest, png_data_uri  # noqa: E402
from comic_studio.testing.contract import BackendContract  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.testing.tiny_sd15 import build_tiny_sd15_kit  # noqa: E402


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    character_picture(seed, 48, 64).save(buffer, "PNG")
    return buffer.getvalue()


REFS = [_png(seed) for seed in range(4)]
HASHES = [hashlib.sha256(b).hexdigest() for b in REFS]


class TestAnimeContract(BackendContract):
    backend_name = "anime"
    backend_target = "comic_studio.backends.anime:AnimeBackend"

    @pytest.fixture
    def quick_settings(self, tmp_path_factory):
        import torch

        torch.set_num_threads(1)  # as the tiny_kit fixture: OpenMP threads fighting other processes are slower
        kit = build_tiny_sd15_kit(tmp_path_factory.getbasetemp() / "tiny-sd15")
        return {"model": str(kit.sd15), "image_encoder": str(kit.clip_vision), "adapter": str(kit.adapter),
                "controlnet": str(kit.controlnet), "steps": 3, "max_side": 96, "pose_matching": "overlap",
                "reference_images": json.dumps({h: png_data_uri(b) for h, b in zip(HASHES, REFS)})}  # fmt: skip

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        request = super().make_request(seed, **overrides)
        chars = [
            c.model_copy(update={"body_refs": [HASHES[i % len(HASHES)]]}) for i, c in enumerate(request.characters)
        ]
        return request.model_copy(update={"characters": chars})

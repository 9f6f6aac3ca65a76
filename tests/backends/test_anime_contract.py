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
    def quick_settings(self, sd15_kit):
        return {"model": str(sd15_kit.sd15), "image_encoder": str(sd15_kit.clip_vision),
                "adapter": str(sd15_kit.adapter), "controlnet": str(sd15_kit.controlnet), "steps": 3, "max_side": 96,
                "pose_matching": "overlap",
                "reference_images": json.dumps({h: png_data_uri(b) for h, b in zip(HASHES, REFS)})}  # fmt: skip

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        request = super().make_request(seed, **overrides)
        chars = [
            c.model_copy(update={"body_refs": [HASHES[i % len(HASHES)]]}) for i, c in enumerate(request.characters)
        ]
        return request.model_copy(update={"characters": chars})

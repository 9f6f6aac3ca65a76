"""The racig backend passes the backend contract on the tiny kit, with face and outfit references
on both characters (so the contract runs through the regional IP-Adapter path), directly and
through the engine."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import HASHES, REFS, build_kit, kit_settings  # noqa: E402

from comic_studio.backends.racig.adapters import reference_images_setting  # noqa: E402
from comic_studio.generation.request import GenerationRequest  # noqa: E402
from comic_studio.testing.contract import BackendContract  # noqa: E402


class TestRacigContract(BackendContract):
    backend_name = "racig"
    backend_target = "comic_studio.backends.racig:RacigBackend"

    @pytest.fixture
    def quick_settings(self, tmp_path_factory):
        tiny, _ = build_kit(tmp_path_factory.getbasetemp())  # the session's tiny kit plus stronger adapters
        return kit_settings(tiny, steps=3, reference_images=reference_images_setting(REFS[:4]))

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        request = super().make_request(seed, **overrides)
        chars = [c.model_copy(update={"face_refs": [HASHES[2 * i]], "body_refs": [HASHES[2 * i + 1]]})
                 for i, c in enumerate(request.characters)]  # fmt: skip
        return request.model_copy(update={"characters": chars})

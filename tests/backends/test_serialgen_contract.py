"""The serialgen backend passes the backend contract on the tiny kit, each character with a face
reference and a standard sheet (its only outfit reference in the job), directly and through the
engine."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import HASHES, REFS, build_kit, kit_settings  # noqa: E402

from comic_studio.backends.racig.adapters import reference_images_setting  # noqa: E402
from comic_studio.generation.request import GenerationRequest  # noqa: E402
from comic_studio.testing.contract import BackendContract  # noqa: E402


class TestSerialgenContract(BackendContract):
    backend_name = "serialgen"
    backend_target = "comic_studio.backends.racig:SerialgenBackend"

    @pytest.fixture
    def quick_settings(self, tmp_path_factory):
        tiny, _ = build_kit(tmp_path_factory.getbasetemp())
        return kit_settings(tiny, steps=3, reference_images=reference_images_setting(REFS[:4]))

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        request = super().make_request(seed, **overrides)
        chars = [c.model_copy(update={"face_refs": [HASHES[2 * i]], "body_refs": [HASHES[2 * i + 1]],
                                      "standard_sheet": HASHES[2 * i + 1]})
                 for i, c in enumerate(request.characters)]  # fmt: skip
        return request.model_copy(update={"characters": chars})

"""The example plugin passes the same backend contract as the built-ins, directly and in the Engine."""

from typing import Any

from contract import BackendContract

from comic_studio.backends import GenerationRequest


class TestHalftoneContract(BackendContract):
    backend_name = "halftone"

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        overrides.setdefault("backend_settings", {"pose_matching": "overlap"})  # no torch import
        return super().make_request(seed, **overrides)

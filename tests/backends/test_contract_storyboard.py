"""The storyboard backend passes the backend contract, directly and through the engine."""

from typing import Any

from contract import BackendContract

from comic_studio.generation.request import GenerationRequest


class TestStoryboardContract(BackendContract):
    backend_name = "storyboard"

    def make_request(self, seed: int = 7, **overrides: Any) -> GenerationRequest:
        # Word-overlap pose matching keeps the contract fast (MiniLM would import torch); the
        # matcher is a setting like any other, so the contract still covers the whole path.
        overrides.setdefault("backend_settings", {"pose_matching": "overlap"})
        return super().make_request(seed, **overrides)

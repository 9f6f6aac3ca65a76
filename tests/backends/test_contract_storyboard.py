"""The storyboard backend passes the backend contract, directly and through the engine."""

import pytest

from comic_studio.testing.contract import BackendContract


class TestStoryboardContract(BackendContract):
    backend_name = "storyboard"

    @pytest.fixture
    def quick_settings(self):
        # Word-overlap pose matching keeps the contract fast (MiniLM would import torch); the
        # matcher is a setting like any other, so the contract still covers the whole path.
        return {"pose_matching": "overlap"}

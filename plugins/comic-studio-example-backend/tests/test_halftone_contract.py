"""The example plugin passes the same backend contract as the built-ins, directly and in the Engine."""

import pytest

from comic_studio.testing.contract import BackendContract


class TestHalftoneContract(BackendContract):
    backend_name = "halftone"

    @pytest.fixture
    def quick_settings(self):
        return {"pose_matching": "overlap"}  # no torch import

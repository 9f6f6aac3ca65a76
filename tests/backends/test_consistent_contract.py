"""The consistent backend passes the engine's backend contract (tiny kit, anchors built in the job)."""

from __future__ import annotations

import pytest

from comic_studio.testing.contract import BackendContract


class TestConsistentBackendContract(BackendContract):
    backend_name = "consistent"
    backend_target = "comic_studio.backends.consistent:ConsistentBackend"

    @pytest.fixture
    def quick_settings(self, tiny_kit):
        return {"model": str(tiny_kit.sdxl), "steps": 3, "anchor_size": 64, "start_step": 1, "preview_every": 1}

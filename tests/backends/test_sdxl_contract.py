"""The sdxl backend passes the engine's backend contract on the tiny kit, directly and through the
engine."""

from __future__ import annotations

import pytest

from comic_studio.testing.contract import BackendContract


class TestSdxlContract(BackendContract):
    backend_name = "sdxl"
    backend_target = "comic_studio.backends.sdxl:SdxlBackend"
    reports_heads = False  # plain text-to-image: it cannot tell where it drew the characters

    @pytest.fixture
    def quick_settings(self, tiny_kit):
        return {"model": str(tiny_kit.sdxl), "steps": 3, "preview_every": 1}

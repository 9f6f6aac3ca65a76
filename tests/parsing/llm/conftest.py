"""Tiny GGUF fixtures: written once per session by tiny_gguf.py (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_gguf import write_tiny_gguf


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A terse random-weight llama GGUF with a chat template (valid JSON under a grammar)."""
    pytest.importorskip("llama_cpp")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")

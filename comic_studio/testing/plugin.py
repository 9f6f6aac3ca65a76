"""The pytest plugin of Comic Studio (entry point group ``pytest11``): fixtures for backend tests.

Installed Comic Studio registers it by itself; the repository's own test run names it with ``-p``
(pyproject ``addopts``), which finds the same entry point when it is installed, so it is never
registered twice. Loading it is cheap: torch is imported only by a fixture that needs it.

- ``tiny_kit`` (session): the tiny random-weight model kit (:mod:`comic_studio.testing.tiny`), built
  once per test session; tests that need it are skipped where torch or diffusers are missing.
- ``sd15_kit`` (session): the tiny SD 1.5 kit of the AnimeAdapter tests
  (:mod:`comic_studio.testing.tiny_sd15`: base, image encoder, adapter, ControlNet, T2I-Adapter).
- ``restore_default_settings``: after the test, the backends' process-wide default settings are
  back to the declared ones and ``COMIC_STUDIO_SDXL_MODEL`` to what it was (``--models tiny``
  changes both).
- ``tiny_models``: the ``--models tiny`` preset applied with the session's kit, undone afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# The contract's asserts are the messages a backend author reads: rewrite them like a test's.
pytest.register_assert_rewrite("comic_studio.testing.contract")


@pytest.fixture(scope="session")
def tiny_kit(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The :class:`~comic_studio.testing.tiny.TinyKit` of this session (built once, about 15 MB)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from comic_studio.testing.tiny import build_tiny_kit

    # One thread: on a small shared CI box, OpenMP threads fighting other processes make a 0.2 s
    # tiny generation take seconds.
    torch.set_num_threads(1)
    return build_tiny_kit(tmp_path_factory.getbasetemp() / "tiny-kit")


@pytest.fixture(scope="session")
def sd15_kit(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The :class:`~comic_studio.testing.tiny_sd15.TinySd15Kit` of this session (built once, a few MB)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from comic_studio.testing.tiny_sd15 import build_tiny_sd15_kit

    torch.set_num_threads(1)  # as tiny_kit
    return build_tiny_sd15_kit(tmp_path_factory.getbasetemp() / "tiny-sd15")


@pytest.fixture
def restore_default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo, after the test, what ``--models tiny`` (or ``set_default_settings``) changed for the
    whole process, so no later test renders with another test's defaults."""
    from comic_studio.generation.backend_api import reset_default_settings
    from comic_studio.generation.models.sdxl import DEFAULT_SDXL_ENV

    monkeypatch.delenv(DEFAULT_SDXL_ENV, raising=False)  # monkeypatch puts the old value back
    yield
    reset_default_settings()


@pytest.fixture
def tiny_models(tiny_kit: Any, restore_default_settings: None) -> Any:
    """``--models tiny`` for this test: the session's kit is the default model set of the sdxl,
    consistent and racig backends, at a few steps. Returns the kit."""
    from comic_studio.testing.tiny import use_tiny_models

    return use_tiny_models(tiny_kit.root)

"""The backend registry: real entry points, in-process plugins, and broken plugins isolated."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
import textwrap

import pytest

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.generation import registry
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.plugin_loading import PROBE_CACHE_ENV
from comic_studio.generation.registry import (
    BackendNotFoundError,
    available_backends,
    get_backend,
    plugin_errors,
    register_backend,
    unregister_backend,
)
from comic_studio.generation.request import GenerationRequest, GenerationResult


class EchoBackend(GenerationBackend):
    name = "echo"
    display_name = "Echo"
    capabilities = frozenset({"txt2img"})

    def generate(self, request: GenerationRequest, on_step=None) -> GenerationResult:
        from PIL import Image

        return GenerationResult([Image.new("RGB", (request.width, request.height))], request.seed, self.name)


@pytest.fixture(autouse=True)
def clean_registry():
    registry.refresh()
    yield
    for name in ("echo", "broken_inproc", "not_a_backend", "raises_at_import"):
        unregister_backend(name)
    registry.refresh()


def test_storyboard_is_found_through_its_installed_entry_point():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert eps.get("storyboard") == "comic_studio.backends.storyboard:StoryboardBackend", (
        "run `pip install -e .` so the package's entry points are installed"
    )
    assert available_backends()["storyboard"] is StoryboardBackend
    backend = get_backend("storyboard")
    assert isinstance(backend, StoryboardBackend)
    assert "storyboard" in backend.capabilities
    assert "storyboard" not in plugin_errors()


def test_in_process_registration_and_removal():
    register_backend("echo", EchoBackend)
    assert available_backends()["echo"] is EchoBackend
    result = get_backend("echo").generate(GenerationRequest(width=32, height=16))
    assert result.images[0].size == (32, 16)
    unregister_backend("echo")
    with pytest.raises(BackendNotFoundError, match="no backend named 'echo'.*storyboard"):
        get_backend("echo")


def test_import_string_registration_resolves_lazily():
    register_backend("echo", "comic_studio.backends.storyboard:StoryboardBackend")
    assert available_backends()["echo"] is StoryboardBackend


def test_broken_in_process_plugins_are_recorded_and_skipped(caplog):
    register_backend("broken_inproc", "comic_studio_no_such_module_xyz:Backend")
    register_backend("not_a_backend", "comic_studio.core.model:Panel")
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        names = available_backends()
        names_again = available_backends()  # cached: no second attempt, no second log line
    assert "storyboard" in names and "broken_inproc" not in names and "not_a_backend" not in names
    assert names == names_again
    errors = plugin_errors()
    assert (
        "ModuleNotFoundError" in errors["broken_inproc"]
        and "comic_studio_no_such_module_xyz" in errors["broken_inproc"]
    )
    assert "not a GenerationBackend" in errors["not_a_backend"]
    assert sum("broken_inproc" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(BackendNotFoundError, match="failed to load.*ModuleNotFoundError"):
        get_backend("broken_inproc")


def test_broken_installed_entry_point_never_blocks_start_up(tmp_path, monkeypatch):
    """A real distribution on sys.path whose entry point module raises at import."""
    dist = tmp_path / "broken_comic_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-comic-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[comic_studio.backends]\nraises_at_import = broken_comic_plugin_mod:Backend\n"
    )
    (tmp_path / "broken_comic_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            raise RuntimeError("this plugin needs a GPU driver that is not installed")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PROBE_CACHE_ENV, str(tmp_path / "probes.json"))  # not the user's cache
    importlib.invalidate_caches()
    eps = [ep.name for ep in importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP)]
    assert "raises_at_import" in eps
    registry.refresh()
    names = available_backends()
    assert "storyboard" in names and "raises_at_import" not in names
    assert "RuntimeError: this plugin needs a GPU driver" in plugin_errors()["raises_at_import"]
    assert "broken_comic_plugin_mod" not in sys.modules


def test_register_backend_rejects_empty_name():
    with pytest.raises(ValueError):
        register_backend("", EchoBackend)


def test_has_capability_reads_the_installed_backend_and_is_false_for_unknown_ones():
    from comic_studio.generation.registry import has_capability

    assert has_capability("storyboard", "pose") and has_capability("racig", "pose")
    assert not has_capability("sdxl", "pose")
    assert has_capability("consistent", "consistent_characters")
    assert not has_capability("no-such-backend", "pose")


def test_backends_with_lists_the_loaded_backends_declaring_a_capability():
    from comic_studio.generation.registry import backends_with, get_backend_class

    drawing_poses = backends_with("pose")
    assert {"storyboard", "racig"} <= set(drawing_poses) and "sdxl" not in drawing_poses
    assert list(drawing_poses) == sorted(drawing_poses)
    assert drawing_poses["storyboard"] is get_backend_class("storyboard")
    assert backends_with("no-such-capability") == {}


def test_the_plugin_api_is_importable_from_the_backends_package():
    import comic_studio.backends as api

    assert all(hasattr(api, name) for name in api.__all__)
    assert api.GenerationBackend is GenerationBackend and api.get_backend is get_backend

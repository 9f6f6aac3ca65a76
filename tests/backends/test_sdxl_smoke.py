"""The `--models tiny` smoke preset through the real pipeline, and the two SDXL benchmarks start."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from comic_studio.backends.sdxl.backend import SdxlBackend  # noqa: E402
from comic_studio.generation.models.sdxl import DEFAULT_SDXL_ENV  # noqa: E402
from comic_studio.generation.registry import register_backend, unregister_backend  # noqa: E402
from comic_studio.testing.tiny import TINY_STEPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sdxl_registered():
    register_backend("sdxl", SdxlBackend)
    yield
    unregister_backend("sdxl")


@pytest.fixture
def tiny(sdxl_registered, tiny_models):
    """``--models tiny`` with the session's kit (undone after the test)."""
    return tiny_models


def test_tiny_preset_renders_a_story_end_to_end(tiny, tmp_path):
    import os

    from comic_studio.workflows.batch import render_input

    assert os.environ[DEFAULT_SDXL_ENV] == str(tiny.sdxl)
    assert SdxlBackend.default_settings()["steps"] == TINY_STEPS
    story = tmp_path / "story.txt"
    story.write_text('Mara walked along the harbour wall.\n\n"Look at the storm," Mara said.\n', encoding="utf-8")
    out = render_input(story, tmp_path / "pages", backend="sdxl", save_project_to=tmp_path / "s.comic")
    pages = sorted(out.glob("page-*.png"))
    assert pages and Image.open(pages[0]).size[0] > 500
    from comic_studio.core.document import Document

    doc = Document.open(tmp_path / "s.comic")
    panels = [p for page in doc.project.pages for p in page.panels]
    results = [p.result() for p in panels if p.results]
    assert results, "every rendered panel stores its result"
    req = results[0].request
    assert req["backend"] == "sdxl" and req["backend_settings"]["model"] == str(tiny.sdxl)
    assert req["backend_settings"]["steps"] == TINY_STEPS


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_sdxl_vs_diffusers_runs(tiny_kit, tmp_path):
    bench = _load("sdxl_vs_diffusers")
    result = bench.main(["--runs", "2", "--kit", str(tiny_kit.root),
                         "--out", str(tmp_path / "b.json")])  # fmt: skip
    assert result["switch_reloads"] == 0
    assert result["raw_s"] > 0 and result["engine_s"] > 0
    assert (tmp_path / "b.json").is_file()


def test_bench_gpu_sdxl_smoke_and_full_config(tmp_path):
    bench = _load("gpu_sdxl")
    result = bench.main(["--smoke"])
    assert result["smoke"] and result["raw_image_s"] > 0 and result["engine_image_s"] > 0
    unet = bench.full_size_models("meta")["unet"]  # the bundled full-size config: 2.57 B UNet parameters
    assert 2_500 < sum(p.numel() for p in unet.parameters()) / 1e6 < 2_650

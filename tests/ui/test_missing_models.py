"""No weights is not a dead end: a render whose backend lacks models queues nothing for those
panels and says, once, which models are missing (all of them, with the total size) with an
"Open Models…" button; the inspector's backend chooser marks backends that cannot run here and
says why. No message asks the author to type a command."""

from __future__ import annotations

import re

import pytest
from render_helpers import all_panels, small_document

from comic_studio.core import editing
from comic_studio.core.settings import AppSettings
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.models.sdxl import DEFAULT_SDXL_ENV
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.ui.inspector import PanelInspector
from comic_studio.ui.main_window import MainWindow
from comic_studio.ui.render_service import RenderService
from comic_studio.weights.catalogue import load_catalogue
from comic_studio.weights.locate import Places
from comic_studio.weights.needs import ModelNeed, human_size

SHELL = re.compile(r"`|\bpip\b|comic-studio |\$ ")


class NeedsWeights(GenerationBackend):
    """Declares the same needs as RaCig's models (an SDXL base, a ControlNet, an IP-Adapter and
    its image encoder), so the message must list and add up several downloads."""

    name = "test-needs-weights"
    display_name = "Needs weights"
    required_models = (
        ModelNeed("sdxl", "an SDXL base model", "sdxl-base-1.0", setting="model", interchangeable=True),
        ModelNeed("controlnet", "the OpenPose ControlNet for SDXL", "controlnet-openpose-sdxl"),
        ModelNeed("ipadapter", "IP-Adapter Plus-Face", "ip-adapter-plus-face-sdxl-vit-h"),
    )

    @classmethod
    def settings_schema(cls):
        return {"model": {"type": "str", "default": "", "max_length": 500, "label": "Model"}}

    def generate(self, request, on_step=None):  # pragma: no cover - never queued
        raise AssertionError("a backend without its models must not be asked to render")


@pytest.fixture
def needs_weights(monkeypatch, tmp_path):
    monkeypatch.delenv(DEFAULT_SDXL_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # an empty cache: nothing installed
    register_backend(NeedsWeights.name, NeedsWeights)
    yield Places(models=tmp_path / "models", hf_cache=tmp_path / "hf-cache")
    unregister_backend(NeedsWeights.name)


def _expected_models():
    catalogue = load_catalogue()
    ids = ["sdxl-base-1.0", "controlnet-openpose-sdxl", "ip-adapter-plus-face-sdxl-vit-h"]
    entries = {r.id: r for i in ids for r in catalogue.requirements(i)}
    return list(entries.values())


def test_render_all_names_every_missing_model_once_and_queues_the_rest(ctx, qtbot, needs_weights):
    ctx.set_document(small_document())
    service = RenderService(ctx)
    service.model_places = needs_weights
    try:
        panels = all_panels(ctx.document)
        for panel in panels[:2]:
            ctx.edit(editing.set_panel_fields, panel.id, "Backend", backend=NeedsWeights.name, backend_settings={})
        reports: list[str] = []
        service.models_missing.connect(reports.append)
        jobs = service.render_all()
        assert len(jobs) == len(panels) - 2  # the storyboard panels go ahead
        assert len(reports) == 1
        text = reports[0]
        assert text.startswith("2 panels could not be queued: Needs weights cannot run on this computer yet.")
        expected = _expected_models()
        for entry in expected:
            assert entry.name in text
        total = sum(e.size or 0 for e in expected)
        assert f"In all {len(expected)} models, {human_size(total)}" in text
        assert "Models window" in text and not SHELL.search(text)
        qtbot.waitUntil(service.is_idle, timeout=30_000)
        assert all(not p.results for p in all_panels(ctx.document)[:2])
    finally:
        service.shutdown()


def test_the_window_offers_the_models_dialog(qtbot, tmp_path, monkeypatch, needs_weights):
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    window = MainWindow(settings=AppSettings(projects_folder=str(tmp_path), models_folder=str(tmp_path / "models")))
    qtbot.addWidget(window)
    asked: list[tuple[str, str, tuple]] = []

    def ask(title, text, buttons, default=None):
        asked.append((title, text, buttons))
        return "Open Models…" if title == "Models needed" else "Discard"

    monkeypatch.setattr(window, "ask", ask)
    window._replace_document(small_document())
    window.render_service.model_places = needs_weights
    panel = window.ctx.current_page.panels_in_order()[0]
    window.ctx.edit(editing.set_panel_fields, panel.id, "Backend", backend=NeedsWeights.name, backend_settings={})
    assert window.render_service.render_panels([panel.id]) == []
    [(title, text, buttons)] = asked
    assert title == "Models needed" and buttons == ("Open Models…", "Close")
    assert "Stable Diffusion XL" in text and not SHELL.search(text)
    assert window.models_dialog.isVisible()
    window.models_dialog.close()
    window.render_service.shutdown()
    window.ctx.undo_stack.setClean()


def test_the_backend_chooser_says_which_backends_can_run_here(qtbot, ctx, needs_weights, shots):
    ctx.set_document(small_document())
    inspector = PanelInspector(ctx)
    qtbot.addWidget(inspector)
    inspector.resize(420, 900)
    inspector.show()
    panel = all_panels(ctx.document)[0]
    ctx.edit(editing.set_panel_fields, panel.id, "Backend", backend=NeedsWeights.name, backend_settings={})
    ctx.select_panels([panel.id])
    combo = inspector.backend
    index = combo.findData(NeedsWeights.name)
    assert combo.itemText(index) == "Needs weights — needs models"
    tip = combo.itemData(index, 3)  # Qt.ToolTipRole
    assert tip.startswith("Cannot run here yet: Needs weights needs ") and "GB to download" in tip
    storyboard = combo.findData("storyboard")
    assert combo.itemText(storyboard) == "Storyboard (mannequins)"
    assert combo.itemData(storyboard, 3) == "Can run on this computer"
    error = inspector.settings.error_text()
    assert error.startswith("Needs weights cannot run on this computer yet: it needs ")
    assert "Edit ▸ Models…" in error
    inspector.grab().save(str(shots / "inspector_needs_models.png"))
    assert not SHELL.search(tip) and not SHELL.search(error)
    inspector.shutdown()

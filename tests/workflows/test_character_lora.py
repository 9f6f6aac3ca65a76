"""A character's trained LoRA is applied while the character is in a panel (StoryBooth: LoRA and
consistent attention), recorded in the stored request by its hash only, and replayed exactly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from anchor_helpers import cid, make_document, tiny_settings  # noqa: E402

from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.errors import ComicStudioError  # noqa: E402
from comic_studio.generation.registry import get_backend  # noqa: E402
from comic_studio.generation.request import GenerationRequest  # noqa: E402
from comic_studio.testing.tiny import write_tiny_lora  # noqa: E402
from comic_studio.workflows.batch import render_panel  # noqa: E402
from comic_studio.workflows.requests import CHARACTER_LORAS_SETTING, build_request, hydrate_request  # noqa: E402


def lora_file(tmp_path) -> bytes:
    return write_tiny_lora(tmp_path / "ana.safetensors").read_bytes()


def _pixels(doc, result) -> np.ndarray:
    return np.asarray(doc.assets.open_image(result.asset).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("backend", ["sdxl", "consistent", "racig"])
def test_a_characters_lora_changes_its_panels_and_replays_exactly(
    tiny_kit, tiny_models, tmp_path, monkeypatch, backend
):
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    doc = make_document(tiny_kit)
    panel = doc.project.pages[0].panels[0]  # Ana alone
    settings = tiny_settings(tiny_kit)
    if backend == "sdxl":  # the anchor settings are the consistent backend's
        settings = {k: v for k, v in settings.items() if k not in ("anchor_size", "start_step")}
    if backend == "racig":  # the tiny kit's preset (use_tiny_models) supplies its other models
        settings = {"steps": 3, "preview_every": 0, "size": "panel", "max_side": 64}
    panel.backend, panel.backend_settings = backend, settings
    plain = _pixels(doc, render_panel(doc, panel.id))

    asset = doc.assets.add(lora_file(tmp_path), validate_image=False)
    character_edits.update_character(doc, cid(doc, "Ana"), lora_asset=asset)
    result = render_panel(doc, panel.id)
    with_lora = _pixels(doc, result)
    assert np.abs(with_lora - plain).mean() > 1  # the LoRA shapes Ana's panel

    stored = result.request
    assert stored["characters"][0]["lora"] == asset
    assert CHARACTER_LORAS_SETTING not in stored["backend_settings"]  # no path of this machine is stored
    replay = hydrate_request(GenerationRequest.from_dict(stored), doc.assets)
    assert asset in replay.backend_settings[CHARACTER_LORAS_SETTING]
    engine = get_backend(backend)
    again = engine.generate(
        replay.model_copy(update={"backend_settings": engine.validate_settings(replay.backend_settings)})
    )
    assert np.array_equal(np.asarray(again.image.convert("RGB"), dtype=np.int16), with_lora)

    # The LoRA is taken off again: the next panel without Ana renders as before the LoRA existed.
    character_edits.update_character(doc, cid(doc, "Ana"), lora_asset=None)
    assert np.array_equal(_pixels(doc, render_panel(doc, panel.id)), plain)


def test_a_disabled_or_zero_strength_lora_renders_as_without_one(tiny_kit, tiny_models, tmp_path, monkeypatch):
    """The studio's per-character switch and strength: disabled sends no LoRA at all, so the
    panel equals the one rendered before the LoRA existed; the strength reaches the backend."""
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    doc = make_document(tiny_kit)
    panel = doc.project.pages[0].panels[0]  # Ana alone
    settings = tiny_settings(tiny_kit)
    panel.backend = "sdxl"
    panel.backend_settings = {k: v for k, v in settings.items() if k not in ("anchor_size", "start_step")}
    plain = _pixels(doc, render_panel(doc, panel.id))
    asset = doc.assets.add(lora_file(tmp_path), validate_image=False)
    ana = cid(doc, "Ana")
    character_edits.update_character(doc, ana, lora_asset=asset, lora_enabled=False)
    assert build_request(doc.project, panel, None, doc.assets).characters[0].lora is None
    assert np.array_equal(_pixels(doc, render_panel(doc, panel.id)), plain)
    character_edits.update_character(doc, ana, lora_enabled=True)
    full = _pixels(doc, render_panel(doc, panel.id))
    character_edits.update_character(doc, ana, lora_scale=0.5)
    assert build_request(doc.project, panel, None, doc.assets).characters[0].lora_scale == 0.5
    half = _pixels(doc, render_panel(doc, panel.id))
    assert np.abs(full - plain).mean() > np.abs(half - plain).mean() > 0  # half the LoRA: nearer to none


def test_backends_without_loras_get_no_lora_setting_and_a_missing_lora_is_named(tiny_kit, tmp_path):
    doc = make_document(tiny_kit)
    panel = doc.project.pages[0].panels[0]
    panel.backend, panel.backend_settings = "storyboard", {}
    character_edits.update_character(doc, cid(doc, "Ana"), lora_asset="ab" * 32)
    assert CHARACTER_LORAS_SETTING not in build_request(doc.project, panel, None, doc.assets).backend_settings
    panel.backend = "sdxl"
    # In neither the project nor the LoRA library (where a big one would be): named, with what to do.
    with pytest.raises(ComicStudioError, match="Ana's LoRA abababababab… is neither in the project nor"):
        build_request(doc.project, panel, None, doc.assets)

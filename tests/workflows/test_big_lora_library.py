"""A LoRA over the project's asset limit lives in the user's LoRA library folder by its hash: it is
stored there (not in the project), renders, survives save and reopen, travels with a character
library, and a machine without the file gets one clear message naming the character and the hash.
The limit is lowered so that the tiny LoRA is "big" (the real one is 64 MB)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from anchor_helpers import cid, make_document, tiny_settings  # noqa: E402

from comic_studio.core import model as core_model  # noqa: E402
from comic_studio.core.character_file import load_characters, save_characters  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.lora_library import MissingLoraError, character_lora_header  # noqa: E402
from comic_studio.testing.tiny import write_tiny_lora  # noqa: E402
from comic_studio.workflows.batch import render_panel  # noqa: E402
from comic_studio.workflows.training import (  # noqa: E402
    TrainingOutcome,
    TrainingPlan,
    checkpoint_path,
    export_character_lora,
    lora_card,
    store_trained_lora,
)


def _pixels(doc, result) -> np.ndarray:
    return np.asarray(doc.assets.open_image(result.asset).convert("RGB"), dtype=np.int16)


@pytest.fixture
def big(tmp_path, monkeypatch):
    """The tiny LoRA's bytes, with the project's limit just below their size and the library in tmp."""
    data = write_tiny_lora(tmp_path / "ana.safetensors").read_bytes()
    monkeypatch.setattr(core_model, "MAX_ASSET_BYTES", len(data) - 1)
    monkeypatch.setenv("COMIC_STUDIO_LORA_DIR", str(tmp_path / "loras"))
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    return data


def test_a_big_lora_is_kept_in_the_library_renders_and_survives_reopening(tiny_kit, tiny_models, tmp_path, big):
    doc = make_document(tiny_kit)
    panel = doc.project.pages[0].panels[0]  # Ana alone
    panel.backend = "sdxl"
    panel.backend_settings = {
        k: v for k, v in tiny_settings(tiny_kit).items() if k not in ("anchor_size", "start_step")
    }
    plain = _pixels(doc, render_panel(doc, panel.id))

    ana = cid(doc, "Ana")
    # What a finished run hands over (training itself is tested on its own): the storing step.
    plan = TrainingPlan(doc.project.id, ana, "Ana", "sks woman", (), checkpoint_path(doc.project.id, ana))
    stored = store_trained_lora(doc, plan, TrainingOutcome(big, 2, 0.1))
    digest = hashlib.sha256(big).hexdigest()
    assert stored.asset == digest and stored.size == len(big)
    library_file = tmp_path / "loras" / f"{digest}.safetensors"
    assert library_file.read_bytes() == big
    assert digest not in doc.assets and digest not in doc.project.asset_refs()  # not in the project
    character = doc.project.character(ana)
    assert character.lora_bytes == len(big) and not character.lora_in_project

    with_lora = _pixels(doc, render_panel(doc, panel.id))
    assert np.abs(with_lora - plain).mean() > 1  # the library's LoRA shapes Ana's panel

    path = doc.save(tmp_path / "story.comic")
    reopened = Document.open(path)
    again = reopened.project.character(ana)
    assert (again.lora_asset, again.lora_bytes) == (digest, len(big))
    assert np.array_equal(_pixels(reopened, render_panel(reopened, panel.id)), with_lora)
    data, problem = character_lora_header(reopened.assets, again)  # the card's source: the header only
    assert problem == "" and data is not None and lora_card(data) == lora_card(big)
    files = export_character_lora(reopened, ana, tmp_path / "export")
    from safetensors.torch import load, load_file

    written, held = load_file(str(files.diffusers)), load(big)
    assert written.keys() == held.keys() and all(torch.equal(written[k], held[k]) for k in held)

    # A character library carries the file; importing it on a machine whose library lacks it puts
    # it back in the library (still over the limit), not in the project.
    save_characters(tmp_path / "lib", [again], reopened.assets)
    assert (tmp_path / "lib" / "loras" / f"{digest}.safetensors").read_bytes() == big
    library_file.unlink()
    fresh = Document.new(title="Elsewhere")
    (imported,) = load_characters(tmp_path / "lib" / "characters.json", fresh.assets)
    assert (imported.lora_asset, imported.lora_bytes) == (digest, len(big)) and digest not in fresh.assets
    assert library_file.read_bytes() == big


def test_a_machine_without_the_library_file_gets_one_clear_message(tiny_kit, tiny_models, tmp_path, big, monkeypatch):
    from comic_studio.core import character_edits

    doc = make_document(tiny_kit)
    panel = doc.project.pages[0].panels[0]
    panel.backend = "sdxl"
    panel.backend_settings = {
        k: v for k, v in tiny_settings(tiny_kit).items() if k not in ("anchor_size", "start_step")
    }
    digest = hashlib.sha256(big).hexdigest()
    ana = cid(doc, "Ana")
    character_edits.update_character(doc, ana, lora_asset=digest, lora_bytes=len(big))  # trained elsewhere
    path = doc.save(tmp_path / "story.comic")
    reopened = Document.open(path)  # opens: the project does not hold the file, so it misses nothing
    character = reopened.project.character(ana)
    with pytest.raises(MissingLoraError) as missing:
        render_panel(reopened, panel.id)
    text = str(missing.value)
    assert "Ana's LoRA" in text and digest in text and "retrain" in text and str(tmp_path / "loras") in text
    with pytest.raises(MissingLoraError, match="Ana's LoRA"):
        export_character_lora(reopened, ana, tmp_path / "export")
    data, problem = character_lora_header(reopened.assets, character)
    assert data is None and digest in problem
    with pytest.raises(MissingLoraError, match="Ana's LoRA"):
        save_characters(tmp_path / "lib", [character], reopened.assets)
    # A changed file in the library is not taken for the LoRA.
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / f"{digest}.safetensors").write_bytes(big[:-1] + b"x")
    with pytest.raises(Exception, match="contents changed"):
        export_character_lora(reopened, ana, tmp_path / "export")

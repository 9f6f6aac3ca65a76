"""``comic-studio train export-lora``: a character's LoRA leaves the project as the diffusers file, the
kohya file ComfyUI/A1111 load, and its card — and the kohya file renders exactly as the diffusers
file through the app's own LoRA loader."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from comic_studio.cli import main  # noqa: E402
from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.testing.tiny import tiny_sdxl_components, write_tiny_lora  # noqa: E402


@pytest.fixture
def project(tmp_path):
    doc = Document.new(title="Export")
    mara = character_edits.add_character(doc, name="Mara Lin")
    data = write_tiny_lora(tmp_path / "mara.safetensors", seed=5).read_bytes()
    character_edits.update_character(doc, mara.id, lora_asset=doc.assets.add(data, validate_image=False))
    character_edits.add_character(doc, name="Nobody")
    return doc.save(tmp_path / "story.comic")


def _render(pipe):
    return pipe("a photo of sks woman", num_inference_steps=2, height=64, width=64, guidance_scale=1.0,
                generator=torch.Generator().manual_seed(5), output_type="np").images[0]  # fmt: skip


def test_the_kohya_file_renders_as_the_diffusers_file(project, tmp_path, capsys):
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import load_file

    from comic_studio.generation.models.loading import apply_loras, remove_loras

    out = tmp_path / "for-comfy"
    assert main(["train", "export-lora", str(project), "--character", "Mara Lin", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    kohya, diffusers, card = out / "Mara_Lin.kohya.safetensors", out / "Mara_Lin.safetensors", out / "Mara_Lin.json"
    assert str(kohya) in printed and kohya.is_file() and diffusers.is_file()
    keys = set(load_file(str(kohya)))
    assert keys and all(k.startswith("lora_unet_") for k in keys) and any(k.endswith(".alpha") for k in keys)
    doc = Document.open(project)
    mara = next(c for c in doc.project.characters if c.name == "Mara Lin")
    from safetensors.torch import load

    held, written = load(doc.assets.get(mara.lora_asset)), load_file(str(diffusers))
    assert held.keys() == written.keys() and all(torch.equal(held[k], written[k]) for k in held)
    assert json.loads(card.read_text(encoding="utf-8"))["files"]["kohya"]["name"] == kohya.name

    pipe = StableDiffusionXLPipeline(**tiny_sdxl_components(0))
    pipe.set_progress_bar_config(disable=True)
    base = _render(pipe)
    rendered = []
    for path in (diffusers, kohya):
        names = apply_loras(pipe, [(path, 1.0)])  # the app's own loader, as a render job uses it
        rendered.append(_render(pipe))
        remove_loras(pipe, names)
    assert np.abs(rendered[0] - base).max() > 1e-3  # the LoRA does something
    np.testing.assert_allclose(rendered[1], rendered[0], atol=1e-5)


def test_export_refusals_name_what_and_where(project, tmp_path, capsys):
    base = ["train", "export-lora", str(project), "--out"]
    assert main([*base, str(tmp_path / "x"), "--character", "Nobody"]) == 1
    assert "'Nobody' has no trained LoRA to export" in capsys.readouterr().err
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    assert main([*base, str(blocked / "sub"), "--character", "Mara Lin"]) == 1
    err = capsys.readouterr().err
    assert "cannot export Mara Lin's LoRA" in err and str(blocked / "sub") in err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main([*base, str(locked), "--character", "Mara Lin"]) == 1
        assert not list(locked.iterdir())  # nothing half-written

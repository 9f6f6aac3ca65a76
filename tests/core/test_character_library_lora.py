"""A character library carries its characters' trained LoRAs (``loras/<hash>.safetensors``) and no
identity anchors, and importing it brings the LoRA into the project."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from comic_studio.core.assets import AssetStore
from comic_studio.core.character_file import load_characters, save_characters
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character


def _safetensors(payload: str = "x") -> bytes:
    header = json.dumps({"__metadata__": {"comic_studio.card": json.dumps({"trigger": payload})}}).encode()
    return len(header).to_bytes(8, "little") + header


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    return buf.getvalue()


def test_a_library_round_trips_the_lora_and_leaves_the_anchor(tmp_path):
    assets = AssetStore()
    lora = assets.add(_safetensors("sks woman"), validate_image=False)
    face = assets.add(_png())
    mara = Character(name="Mara", face_refs=[face], lora_asset=lora, lora_scale=0.6)
    save_characters(tmp_path / "lib", [mara, Character(name="Nobody")], assets)

    written = json.loads((tmp_path / "lib" / "characters.json").read_text(encoding="utf-8"))["characters"]
    assert written[0]["lora_asset"] == f"loras/{lora}.safetensors" and "anchor" not in written[0]
    assert written[1]["lora_asset"] is None
    fresh = AssetStore()
    [loaded, nobody] = load_characters(tmp_path / "lib" / "characters.json", fresh)
    assert loaded.lora_asset == lora and fresh.get(lora) == _safetensors("sks woman")
    assert loaded.lora_scale == 0.6 and nobody.lora_asset is None


def test_a_lora_that_is_not_safetensors_or_points_outside_is_refused(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "fake.safetensors").write_bytes(b"<html>login</html>")
    (tmp_path / "outside.safetensors").write_bytes(_safetensors())
    for ref, problem in (
        ("fake.safetensors", "not a .safetensors LoRA"),
        ("../outside.safetensors", "outside its folder"),
    ):
        (lib / "characters.json").write_text(json.dumps({"characters": [{"name": "Mara", "lora_asset": ref}]}))
        with pytest.raises(ComicStudioError, match=problem) as info:
            load_characters(lib / "characters.json", AssetStore())
        assert "lora_asset" in str(info.value)

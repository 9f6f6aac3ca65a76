"""A character library carries its characters' learned identity tokens
(``identities/<hash>.safetensors``), and importing it brings them into the project."""

from __future__ import annotations

import json

import pytest

from comic_studio.core.assets import AssetStore
from comic_studio.core.character_file import load_characters, save_characters
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character


def _safetensors(payload: str) -> bytes:
    header = json.dumps({"__metadata__": {"comic_studio.card": json.dumps({"method": payload})}}).encode()
    return len(header).to_bytes(8, "little") + header


def test_a_library_round_trips_the_identity_tokens(tmp_path):
    assets = AssetStore()
    identity = assets.add(_safetensors("stableidentity-sdxl"), validate_image=False)
    emma = Character(name="Emma", identity_asset=identity, identity_enabled=False)
    save_characters(tmp_path / "lib", [emma, Character(name="Nobody")], assets)

    written = json.loads((tmp_path / "lib" / "characters.json").read_text(encoding="utf-8"))["characters"]
    assert written[0]["identity_asset"] == f"identities/{identity}.safetensors"
    assert written[1]["identity_asset"] is None and written[0]["lora_asset"] is None
    fresh = AssetStore()
    [loaded, nobody] = load_characters(tmp_path / "lib" / "characters.json", fresh)
    assert loaded.identity_asset == identity and fresh.get(identity) == _safetensors("stableidentity-sdxl")
    assert loaded.identity_enabled is False and nobody.identity_asset is None


def test_an_identity_file_that_is_not_safetensors_is_refused(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "fake.safetensors").write_bytes(b"<html>login</html>")
    (lib / "characters.json").write_text(
        json.dumps({"characters": [{"name": "Emma", "identity_asset": "fake.safetensors"}]})
    )
    with pytest.raises(ComicStudioError, match=r"identity_asset.*not a \.safetensors identity file"):
        load_characters(lib / "characters.json", AssetStore())

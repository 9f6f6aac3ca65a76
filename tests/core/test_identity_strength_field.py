"""A character's identity strength (``identity_scale``) is a field like the LoRA's strength: undoable,
validated 0..2, kept by character libraries (the CLI's cast.json included) and by project files, and
a project saved before it existed opens with 1 (the trained tokens as they are)."""

from __future__ import annotations

import json

import pytest
from comic_fixtures import members_of, replace_member

from comic_studio.core import character_edits
from comic_studio.core.assets import AssetStore
from comic_studio.core.character_file import load_characters, save_characters
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError, CommandError
from comic_studio.core.model import Character
from comic_studio.core.projectfile import load_project, save_project


def _safetensors() -> bytes:
    header = json.dumps({"__metadata__": {"comic_studio.card": json.dumps({"method": "test"})}}).encode()
    return len(header).to_bytes(8, "little") + header


def test_the_strength_is_one_undoable_edit_and_refused_out_of_range():
    doc = Document.new()
    emma = character_edits.add_character(doc, name="Emma")
    assert emma.identity_scale == 1.0
    character_edits.update_character(doc, emma.id, identity_scale=0.4)
    assert doc.project.character(emma.id).identity_scale == 0.4
    doc.undo()
    assert doc.project.character(emma.id).identity_scale == 1.0
    with pytest.raises(CommandError, match="identity_scale"):
        character_edits.update_character(doc, emma.id, identity_scale=2.5)
    assert doc.project.character(emma.id).identity_scale == 1.0


def test_a_library_keeps_the_strength_and_a_cast_file_may_set_it(tmp_path):
    assets = AssetStore()
    identity = assets.add(_safetensors(), validate_image=False)
    save_characters(tmp_path / "lib", [Character(name="Emma", identity_asset=identity, identity_scale=0.35)], assets)
    written = json.loads((tmp_path / "lib" / "characters.json").read_text(encoding="utf-8"))["characters"]
    assert written[0]["identity_scale"] == 0.35
    [loaded] = load_characters(tmp_path / "lib" / "characters.json", AssetStore())
    assert (loaded.identity_scale, loaded.identity_asset) == (0.35, identity)

    # The README's hand-written format: a file beside the JSON and a strength; a bad one is named.
    (tmp_path / "cast").mkdir()
    (tmp_path / "cast" / "ana.safetensors").write_bytes(_safetensors())
    cast = tmp_path / "cast" / "cast.json"
    cast.write_text(json.dumps([{"name": "Ana", "identity_asset": "ana.safetensors", "identity_scale": 1.5}]))
    [ana] = load_characters(cast, AssetStore())
    assert ana.identity_scale == 1.5 and ana.identity_asset is not None
    cast.write_text(json.dumps([{"name": "Ana", "identity_scale": 3}]))
    with pytest.raises(ComicStudioError, match=r"characters\[0\]\.identity_scale"):
        load_characters(cast, AssetStore())


def test_a_project_saved_before_the_field_opens_with_strength_one(tmp_path):
    assets = AssetStore()
    identity = assets.add(_safetensors(), validate_image=False)
    doc = Document.new()
    doc.project.characters.append(Character(name="Emma", identity_asset=identity, identity_scale=0.5))
    save_project(tmp_path / "new.comic", doc.project, assets)
    reopened, _assets = load_project(tmp_path / "new.comic")
    assert reopened.characters[0].identity_scale == 0.5

    data = (tmp_path / "new.comic").read_bytes()
    doc = json.loads(dict(members_of(data))["project.json"])
    del doc["characters"][0]["identity_scale"]  # as an older version wrote it
    (tmp_path / "old.comic").write_bytes(replace_member(data, "project.json", json.dumps(doc).encode()))
    old, _assets = load_project(tmp_path / "old.comic")
    assert old.characters[0].identity_scale == 1.0 and old.characters[0].identity_asset == identity

"""The command line sets a character's identity strength through the cast file (the README's
characters format), as it sets everything else about a character: ``render --characters`` keeps
``identity_scale`` in the saved project (with the cast's trained files), and a strength out of range
stops the run naming the field."""

from __future__ import annotations

import json

from comic_studio.cli import main
from comic_studio.core.projectfile import load_project

STORY = 'Mara walked into the harbour office. "Where is the key?" Mara asked.\n'


def _safetensors() -> bytes:
    header = json.dumps({"__metadata__": {"comic_studio.card": json.dumps({"method": "test"})}}).encode()
    return len(header).to_bytes(8, "little") + header


def test_render_keeps_the_cast_files_identity_strength(tmp_path, capsys):
    (tmp_path / "mara.safetensors").write_bytes(_safetensors())
    (tmp_path / "mara-lora.safetensors").write_bytes(_safetensors() + b" ")
    cast = tmp_path / "cast.json"
    mara = {"name": "Mara", "pronouns": "she", "identity_asset": "mara.safetensors", "identity_scale": 0.3,
            "lora_asset": "mara-lora.safetensors"}  # fmt: skip
    cast.write_text(json.dumps({"characters": [mara]}))
    story = tmp_path / "story.txt"
    story.write_text(STORY)
    rc = main(["render", str(story), "--characters", str(cast), "--out", str(tmp_path / "book.pdf"),
               "--save", str(tmp_path / "book.comic"), "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    project, assets = load_project(tmp_path / "book.comic")
    [character] = project.characters
    assert character.identity_scale == 0.3 and assets.get(character.identity_asset) == _safetensors()
    assert assets.get(character.lora_asset) == _safetensors() + b" "  # the cast's trained files came along

    cast.write_text(json.dumps({"characters": [{**mara, "identity_scale": 2.5}]}))
    rc = main(["render", str(story), "--characters", str(cast), "--out", str(tmp_path / "again.pdf"), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "cast.json" in err and "characters[0].identity_scale" in err
    assert not (tmp_path / "again.pdf").exists()

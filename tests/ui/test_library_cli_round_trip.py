"""The app's Library ▸ Export feeds the command line: ``render``/``parse --characters`` read the
folder it writes (image paths relative to the JSON), and the README's own hand-written format
(``"face_refs": ["mara.png"]`` next to the JSON) works the same."""

from __future__ import annotations

import io
import json

from PIL import Image

from comic_studio.cli import main
from comic_studio.core import character_edits
from comic_studio.core.model import Character
from comic_studio.core.projectfile import load_project
from comic_studio.ui.characters.io_actions import export_library

STORY = 'Mara walked into the harbour office. "Where is the key?" Mara asked.\n'


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_exported_library_renders_and_parses_with_its_pictures(ctx, tmp_path, capsys):
    face, body = _png("red"), _png("blue")
    face_hash, body_hash = ctx.document.assets.add(face), ctx.document.assets.add(body)
    mara = Character(name="Mara Vance", aliases=["Mara"], pronouns="she", face_refs=[face_hash], body_refs=[body_hash])
    ctx.edit(character_edits.import_characters, [mara])
    written = export_library(ctx, tmp_path / "exported")
    assert written is not None and written.name == "characters.json"
    story = tmp_path / "story.txt"
    story.write_text(STORY)

    rc = main(["render", str(story), "--characters", str(written), "--out", str(tmp_path / "book.pdf"),
               "--save", str(tmp_path / "book.comic"), "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    project, assets = load_project(tmp_path / "book.comic")
    [loaded] = [c for c in project.characters if c.name == "Mara Vance"]
    assert [assets.get(h) for h in loaded.face_refs] == [face]
    assert [assets.get(h) for h in loaded.body_refs] == [body]
    assert any(c.character_id == loaded.id for p in project.pages for panel in p.panels for c in panel.characters)

    capsys.readouterr()
    assert main(["parse", str(story), "--characters", str(written), "--out", str(tmp_path / "beats.json")]) == 0
    beats = json.loads((tmp_path / "beats.json").read_text())
    first = beats["scenes"][0]["beats"][0]
    assert first["characters"], "the library's Mara was found in the story"


def test_the_readme_format_with_pictures_next_to_the_json(tmp_path, capsys):
    (tmp_path / "mara.png").write_bytes(_png("green"))
    cast = tmp_path / "cast.json"
    cast.write_text(json.dumps({"characters": [{"name": "Mara Vance", "aliases": ["Mara"], "pronouns": "she",
        "description": "curly auburn hair, green raincoat", "colour": "#d0563b", "face_refs": ["mara.png"]}]}))  # fmt: skip
    story = tmp_path / "story.txt"
    story.write_text(STORY)
    rc = main(["render", str(story), "--characters", str(cast), "--out", str(tmp_path / "pages"),
               "--save", str(tmp_path / "book.comic"), "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    project, assets = load_project(tmp_path / "book.comic")
    [mara] = [c for c in project.characters if c.name == "Mara Vance"]
    assert assets.get(mara.face_refs[0]) == _png("green")
    assert sorted(p.name for p in (tmp_path / "pages").iterdir())  # the PNG pages were written

"""Undoable character edits: add/update/delete/reorder characters, add/remove/reorder references."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from comic_studio.core import character_edits as ce
from comic_studio.core.document import Document
from comic_studio.core.errors import AssetError, CommandError
from comic_studio.core.model import Box, Character, Pronouns

FIXTURES = Path(__file__).parents[1] / "vision" / "fixtures"


def _png(colour=(200, 40, 40), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def doc() -> Document:
    return Document.new()


def test_add_update_delete_undo(doc):
    mara = ce.add_character(doc, name="Mara", aliases=["M"], pronouns="she", colour="#d0563b")
    assert doc.project.characters == [mara] and mara.pronouns is Pronouns.SHE
    ce.update_character(doc, mara.id, name="Mara Vance", description="green raincoat")
    stored = doc.project.character(mara.id)
    assert (stored.name, stored.description, stored.aliases) == ("Mara Vance", "green raincoat", ["M"])
    doc.undo()
    assert doc.project.character(mara.id).name == "Mara"
    ce.delete_character(doc, mara.id)
    assert doc.project.characters == []
    doc.undo()
    assert doc.project.character(mara.id).name == "Mara"
    doc.undo()
    assert doc.project.characters == []


def test_deleting_a_character_removes_every_mention_in_one_undo_step():
    from comic_studio.workflows.batch import render_document
    from comic_studio.workflows.lettering import letter_panel
    from comic_studio.workflows.story import story_to_document

    doc = story_to_document("Ana hands Ben a brass key on the pier.\n\n\"Thanks,\" Ben said to Ana.",
                            [Character(name="Ana"), Character(name="Ben")])  # fmt: skip
    render_document(doc)  # storyboard placements and lettered balloons with tails aimed at speakers
    ben = next(c for c in doc.project.characters if c.name == "Ben")
    before = doc.project.model_copy(deep=True)

    def mentions(project) -> list[str]:
        found = []
        for beat in (b for scene in project.story.scenes for b in scene.beats):
            found += [f"beat cast {beat.id}"] * beat.characters.count(ben.id)
            found += [f"beat role {beat.id}"] * [beat.actor_id, beat.target_id].count(ben.id)
            found += [f"speaker {beat.id}" for line in beat.dialogue if line.speaker_id == ben.id]
        for panel in (p for page in project.pages for p in page.panels):
            found += [f"placement {panel.id}" for p in panel.characters if p.character_id == ben.id]
            found += [f"tail {b.id}" for b in panel.balloons if b.tail and b.tail.character_id == ben.id]
        return found

    assert {m.split()[0] for m in mentions(doc.project)} >= {"beat", "speaker", "placement", "tail"}
    depth = doc.undo_stack.index
    ce.delete_character(doc, ben.id)
    assert doc.undo_stack.index == depth + 1 and mentions(doc.project) == []
    assert doc.project.character(ben.id) is None and len(doc.project.characters) == 1
    for panel in (p for page in doc.project.pages for p in page.panels):
        letter_panel(doc, panel.id)  # lettering still works with the speaker gone
    doc.undo()  # the re-lettering steps
    while doc.project.character(ben.id) is None:
        doc.undo()
    assert doc.project == before


def test_update_rejects_bad_values_and_skips_no_ops(doc):
    c = ce.add_character(doc, name="Ada")
    depth = doc.undo_stack.index
    with pytest.raises(CommandError, match="colour"):
        ce.update_character(doc, c.id, colour="red")
    with pytest.raises(CommandError, match="name"):
        ce.update_character(doc, c.id, name="")
    with pytest.raises(CommandError, match="no editable"):
        ce.update_character(doc, c.id, id="other")
    assert not ce.update_character(doc, c.id, name="Ada")  # unchanged: no undo step
    assert doc.undo_stack.index == depth


def test_add_character_with_existing_id_gets_a_fresh_one(doc):
    first = ce.add_character(doc, Character(name="Twin"))
    second = ce.add_character(doc, first)
    assert first.id != second.id and len(doc.project.characters) == 2


def test_references_add_crop_remove_reorder(doc, tmp_path):
    c = ce.add_character(doc, name="Ref")
    path = tmp_path / "a.png"
    path.write_bytes(_png())
    face = ce.add_reference(doc, c.id, "face", path)
    body = ce.add_reference(doc, c.id, "body", _png((0, 0, 200)))
    crop = ce.add_reference(doc, c.id, "face", path, crop=Box(x=5, y=5, w=20, h=10))
    stored = doc.project.character(c.id)
    assert stored.face_refs == [face, crop] and stored.body_refs == [body]
    assert doc.assets.open_image(crop).size == (20, 10)
    assert ce.add_reference(doc, c.id, "face", path) == face  # already there: no new step
    assert doc.project.character(c.id).face_refs == [face, crop]
    ce.move_reference(doc, c.id, "face", crop, 0)
    assert doc.project.character(c.id).face_refs == [crop, face]
    ce.remove_reference(doc, c.id, "face", crop)
    assert doc.project.character(c.id).face_refs == [face]
    doc.undo()
    doc.undo()
    assert doc.project.character(c.id).face_refs == [face, crop]


def test_reference_from_pil_image_and_fixture(doc):
    c = ce.add_character(doc, name="Brandt")
    with Image.open(FIXTURES / "brandt_1male.png") as im:
        digest = ce.add_reference(doc, c.id, "face", im, crop=Box(x=100, y=50, w=300, h=400))
    assert doc.assets.open_image(digest).size == (300, 400)


def test_broken_images_add_nothing(doc, tmp_path):
    c = ce.add_character(doc, name="Broken")
    depth = doc.undo_stack.index
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(_png()[:60])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (17_000, 17_000)).save(bomb)  # a few KiB on disk, 289 Mpx decoded
    assert bomb.stat().st_size < 200_000
    with pytest.raises(AssetError, match="decompression bomb|pixel limit"):
        ce.add_reference(doc, c.id, "face", bomb)
    for bad in (text, truncated, b"GIF89a....", tmp_path / "missing.png"):
        with pytest.raises(AssetError):
            ce.add_reference(doc, c.id, "face", bad)
    with pytest.raises(AssetError, match="outside"):
        ce.add_reference(doc, c.id, "face", _png(), crop=Box(x=500, y=500, w=10, h=10))
    with pytest.raises(CommandError, match="slot"):
        ce.add_reference(doc, c.id, "hands", _png())
    assert doc.project.character(c.id).face_refs == [] and doc.undo_stack.index == depth


def test_move_and_import_characters(doc):
    a, b = ce.add_character(doc, name="A"), ce.add_character(doc, name="B")
    ce.move_character(doc, b.id, 0)
    assert [c.name for c in doc.project.characters] == ["B", "A"]
    added = ce.import_characters(doc, [Character(name="C"), a])
    assert [c.name for c in doc.project.characters] == ["B", "A", "C", "A"]
    assert added[1].id != a.id
    doc.undo()  # the whole import is one step
    assert [c.name for c in doc.project.characters] == ["B", "A"]


def test_missing_asset_refused(doc):
    with pytest.raises(CommandError, match="not in the project"):
        ce.add_character(doc, Character(name="X", face_refs=["0" * 64]))
    with pytest.raises(CommandError):
        ce.delete_character(doc, "nope")

"""Schema 1 → 2: projects of older builds with more lettering than a panel may now hold still open,
and nothing their author wrote is lost."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.core.migrations import migrate
from comic_studio.core.model import MAX_BALLOON_TEXT, MAX_BALLOONS_PER_PANEL, Project
from comic_studio.core.projectfile import load_project


def _version_1_file(tmp_path: Path, balloons: list[dict]) -> Path:
    doc = Document.new(title="Old lettering")
    editing.add_page(doc)
    path = doc.save(tmp_path / "old.comic")
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    data = json.loads(members["project.json"])
    data["schema_version"] = 1
    panel = data["pages"][0]["panels"][0]
    panel["balloons"] = balloons
    members["project.json"] = json.dumps(data).encode("utf-8")
    old = tmp_path / "version1.comic"
    with zipfile.ZipFile(old, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), members.pop("mimetype"))
        for name, content in members.items():
            zf.writestr(name, content, zipfile.ZIP_DEFLATED)
    return old


def _balloon(text: str, **extra) -> dict:
    return {"text": text, "box": {"x": 10, "y": 10, "w": 90, "h": 40}, **extra}


def _all_words(project: Project) -> list[str]:
    return [w for page in project.pages for panel in page.panels for b in panel.balloons for w in b.text.split()]


def test_long_balloons_are_continued_and_extra_balloons_move_to_overflow_pages(tmp_path):
    long_text = " ".join(f"word{i}" for i in range(600))  # about 4,700 characters
    balloons = [_balloon(long_text, kind="caption", tail={"point": [5, 5]})]
    balloons += [_balloon(f"line {i}") for i in range(80)]
    project, _assets = load_project(_version_1_file(tmp_path, balloons))

    first = project.pages[0].panels[0]
    assert len(first.balloons) == MAX_BALLOONS_PER_PANEL
    pieces = [b for b in first.balloons if b.kind == "caption"]
    assert len(pieces) == 5 and all(len(b.text) <= MAX_BALLOON_TEXT for b in pieces)
    assert pieces[0].tail is not None and all(b.tail is None for b in pieces[1:])  # the tail stays with the start
    assert len({b.id for page in project.pages for panel in page.panels for b in panel.balloons}) == 85

    overflow = project.pages[1]
    assert overflow.notes.startswith("Lettering overflow: balloons moved from page 1, panel 1")
    assert len(overflow.panels) == 1 and len(overflow.panels[0].balloons) == 85 - MAX_BALLOONS_PER_PANEL
    # Every word, in reading order: the caption's pieces, then the lines, then the overflow page.
    assert _all_words(project) == long_text.split() + [w for i in range(80) for w in ("line", str(i))]
    assert project.schema_version == 2


def test_a_word_longer_than_a_balloon_is_cut_and_small_files_are_unchanged(tmp_path):
    data = {"schema_version": 1, "pages": [{"panels": [{"balloons": [_balloon("x" * 2500)]}]}]}
    migrated = migrate(data, tmp_path / "f.comic")
    texts = [b["text"] for b in migrated["pages"][0]["panels"][0]["balloons"]]
    assert texts == ["x" * 1000, "x" * 1000, "x" * 500]
    small = {"schema_version": 1, "pages": [{"panels": [{"balloons": [_balloon("hello")]}]}]}
    assert migrate(json.loads(json.dumps(small)), tmp_path / "f.comic")["pages"] == small["pages"]

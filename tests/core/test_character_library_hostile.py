"""Character libraries from outside: read through core/safe_read (deep JSON, a huge file, a FIFO are
refused), image paths confined to the library's folder (links and ``..`` out refused), missing
images named, and no library that takes a project past the loader's 1000 characters. Through the
real file reader, the core import edit and the CLI (``comic-studio render --characters``)."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from comic_studio.cli import main
from comic_studio.core import character_edits
from comic_studio.core.assets import AssetStore
from comic_studio.core.character_file import MAX_CHARACTERS, load_characters
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError, CommandError
from comic_studio.core.layout import page_format
from comic_studio.core.model import Character
from comic_studio.core.projectfile import load_project

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


def _png(colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _library(folder: Path, characters: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "characters.json"
    path.write_text(json.dumps({"characters": characters}))
    return path


def _load_bounded(path: Path, assets: AssetStore | None = None):
    """load_characters on a thread: a read that would block (a FIFO) fails the test, never hangs it."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = load_characters(path, assets)
        except Exception as exc:  # noqa: BLE001 — handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), f"reading {path} hung"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def test_a_library_with_images_inside_its_folder_imports(tmp_path):
    lib = tmp_path / "lib"
    (lib / "images").mkdir(parents=True)
    (lib / "images" / "ana.png").write_bytes(_png())
    path = _library(lib, [{"name": "Ana", "face_refs": ["images/ana.png"]}])
    assets = AssetStore()
    [ana] = _load_bounded(path, assets)
    assert assets.get(ana.face_refs[0]) == _png()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"characters": ' + "[" * 5000 + "]" * 5000 + "}", "nests more than"),
        ('{"characters": [{"name": "A", "face_scale": 1e999}]}', "unusable number"),
        ("{not json", "not valid JSON"),
    ],
)
def test_hostile_library_json_is_refused_with_the_file_named(tmp_path, text, problem):
    path = tmp_path / "characters.json"
    path.write_text(text)
    with pytest.raises(ComicStudioError, match=problem) as caught:
        _load_bounded(path, AssetStore())
    assert str(path) in str(caught.value)


def test_a_huge_library_file_is_refused_unread(tmp_path):
    path = tmp_path / "characters.json"
    with path.open("wb") as fh:
        fh.truncate(9 * 1024 * 1024)  # sparse: 9 MiB of nothing
    with pytest.raises(ComicStudioError, match="over the 8 MiB limit"):
        _load_bounded(path, AssetStore())


@needs_fifo
def test_a_fifo_as_the_library_or_as_an_image_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "characters.json")
    with pytest.raises(ComicStudioError, match="not a regular file"):
        _load_bounded(tmp_path / "characters.json", AssetStore())
    lib = tmp_path / "lib"
    lib.mkdir()
    os.mkfifo(lib / "face.png")
    path = _library(lib, [{"name": "Ana", "face_refs": ["face.png"]}])
    with pytest.raises(
        ComicStudioError, match=r"characters\[0\] \('Ana'\)\.face_refs\[0\]: 'face.png': is not a regular"
    ):
        _load_bounded(path, AssetStore())


@pytest.mark.parametrize("how", ["symlink", "dotdot", "absolute", "symlinked folder"])
def test_image_paths_that_leave_the_library_folder_are_refused(tmp_path, how):
    secret = tmp_path / "private" / "photo.png"
    secret.parent.mkdir()
    secret.write_bytes(_png("blue"))
    lib = tmp_path / "lib"
    lib.mkdir()
    ref = {"symlink": "face.png", "dotdot": "../private/photo.png", "absolute": str(secret),
           "symlinked folder": "imgs/photo.png"}[how]  # fmt: skip
    if how == "symlink":
        (lib / "face.png").symlink_to(secret)
    if how == "symlinked folder":
        (lib / "imgs").symlink_to(secret.parent, target_is_directory=True)
    path = _library(lib, [{"name": "Ben", "body_refs": [ref]}])
    assets = AssetStore()
    with pytest.raises(ComicStudioError, match=r"characters\[0\] \('Ben'\)\.body_refs\[0\].*outside its folder"):
        _load_bounded(path, assets)
    assert _png("blue") not in [assets.get(h) for h in assets.hashes()]


def test_a_missing_image_is_named(tmp_path):
    path = _library(tmp_path / "lib", [{"name": "Ana"}, {"name": "Cy", "face_refs": ["gone.png"]}])
    with pytest.raises(
        ComicStudioError, match=r"characters\[1\] \('Cy'\)\.face_refs\[0\]: 'gone.png': .*does not exist"
    ):
        _load_bounded(path, AssetStore())


def test_more_characters_than_a_project_holds_are_refused(tmp_path):
    path = _library(tmp_path / "lib", [{"name": f"C{i}"} for i in range(MAX_CHARACTERS + 1)])
    with pytest.raises(ComicStudioError, match="1,001 characters is more than the 1,000 a project can hold"):
        _load_bounded(path, AssetStore())
    # Within the limit alone, but not together with what the project has: refused whole.
    doc = Document.new("Full", page_format("us-comic"))
    character_edits.import_characters(doc, [Character(name=f"Old {i}") for i in range(MAX_CHARACTERS - 1)])
    with pytest.raises(CommandError, match="pass the 1,000 characters a project can hold; nothing was imported"):
        character_edits.import_characters(doc, [Character(name="New 1"), Character(name="New 2")])
    assert len(doc.project.characters) == MAX_CHARACTERS - 1
    saved = doc.save(tmp_path / "full.comic")
    assert len(load_project(saved)[0].characters) == MAX_CHARACTERS - 1


def test_cli_render_with_a_library_imports_its_images_and_refuses_a_link_out(tmp_path, capsys):
    story = tmp_path / "story.txt"
    story.write_text("Ana waves at the harbour.\n")
    lib = tmp_path / "lib"
    (lib / "images").mkdir(parents=True)
    (lib / "images" / "ana.png").write_bytes(_png())
    path = _library(lib, [{"name": "Ana", "face_refs": ["images/ana.png"]}])
    rc = main(["render", str(story), "--characters", str(path), "--out", str(tmp_path / "out.pdf"),
               "--save", str(tmp_path / "out.comic"), "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    project, assets = load_project(tmp_path / "out.comic")
    [ana] = [c for c in project.characters if c.name == "Ana"]
    assert assets.get(ana.face_refs[0]) == _png()
    (tmp_path / "secret.png").write_bytes(_png("green"))
    (lib / "images" / "ana.png").unlink()
    (lib / "images" / "ana.png").symlink_to(tmp_path / "secret.png")
    rc = main(["render", str(story), "--characters", str(path), "--out", str(tmp_path / "out2.pdf"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "face_refs[0]: 'images/ana.png': the reference image points outside its folder" in err
    assert not (tmp_path / "out2.pdf").exists()


def test_cli_parse_reads_an_exported_library_and_refuses_a_link_out(tmp_path, capsys):
    """``parse`` needs no pictures, but a library's image paths are still checked (and named by hash)."""
    story = tmp_path / "story.txt"
    story.write_text("Ana waves at the harbour.\n")
    lib = tmp_path / "lib"
    (lib / "images").mkdir(parents=True)
    (lib / "images" / "ana.png").write_bytes(_png())
    path = _library(lib, [{"name": "Ana", "face_refs": ["images/ana.png"]}])
    assert main(["parse", str(story), "--characters", str(path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    (lib / "images" / "ana.png").unlink()
    (lib / "images" / "ana.png").symlink_to(Path("/etc/hostname") if Path("/etc/hostname").exists() else story)
    assert main(["parse", str(story), "--characters", str(path)]) == 1
    assert "'images/ana.png': the reference image points outside its folder" in capsys.readouterr().err

"""A project cannot make the renderer read local files: init image, mask and anchor image settings
are project assets (``asset:<hash>``) or data URIs. A path stored in a real ``.comic`` file is refused
by the CLI with its page, panel and setting named, without the file being opened (a FIFO proves it);
a stored request replayed with a path is refused; the backends refuse a path themselves; and the one
way a user's file enters (the workflows' import, used by the inspector) reads it safely."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from comic_studio.backends._diffusers.inputs import read_image_setting
from comic_studio.cli import main
from comic_studio.core import editing
from comic_studio.core.assets import AssetStore
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import page_format
from comic_studio.generation.backend_api import BackendSettingsError
from comic_studio.generation.registry import get_backend
from comic_studio.generation.request import GenerationError, GenerationRequest, png_data_uri
from comic_studio.workflows.requests import (
    ASSET_PREFIX,
    build_request,
    hydrate_request,
    import_image_settings,
)  # fmt: skip
from comic_studio.workflows.story import story_to_document

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


def _png(colour: str = "red", size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _project_with(tmp_path: Path, backend: str, **settings: str) -> tuple[Path, Document]:
    """A real saved project whose second panel carries ``settings`` (as a hostile file would)."""
    doc = story_to_document(
        "Ana walks in. Ana sits down. Ana waves.", [], document=Document.new("T", page_format("us-comic"))
    )
    panels = [p for page in doc.project.pages for p in page.panels_in_order()]
    editing.set_panel_fields(doc, panels[1].id, "settings", backend=backend, backend_settings=settings)
    return doc.save(tmp_path / "hostile.comic"), doc


def _bounded(fn, *args):
    """``fn(*args)`` on a thread: opening a FIFO would block, which fails the test instead of hanging it."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except Exception as exc:  # noqa: BLE001 — handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "hung: a FIFO was opened"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


@needs_fifo
@pytest.mark.parametrize(
    ("backend", "field"),
    [("sdxl", "init_image"), ("sdxl", "mask_image"), ("racig", "init_image"), ("consistent", "anchor_image")],
)
def test_cli_render_refuses_a_project_naming_a_local_file(tmp_path, capsys, backend, field):
    fifo = tmp_path / "secret.png"
    os.mkfifo(fifo)  # opening it would block: the refusal must come without touching the file
    path, _doc = _project_with(tmp_path, backend, **{field: str(fifo)})
    rc = _bounded(main, ["render", str(path), "--out", str(tmp_path / "out.pdf"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"page 1, panel 2: setting '{field}': '{fifo}' is a file path, which a project may not use" in err
    assert not (tmp_path / "out.pdf").exists()


def test_relative_and_home_paths_are_refused_too(tmp_path):
    for value in ("../../etc/hosts.png", "~/Pictures/private.png", "file:///etc/passwd", "C:\\Users\\me\\a.png"):
        _path, doc = _project_with(tmp_path, "sdxl", init_image=value)
        panel = [p for page in doc.project.pages for p in page.panels_in_order()][1]
        with pytest.raises(ComicStudioError, match=r"page 1, panel 2: setting 'init_image': .* is a file path"):
            build_request(doc.project, panel, assets=doc.assets)


def test_assets_and_data_uris_still_reach_the_backend_inline(tmp_path):
    doc = Document.new("T", page_format("us-comic"))
    digest = doc.assets.add(_png("blue"))
    story_to_document("Ana walks in. Ana sits down.", [], document=doc)
    panel = [p for page in doc.project.pages for p in page.panels_in_order()][0]
    editing.set_panel_fields(doc, panel.id, "s", backend="sdxl",
                             backend_settings={"init_image": ASSET_PREFIX + digest, "mask_image": png_data_uri(_png())})  # fmt: skip
    panel = doc.project.find_panel(panel.id)[1]
    request = build_request(doc.project, panel, assets=doc.assets)
    assert read_image_setting(request.backend_settings["init_image"], "init_image").getpixel((0, 0)) == (0, 0, 255)
    assert read_image_setting(request.backend_settings["mask_image"], "mask_image").size == (16, 16)


def test_a_stored_request_replayed_with_a_path_is_refused_naming_the_panel(tmp_path):
    request = GenerationRequest(backend="sdxl", backend_settings={"init_image": str(tmp_path / "x.png")},
                                width=64, height=64, seed=1, prompt="p", panel_id="p-7")  # fmt: skip
    with pytest.raises(ComicStudioError, match=r"panel p-7: setting 'init_image': .* is a file path"):
        hydrate_request(GenerationRequest.from_dict(request.to_dict()), AssetStore())


def test_the_backends_refuse_a_path_themselves(tmp_path):
    """A script or plugin that bypasses the workflows gets the same refusal, before any model loads."""
    image = tmp_path / "private.png"
    image.write_bytes(_png())
    request = GenerationRequest(backend="sdxl", backend_settings={"init_image": str(image)}, width=64, height=64,
                                seed=1, prompt="p")  # fmt: skip
    with pytest.raises(BackendSettingsError, match="setting 'init_image': .* is a file path"):
        get_backend("sdxl").generate(request)
    with pytest.raises(GenerationError, match="a file path is not read"):
        read_image_setting(str(image), "init_image")
    with pytest.raises(GenerationError, match="pixel"):
        bomb = Image.new("1", (20_000, 20_000))
        buffer = io.BytesIO()
        bomb.save(buffer, format="PNG")
        read_image_setting(png_data_uri(buffer.getvalue()), "init_image")


@needs_fifo
def test_a_file_the_user_picks_enters_the_project_as_an_asset(tmp_path):
    image = tmp_path / "init.png"
    image.write_bytes(_png("green"))
    assets = AssetStore()
    settings = import_image_settings("sdxl", {"init_image": str(image), "steps": 4}, assets)
    assert settings == {"init_image": ASSET_PREFIX + assets.add(_png("green")), "steps": 4}
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ComicStudioError, match="setting 'mask_image': .*pipe.png: is not a regular file"):
        _bounded(import_image_settings, "sdxl", {"mask_image": str(tmp_path / "pipe.png")}, assets)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ComicStudioError, match="setting 'init_image': .*notes.png: not a PNG, JPEG or WebP"):
        import_image_settings("sdxl", {"init_image": str(tmp_path / "notes.png")}, assets)

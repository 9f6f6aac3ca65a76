"""The inspector is how a user's file becomes a panel's init image: typed (or pasted) into the
settings form, it enters the project as an asset and the panel stores ``asset:<hash>``, never the
path; a file that cannot be an image (a FIFO, text) is refused with the reason and nothing changes."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image
from render_helpers import all_panels, small_document

from comic_studio.core import editing
from comic_studio.core.projectfile import load_project
from comic_studio.ui.inspector import PanelInspector
from comic_studio.ui.render_service import RenderService
from comic_studio.workflows.requests import ASSET_PREFIX


@pytest.fixture
def studio(ctx, qtbot):
    ctx.set_document(small_document())
    service = RenderService(ctx)
    inspector = PanelInspector(ctx, service)
    qtbot.addWidget(inspector)
    inspector.show()
    messages: list[str] = []
    ctx.message.connect(messages.append)
    panel = all_panels(ctx.document)[0]
    ctx.edit(editing.set_panel_fields, panel.id, "Backend", backend="sdxl", backend_settings={})
    ctx.select_panels([panel.id])
    yield ctx, inspector, messages, panel.id
    service.shutdown()


def _type(inspector, key: str, text: str) -> None:
    editor = inspector.settings.editor(key)
    editor.setText(text)
    editor.editingFinished.emit()


def test_a_typed_image_file_becomes_a_project_asset(studio, tmp_path):
    ctx, inspector, _messages, panel_id = studio
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "orange").save(buffer, format="PNG")
    (tmp_path / "sketch.png").write_bytes(buffer.getvalue())
    _type(inspector, "init_image", str(tmp_path / "sketch.png"))
    stored = ctx.document.project.find_panel(panel_id)[1].backend_settings["init_image"]
    assert stored == ASSET_PREFIX + ctx.document.assets.add(buffer.getvalue())
    (tmp_path / "sketch.png").unlink()  # the project no longer needs the file
    project, assets = load_project(ctx.document.save(tmp_path / "p.comic"))
    assert project.find_panel(panel_id)[1].backend_settings["init_image"] == stored
    assert assets.get(stored.removeprefix(ASSET_PREFIX)) == buffer.getvalue()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_or_a_text_file_is_refused_and_nothing_changes(studio, tmp_path):
    ctx, inspector, messages, panel_id = studio
    os.mkfifo(tmp_path / "pipe.png")
    _type(inspector, "mask_image", str(tmp_path / "pipe.png"))  # refused at once: the test would hang otherwise
    assert "setting 'mask_image'" in messages[-1] and "not a regular file" in messages[-1]
    (tmp_path / "notes.png").write_text("hello")
    _type(inspector, "init_image", str(tmp_path / "notes.png"))
    assert "not a PNG, JPEG or WebP" in messages[-1]
    assert ctx.document.project.find_panel(panel_id)[1].backend_settings == {}

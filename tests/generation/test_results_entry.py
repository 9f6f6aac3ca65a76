"""Backend results enter the document only if the project loader would accept them.

A real folder plugin (written into the user plugins folder, imported by the registry, run by the
engine and by the synchronous render path) hands back hostile results: an image of 14000×14000
pixels, an empty one, odd pixel modes, no image at all, settings nested 40 levels deep or 300 KB
large, a negative seed. Each is refused where it enters, with a message that names the backend and
the panel; the document, its undo stack and its assets are unchanged; and a good result from the
same plugin afterwards is stored, saved and loaded back.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from engine_fakes import Recorder
from plugin_files import write

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import MAX_STORED_JSON_BYTES, MAX_STORED_JSON_DEPTH
from comic_studio.core.projectfile import load_project
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent
from comic_studio.generation.request import GenerationError, GenerationRequest, GenerationResult
from comic_studio.workflows.batch import render_panel
from comic_studio.workflows.results import record_result

HOSTILE = '''
from PIL import Image
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.request import GenerationResult


def _deep(levels):
    value = "bottom"
    for _ in range(levels):
        value = {"d": value}
    return value


class Hostile(GenerationBackend):
    """What it returns is chosen by the request's prompt."""

    name = "hostile"
    capabilities = frozenset({"txt2img"})

    def generate(self, request, on_step=None):
        kind = request.prompt
        size = (request.width, request.height)
        settings, seed, images = {}, request.seed, None
        if kind == "huge":
            images = [Image.new("L", (14000, 14000))]
        elif kind == "wide":
            images = [Image.new("RGB", (9000, 16))]
        elif kind == "empty":
            images = [Image.new("RGB", (0, 0))]
        elif kind in ("F", "CMYK", "I;16", "I"):
            images = [Image.new(kind, size)]
        elif kind == "no image":
            images = []
        elif kind == "not a picture":
            images = ["a string"]
        elif kind == "deep settings":
            settings = {"x": _deep(40)}
        elif kind == "huge settings":
            settings = {"x": "y" * 300_000}
        elif kind == "object settings":
            settings = {"x": object()}
        elif kind == "negative seed":
            seed = -1
        elif kind == "long backend name":
            return GenerationResult([Image.new("RGB", size, (9, 9, 9))], seed, "b" * 500)
        if images is None:
            images = [Image.new("RGB", size, (9, 9, 9))]
        return GenerationResult(images, seed, self.name, settings=settings)
'''

REFUSED = {
    "huge": "14000×14000 pixels",
    "wide": "9000×16 pixels",
    "empty": "0×0 pixels",
    "F": "pixel mode 'F'",
    "CMYK": "pixel mode 'CMYK'",
    "I;16": "pixel mode 'I;16'",
    "I": "pixel mode 'I'",
    "no image": "returned no image",
    "not a picture": "not a picture",
    "deep settings": f"more than {MAX_STORED_JSON_DEPTH} levels deep",
    "huge settings": f"over the {MAX_STORED_JSON_BYTES:,}-byte limit",
    "object settings": "cannot be kept in the project",
    "negative seed": "seed",
    "long backend name": "backend",
}


@pytest.fixture
def hostile(plugins):
    write(plugins / "hostile_plugin" / "comic_studio_plugin.py", HOSTILE + "\nBACKENDS = [Hostile]\n")
    return plugins


def _doc() -> tuple[Document, str]:
    doc = Document.new()
    page = editing.add_page(doc, "three-tier")
    panel = page.panels_in_order()[1]
    doc.undo_stack.set_clean()
    return doc, panel.id


def _state(doc: Document) -> tuple:
    return doc.project.model_dump_json(), len(doc.undo_stack), doc.undo_stack.index, sorted(doc.assets.hashes())


def test_hostile_results_are_refused_where_they_enter_and_the_document_is_unchanged(hostile):
    # One test for every kind: each plugin folder costs a probe subprocess (about a second).
    problems = {}
    for kind, expected in REFUSED.items():
        doc, panel_id = _doc()
        editing.set_panel_fields(doc, panel_id, "Prompt", prompt=kind)
        before = _state(doc)
        try:
            render_panel(doc, panel_id, backend="hostile")
        except ComicStudioError as exc:
            message = str(exc)
            named = "page 1, panel 2" in message and ("'hostile'" in message or kind == "long backend name")
            if expected not in message or not named:
                problems[kind] = message
        else:
            problems[kind] = "accepted"
        if _state(doc) != before:
            problems[kind] = "the document changed"
    assert not problems, problems


def test_the_engine_reports_a_refused_image_as_the_jobs_error(hostile):
    with Engine() as engine:
        rec = Recorder(engine)
        request = GenerationRequest(backend="hostile", width=64, height=64, prompt="huge", panel_id="p1")
        done = rec.wait(engine.submit(request), timeout=60)
    assert done.event is JobEvent.ERROR, done
    assert "'hostile'" in done.error and "panel 'p1'" in done.error and "14000×14000" in done.error


def test_a_good_result_from_the_same_plugin_is_kept_and_loads_back(hostile, tmp_path):
    doc, panel_id = _doc()
    editing.set_panel_fields(doc, panel_id, "Prompt", prompt="fine")
    result = render_panel(doc, panel_id, backend="hostile")
    doc.save(tmp_path / "ok.comic")
    project, store = load_project(tmp_path / "ok.comic")
    assert project == doc.project and result.asset in store


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width × height`` (a pixel bomb: the data never matches)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("png", "expected"),
    [
        (_png_header_only(20000, 20000), "decompression bomb|pixel limit"),
        (_png_header_only(8193, 64), "8192 pixels a side"),
        (b"GIF89a not ours", "not a PNG, JPEG or WebP"),
    ],
    ids=["20000x20000 header", "8193 wide", "not an image"],
)
def test_engine_bytes_arriving_on_the_gui_thread_are_checked_again(png, expected):
    """``record_result`` is public: bytes handed to it (as the engine does) get the loader's checks."""
    from PIL import Image

    doc, panel_id = _doc()
    before = _state(doc)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    generated = GenerationResult([Image.new("RGB", (64, 64))], 1, "storyboard")
    request = GenerationRequest(width=64, height=64)
    with pytest.raises(GenerationError, match=expected) as refused:
        record_result(doc, panel_id, request, generated, png)
    assert "page 1, panel 2" in str(refused.value)
    assert _state(doc) == before

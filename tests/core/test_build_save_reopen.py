"""Property: any document the app can build through its real editing commands, it can save and
reopen, and the reopened project equals the saved one.

Hypothesis draws sequences of the edits menus, the canvas, the inspector and the render path make
(pages, panels, balloons, characters, beats, results with their stored requests, undo/redo),
with values up to and past the model's limits, NaN and infinities included. An edit may be
refused — with a ComicStudioError, the document unchanged — but never with another exception,
and whatever was accepted must save and load back equal.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from comic_studio.core import character_edits, editing, story_edits
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import MAX_BALLOON_TEXT, BalloonKind, Box, ReadingDirection
from comic_studio.core.projectfile import load_project
from comic_studio.generation.request import GenerationRequest, GenerationResult
from comic_studio.workflows.lettering import letter_panel
from comic_studio.workflows.results import record_result

_floats = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.floats(-2000, 2000)
_text = st.text(max_size=40) | st.sampled_from(["", "x" * MAX_BALLOON_TEXT, "y" * (MAX_BALLOON_TEXT + 1)])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _floats | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
_deep = st.integers(1, 40).map(lambda n: {"k": eval("[" * n + "]" * n)})  # noqa: S307 — literal brackets only


def _pick(draw, items):
    return draw(st.sampled_from(items)) if items else None


def _panels(doc: Document):
    return [panel for page in doc.project.pages for panel in page.panels]


def _balloons(doc: Document):
    return [balloon for panel in _panels(doc) for balloon in panel.balloons]


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (shade, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def _box(draw) -> Box:
    # Unvalidated, as a canvas gesture's arithmetic may produce it: the command must refuse what
    # the loader would (NaN, infinities), whatever the caller built.
    return Box.model_construct(x=draw(_floats), y=draw(_floats), w=abs(draw(_floats)), h=abs(draw(_floats)))


@st.composite
def _edit(draw, doc: Document) -> None:
    """Draw one edit and apply it to ``doc`` (it may be refused)."""
    kind = draw(
        st.sampled_from(
            [
                "add page", "add page", "delete page", "duplicate page", "move page", "template", "split",
                "delete panel", "add balloon", "add balloon", "balloon text", "move balloon", "tail",
                "character", "edit character", "beat", "edit beat", "link beat", "letter", "result", "result",
                "panel fields", "direction", "undo", "redo",
            ]
        )
    )  # fmt: skip
    page = _pick(draw, doc.project.pages)
    panel = _pick(draw, _panels(doc))
    balloon = _pick(draw, _balloons(doc))
    beat = _pick(draw, doc.project.story.beats())
    if kind == "add page" or (page is None and kind in ("delete page", "duplicate page", "move page", "template")):
        editing.add_page(
            doc, draw(st.sampled_from(["three-tier", "splash", "two-tier", "grid-2x2", "diagonal", "inset"]))
        )
    elif kind == "delete page":
        editing.delete_page(doc, page.id)
    elif kind == "duplicate page":
        editing.duplicate_page(doc, page.id)
    elif kind == "move page":
        editing.move_page(doc, page.id, draw(st.integers(-2, 5)))
    elif kind == "template":
        editing.apply_template(doc, page.id, draw(st.sampled_from(["three-tier", "splash", "grid-2x2"])))
    elif panel is None:
        editing.add_page(doc)
    elif kind == "split":
        editing.split_panel(doc, panel.id, draw(st.sampled_from(["vertical", "horizontal"])), draw(_floats))
    elif kind == "delete panel":
        editing.delete_panel(doc, panel.id)
    elif kind == "add balloon" or (balloon is None and kind in ("balloon text", "move balloon", "tail")):
        box = _box(draw)
        editing.add_balloon(doc, panel.id, draw(st.sampled_from(list(BalloonKind))), box, draw(_text))
    elif kind == "balloon text":
        editing.edit_balloon_text(doc, balloon.id, draw(_text))
    elif kind == "move balloon":
        editing.move_balloon(doc, balloon.id, _box(draw))
    elif kind == "tail":
        character = _pick(draw, doc.project.characters)
        editing.retarget_tail(doc, balloon.id, character.id if character else None, (draw(_floats), draw(_floats)))
    elif kind == "character":
        character_edits.add_character(doc, name=draw(st.text(min_size=1, max_size=20)), description=draw(_text))
    elif kind == "edit character" and doc.project.characters:
        character = draw(st.sampled_from(doc.project.characters))
        character_edits.update_character(doc, character.id, face_scale=draw(_floats), style_notes=draw(_text))
    elif kind == "beat" or beat is None:
        story_edits.add_beat(doc, action=draw(st.text(max_size=60)))
    elif kind == "edit beat":
        story_edits.edit_beat(
            doc, beat.id, caption=draw(_text), dialogue=[{"text": t} for t in draw(st.lists(_text, max_size=4))]
        )
    elif kind == "link beat":
        story_edits.assign_beats(doc, [beat.id], [panel.id])
    elif kind == "letter":
        letter_panel(doc, panel.id)
    elif kind == "result":
        settings = draw(st.dictionaries(st.text(max_size=6), _json, max_size=3) | _deep)
        request = GenerationRequest(width=24, height=16, panel_id=panel.id)
        seed = draw(st.integers(-5, 2**64 + 5))
        generated = GenerationResult([Image.new("RGB", (24, 16))], seed, "storyboard", settings=settings)
        record_result(doc, panel.id, request, generated, _png(draw(st.integers(0, 255))))
    elif kind == "panel fields":
        editing.set_panel_fields(
            doc,
            panel.id,
            "Fields",
            prompt=draw(_text),
            backend_settings=draw(st.dictionaries(st.text(max_size=4), _json)),
        )
    elif kind == "direction":
        editing.set_reading_direction(doc, draw(st.sampled_from(list(ReadingDirection))))
    elif kind == "undo":
        doc.undo()
    elif kind == "redo":
        doc.redo()


@settings(
    max_examples=70,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_whatever_the_editing_commands_build_saves_and_reopens_equal(data: st.DataObject) -> None:
    doc = Document.new()
    refused = 0
    for _ in range(data.draw(st.integers(1, 25))):
        before = doc.project.model_dump_json()
        try:
            data.draw(_edit(doc))
        except ComicStudioError:
            refused += 1
            assert doc.project.model_dump_json() == before, "a refused edit changed the document"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "built.comic"
        doc.save(path)
        project, store = load_project(path)
        assert project == doc.project
        for digest in project.asset_refs():
            assert store.get(digest) == doc.assets.get(digest)

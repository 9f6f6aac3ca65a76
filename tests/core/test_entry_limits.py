"""Every limit the project loader applies also applies where data enters the document.

For each limit the same number refuses the edit (a clear CommandError/LayoutError, document
unchanged) and refuses a file that breaks it (ProjectFileError naming the field): the two agree
because both come from the model's one definition.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comic_fixtures import build_sample_project, members_of, zip_bytes

from comic_studio.core import editing
from comic_studio.core.commands import InsertItem, ReplaceList, list_limit
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError, LayoutError, ProjectFileError
from comic_studio.core.lettering import place_balloons
from comic_studio.core.model import (
    MAX_BALLOON_TEXT,
    MAX_BALLOONS_PER_PANEL,
    MAX_STORED_JSON_BYTES,
    MAX_STORED_JSON_DEPTH,
    BalloonKind,
    Beat,
    Box,
    DialogueLine,
    Project,
    Scene,
    Style,
)
from comic_studio.core.projectfile import load_project, save_project
from comic_studio.workflows.lettering import letter_panel, plan_lettering


def _doc() -> tuple[Document, str]:
    doc = Document.new()
    page = editing.add_page(doc, "three-tier")
    return doc, page.panels_in_order()[0].id


def _state(doc: Document) -> tuple:
    return doc.project.model_dump_json(), len(doc.undo_stack), doc.undo_stack.index


def _deep(levels: int) -> object:
    value: object = "bottom"
    for _ in range(levels - 1):
        value = {"d": value}
    return value


def _file_with(tmp_path: Path, change) -> Path:
    """A saved sample project whose project.json was changed by ``change(doc_dict)``."""
    project, store, _ = build_sample_project()
    save_project(tmp_path / "base.comic", project, store)
    members = members_of((tmp_path / "base.comic").read_bytes())
    data = json.loads(dict(members)["project.json"])
    change(data)
    path = tmp_path / "changed.comic"
    path.write_bytes(zip_bytes([(n, json.dumps(data).encode() if n == "project.json" else d) for n, d in members]))
    return path


def _balloon_json(text: str = "hi") -> dict:
    return {"text": text, "box": {"x": 40, "y": 40, "w": 60, "h": 30}, "auto_placed": False}


# --------------------------------------------------------------------------- balloons


def test_a_panel_takes_64_balloons_the_65th_is_refused_and_so_is_a_file_holding_65(tmp_path):
    assert MAX_BALLOONS_PER_PANEL == list_limit("balloons") == 64
    doc, panel_id = _doc()
    for i in range(MAX_BALLOONS_PER_PANEL):
        editing.add_balloon(doc, panel_id, BalloonKind.SPEECH, Box(x=40, y=40 + i, w=60, h=30), text=f"line {i}")
    before = _state(doc)
    with pytest.raises(CommandError, match=r"page 1, panel 1 would hold 65 balloons; a project holds at most 64"):
        editing.add_balloon(doc, panel_id, BalloonKind.SPEECH, Box(x=40, y=40, w=60, h=30), text="one more")
    assert _state(doc) == before
    doc.save(tmp_path / "full.comic")  # the fullest panel the app builds saves and loads back
    assert load_project(tmp_path / "full.comic")[0] == doc.project

    path = _file_with(tmp_path, lambda d: d["pages"][0]["panels"][0].update(balloons=[_balloon_json()] * 65))
    with pytest.raises(ProjectFileError, match="balloons: List should have at most 64 items"):
        load_project(path)


def test_balloon_text_over_1000_characters_is_refused_when_typed_and_when_loaded(tmp_path):
    doc, panel_id = _doc()
    balloon = editing.add_balloon(doc, panel_id, BalloonKind.SPEECH, Box(x=40, y=40, w=60, h=30), text="hi")
    editing.edit_balloon_text(doc, balloon.id, "x" * MAX_BALLOON_TEXT)
    before = _state(doc)
    with pytest.raises(CommandError, match="balloon.text: String should have at most 1000 characters"):
        editing.edit_balloon_text(doc, balloon.id, "x" * (MAX_BALLOON_TEXT + 1))
    assert _state(doc) == before
    with pytest.raises(CommandError, match="at most 1000 characters"):
        editing.add_balloon(doc, panel_id, BalloonKind.SPEECH, Box(x=1, y=1, w=9, h=9), text="y" * 1001)

    path = _file_with(tmp_path, lambda d: d["pages"][0]["panels"][0].update(balloons=[_balloon_json("z" * 1001)]))
    with pytest.raises(ProjectFileError, match="balloons.0.text: String should have at most 1000 characters"):
        load_project(path)


@pytest.mark.parametrize(
    ("lines", "text", "expected"),
    [
        (65, "Hello.", "its beat has 65 lines to letter; a panel holds at most 64 balloons"),
        (2, "word " * 1000, "line 2 of its beat is 5,000 characters; a balloon holds at most 1,000"),
    ],
    ids=["65 lines", "5000-character line"],
)
def test_lettering_too_much_is_refused_before_any_layout_work(lines, text, expected):
    doc, panel_id = _doc()
    dialogue = [DialogueLine(text="Hi.")] + [DialogueLine(text=text) for _ in range(min(lines, 64) - 1)]
    beat = Beat(action="talk", dialogue=dialogue, caption="Later." if lines == 65 else "")
    doc.project.story.scenes = [Scene(beats=[beat])]
    editing.set_panel_fields(doc, panel_id, "Beat", beat_id=beat.id)
    before = _state(doc)
    with pytest.raises(LayoutError, match=expected) as refused:
        letter_panel(doc, panel_id)
    assert "page 1, panel 1" in str(refused.value)
    assert _state(doc) == before
    panel = doc.project.find_panel(panel_id)[1]
    with pytest.raises(LayoutError, match=expected):
        plan_lettering(doc.project, panel)
    # The window letters on a helper thread by calling the placement directly: bounded there too.
    stand_in = Project(page_format=doc.project.page_format)
    lettering = [(BalloonKind.SPEECH, line.text, None) for line in dialogue]
    if beat.caption:
        lettering.insert(0, (BalloonKind.CAPTION, beat.caption, None))
    with pytest.raises(LayoutError, match=expected):
        place_balloons(panel, lettering, stand_in)


def test_hand_placed_balloons_count_towards_the_lettering_limit():
    doc, panel_id = _doc()
    for i in range(60):
        editing.add_balloon(doc, panel_id, BalloonKind.SPEECH, Box(x=40, y=40 + i, w=60, h=30), text="kept")
    beat = Beat(action="talk", dialogue=[DialogueLine(text=f"Line {i}.") for i in range(5)])
    doc.project.story.scenes = [Scene(beats=[beat])]
    editing.set_panel_fields(doc, panel_id, "Beat", beat_id=beat.id)
    with pytest.raises(LayoutError, match="besides 60 hand-placed balloon"):
        letter_panel(doc, panel_id)


# --------------------------------------------------------------------------- stored requests and settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (_deep(MAX_STORED_JSON_DEPTH + 1), f"more than {MAX_STORED_JSON_DEPTH} levels deep"),
        ("y" * MAX_STORED_JSON_BYTES, f"over the {MAX_STORED_JSON_BYTES:,}-byte limit"),
        (float("nan"), "backend_settings.x is not a finite number"),
    ],
    ids=["17 levels", "256 KiB", "NaN"],
)
def test_settings_the_loader_would_refuse_are_refused_when_set_and_when_loaded(tmp_path, value, expected):
    doc, panel_id = _doc()
    editing.set_panel_fields(doc, panel_id, "Settings", backend_settings={"ok": _deep(MAX_STORED_JSON_DEPTH - 1)})
    before = _state(doc)
    if not isinstance(value, str):
        with pytest.raises(CommandError, match=expected):
            editing.set_panel_fields(doc, panel_id, "Settings", backend_settings={"x": value})
        assert _state(doc) == before
    if value != value:  # NaN: the loader's JSON reader refuses it before validation
        return
    if isinstance(value, str):  # a panel's settings may be as large as a project (an init image)
        editing.set_panel_fields(doc, panel_id, "Settings", backend_settings={"x": value})
    else:
        path = _file_with(tmp_path, lambda d: d["pages"][0]["panels"][0].update(backend_settings={"x": value}))
        with pytest.raises(ProjectFileError, match=expected):
            load_project(path)
    path = _file_with(tmp_path, lambda d: d["pages"][0]["panels"][0]["results"][0].update(request={"x": value}))
    with pytest.raises(ProjectFileError, match=f"results.0.request.*{expected}"):
        load_project(path)


# --------------------------------------------------------------------------- lists and items


def test_a_list_past_its_limit_is_refused_by_the_command_with_the_loaders_number():
    doc, _ = _doc()
    limit = list_limit("styles")
    assert limit == 1_000
    before = _state(doc)
    styles = [Style(name=f"s{i}") for i in range(limit + 1)]
    with pytest.raises(CommandError, match="would hold 1,001 styles; a project holds at most 1,000"):
        doc.execute(ReplaceList(("styles",), styles, "Styles"))
    assert _state(doc) == before


def test_items_built_without_validation_are_refused_when_they_enter():
    """Layout code builds panels with ``model_copy(update=…)``, which skips validation: a panel
    whose outline the loader would refuse must not get in that way."""
    doc, panel_id = _doc()
    page = doc.project.pages[0]
    broken = page.panels[0].model_copy(update={"shape": [(0.0, 0.0)] * 100})
    before = _state(doc)
    with pytest.raises(CommandError, match=r"page 1: the new panel is not valid \(shape\)"):
        doc.execute(ReplaceList(("panels", page.id), [broken, *page.panels[1:]], "Layout"))
    assert _state(doc) == before
    odd = page.model_copy(update={"id": "x" * 100}, deep=True)
    with pytest.raises(CommandError, match=r"the new page is not valid \(id\)"):
        doc.execute(InsertItem(("pages",), odd))
    assert _state(doc) == before


def test_non_finite_numbers_are_refused_where_they_enter():
    """JSON has no NaN or infinity: the loader refuses them, and pydantic would save NaN as null
    (a file that no longer loads). A drag that divides by zero must not get one in."""
    doc, panel_id = _doc()
    balloon = editing.add_balloon(doc, panel_id, BalloonKind.SPEECH, Box(x=40, y=40, w=60, h=30), text="hi")
    before = _state(doc)
    with pytest.raises(CommandError, match=r"balloon.box.w is not a finite number"):
        editing.move_balloon(doc, balloon.id, Box(x=1, y=1, w=float("inf"), h=3))
    with pytest.raises(CommandError, match=r"tail.point.0 is not a finite number"):
        editing.retarget_tail(doc, balloon.id, point=(float("nan"), 1.0))
    with pytest.raises(CommandError, match=r"the new balloon has box.x that is not a finite number"):
        editing.add_balloon(doc, panel_id, BalloonKind.SPEECH, Box(x=float("-inf"), y=1, w=3, h=3))
    assert _state(doc) == before


def test_non_image_bytes_that_start_like_a_png_stay_non_image_when_saved_again(tmp_path):
    """Found by the loaded-files fuzzer: a LoRA asset (stored .bin, never checked as a picture)
    whose bytes begin with the PNG signature was saved again as .png, and the loader then refused
    the file the app had just written."""
    from comic_studio.core.assets import AssetStore
    from comic_studio.core.model import Character, PageFormat

    store = AssetStore()
    lora = store.add(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 10, validate_image=False)
    project = Project(page_format=PageFormat(width=400, height=600), characters=[Character(name="A", lora_asset=lora)])
    save_project(tmp_path / "a.comic", project, store)
    loaded, store = load_project(tmp_path / "a.comic")
    save_project(tmp_path / "b.comic", loaded, store)
    assert load_project(tmp_path / "b.comic")[0] == project


def test_field_values_built_without_validation_are_checked_in_full():
    """SetFields validates nested models as data: a placement built with ``model_construct`` (or
    ``model_copy(update=…)``) whose values the loader refuses is refused when it is set."""
    from comic_studio.core.model import CharacterPlacement

    doc, panel_id = _doc()
    odd = CharacterPlacement.model_construct(character_id="a", figure=99, head_radius=0.1)
    before = _state(doc)
    with pytest.raises(CommandError, match="panel.characters"):
        editing.set_panel_fields(doc, panel_id, "Characters", characters=[odd])
    assert _state(doc) == before

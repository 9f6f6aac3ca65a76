"""Undo/redo of every command type, merging, the clean flag and change events."""

import pytest

from comic_studio.core.changes import ChangeKind
from comic_studio.core.commands import (
    Compound,
    InsertItem,
    MoveItem,
    RemoveItem,
    ReplaceList,
    SetFields,
)
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError
from comic_studio.core.model import Balloon, Box, Page, PageFormat, Panel, Project


def _doc() -> Document:
    project = Project(page_format=PageFormat(width=477, height=738))
    panel = Panel(id="p1", shape=[(0, 0), (100, 0), (100, 100), (0, 100)])
    panel.balloons.append(Balloon(id="b1", text="Hi", box=Box(x=10, y=10, w=50, h=30)))
    project.pages.append(Page(id="page1", panels=[panel]))
    return Document(project)


def _state(doc: Document) -> dict:
    return doc.project.model_dump()


def test_set_fields_undo_redo_and_events():
    doc = _doc()
    seen = []
    doc.changed.connect(seen.append)
    before = _state(doc)
    doc.execute(SetFields(("balloon", "b1"), "Edit text", text="Hello there"))
    assert doc.project.pages[0].panels[0].balloons[0].text == "Hello there"
    assert seen[-1].touches(ChangeKind.BALLOONS) and "b1" in seen[-1].ids
    after = _state(doc)
    doc.undo()
    assert _state(doc) == before
    doc.redo()
    assert _state(doc) == after


def test_every_list_command_round_trips():
    doc = _doc()
    states = [_state(doc)]
    commands = [
        InsertItem(("pages",), Page(id="page2"), text="Add page"),
        InsertItem(("panels", "page2"), Panel(id="p2", shape=[(0, 0), (1, 0), (1, 1)])),
        MoveItem(("pages",), "page2", 0),
        ReplaceList(("panels", "page1"), [Panel(id="p9", shape=[(0, 0), (5, 0), (5, 5)])], "Apply template"),
        RemoveItem(("pages",), "page2"),
        Compound(
            "Two edits", [SetFields(("project",), "Title", title="X"), SetFields(("format",), "Gutter", gutter=20)]
        ),
    ]
    for command in commands:
        doc.execute(command)
        states.append(_state(doc))
    assert doc.project.title == "X" and doc.project.page_format.gutter == 20
    for expected in reversed(states[:-1]):
        doc.undo()
        assert _state(doc) == expected
    for expected in states[1:]:
        doc.redo()
        assert _state(doc) == expected


def test_drag_merges_into_one_step_and_break_merge_splits():
    doc = _doc()
    for x in range(20, 60, 5):
        doc.execute(
            SetFields(("balloon", "b1"), "Move balloon", merge_key=("move", "b1"), box=Box(x=x, y=10, w=50, h=30))
        )
    assert len(doc.undo_stack) == 1
    doc.undo_stack.break_merge()
    doc.execute(SetFields(("balloon", "b1"), "Move balloon", merge_key=("move", "b1"), box=Box(x=99, y=10, w=50, h=30)))
    assert len(doc.undo_stack) == 2
    doc.undo()
    assert doc.project.pages[0].panels[0].balloons[0].box.x == 55
    doc.undo()
    assert doc.project.pages[0].panels[0].balloons[0].box.x == 10


def test_a_background_batch_is_one_step_across_gesture_ends_but_not_across_an_edit():
    doc = _doc()
    before = _state(doc)
    batch = ("render", 1)

    def step(text: str) -> Compound:
        return Compound("Render 3 panels", [SetFields(("balloon", "b1"), "Text", text=text)], batch, across_breaks=True)

    doc.execute(step("one"))
    doc.undo_stack.break_merge()  # the author clicked somewhere meanwhile: no edit
    doc.execute(ReplaceList(("balloons", "p1"), [Balloon(id="b2", text="x", box=Box(x=1, y=1, w=9, h=9))], "Letter"))
    assert len(doc.undo_stack) == 2  # a command of its own (no batch key) is a step of its own
    doc.undo()
    doc.execute(step("two"))
    doc.undo_stack.break_merge()
    doc.execute(step("three"))
    assert len(doc.undo_stack) == 1 and doc.project.pages[0].panels[0].balloons[0].text == "three"
    doc.undo()
    assert _state(doc) == before
    doc.redo()
    assert doc.project.pages[0].panels[0].balloons[0].text == "three"
    # An edit of the author in between: the rest of the batch is a new step after it.
    doc.execute(SetFields(("project",), "Title", title="T"))
    doc.execute(step("four"))
    assert len(doc.undo_stack) == 3


def test_clean_flag_and_modified_signal():
    doc = _doc()
    flags = []
    doc.modified_changed.connect(flags.append)
    assert not doc.is_modified
    doc.execute(SetFields(("project",), "Title", title="A"))
    assert doc.is_modified
    doc.undo()
    assert not doc.is_modified
    assert flags == [True, False]
    doc.redo()
    doc.undo_stack.set_clean()
    assert not doc.is_modified
    # typing after a save must not merge into the saved step
    doc.execute(SetFields(("project",), "Title", merge_key="title", title="B"))
    doc.execute(SetFields(("project",), "Title", merge_key="title", title="BC"))
    doc.undo()
    assert doc.project.title == "A" and not doc.is_modified


def test_push_after_undo_drops_redo_tail_and_clean_state():
    doc = _doc()
    doc.execute(SetFields(("project",), "Title", title="A"))
    doc.undo_stack.set_clean()
    doc.undo()
    doc.execute(SetFields(("project",), "Title", title="B"))
    assert not doc.undo_stack.can_redo()
    doc.undo()
    assert doc.is_modified  # the saved state (title A) is no longer reachable


def test_failing_command_changes_nothing():
    doc = _doc()
    before = _state(doc)
    with pytest.raises(CommandError):
        doc.execute(SetFields(("panel", "missing"), "Edit", prompt="x"))
    with pytest.raises(CommandError):
        doc.execute(Compound("Half", [SetFields(("project",), "T", title="Z"), RemoveItem(("pages",), "nope")]))
    assert _state(doc) == before
    assert len(doc.undo_stack) == 0


def test_set_fields_validates_and_is_atomic():
    from comic_studio.core.model import ShotType

    doc = _doc()
    doc.execute(SetFields(("panel", "p1"), "Shot", shot="close-up"))
    assert doc.project.pages[0].panels[0].shot is ShotType.CLOSE_UP  # coerced like a load would
    before = _state(doc)
    with pytest.raises(CommandError, match="panel.seed"):
        doc.execute(SetFields(("panel", "p1"), "Two fields", prompt="changed", seed="not a number"))
    assert _state(doc) == before

"""Undo granularity in the whole window (every dock listening): each gesture an author thinks of as
one edit — a gutter drag whatever is selected, a balloon drag, typing balloon text, the story, a
beat's action or a prompt — is exactly one step in the core stack and in the Qt mirror, and one
undo brings back the document as it was before the gesture."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from render_helpers import small_document

from comic_studio.core import editing
from comic_studio.core.layout import bbox
from comic_studio.core.model import BalloonKind, Box
from comic_studio.core.settings import AppSettings
from comic_studio.ui.main_window import MainWindow
from comic_studio.workflows.lettering import letter_panel


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    monkeypatch.setattr(win, "ask", lambda *args, **kwargs: "Discard")
    monkeypatch.setattr(win, "inform", lambda *args, **kwargs: None)
    qtbot.addWidget(win)
    win.resize(1400, 1000)
    win.show()
    qtbot.waitExposed(win)
    win._replace_document(small_document())
    win.canvas.fit_page()
    yield win
    win.ctx.undo_stack.setClean()
    win._restored_unsaved = False


class Steps:
    """Counts the steps one gesture adds to both stacks and checks that one undo reverts it."""

    def __init__(self, window):
        self.ctx = window.ctx

    def __enter__(self):
        self.qt, self.core = self.ctx.undo_stack.count(), self.ctx.document.undo_stack.index
        self.before = self.ctx.document.project.model_dump()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            after = self.ctx.document.project.model_dump()
            assert after != self.before, "the gesture changed nothing"
            assert self.ctx.undo_stack.count() - self.qt == 1, "the Qt mirror"
            assert self.ctx.document.undo_stack.index - self.core == 1, "the core stack"
            self.ctx.undo_stack.undo()
            assert self.ctx.document.project.model_dump() == self.before
            self.ctx.undo_stack.redo()
            assert self.ctx.document.project.model_dump() == after
        return False


def _view_pos(window, x: float, y: float) -> QPoint:
    return window.canvas.mapFromScene(QPointF(x, y))


def _drag(qtbot, window, start, end, steps: int = 12) -> None:
    vp = window.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=_view_pos(window, *start))
    for i in range(1, steps + 1):
        t = i / steps
        qtbot.mouseMove(vp, _view_pos(window, start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=_view_pos(window, *end))


def _a_balloon(window):
    """The first lettered panel of the page and its first balloon (lettered here: no render yet)."""
    ctx = window.ctx
    for panel in ctx.current_page.panels_in_order():
        ctx.edit(letter_panel, panel.id)
    panel = next(p for p in ctx.current_page.panels_in_order() if p.balloons)
    return panel, panel.balloons[0]


@pytest.mark.parametrize("selection", ["nothing", "a bordering panel", "another panel", "two panels", "a balloon"])
def test_a_gutter_drag_is_one_step_whatever_is_selected(qtbot, window, selection):
    ctx = window.ctx
    editing.add_page(ctx.document, "grid-2x2")
    page = ctx.document.project.pages[-1]
    ctx.select_page(page.id)
    window.canvas.fit_page()
    handles = window.canvas.page_scene.border_items
    handle = next(h for h in handles if h.border.orientation == "vertical")
    border = handle.border
    a = next(pid for pid, _e in border.side_a)
    other = next(p.id for p in page.panels if p.id not in {pid for pid, _e in border.side_a + border.side_b})
    if selection == "a bordering panel":
        ctx.select_panels([a])
    elif selection == "another panel":
        ctx.select_panels([other])
    elif selection == "two panels":
        ctx.select_panels([a, other])
    elif selection == "a balloon":
        pb = bbox(next(p for p in page.panels if p.id == other).shape)
        balloon = ctx.edit(
            editing.add_balloon, other, BalloonKind.SPEECH, Box(x=pb.x + 10, y=pb.y + 10, w=80, h=40), "Hi"
        )
        ctx.select_balloon(balloon.id)
    mid = ((border.start[0] + border.end[0]) / 2, (border.start[1] + border.end[1]) / 2)
    with Steps(window):
        _drag(qtbot, window, mid, (mid[0] + 30, mid[1]))


def test_a_balloon_drag_and_typing_its_text_are_one_step_each(qtbot, window):
    panel, balloon = _a_balloon(window)
    box = balloon.box
    with Steps(window):
        _drag(qtbot, window, (box.cx, box.cy), (box.cx + 10, box.cy + 12))
    canvas = window.canvas
    with Steps(window):
        qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view_pos(window, box.cx + 10, box.cy + 12))
        assert canvas.editor is not None
        qtbot.keyClicks(canvas.editor, " and more")
        qtbot.keyClick(canvas.editor, Qt.Key.Key_Return)
    assert canvas.editor is None


def test_typing_the_story_a_beat_and_a_prompt_are_one_step_each(qtbot, window):
    outliner = window.story_outliner
    with Steps(window):
        outliner.story_edit.setFocus()
        outliner.story_edit.moveCursor(outliner.story_edit.textCursor().MoveOperation.End)
        qtbot.keyClicks(outliner.story_edit, " Theo waved.")
        outliner._end_burst()
    beat = window.ctx.document.project.story.beats()[0]
    outliner.select_beat(beat.id)
    with Steps(window):
        outliner.editor.action_edit.setFocus()
        qtbot.keyClicks(outliner.editor.action_edit, " Slowly.")
        outliner.editor._end_typing()
    panel, _balloon = _a_balloon(window)
    window.ctx.select_panels([panel.id])
    with Steps(window):
        window.inspector.prompt.setFocus()
        qtbot.keyClicks(window.inspector.prompt, "rain at night")
        window.inspector._end_typing()

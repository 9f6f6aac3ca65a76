"""Lettering an author controls: text grows its balloon at one type size, a note explains text that
cannot fit, the Inspector's balloon section edits every property as one undo step, new balloons
take the book's type size and aim at the nearest character, and the tools have mnemonic keys."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence

from comic_studio.core import editing
from comic_studio.core.commands import InsertItem, SetFields
from comic_studio.core.layout import bbox
from comic_studio.core.lettering import balloon_geometry
from comic_studio.core.model import BalloonKind, BalloonStyle, Box, Character, CharacterPlacement
from comic_studio.ui.canvas import PageCanvas
from comic_studio.ui.inspector import PanelInspector

LINE = "The lighthouse keeper never leaves before midnight, and tonight of all nights he would not."


@pytest.fixture
def canvas(qtbot, ctx):
    page = editing.add_page(ctx.document, "grid-2x2")
    ctx.select_page(page.id)
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    view.resize(700, 1000)
    view.show()
    qtbot.waitExposed(view)
    view.fit_page()
    return view


def to_view(view: PageCanvas, x: float, y: float) -> QPoint:
    return view.mapFromScene(QPointF(x, y))


def cast(ctx, *heads: tuple[float, float]) -> tuple:
    """Characters with heads (panel-normalised) in the first panel; returns (panel, characters)."""
    doc = ctx.document
    panel = ctx.current_page.panels_in_order()[0]
    people, placements = [], []
    for i, head in enumerate(heads):
        person = Character(name=f"Person {i + 1}")
        doc.execute(InsertItem(("characters",), person, text="Add character"))
        people.append(person)
        placements.append(CharacterPlacement(character_id=person.id, figure=i, head=head, head_radius=0.08))
    doc.execute(SetFields(("panel", panel.id), "Cast", characters=placements))
    return panel, people


def stored(ctx, balloon_id):
    for page in ctx.document.project.pages:
        for panel in page.panels:
            for balloon in panel.balloons:
                if balloon.id == balloon_id:
                    return balloon, panel
    raise AssertionError(balloon_id)


def test_typing_grows_the_balloon_at_one_type_size_as_one_undo_step(qtbot, canvas, ctx, shots):
    panel, _ = cast(ctx, (0.75, 0.35))
    pb = bbox(panel.shape)
    canvas.set_tool("speech")
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=to_view(canvas, pb.x + 0.3 * pb.w, pb.cy))
    balloon = ctx.document.project.find_panel(panel.id)[1].balloons[0]
    first = balloon.box
    steps = ctx.undo_stack.count()
    qtbot.keyClicks(canvas.editor, LINE)
    qtbot.keyClick(canvas.editor, Qt.Key.Key_Return)
    grown, panel = stored(ctx, balloon.id)
    geometry = balloon_geometry(grown, panel, ctx.document.project)
    # The type stayed at the book's size; the balloon grew (never shrank) and holds the text.
    assert geometry.font_size == BalloonStyle().font_size and geometry.fits
    assert grown.box.w >= first.w and grown.box.h >= first.h and grown.box.w * grown.box.h > first.w * first.h
    inside = bbox(panel.shape)
    assert inside.x - 1e-6 <= grown.box.x and grown.box.x + grown.box.w <= inside.x + inside.w + 1e-6
    assert inside.y - 1e-6 <= grown.box.y and grown.box.y + grown.box.h <= inside.y + inside.h + 1e-6
    item = canvas.page_scene.balloon_items[balloon.id]
    assert item.problem == "" and not item.fit_note.isVisible() and item.toolTip() == ""
    canvas.grab().save(str(shots / "lettering_grown_balloon.png"))
    # The typing and the growth are one step: one undo gives back the empty balloon at its size.
    assert ctx.undo_stack.count() == steps + 1
    ctx.undo_stack.undo()
    back, _ = stored(ctx, balloon.id)
    assert back.text == "" and back.box == first


def test_text_that_cannot_fit_says_why_and_what_to_do(qtbot, canvas, ctx, shots):
    panel = ctx.current_page.panels_in_order()[0]
    # A small panel (an inset, say) that ten lines of dialogue cannot fit at 10 pt.
    small = [(40.0, 40.0), (160.0, 40.0), (160.0, 130.0), (40.0, 130.0)]
    ctx.document.execute(SetFields(("panel", panel.id), "Shape", shape=small))
    balloon = editing.add_balloon(ctx.document, panel.id, BalloonKind.SPEECH, Box(x=60, y=60, w=60, h=40))
    ctx.edit(editing.edit_balloon_text, balloon.id, LINE * 10)
    grown, panel = stored(ctx, balloon.id)
    item = canvas.page_scene.balloon_items[balloon.id]
    assert not item.fits
    # Grown to what the panel allows, not an unexplained red outline: tooltip and inline note.
    assert grown.box.h == pytest.approx(bbox(panel.shape).h)
    assert "type size (10 pt)" in item.problem and "Shorten the text" in item.problem
    assert item.toolTip() == item.problem
    assert item.fit_note.isVisible() and item.fit_note.text == item.problem
    canvas.grab().save(str(shots / "lettering_cannot_fit_note.png"))
    # A balloon the author made too small by hand, in a panel with room: the note says how to fix it.
    big = [(40.0, 40.0), (300.0, 40.0), (300.0, 400.0), (40.0, 400.0)]
    ctx.document.execute(SetFields(("panel", panel.id), "Shape", shape=big))
    ctx.document.execute(SetFields(("balloon", balloon.id), "Hand", text=LINE, box=Box(x=60, y=60, w=30, h=20)))
    assert "Drag the balloon's corner" in item.problem
    assert item.fit_note.isVisible()


def test_inspector_edits_each_balloon_property_as_one_undo_step(qtbot, ctx, shots):
    page = editing.add_page(ctx.document, "grid-2x2")
    ctx.select_page(page.id)
    panel, (ann, ben) = cast(ctx, (0.25, 0.4), (0.75, 0.4))
    pb = bbox(panel.shape)
    balloon = editing.add_balloon(
        ctx.document, panel.id, BalloonKind.SPEECH, Box(x=pb.x + 10, y=pb.y + 10, w=60, h=30), "Hi", ann.id
    )
    inspector = PanelInspector(ctx)
    qtbot.addWidget(inspector)
    inspector.show()
    section = inspector.balloon
    assert not section.isVisible()
    ctx.select_balloon(balloon.id)
    assert section.isVisible()
    assert section.speaker.currentData() == ann.id and section.kind.currentData() == "speech"
    assert section.size.value() == 10.0 and section.tail.isChecked() and section.text.toPlainText() == "Hi"
    inspector.resize(380, 700)
    inspector.grab().save(str(shots / "inspector_balloon_section.png"))

    def step(action) -> None:
        before = ctx.undo_stack.count()
        action()
        assert ctx.undo_stack.count() == before + 1

    step(lambda: section.speaker.activated.emit(section.speaker.findData(ben.id)))
    assert stored(ctx, balloon.id)[0].tail.character_id == ben.id
    step(lambda: section.kind.activated.emit(section.kind.findData("thought")))
    assert stored(ctx, balloon.id)[0].kind is BalloonKind.THOUGHT
    step(lambda: section.size.setValue(12.0))
    b, p = stored(ctx, balloon.id)
    assert b.style.font_size == 12.0 and balloon_geometry(b, p).font_size == 12.0
    section.size.clearFocus()
    ctx.document.undo_stack.break_merge()
    step(lambda: section.tail.setChecked(False))
    assert stored(ctx, balloon.id)[0].tail is None
    # Tail on again: aimed at the character nearest the balloon (Ann, top left).
    step(lambda: section.tail.setChecked(True))
    assert stored(ctx, balloon.id)[0].tail.character_id == ann.id
    # Typing merges into one step and grows the balloon.
    before = ctx.undo_stack.count()
    section.text.setFocus()
    section.text.selectAll()
    qtbot.keyClicks(section.text, LINE)
    assert ctx.undo_stack.count() == before + 1
    b, p = stored(ctx, balloon.id)
    assert b.text == LINE and balloon_geometry(b, p).fits
    # Undo walks back one property at a time, and the section follows.
    ctx.undo_stack.undo()
    assert section.text.toPlainText() == "Hi"
    ctx.undo_stack.undo()
    ctx.undo_stack.undo()
    assert section.tail.isChecked()
    ctx.undo_stack.undo()
    assert section.size.value() == 10.0
    ctx.select_balloon(None)
    assert not section.isVisible()


def test_new_balloons_take_the_books_type_size_and_aim_at_the_nearest_character(qtbot, canvas, ctx):
    panel, (ann, ben) = cast(ctx, (0.2, 0.4), (0.8, 0.4))
    pb = bbox(panel.shape)
    editing.add_balloon(
        ctx.document,
        panel.id,
        BalloonKind.CAPTION,
        Box(x=pb.x, y=pb.y, w=80, h=20),
        "Later",
        style=BalloonStyle(font_size=11.0),
    )
    canvas.set_tool("speech")
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=to_view(canvas, pb.x + 0.85 * pb.w, pb.cy))
    canvas.editor.finish()
    new = ctx.document.project.find_panel(panel.id)[1].balloons[-1]
    assert new.style.font_size == 11.0  # the book's size, not the default 10
    assert new.tail is not None and new.tail.character_id == ben.id
    canvas.set_tool("caption")
    qtbot.mouseClick(
        canvas.viewport(), Qt.MouseButton.LeftButton, pos=to_view(canvas, pb.x + 0.2 * pb.w, pb.y + 0.8 * pb.h)
    )
    canvas.editor.finish()
    caption = ctx.document.project.find_panel(panel.id)[1].balloons[-1]
    assert caption.kind is BalloonKind.CAPTION and caption.tail is None


def test_tool_shortcuts_are_mnemonic_and_clash_with_nothing(qtbot, tmp_path, monkeypatch):
    from comic_studio.core.settings import AppSettings
    from comic_studio.ui.main_window import MainWindow

    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    window = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(window)
    keys = {t: window.action_map[f"tool_{t}"].shortcut().toString() for t in ("speech", "thought", "shout")}
    assert keys == {"speech": "S", "thought": "T", "shout": "H"}
    texts = {
        t: window.action_map[f"tool_{t}"].text() for t in ("speech", "thought", "shout", "whisper", "caption", "sfx")
    }
    assert texts == {
        "speech": "&Speech",
        "thought": "&Thought",
        "shout": "S&hout",
        "whisper": "&Whisper",
        "caption": "&Caption",
        "sfx": "SF&X",
    }
    # Every window-wide shortcut is unique (a widget's own, e.g. Delete in the story tree, is local).
    seen: dict[str, str] = {}
    for action in window.findChildren(type(window.action_map["tool_speech"])):
        if action.shortcutContext() == Qt.ShortcutContext.WidgetShortcut:
            continue
        for sequence in action.shortcuts():
            text = sequence.toString(QKeySequence.SequenceFormat.PortableText)
            assert text not in seen or seen[text] == action.text(), (text, seen.get(text), action.text())
            seen[text] = action.text()
    # The mnemonics within the Tools menu are distinct too.
    tools_menu = next(
        m for m in window.menuBar().findChildren(type(window.menuBar().actions()[0].menu())) if m.title() == "&Tools"
    )
    letters = [a.text()[a.text().index("&") + 1].lower() for a in tools_menu.actions() if "&" in a.text()]
    assert len(letters) == len(set(letters)) and {"l", "s", "t", "h", "w", "c", "x"} <= set(letters)
    # The action a key stands for picks the tool on the canvas.
    by_key = {k: a for a in window.action_map.values() if (k := a.shortcut().toString())}
    by_key["H"].trigger()
    assert window.canvas.tool == "shout"
    by_key["S"].trigger()
    assert window.canvas.tool == "speech"
    window.ctx.undo_stack.setClean()
    window._restored_unsaved = False

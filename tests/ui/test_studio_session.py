"""A whole authoring session through the window's widgets, asserting on the document and the files:
new project → paste story → Parse → Lay out → Render all (storyboard) → add and edit a balloon →
undo/redo → save → reopen → export PDF."""

from pathlib import Path

from pypdf import PdfReader
from PySide6.QtCore import QPointF, Qt

from comic_studio.core import editing
from comic_studio.core.layout import bbox
from comic_studio.core.model import BalloonKind
from comic_studio.core.settings import AppSettings
from comic_studio.ui.dialogs.export_dialog import ExportOptions
from comic_studio.ui.main_window import MainWindow

STORY = """INT. WORKSHOP - NIGHT

Mara sat at the bench and studied a brass key. Theo walked in with two cups of tea.

"Still awake?" Theo asked.

"Grandmother hid it for a reason," Mara said.

EXT. HARBOUR - DAWN

Mara and Theo ran down the pier. Mara pointed at the old boathouse.
"""


def test_story_to_exported_book_through_the_window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(win)
    monkeypatch.setattr(win, "ask", lambda *a, **k: "Discard")
    monkeypatch.setattr(win, "inform", lambda *a, **k: None)
    win.resize(1400, 900)
    win.show()
    ctx = win.ctx

    # New project, paste the story, Parse on the worker thread, Lay out (accepting new characters).
    win.action_map["new"].trigger()
    outliner = win.story_outliner
    outliner.offer_suggestions = lambda suggestions: [s.id for s in suggestions]
    outliner.story_edit.setPlainText(STORY)
    qtbot.mouseClick(outliner.parse_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: not outliner.worker.is_running() and len(ctx.document.project.story.beats()) >= 5, timeout=20_000
    )
    qtbot.mouseClick(outliner.layout_button, Qt.MouseButton.LeftButton)
    project = ctx.document.project
    panels = [p for page in project.pages for p in page.panels]
    assert panels and {p.beat_id for p in panels} >= {b.id for b in project.story.beats()}
    assert {c.name for c in project.characters} >= {"Mara", "Theo"}

    # Render all with the storyboard (word-overlap pose matching keeps the test quick).
    for panel in panels:
        ctx.edit(editing.set_panel_fields, panel.id, "Settings", backend_settings={"pose_matching": "overlap"})
    win.action_map["render_all"].trigger()
    qtbot.waitUntil(
        lambda: all(p.result() for page in project.pages for p in page.panels) and win.render_service.is_idle(),
        timeout=60_000,
    )
    spoken = [b.text for page in project.pages for p in page.panels for b in p.balloons]
    assert "Still awake?" in spoken  # dialogue lettered after the render

    # Add a speech balloon with the tool on the first page's first panel and type its text.
    ctx.select_page(project.pages[0].id)
    canvas = win.canvas
    target = project.pages[0].panels_in_order()[0]
    box = bbox(target.shape)
    before = len(target.balloons)
    canvas.set_tool("speech")
    qtbot.mouseClick(
        canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(box.cx, box.y + box.h * 0.8))
    )
    assert canvas.editor is not None
    qtbot.keyClicks(canvas.editor, "Look!")
    qtbot.keyClick(canvas.editor, Qt.Key.Key_Return)
    added = [b for b in target.balloons if b.text == "Look!"]
    assert len(target.balloons) == before + 1 and added and added[0].kind is BalloonKind.SPEECH

    # Undo removes the typed text / balloon step by step; redo brings them back.
    win.action_map["undo"].trigger()
    win.action_map["undo"].trigger()
    assert not any(b.text == "Look!" for b in target.balloons)
    win.action_map["redo"].trigger()
    win.action_map["redo"].trigger()
    assert any(b.text == "Look!" for b in target.balloons)

    # Save, then reopen in the same window: the document comes back whole.
    path = tmp_path / "session.comic"
    monkeypatch.setattr(win, "choose_save_path", lambda: str(path))
    win.action_map["save_as"].trigger()
    assert path.is_file() and not win.isWindowModified()
    saved = project.model_dump()
    win.action_map["new"].trigger()
    monkeypatch.setattr(win, "choose_open_path", lambda: str(path))
    win.action_map["open"].trigger()
    assert ctx.document.project.model_dump() == saved

    # Export the PDF from the menu (worker thread) and read it back.
    pdf = tmp_path / "session.pdf"
    monkeypatch.setattr(
        win, "choose_export_options", lambda kind: ExportOptions("pdf", pdf, dpi=100, bleed=True, trim_marks=False)
    )
    win.action_map["export_pdf"].trigger()
    thread = win._exports[-1]
    qtbot.waitUntil(lambda: bool(thread.result or thread.error), timeout=60_000)
    assert thread.error == ""
    reader = PdfReader(pdf)
    assert len(reader.pages) == len(ctx.document.project.pages)
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Look!" in text and "Still awake?" in text
    win.grab().save(str(Path(tmp_path) / "session-window.png"))

"""The main window shell: actions and menus, title/modified marker, undo/redo, files (new, open,
save, save as, recent), errors on open, close confirmation, theme, dock layout memory."""

from pathlib import Path

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDockWidget

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.core.settings import AppSettings, load_settings
from comic_studio.ui import actions as declared
from comic_studio.ui.canvas import PageCanvas
from comic_studio.ui.characters import CharacterLibrary
from comic_studio.ui.inspector import PanelInspector
from comic_studio.ui.main_window import MainWindow
from comic_studio.ui.outliner import StoryOutliner
from comic_studio.ui.pages_strip import PagesStrip
from comic_studio.ui.queue_panel import QueuePanel


class Recorder:
    """Stands in for the window's dialog seams: records questions, returns scripted answers."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.asked: list[tuple[str, str]] = []
        self.informed: list[tuple[str, str]] = []

    def ask(self, title, text, buttons, default=None):
        self.asked.append((title, text))
        # Unscripted questions (e.g. the close at teardown) discard: a test never hangs on a box.
        return self.answers.pop(0) if self.answers else "Discard"

    def inform(self, title, text, error=True):
        self.informed.append((title, text))


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    rec = Recorder()
    monkeypatch.setattr(win, "ask", rec.ask)
    monkeypatch.setattr(win, "inform", rec.inform)
    win.recorder = rec
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.ctx.undo_stack.setClean()
    win._restored_unsaved = False


def trigger(window, action_id):
    window.action_map[action_id].trigger()


def saved_project(tmp_path, name="book.comic", pages=2) -> Path:
    doc = Document.new(title="Saved book")
    for _ in range(pages):
        editing.add_page(doc)
    return doc.save(tmp_path / name)


def test_window_shows_docks_menus_and_every_action_has_a_handler(window, tmp_path):
    assert window.isVisible()
    assert isinstance(window.centralWidget(), PageCanvas)
    expected = {
        "pages": PagesStrip,
        "story": StoryOutliner,
        "inspector": PanelInspector,
        "characters": CharacterLibrary,
        "queue": QueuePanel,
    }
    for key, cls in expected.items():
        dock = window.findChild(QDockWidget, f"dock_{key}")
        assert dock is not None and isinstance(dock.widget(), cls)
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Edit", "View", "Tools", "Page", "Panel", "Help"]
    for spec in declared.ACTIONS:
        assert callable(getattr(window, spec.handler)), spec.id
    assert window.action_map["save"].shortcut().toString() == "Ctrl+S"
    assert window.action_map["undo"].shortcut().toString() == "Ctrl+Z"
    templates = window.templates_menu.findChildren(type(window.action_map["save"]))
    assert any(a.objectName() == "template_grid-2x2" for a in templates)
    # A new window holds one clean page in the preferred preset.
    assert len(window.ctx.document.project.pages) == 1
    assert window.windowTitle() == "Untitled comic[*] — Comic Studio"
    assert not window.isWindowModified()
    assert window.page_label.text() == "Page 1/1"
    window.grab().save(str(tmp_path / "main_window.png"))
    assert (tmp_path / "main_window.png").stat().st_size > 10_000


def test_modified_marker_follows_edits_undo_and_save(window, tmp_path, monkeypatch):
    trigger(window, "add_page")
    assert len(window.ctx.document.project.pages) == 2
    assert window.isWindowModified()
    assert window.page_label.text() == "Page 2/2"
    trigger(window, "undo")
    assert len(window.ctx.document.project.pages) == 1
    assert not window.isWindowModified()
    trigger(window, "redo")
    assert len(window.ctx.document.project.pages) == 2
    assert window.isWindowModified()

    target = tmp_path / "my book"
    monkeypatch.setattr(window, "choose_save_path", lambda: str(target))
    trigger(window, "save")  # no file yet: Save goes through Save As
    saved = tmp_path / "my book.comic"
    assert saved.is_file()
    assert not window.isWindowModified()
    assert window.windowTitle() == "my book[*] — Comic Studio"
    assert Document.open(saved).project.pages == window.ctx.document.project.pages
    settings, _ = load_settings()
    assert settings.recent_files[0] == str(saved)


def test_save_new_then_reopen_round_trip(window, tmp_path, monkeypatch):
    ctx = window.ctx
    trigger(window, "add_page")
    trigger(window, "duplicate_page")
    page_id = ctx.current_page_id
    panel = ctx.current_page.panels[0]
    ctx.edit(editing.set_panel_fields, panel.id, "Prompt", prompt="a lighthouse at dusk")
    before = ctx.document.project.model_copy(deep=True)
    target = tmp_path / "round.comic"
    monkeypatch.setattr(window, "choose_save_path", lambda: str(target))
    trigger(window, "save_as")
    assert target.is_file()

    trigger(window, "new")
    assert window.recorder.asked == []  # saved: no question
    assert len(ctx.document.project.pages) == 1 and ctx.document.path is None

    monkeypatch.setattr(window, "choose_open_path", lambda: str(target))
    trigger(window, "open")
    reopened = ctx.document.project
    assert reopened == before
    assert reopened.page(page_id).panels[0].prompt == "a lighthouse at dusk"
    assert ctx.document.path == target
    assert not window.isWindowModified()
    assert window.windowTitle().startswith("round[*]")


def test_open_corrupt_file_shows_error_and_keeps_document(window, tmp_path, monkeypatch):
    trigger(window, "add_page")
    doc = window.ctx.document
    bad = tmp_path / "broken.comic"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    window.recorder.answers = ["Discard"]
    monkeypatch.setattr(window, "choose_open_path", lambda: str(bad))
    trigger(window, "open")
    assert window.ctx.document is doc
    assert len(doc.project.pages) == 2
    [(title, text)] = window.recorder.informed
    assert title == "Cannot Open Project"
    assert "broken.comic" in text and "Traceback" not in text
    assert bad.read_bytes() == b"PK\x03\x04 this is not a zip"


def test_new_asks_about_unsaved_changes(window, tmp_path, monkeypatch):
    trigger(window, "add_page")
    doc = window.ctx.document
    window.recorder.answers = ["Cancel"]
    assert window.new_project() is False
    assert window.ctx.document is doc

    window.recorder.answers = ["Save"]
    monkeypatch.setattr(window, "choose_save_path", lambda: str(tmp_path / "kept.comic"))
    assert window.new_project() is True
    assert (tmp_path / "kept.comic").is_file()
    assert window.ctx.document is not doc

    trigger(window, "add_page")
    window.recorder.answers = ["Discard"]
    assert window.new_project() is True
    assert len(window.ctx.document.project.pages) == 1
    assert not window.isWindowModified()


def test_close_with_unsaved_changes(window, tmp_path, monkeypatch):
    trigger(window, "add_page")
    window.recorder.answers = ["Cancel"]
    window.close()
    assert window.isVisible()
    window.recorder.answers = ["Save"]
    monkeypatch.setattr(window, "choose_save_path", lambda: str(tmp_path / "closing.comic"))
    window.close()
    assert not window.isVisible()
    assert len(Document.open(tmp_path / "closing.comic").project.pages) == 2
    settings, _ = load_settings()
    assert settings.window_state and settings.window_geometry


def test_recent_files_menu_opens_and_forgets_missing(window, tmp_path):
    path = saved_project(tmp_path)
    assert window.open_project(path)
    assert window.settings.recent_files[0] == str(path)
    window._fill_recent_menu()
    entries = [a for a in window.recent_menu.actions() if a.toolTip() == str(path)]
    assert entries
    trigger(window, "new")
    entries[0].trigger()
    assert window.ctx.document.path == path
    path.unlink()
    trigger(window, "new")
    assert window.open_project(path) is False
    assert str(path) not in window.settings.recent_files
    assert "book.comic" in window.recorder.informed[-1][1]


def test_dock_layout_and_theme_are_remembered(window, qtbot, tmp_path):
    window.docks["queue"].hide()
    window.action_map["theme_dark"].trigger()
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() < 80
    window.close()
    settings, _ = load_settings()
    assert settings.theme == "dark"
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    again.show()
    assert again.docks["queue"].isHidden()
    assert not again.docks["inspector"].isHidden()
    assert again.action_map["theme_dark"].isChecked()
    window.set_theme("light")
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() > 180


def test_page_actions_and_errors_go_to_the_status_bar(window):
    ctx = window.ctx
    trigger(window, "delete_page")
    assert ctx.document.project.pages == []
    assert window.page_label.text() == "No pages"
    trigger(window, "delete_page")  # nothing to delete: a message, not an exception
    assert "No page" in window.statusBar().currentMessage()
    trigger(window, "render_panel")
    assert "Select a panel" in window.statusBar().currentMessage()
    trigger(window, "add_page")
    assert len(ctx.document.project.pages) == 1
    window.apply_template("grid-2x2")
    assert len(ctx.current_page.panels) == 4
    trigger(window, "undo")
    assert len(ctx.current_page.panels) == 3


def test_view_tool_and_panel_actions_reach_the_canvas(window):
    ctx, canvas = window.ctx, window.canvas
    trigger(window, "tool_speech")
    assert canvas.tool == "speech" and window.action_map["tool_speech"].isChecked()
    trigger(window, "tool_select")
    assert canvas.tool == "select"
    trigger(window, "fit_page")
    before = canvas.zoom
    trigger(window, "zoom_in")
    assert canvas.zoom > before
    assert window.zoom_label.text() == f"{canvas.zoom * 100:.0f}%"
    trigger(window, "actual_size")
    assert window.zoom_label.text() == "100%"
    page = ctx.current_page
    first = page.panels_in_order()[0].id
    ctx.select_panels([first])
    trigger(window, "split_v")
    assert len(ctx.current_page.panels) == 4
    assert window.isWindowModified()
    trigger(window, "undo")
    assert len(ctx.current_page.panels) == 3


def test_closing_the_window_stops_the_inspectors_helper_threads(window):
    # A docked widget gets no closeEvent when the main window closes: the window must stop the
    # inspector's pools itself (thumbnails, racig masks, pose browser), or their threads outlive it
    # and deliver results to deleted widgets.
    racig = window.inspector.racig
    pool = window.inspector.history._loader._pool
    window.close()
    assert not window.isVisible()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)  # shut down
    assert racig.jobs.is_shut_down() and racig.poses.jobs.is_shut_down()

"""A new user's first minutes: the Story dock is the one shown, File ▸ Open Sample Project gives a
laid-out book with its cast to render, and the toolbar does not move as undo texts change."""

from __future__ import annotations

from comic_studio.core import editing
from comic_studio.core.settings import AppSettings
from comic_studio.ui.main_window import MainWindow


def _shown(dock) -> bool:
    return dock.isVisible() and not dock.visibleRegion().isEmpty()


def test_first_start_sample_project_and_a_steady_toolbar(qtbot, tmp_path, monkeypatch, shots):
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    window = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))  # no saved layout: a first start
    monkeypatch.setattr(window, "ask", lambda *a, **k: "Discard")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert _shown(window.docks["story"]) and not _shown(window.docks["inspector"])

    window.action_map["sample"].trigger()
    project = window.ctx.document.project
    assert project.title == "The Lighthouse Key" and len(project.characters) == 3
    assert len(project.pages) >= 5 and project.story.beats()
    assert not window.is_modified and window.ctx.undo_stack.count() == 0  # nothing to undo or save yet
    assert window.story_outliner.story_edit.toPlainText().startswith(project.story.text[:40])
    assert _shown(window.docks["story"])
    window.grab().save(str(shots / "first_start_sample.png"))

    buttons = [window.toolbar.widgetForAction(a) for a in window.toolbar.actions() if not a.isSeparator()]
    before = [b.geometry() for b in buttons if b is not None]
    panel = project.pages[0].panels_in_order()[0]
    window.ctx.edit(editing.set_panel_fields, panel.id, "A very long undo text that would push every button along",
                    prompt="rain")  # fmt: skip
    assert window.action_map["undo"].text().endswith("push every button along")
    assert [b.geometry() for b in buttons if b is not None] == before
    window.ctx.undo_stack.setClean()

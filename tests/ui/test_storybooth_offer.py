"""A panel set to ``storybooth`` whose characters have no trained LoRA is not queued: the window
names them and offers to train the first one (the Train LoRA dialog opens on that character)."""

from __future__ import annotations

import pytest

from comic_studio.core import character_edits, editing
from comic_studio.core.document import Document
from comic_studio.core.model import CharacterPlacement
from comic_studio.core.settings import AppSettings
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.ui.main_window import MainWindow

pytest.importorskip("torch")


@pytest.fixture
def storybooth():
    register_backend("storybooth", "comic_studio.backends.consistent:StoryboothBackend")  # as pyproject declares
    yield
    unregister_backend("storybooth")


def test_storybooth_without_loras_offers_training(qtbot, tmp_path, monkeypatch, storybooth):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(win)
    asked: list[tuple[str, tuple[str, ...]]] = []

    def ask(title, text, buttons, default=None):
        asked.append((text, buttons))
        return buttons[0]

    monkeypatch.setattr(win, "ask", ask)
    doc = Document.new(title="Booth")
    ana = character_edits.add_character(doc, name="Ana")
    ben = character_edits.add_character(doc, name="Ben")
    editing.add_page(doc)
    panel = doc.project.pages[0].panels[0]
    panel.characters = [CharacterPlacement(character_id=ana.id), CharacterPlacement(character_id=ben.id)]
    panel.backend = "storybooth"
    win.ctx.set_document(doc)

    assert win.render_service.render_panels([panel.id]) == []  # refused before the queue
    assert win.render_service.jobs() == []
    ((text, buttons),) = asked
    assert "Ana, Ben have none" in text and buttons == ("Train Ana's LoRA…", "Cancel")
    dialog = win.character_library.train_dialog
    assert dialog is not None and dialog.character_id == ana.id and dialog.isVisible()
    dialog.close()
    win.ctx.undo_stack.setClean()

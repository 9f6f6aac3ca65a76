"""A panel set to the ``identity`` backend (StableIdentity) whose characters have no identity tokens
is not queued: the window names them and offers Train identity… for the first one, through the same
path as StoryBooth's missing LoRAs (the Train identity dialog opens on that character)."""

from __future__ import annotations

import pytest

from comic_studio.core import character_edits, editing
from comic_studio.core.document import Document
from comic_studio.core.model import CharacterPlacement
from comic_studio.core.settings import AppSettings
from comic_studio.generation.backend_api import MissingCharacterIdentities
from comic_studio.generation.registry import register_backend, unregister_backend
from comic_studio.generation.request import GenerationRequest, RequestCharacter
from comic_studio.ui.main_window import MainWindow

pytest.importorskip("torch")


@pytest.fixture
def identity_backend():
    register_backend("identity", "comic_studio.backends.identity:IdentityBackend")  # as pyproject declares
    yield
    unregister_backend("identity")


def test_the_backend_refusal_names_who_lacks_tokens_and_how_to_train(identity_backend):
    from comic_studio.backends.identity.backend import identity_characters

    request = GenerationRequest(backend="identity", width=64, height=64, characters=[
        RequestCharacter(id="a", name="Ana"), RequestCharacter(id="b", name="Ben", identity="0" * 64)])  # fmt: skip
    with pytest.raises(MissingCharacterIdentities) as refused:
        identity_characters(request)
    assert refused.value.characters == [("a", "Ana")] and refused.value.training == "identity"
    assert "Ana has none yet" in str(refused.value) and "Train identity…" in str(refused.value)


def test_identity_panel_without_tokens_offers_train_identity(
    qtbot, tmp_path, monkeypatch, identity_backend, tiny_models
):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(win)
    asked: list[tuple[str, str, tuple[str, ...]]] = []

    def ask(title, text, buttons, default=None):
        asked.append((title, text, buttons))
        return buttons[0]

    monkeypatch.setattr(win, "ask", ask)
    doc = Document.new(title="Identity")
    ana = character_edits.add_character(doc, name="Ana")
    ben = character_edits.add_character(doc, name="Ben")
    editing.add_page(doc)
    panel = doc.project.pages[0].panels[0]
    panel.characters = [CharacterPlacement(character_id=ana.id), CharacterPlacement(character_id=ben.id)]
    panel.backend = "identity"
    win.ctx.set_document(doc)

    assert win.render_service.render_panels([panel.id]) == []  # refused before the queue
    assert win.render_service.jobs() == []
    ((title, text, buttons),) = asked
    assert title == "Train an identity first" and "Ana, Ben have none" in text
    assert buttons == ("Train Ana's identity…", "Cancel")
    dialog = win.character_library.identity_dialog
    assert dialog is not None and dialog.character_id == ana.id and dialog.isVisible()
    assert win.character_library.train_dialog is None  # not the LoRA's
    dialog.close()
    win.ctx.undo_stack.setClean()

"""Identity anchors in the studio, through the real RenderService, Engine and consistent backend on
the tiny kit: the library's badge and actions, the queue label, "Use as anchor for" from a panel
result, and a panel that waits for its missing bank to be rebuilt."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import cid, two_shot  # noqa: E402

from comic_studio.core.commands import SetFields  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.ui.characters import CharacterLibrary  # noqa: E402
from comic_studio.ui.inspector_results import ResultHistory  # noqa: E402
from comic_studio.workflows.batch import render_panel  # noqa: E402


def card(library: CharacterLibrary, character_id: str):
    items = [library.grid.item(i) for i in range(library.grid.count())]
    return next(item for item in items if item.data(Qt.ItemDataRole.UserRole) == character_id)


def test_generate_then_regenerate_from_the_library(studio, qtbot):
    ctx, service, library, messages = studio
    ana = cid(ctx.document, "Ana")
    plain = card(library, ana).icon().pixmap(76).toImage()
    assert card(library, ana).data(library.ANCHOR_ROLE) == "none"
    library.select(ana)
    assert library.generate_anchor_action.isEnabled() and not library.regenerate_anchor_action.isEnabled()
    library.generate_anchor_action.trigger()
    (job,) = service.jobs()
    assert job.label == "Anchor: Ana" and job.anchor_for == ana and job.panel_id is None
    assert card(library, ana).data(library.ANCHOR_ROLE) == "generating"
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    anchor = ctx.document.project.character(ana).anchor
    assert anchor is not None and anchor.source == "rendered"
    assert ctx.undo_stack.undoText() == "Set anchor"
    # The card shows the anchor picture as a badge, and says so.
    item = card(library, ana)
    assert item.data(library.ANCHOR_ROLE) == "ready" and "identity anchor ready (rendered" in item.toolTip()
    assert item.icon().pixmap(76).toImage() != plain
    # Regenerate: a job labelled with the character, a new bank when it is done.
    library.select(ana)
    library._update_anchor_actions()
    assert library.regenerate_anchor_action.isEnabled() and not library.generate_anchor_action.isEnabled()
    library.regenerate_anchor_action.trigger()
    assert [j.label for j in service.jobs()] == ["Anchor: Ana"]
    assert service.render_anchor(ana) is None and "already being made" in messages[-1]
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    assert ctx.document.project.character(ana).anchor.bank != anchor.bank
    ctx.undo_stack.undo()
    assert ctx.document.project.character(ana).anchor == anchor
    library.select(ana)
    library.clear_anchor_action.trigger()
    assert ctx.document.project.character(ana).anchor is None and card(library, ana).data(library.ANCHOR_ROLE) == "none"


def test_use_a_panel_result_as_anchor(studio, qtbot):
    ctx, service, library, _messages = studio
    panel = two_shot(ctx.document)
    service.render_panels([panel.id])
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    panel = ctx.document.project.find_panel(panel.id)[1]
    result = panel.result()
    history = ResultHistory()
    qtbot.addWidget(history)
    history.enable_anchor_actions(ctx, service)
    history.show_panel(panel, ctx.document.assets)
    menu = history.anchor_menu(result.id)
    assert menu.title() == "Use as anchor for" and sorted(a.text() for a in menu.actions()) == ["Ana", "Ben"]
    next(a for a in menu.actions() if a.text() == "Ben").trigger()
    ben = cid(ctx.document, "Ben")
    assert [j.label for j in service.jobs()] == ["Anchor: Ben"]
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    anchor = ctx.document.project.character(ben).anchor
    assert anchor.source == "picture" and anchor.image == result.asset
    assert card(library, ben).data(library.ANCHOR_ROLE) == "ready"
    history.shutdown()


def test_a_panel_waits_for_its_missing_bank_to_be_rebuilt(studio, qtbot, tmp_path, monkeypatch):
    ctx, service, library, messages = studio
    ana = cid(ctx.document, "Ana")
    service.render_anchor(ana)
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    anchor = ctx.document.project.character(ana).anchor
    # A bank the project does not carry (simulated big bank), on a machine with an empty bank folder.
    big = anchor.model_copy(update={"bank_bytes": 2**40})
    ctx.edit(lambda doc: doc.execute(SetFields(("character", ana), "Simulate a big bank", anchor=big)))
    reopened = Document.open(ctx.document.save(tmp_path / "big.comic"))
    assert anchor.bank not in reopened.assets
    ctx.set_document(reopened)
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "other-machine"))
    panel = next(
        p for page in reopened.project.pages for p in page.panels if [c.character_id for c in p.characters] == [ana]
    )
    assert service.render_panels([panel.id]) == []
    assert [j.label for j in service.jobs()] == ["Anchor: Ana (rebuilding)"]
    assert "waits for the identity bank of Ana" in messages[-1]
    assert library.anchor_state(ana) == "rebuilding"
    qtbot.waitUntil(lambda: service.is_idle() and ctx.document.project.find_panel(panel.id)[1].result() is not None,
                    timeout=60_000)  # fmt: skip
    assert (tmp_path / "other-machine" / f"{anchor.bank}.safetensors").is_file()
    result = ctx.document.project.find_panel(panel.id)[1].result()
    assert f"{ana}={anchor.bank}" in result.request["backend_settings"]["banks"]
    assert ctx.document.project.character(ana).anchor.bank == anchor.bank  # same device: the same bank
    # The same request replayed headless gives the same pixels.
    again = render_panel(ctx.document, panel.id)
    images = [np.asarray(ctx.document.assets.open_image(r.asset).convert("RGB")) for r in (result, again)]
    assert np.array_equal(*images)

""" "Regenerate same seed" of a consistent panel whose identity bank is missing on this machine, through
the real RenderService, Engine and consistent backend on the tiny kit: the character's current anchor
bank is rebuilt first and the stored request then replays exactly; an older anchor's bank is gone, so
the author is told to render the panel again and nothing is queued."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import cid  # noqa: E402

from comic_studio.core.commands import SetFields  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402

TIMEOUT = 60_000


def ana_panel_with_result(ctx, service, qtbot):
    """Ana gets an anchor, then her solo panel is rendered with it: (Ana's id, panel, its result)."""
    ana = cid(ctx.document, "Ana")
    service.render_anchor(ana)
    qtbot.waitUntil(service.is_idle, timeout=TIMEOUT)
    panels = [p for page in ctx.document.project.pages for p in page.panels]
    panel = next(p for p in panels if [c.character_id for c in p.characters] == [ana])
    service.render_panels([panel.id])
    qtbot.waitUntil(service.is_idle, timeout=TIMEOUT)
    result = ctx.document.project.find_panel(panel.id)[1].result()
    assert f"{ana}={ctx.document.project.character(ana).anchor.bank}" in result.request["backend_settings"]["banks"]
    return ana, panel.id, result


def move_to_another_machine(ctx, tmp_path, monkeypatch) -> Document:
    """Save, reopen (assets nothing references are dropped) and use an empty bank folder."""
    reopened = Document.open(ctx.document.save(tmp_path / "book.comic"))
    ctx.set_document(reopened)
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "other-machine"))
    return reopened


def pixels(doc: Document, result) -> np.ndarray:
    return np.asarray(doc.assets.open_image(result.asset).convert("RGB"))


def test_regenerate_waits_for_the_current_anchor_bank_to_be_rebuilt(studio, qtbot, tmp_path, monkeypatch):
    ctx, service, _library, messages = studio
    ana, panel_id, first = ana_panel_with_result(ctx, service, qtbot)
    anchor = ctx.document.project.character(ana).anchor
    # A bank the project does not carry (simulated big bank), then a machine whose bank folder is empty.
    big = anchor.model_copy(update={"bank_bytes": 2**40})
    ctx.edit(lambda doc: doc.execute(SetFields(("character", ana), "Simulate a big bank", anchor=big)))
    doc = move_to_another_machine(ctx, tmp_path, monkeypatch)
    assert anchor.bank not in doc.assets

    assert service.regenerate(panel_id, first.id) is None  # not queued yet: it waits for the rebuild
    assert [j.label for j in service.jobs()] == ["Anchor: Ana (rebuilding)"]
    assert (
        messages[-1] == f"{service.panel_label(panel_id)} (same seed) waits for the identity bank of Ana to be rebuilt"
    )
    assert service.anchors.waiting_panels() == [panel_id]
    assert service.regenerate(panel_id, first.id) is None and "already waits" in messages[-1]
    assert len(service.jobs()) == 1

    qtbot.waitUntil(
        lambda: service.is_idle() and len(doc.project.find_panel(panel_id)[1].results) == 2, timeout=TIMEOUT
    )
    assert (tmp_path / "other-machine" / f"{anchor.bank}.safetensors").is_file()
    again = doc.project.find_panel(panel_id)[1].result()
    assert again.id != first.id and again.seed == first.seed
    assert again.request["backend_settings"]["banks"] == first.request["backend_settings"]["banks"]
    assert np.array_equal(pixels(doc, again), pixels(doc, first))  # the stored request replayed exactly
    assert service.anchors.waiting_panels() == [] and not any("failed" in m for m in messages)


def test_regenerate_with_an_older_anchors_bank_fails_before_submitting(studio, qtbot, tmp_path, monkeypatch):
    ctx, service, _library, messages = studio
    ana, panel_id, first = ana_panel_with_result(ctx, service, qtbot)
    old_bank = ctx.document.project.character(ana).anchor.bank
    service.render_anchor(ana)  # Regenerate anchor: a new anchor seed, a new bank
    qtbot.waitUntil(service.is_idle, timeout=TIMEOUT)
    new_bank = ctx.document.project.character(ana).anchor.bank
    assert new_bank != old_bank
    doc = move_to_another_machine(ctx, tmp_path, monkeypatch)
    assert old_bank not in doc.assets and new_bank in doc.assets

    assert service.regenerate(panel_id, first.id) is None
    assert messages[-1] == ("Cannot regenerate this result: the identity bank this image was made with is no longer "
                            "available (Ana's anchor was regenerated since); render the panel again to use the "
                            "current anchor")  # fmt: skip
    assert service.jobs() == [] and service.anchors.waiting_panels() == []
    assert len(doc.project.find_panel(panel_id)[1].results) == 1

    # What the message says to do works: the panel renders with the current anchor's bank.
    assert len(service.render_panels([panel_id])) == 1
    qtbot.waitUntil(service.is_idle, timeout=TIMEOUT)
    rendered = doc.project.find_panel(panel_id)[1].result()
    assert f"{ana}={new_bank}" in rendered.request["backend_settings"]["banks"]


def test_a_bank_rebuilt_differently_is_used_for_the_replay(studio, qtbot, tmp_path, monkeypatch):
    """On another device a rebuild may give other bytes: the rebuilt bank is recorded (with the
    notice) and the waiting regenerate runs with it instead of failing on the old hash."""
    ctx, service, _library, messages = studio
    ana, panel_id, first = ana_panel_with_result(ctx, service, qtbot)
    anchor = ctx.document.project.character(ana).anchor
    # Simulate the other device: the recorded anchor job now gives different tokens (another seed).
    job = {**anchor.request, "backend_settings": {**anchor.request["backend_settings"], "anchor_seed": 4242}}
    elsewhere = anchor.model_copy(update={"bank_bytes": 2**40, "request": job})
    ctx.edit(lambda doc: doc.execute(SetFields(("character", ana), "Simulate another device", anchor=elsewhere)))
    doc = move_to_another_machine(ctx, tmp_path, monkeypatch)

    assert service.regenerate(panel_id, first.id) is None
    qtbot.waitUntil(
        lambda: service.is_idle() and len(doc.project.find_panel(panel_id)[1].results) == 2, timeout=TIMEOUT
    )
    rebuilt = doc.project.character(ana).anchor.bank
    assert rebuilt != anchor.bank and any("rebuilt here and differs" in m for m in messages)
    again = doc.project.find_panel(panel_id)[1].result()
    assert again.seed == first.seed and again.request["backend_settings"]["banks"] == f"{ana}={rebuilt}"

""" "Compare on this page / character…": the real RenderService and Engine, the storyboard backend and
the halftone example plugin over several panels; metrics with the tiny OpenCLIP model."""

from __future__ import annotations

import io
import re

import pytest

pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")

from test_compare_methods import service  # noqa: E402,F401  (the fixture: a document, tiny CLIP in settings)

from comic_studio.evaluation import metrics  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.ui.dialogs.compare_scope import CompareScopeDialog, scopes  # noqa: E402
from comic_studio.workflows.requests import panel_seed  # noqa: E402


def _give_theo_a_reference(ctx) -> None:
    buffer = io.BytesIO()
    character_picture(7, 64, 96).save(buffer, format="PNG")
    ctx.document.project.characters[1].face_refs = [ctx.document.assets.add(buffer.getvalue())]


def _cell_texts(dialog):
    return [[dialog.consistency.item(r, c).text() for c in range(dialog.consistency.columnCount())]
            for r in range(dialog.consistency.rowCount())]  # fmt: skip


def test_page_compare_queues_every_panel_at_its_seed_and_shows_ap_clip_i_per_method(ctx, service, qtbot):  # noqa: F811
    _give_theo_a_reference(ctx)
    page = ctx.document.project.pages[0]
    panels = page.panels_in_order()
    before = {p.id: (list(p.results), p.current_result) for p in panels}
    undo_before = ctx.undo_stack.count()
    dialog = CompareScopeDialog(ctx, service, "Page 1")
    qtbot.addWidget(dialog)
    dialog.set_checked(["storyboard"])
    assert not dialog.start_button.isEnabled()
    dialog.set_checked(["storyboard", "halftone"])
    cset = dialog.start()
    assert cset is not None and [g.panel_id for g in cset.comparisons] == [p.id for p in panels]
    assert len(service.jobs()) == len(panels) * 2  # N panels × M backends, one group
    for panel, group in zip(panels, cset.comparisons):
        assert list(group.cells) == ["halftone", "storyboard"]
        assert {c.request.seed for c in group.cells.values()} == {panel_seed(panel)}
    assert len({g.seed for g in cset.comparisons}) == len(panels)  # each panel keeps its own seed
    assert not dialog.keep_button.isEnabled()  # nothing picked yet
    qtbot.waitUntil(dialog.metrics_done, timeout=300_000)  # a hang guard on a busy 2-core machine
    assert all(c.error == "" for g in cset.comparisons for c in g.cells.values())
    assert all(p.results == before[p.id][0] for p in panels) and ctx.undo_stack.count() == undo_before

    # AP-CLIP-I per method for each character: Mara and Theo appear in two panels each here.
    rows = dialog.consistency_rows()
    assert sorted(r.name for r in rows) == ["Mara", "Theo"]
    labels = [dialog.consistency.verticalHeaderItem(r).text() for r in range(dialog.consistency.rowCount())]
    for r, entry in enumerate(rows):
        assert labels[r] == entry.name
        for c, backend in enumerate(["halftone", "storyboard"]):
            row = next(b for b in entry.backends if b.backend == backend)
            assert row.panels == 2 and row.ap_clip_i is not None and -1.0 <= row.ap_clip_i <= 1.0 + 1e-9
            features = [s.characters[i].feature for (pid, b), s in dialog.scores.items() if b == backend
                        for i in range(len(s.characters)) if s.characters[i].character_id == entry.character_id]  # fmt: skip
            assert row.ap_clip_i == pytest.approx(metrics.ap_clip_i(features))
            text = dialog.consistency.item(r, c).text()
            assert text.startswith(f"AP-CLIP-I {row.ap_clip_i:.3f} · CLIP-I ") and text.endswith("(2 panels)")
    for (_panel_id, backend), caption in dialog.captions.items():
        assert caption.text().startswith(f"{backend} · ")
        assert re.search(r"CLIP-T -?\d\.\d{3}", caption.text()) and "unavailable" not in caption.text()

    # Pick per panel, or one method for all; the picks are one undo step.
    dialog.use_everywhere("halftone")
    dialog.pick(panels[1].id, "storyboard")
    assert dialog.picks() == {p.id: ("storyboard" if p is panels[1] else "halftone") for p in panels}
    assert dialog.keep_button.isEnabled()
    dialog.keep_button.click()
    assert ctx.undo_stack.count() == undo_before + 1
    for panel in panels:
        assert len(panel.results) == len(before[panel.id][0]) + 2
        assert panel.result().backend == ("storyboard" if panel is panels[1] else "halftone")
        assert panel.result().seed == panel_seed(panel)
    assert not dialog.keep_button.isEnabled() and not any(b.isEnabled() for b in dialog.pick_buttons.values())
    ctx.undo_stack.undo()
    assert all((p.results, p.current_result) == before[p.id] for p in panels)
    ctx.undo_stack.redo()
    assert panels[1].result().backend == "storyboard" and panels[0].result().backend == "halftone"


def test_character_scope_covers_its_panels_and_an_unpicked_panel_is_left_alone(ctx, service, qtbot):  # noqa: F811
    project = ctx.document.project
    mara = project.characters[0]
    offered = dict(scopes(project))
    with_mara = [p.id for page in project.pages for p in page.panels_in_order()
                 if any(c.character_id == mara.id for c in p.characters)]  # fmt: skip
    assert offered["Panels with Mara"] == with_mara and len(with_mara) == 2
    assert offered["Page 1"] == [p.id for p in project.pages[0].panels_in_order()]
    dialog = CompareScopeDialog(ctx, service, "Panels with Mara")
    qtbot.addWidget(dialog)
    dialog.set_checked(["storyboard", "halftone"])
    cset = dialog.start()
    assert cset is not None and [g.panel_id for g in cset.comparisons] == with_mara
    assert len(service.jobs()) == 4
    qtbot.waitUntil(dialog.metrics_done, timeout=300_000)
    # Theo has no reference and is in no panel of this scope: only Mara's consistency is shown.
    assert [r.name for r in dialog.consistency_rows()] == ["Mara"]
    assert all(t.startswith("AP-CLIP-I 0.") or t.startswith("AP-CLIP-I 1.") for t in _cell_texts(dialog)[0])
    first, second = (project.find_panel(i)[1] for i in with_mara)
    untouched = (list(second.results), second.current_result)
    undo_before = ctx.undo_stack.count()
    dialog.pick(first.id, "storyboard")
    assert dialog.keep()
    assert ctx.undo_stack.count() == undo_before + 1
    assert first.result().backend == "storyboard" and len(first.results) == 2
    assert (second.results, second.current_result) == untouched


def test_the_inspector_opens_it_on_the_inspected_panel_page(ctx, service, qtbot):  # noqa: F811
    from comic_studio.ui.inspector import PanelInspector

    inspector = PanelInspector(ctx, service)
    qtbot.addWidget(inspector)
    panel = ctx.document.project.pages[0].panels_in_order()[2]
    ctx.select_panels([panel.id])
    assert inspector.compare_scope_button.isEnabled()
    dialog = inspector.compare_on_scope()
    qtbot.addWidget(dialog)
    assert dialog.scope.currentData() == ("Page 1", [p.id for p in ctx.document.project.pages[0].panels_in_order()])
    offered = [dialog.scope.itemData(i)[0] for i in range(dialog.scope.count())]
    assert offered == ["Page 1", "Panels with Mara", "Panels with Theo"]
    assert dialog.checked() == ["storyboard"]  # the page's own backend, ticked; one method is no comparison
    assert not dialog.start_button.isEnabled() and not dialog.keep_button.isEnabled()
    dialog.close()


def test_character_library_opens_the_compare_preset_to_the_character(ctx, service, qtbot):  # noqa: F811
    from comic_studio.core.model import Character
    from comic_studio.ui.characters.library import CharacterLibrary

    project = ctx.document.project
    mara = project.characters[0]
    library = CharacterLibrary(ctx, render_service=service)
    qtbot.addWidget(library)
    library.select(mara.id)
    menu = library.context_menu()
    entry = next(a for a in menu.actions() if a.text() == "Compare methods on Mara's panels…")
    assert entry.isEnabled()
    entry.trigger()
    dialog = library.compare_dialog
    assert dialog is not None and dialog.isVisible()
    title, ids = dialog.scope.currentData()
    assert title == "Panels with Mara" and ids == dict(scopes(project))["Panels with Mara"]
    dialog.close()

    # A character in no panel: the entry is there but off, and says why.
    ctx.document.project.characters.append(Character(name="Nobody"))
    library.refresh()
    library.select(project.characters[-1].id)
    entry = next(a for a in library.context_menu().actions() if a.text() == "Compare methods on Nobody's panels…")
    assert not entry.isEnabled() and "no panel" in entry.statusTip()
    assert library.compare_on_character(project.characters[-1].id) is None
    # Without a render service (a library shown before the engine) nothing opens.
    bare = CharacterLibrary(ctx)
    qtbot.addWidget(bare)
    bare.select(mara.id)
    assert not next(a for a in bare.context_menu().actions() if "Compare methods" in a.text()).isEnabled()

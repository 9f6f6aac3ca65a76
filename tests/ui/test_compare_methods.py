""" "Compare methods…": the real RenderService and Engine, the storyboard backend and the halftone
example plugin; metrics scored with the tiny OpenCLIP model named in the app settings."""

from __future__ import annotations

import io
import json
import re

import pytest
from render_helpers import small_document

pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")

from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.testing.tiny_eval import tiny_clip_weights  # noqa: E402
from comic_studio.ui.dialogs.compare_methods import CompareMethodsDialog  # noqa: E402
from comic_studio.ui.render_service import RenderService  # noqa: E402
from comic_studio.workflows.requests import panel_seed  # noqa: E402


@pytest.fixture
def service(ctx, tmp_path, monkeypatch):
    (tmp_path / "config").mkdir(exist_ok=True)
    weights = tiny_clip_weights(tmp_path / "models")
    (tmp_path / "config" / "settings.json").write_text(json.dumps({"pose_clip_model": str(weights)}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    doc = small_document()
    buffer = io.BytesIO()
    character_picture(4, 64, 96).save(buffer, format="PNG")
    doc.project.characters[0].face_refs = [doc.assets.add(buffer.getvalue())]
    ctx.set_document(doc)
    svc = RenderService(ctx)
    yield svc
    svc.shutdown()


def test_compare_queues_one_seed_per_method_and_keeps_the_pick_as_one_undo_step(ctx, service, qtbot):
    panel = ctx.document.project.pages[0].panels_in_order()[0]
    before_results, before_undo = list(panel.results), ctx.undo_stack.count()
    dialog = CompareMethodsDialog(ctx, service, panel.id)
    qtbot.addWidget(dialog)
    dialog.set_checked(["storyboard"])
    assert not dialog.start_button.isEnabled()  # one method is no comparison
    dialog.set_checked(["storyboard", "halftone"])
    assert dialog.start_button.isEnabled()
    group = dialog.start()
    assert group is not None and list(group.cells) == ["halftone", "storyboard"]
    assert len(service.jobs()) == 2
    assert {c.request.seed for c in group.cells.values()} == {panel_seed(panel)}
    qtbot.waitUntil(lambda: group.done, timeout=300_000)  # a hang guard: a busy 2-core machine is slow
    assert all(c.error == "" and c.result.seed == group.seed for c in group.cells.values())
    assert panel.results == before_results and ctx.undo_stack.count() == before_undo  # nothing kept yet
    qtbot.waitUntil(dialog.metrics_done, timeout=300_000)
    for name in group.cells:
        text = dialog.captions[name].text()
        assert text.startswith(f"{name} · ") and re.search(r"CLIP-T -?\d\.\d{3}", text) and "unavailable" not in text
        assert "Mara: CLIP-I " in text and "Mara: CLIP-I —" not in text  # Mara has a reference: scored
    dialog.keep_buttons["halftone"].click()
    assert [r.backend for r in panel.results] == [*(r.backend for r in before_results), "halftone", "storyboard"]
    assert panel.result().backend == "halftone" and panel.result().seed == group.seed
    assert ctx.undo_stack.count() == before_undo + 1
    assert not any(b.isEnabled() for b in dialog.keep_buttons.values())
    ctx.undo_stack.undo()
    assert panel.results == before_results and panel.current_result is None
    ctx.undo_stack.redo()
    assert panel.result().backend == "halftone" and len(panel.results) == len(before_results) + 2

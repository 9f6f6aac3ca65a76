"""Nudge geometry: moves and scales in panel units, bounds, the framed pose and pinned placements."""

from __future__ import annotations

import pytest

from comic_studio.core import pose_nudge as nudging
from comic_studio.core.model import Box, CharacterPlacement, PoseFigure
from comic_studio.core.pose_nudge import Nudge


def _figure(cx: float, role: str = "neutral", facing: float = 0.0) -> PoseFigure:
    """A standing person 0.6 tall with its feet at y = 0.9 (OpenPose-18 order)."""
    rows = {  # name: (x offset, y)
        "nose": (0, 0.34), "neck": (0, 0.4), "r_shoulder": (-0.05, 0.41), "r_elbow": (-0.07, 0.5),
        "r_wrist": (-0.08, 0.58), "l_shoulder": (0.05, 0.41), "l_elbow": (0.07, 0.5), "l_wrist": (0.08, 0.58),
        "r_hip": (-0.03, 0.6), "r_knee": (-0.03, 0.75), "r_ankle": (-0.03, 0.9), "l_hip": (0.03, 0.6),
        "l_knee": (0.03, 0.75), "l_ankle": (0.03, 0.9), "r_eye": (-0.01, 0.32), "l_eye": (0.01, 0.32),
        "r_ear": (-0.02, 0.3), "l_ear": (0.02, 0.3),
    }  # fmt: skip
    return PoseFigure(keypoints=[(cx + dx, y, 1.0) for dx, y in rows.values()], role=role, facing=facing)


def test_move_and_scale_about_the_feet():
    fig = _figure(0.4)
    feet = nudging.figure_feet(fig.keypoints)
    x0, y0, x1, y1 = nudging.visible_bounds(fig.keypoints)
    assert feet == pytest.approx((nudging.figure_centre(fig.keypoints)[0], y1))
    moved = nudging.nudge_keypoints(fig.keypoints, Nudge(dx=0.1, dy=-0.05))
    assert all((a[0] + 0.1, a[1] - 0.05, a[2]) == pytest.approx(b) for a, b in zip(fig.keypoints, moved))
    scaled = nudging.nudge_keypoints(fig.keypoints, Nudge(scale=0.5, pivot=feet))
    sx0, sy0, sx1, sy1 = nudging.visible_bounds(scaled)
    assert (sy1 - sy0) == pytest.approx(0.5 * (y1 - y0)) and sy1 == pytest.approx(y1)
    assert (sx1 - sx0) == pytest.approx(0.5 * (x1 - x0))


def test_bounds_keep_the_centre_inside_and_the_height_sane():
    fig = _figure(0.4)
    cx, cy = nudging.figure_centre(fig.keypoints)
    assert nudging.clamp_move(fig.keypoints, 5.0, -5.0) == pytest.approx((1.0 - cx, -cy))
    assert nudging.clamp_move(fig.keypoints, 0.1, 0.0) == pytest.approx((0.1, 0.0))
    below = _figure(0.4).model_copy(update={"keypoints": [(x, y + 0.5, v) for x, y, v in fig.keypoints]})
    assert nudging.clamp_move(below.keypoints, 0.0, 0.0) == (0.0, 0.0), "no jump for a centre already outside"
    assert (
        nudging.clamp_move(below.keypoints, 0.0, 0.3)[1] == 0.0
        and nudging.clamp_move(below.keypoints, 0.0, -0.3)[1] == -0.3
    )
    _x0, y0, _x1, y1 = nudging.visible_bounds(fig.keypoints)
    assert nudging.clamp_scale(fig.keypoints, 100.0) * (y1 - y0) == pytest.approx(nudging.MAX_HEIGHT)
    assert nudging.clamp_scale(fig.keypoints, -1.0) * (y1 - y0) == pytest.approx(nudging.MIN_HEIGHT)


def test_nudged_pose_is_framed_and_keeps_the_other_figures_roles_and_facing():
    figures = [_figure(0.3, "actor", 0.5), _figure(0.7, "target", -0.5)]
    spec = nudging.nudged_pose(figures, 1, Nudge(dx=-0.1), panel_aspect=1.5)
    assert spec.framed and spec.aspect == pytest.approx(1.5)
    assert spec.figures[0] == figures[0]
    assert (spec.figures[1].role, spec.figures[1].facing) == ("target", -0.5)
    assert spec.figures[1].keypoints[0][0] == pytest.approx(figures[1].keypoints[0][0] - 0.1)
    with pytest.raises(ValueError, match="figure 2 does not exist"):
        nudging.nudged_pose(figures, 2, Nudge(dx=0.1), 1.5)


def test_pinned_placements_pin_every_shown_character_and_move_the_nudged_one():
    current = [CharacterPlacement(character_id="a"), CharacterPlacement(character_id="b"),
               CharacterPlacement(character_id="gone", figure=3)]  # fmt: skip
    shown = [
        CharacterPlacement(
            character_id="a", figure=1, head=(0.7, 0.3), head_radius=0.05, body=Box(x=0.6, y=0.3, w=0.2, h=0.6)
        ),
        CharacterPlacement(
            character_id="b", figure=0, head=(0.3, 0.3), head_radius=0.05, body=Box(x=0.2, y=0.3, w=0.2, h=0.6)
        ),
    ]
    out = nudging.pinned_placements(current, shown, 1, Nudge(dx=0.25, dy=0.0))
    a, b, gone = out
    assert (a.figure, b.figure) == (1, 0) and gone == current[2]
    assert b.head == (0.3, 0.3) and b.body == shown[1].body
    assert a.head == pytest.approx((0.95, 0.3))
    assert a.body.x == pytest.approx(0.85) and a.body.x + a.body.w == pytest.approx(1.0)  # cut at the panel edge

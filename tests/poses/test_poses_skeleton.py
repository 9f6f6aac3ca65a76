"""The parametric skeleton: proportions are respected, views and transforms behave."""

from __future__ import annotations

import math

import pytest

from comic_studio.poses.library import KP, MIRROR_PERMUTATION
from comic_studio.poses.skeleton import (
    ADULT,
    BODIES,
    CHILD,
    Canvas,
    Placed,
    Pose,
    build_skeleton,
    compose,
    mirror_figure,
    reach,
    transform_figure,
)

SEGMENTS = {
    "upper_arm": (("r_shoulder", "r_elbow"), ("l_shoulder", "l_elbow")),
    "forearm": (("r_elbow", "r_wrist"), ("l_elbow", "l_wrist")),
    "thigh": (("r_hip", "r_knee"), ("l_hip", "l_knee")),
    "shin": (("r_knee", "r_ankle"), ("l_knee", "l_ankle")),
}

POSES = [
    Pose(),
    Pose(facing=0.9, r_shoulder=90, r_elbow=40, l_hip=60, l_knee=80, lean=20),
    Pose(facing=-0.5, rotation=-90, head_tilt=30, r_hip=120, r_knee=150),
    Pose(facing=0.2, r_shoulder=170, l_shoulder=-30, l_elbow=-120),
]


@pytest.mark.parametrize("body_name", sorted(BODIES))
@pytest.mark.parametrize("pose", POSES)
def test_limb_lengths_match_the_proportions(body_name, pose):
    body = BODIES[body_name]
    sk = build_skeleton(pose, body)
    for segment, pairs in SEGMENTS.items():
        for a, b in pairs:
            assert math.dist(sk.points[KP[a]], sk.points[KP[b]]) == pytest.approx(getattr(body, segment), abs=1e-9)
    mid_hip = [(sk.points[KP["r_hip"]][i] + sk.points[KP["l_hip"]][i]) / 2 for i in (0, 1)]
    assert math.dist(sk.points[KP["neck"]], mid_hip) == pytest.approx(body.torso, abs=1e-9)


def test_front_view_is_mirror_symmetric_and_shows_the_whole_face():
    sk = build_skeleton(Pose(r_shoulder=60, l_shoulder=60, r_hip=10, l_hip=10), ADULT)
    for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear"):
        (rx, ry), (lx, ly) = sk.points[KP["r_" + name]], sk.points[KP["l_" + name]]
        assert rx == pytest.approx(-lx, abs=1e-9) and ry == pytest.approx(ly, abs=1e-9)
        assert rx < lx, f"the figure's own right {name} must be on the image's left"
    assert all(sk.visible)


def test_profile_hides_the_far_eye_and_ear():
    right = build_skeleton(Pose(facing=1.0), ADULT)
    assert right.visible[KP["r_eye"]] and right.visible[KP["r_ear"]]
    assert not right.visible[KP["l_eye"]] and not right.visible[KP["l_ear"]]
    assert right.points[KP["nose"]][0] > right.points[KP["neck"]][0], "a figure facing right has its nose to the right"
    left = build_skeleton(Pose(facing=-1.0), ADULT)
    assert not left.visible[KP["r_eye"]] and left.visible[KP["l_eye"]]


def test_forward_angles_follow_the_facing_direction():
    for facing, sign in ((0.9, 1), (-0.9, -1)):
        sk = build_skeleton(Pose(facing=facing, r_shoulder=90, r_elbow=0), ADULT)
        shoulder, wrist = sk.points[KP["r_shoulder"]], sk.points[KP["r_wrist"]]
        assert (wrist[0] - shoulder[0]) * sign == pytest.approx(ADULT.upper_arm + ADULT.forearm)
        assert wrist[1] == pytest.approx(shoulder[1])


def test_rotation_lays_the_body_down():
    sk = build_skeleton(Pose(facing=1.0, rotation=-90), ADULT)
    neck, ankle = sk.points[KP["neck"]], sk.points[KP["r_ankle"]]
    assert abs(neck[1] - ankle[1]) < 0.05 and abs(neck[0] - ankle[0]) > 0.5


def test_child_is_smaller_with_a_relatively_bigger_head():
    adult, child = build_skeleton(Pose(), ADULT), build_skeleton(Pose(), CHILD)
    height = lambda sk: sk.ground_offset() - min(y for _, y in sk.points)  # noqa: E731
    assert height(child) < 0.75 * height(adult)
    assert CHILD.head_radius / height(child) > ADULT.head_radius / height(adult)


def test_reach_puts_the_wrist_on_the_target():
    for target in ((0.2, -0.35), (0.1, -0.5), (-0.2, -0.2), (0.15, -0.05)):
        pose = reach(Pose(facing=0.9), ADULT, "r", target)
        wrist = build_skeleton(pose, ADULT).points[KP["r_wrist"]]
        assert math.dist(wrist, target) < 1e-6
    far = reach(Pose(facing=0.9), ADULT, "l", (2.0, -0.3))  # out of reach: a straight arm towards it
    sk = build_skeleton(far, ADULT)
    assert math.dist(sk.points[KP["l_shoulder"]], sk.points[KP["l_wrist"]]) == pytest.approx(0.32, abs=1e-4)
    with pytest.raises(ValueError, match="side"):
        reach(Pose(), ADULT, "x", (0, 0))


def test_compose_fits_every_figure_in_the_canvas_and_stands_them_on_the_ground():
    canvas = Canvas(aspect=1.2, figures=(
        Placed(Pose(facing=0.9), 0.3, "actor"), Placed(Pose(facing=-0.9), 0.7, "target"),
    ))  # fmt: skip
    figs = compose(canvas)
    assert [f.role for f in figs] == ["actor", "target"]
    for f in figs:
        assert all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y, _ in f.keypoints)
    # Standing adults: feet at the same height, just above the ground line.
    ankles = [f.keypoints[KP["r_ankle"]][1] for f in figs]
    assert ankles[0] == pytest.approx(ankles[1]) and ankles[0] < canvas.ground
    # A figure placed far outside is pulled back in (the group shrinks/shifts to fit).
    wide = compose(Canvas(aspect=1.0, figures=(Placed(Pose(r_shoulder=170), -0.4), Placed(Pose(), 1.5))))
    assert all(0.0 <= c <= 1.0 for f in wide for x, y, _ in f.keypoints for c in (x, y))


def test_mirror_swaps_sides_flips_facing_and_is_an_involution():
    (fig,) = compose(Canvas(aspect=0.8, figures=(Placed(Pose(facing=0.9, r_shoulder=90), 0.4, "actor"),)))
    m = mirror_figure(fig)
    assert m.facing == -fig.facing and m.role == fig.role
    assert m.keypoints[KP["l_wrist"]][0] == pytest.approx(1 - fig.keypoints[KP["r_wrist"]][0])
    assert m.keypoints[KP["l_eye"]][2] == fig.keypoints[KP["r_eye"]][2]
    back = mirror_figure(m)
    assert back.facing == fig.facing
    for a, b in zip(back.keypoints, fig.keypoints):
        assert a == pytest.approx(b, abs=1e-12)
    assert sorted(MIRROR_PERMUTATION) == list(range(18))


def test_transform_scales_about_the_anchor_and_translates():
    (fig,) = compose(Canvas(figures=(Placed(Pose(), 0.5),)))
    t = transform_figure(fig, dx=0.1, scale=0.5, about=(0.5, 1.0))
    for (x0, y0, v0), (x1, y1, v1) in zip(fig.keypoints, t.keypoints):
        assert x1 == pytest.approx(0.5 + (x0 - 0.5) * 0.5 + 0.1) and y1 == pytest.approx(1 + (y0 - 1) * 0.5)
        assert v0 == v1

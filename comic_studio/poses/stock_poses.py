"""Stock single-figure poses built with the parametric skeleton (the vocabulary authoring uses).

Each function returns a :class:`~comic_studio.poses.skeleton.Pose` for a figure facing ``f``
(-1 image-left … +1 image-right; 0 towards the viewer). Angles follow the conventions in
:mod:`comic_studio.poses.skeleton`. Multi-figure contacts (hugs, held hands) are solved later with
:func:`~comic_studio.poses.skeleton.reach`, so these only set the body's overall attitude.
"""

from __future__ import annotations

from comic_studio.poses.skeleton import Pose

SIDE = 0.9  # a near-profile view: readable for interactions, still shows both shoulders


def stand(f: float = 0.0, **kw: float) -> Pose:
    return Pose(facing=f).with_(**kw)


def arms_crossed(f: float = 0.0) -> Pose:
    # Front view, upper arms slightly out, forearms folded across the chest.
    return Pose(facing=f, r_shoulder=12, r_elbow=-128, l_shoulder=12, l_elbow=-128)


def hands_on_hips(f: float = 0.0) -> Pose:
    return Pose(facing=f, r_shoulder=38, r_elbow=-95, l_shoulder=38, l_elbow=-95)


def walk(f: float = SIDE, stride: float = 1.0) -> Pose:
    return Pose(
        facing=f, lean=3, r_hip=24 * stride, r_knee=6, l_hip=-18 * stride, l_knee=22 * stride,
        r_shoulder=-22 * stride, r_elbow=18, l_shoulder=24 * stride, l_elbow=28,
    )  # fmt: skip


def run(f: float = SIDE) -> Pose:
    return Pose(
        facing=f, lean=16, r_hip=62, r_knee=85, l_hip=-32, l_knee=75,
        r_shoulder=-48, r_elbow=85, l_shoulder=55, l_elbow=75,
    )  # fmt: skip


def sit_chair(f: float = SIDE) -> Pose:
    if abs(f) < 0.35:  # seen from the front the thighs point at the viewer
        return Pose(
            facing=f, r_hip=8, l_hip=8, r_knee=-8, l_knee=-8, r_shoulder=12, r_elbow=-40,
            l_shoulder=12, l_elbow=-40, foreshorten=(("r_thigh", 0.28), ("l_thigh", 0.28)),
        )  # fmt: skip
    return Pose(facing=f, r_hip=88, r_knee=88, l_hip=84, l_knee=82, r_shoulder=18, r_elbow=58,
                l_shoulder=12, l_elbow=62)  # fmt: skip


def sit_floor(f: float = SIDE) -> Pose:
    """Sitting on the ground, knees drawn up, hands resting on them."""
    return Pose(facing=f, lean=-4, r_hip=118, r_knee=130, l_hip=112, l_knee=120,
                r_shoulder=40, r_elbow=30, l_shoulder=35, l_elbow=35)  # fmt: skip


def sit_cross_legged(f: float = 0.0) -> Pose:
    return Pose(facing=f, r_hip=80, r_knee=150, l_hip=80, l_knee=150, r_shoulder=14, r_elbow=-30,
                l_shoulder=14, l_elbow=-30, foreshorten=(("r_thigh", 0.8), ("l_thigh", 0.8)))  # fmt: skip


def kneel(f: float = SIDE, one_knee: bool = False) -> Pose:
    if one_knee:
        return Pose(facing=f, r_hip=88, r_knee=88, l_hip=-8, l_knee=98, r_shoulder=35, r_elbow=50,
                    l_shoulder=5, l_elbow=10)  # fmt: skip
    return Pose(facing=f, r_hip=4, r_knee=92, l_hip=0, l_knee=90, r_shoulder=8, r_elbow=10,
                l_shoulder=6, l_elbow=12)  # fmt: skip


def beg(f: float = SIDE) -> Pose:
    """Kneeling upright, arms stretched up towards someone, head raised."""
    return kneel(f).with_(lean=6, head_tilt=-22, r_shoulder=105, r_elbow=15, l_shoulder=95, l_elbow=22)


def lie(f: float = SIDE, knees: float = 0.0) -> Pose:
    """Lying on the back (head towards the back of the facing direction)."""
    return Pose(facing=f, rotation=-90, r_hip=knees, r_knee=knees * 1.6, l_hip=4, l_knee=4,
                r_shoulder=10, r_elbow=6, l_shoulder=18, l_elbow=10)  # fmt: skip


def sleep_curled(f: float = SIDE) -> Pose:
    """Lying on the side, knees drawn up, one arm pillowing the head."""
    return Pose(facing=f, rotation=-90, head_tilt=12, r_hip=55, r_knee=70, l_hip=45, l_knee=60,
                r_shoulder=160, r_elbow=40, l_shoulder=60, l_elbow=40)  # fmt: skip


def slump_asleep(f: float = SIDE) -> Pose:
    return sit_chair(f).with_(head_tilt=42, lean=-6, r_shoulder=4, r_elbow=20, l_shoulder=2, l_elbow=24)


def jump_joy(f: float = 0.0) -> Pose:
    return Pose(facing=f, r_shoulder=155, r_elbow=15, l_shoulder=155, l_elbow=15, r_hip=12, r_knee=30,
                l_hip=12, l_knee=30, head_tilt=-12)  # fmt: skip


def leap(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=12, r_hip=75, r_knee=60, l_hip=-40, l_knee=50, r_shoulder=120,
                r_elbow=20, l_shoulder=-40, l_elbow=20)  # fmt: skip


def fall_back(f: float = SIDE) -> Pose:
    return Pose(facing=f, rotation=-55, head_tilt=-20, r_hip=70, r_knee=30, l_hip=40, l_knee=50,
                r_shoulder=140, r_elbow=30, l_shoulder=100, l_elbow=40)  # fmt: skip


def fall_forward(f: float = SIDE) -> Pose:
    return Pose(facing=f, rotation=50, head_tilt=-30, r_hip=-10, r_knee=40, l_hip=-35, l_knee=20,
                r_shoulder=95, r_elbow=10, l_shoulder=80, l_elbow=15)  # fmt: skip


def stagger_back(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=-22, head_tilt=-30, r_hip=28, r_knee=5, l_hip=-12, l_knee=20,
                r_shoulder=60, r_elbow=30, l_shoulder=-35, l_elbow=20)  # fmt: skip


def point(f: float = SIDE, up: bool = False) -> Pose:
    if up:
        return Pose(facing=f, head_tilt=-25, r_shoulder=140, r_elbow=0, l_shoulder=6, l_elbow=8)
    return Pose(facing=f, lean=3, r_shoulder=88, r_elbow=2, l_shoulder=-4, l_elbow=10)


def wave(f: float = 0.0, both: bool = False) -> Pose:
    p = Pose(facing=f, r_shoulder=115, r_elbow=50)
    return p.with_(l_shoulder=115, l_elbow=50) if both else p


def talk(f: float = SIDE, animated: bool = False) -> Pose:
    if animated:
        return Pose(facing=f, lean=6, r_shoulder=60, r_elbow=55, l_shoulder=40, l_elbow=80, head_tilt=-6)
    return Pose(facing=f, r_shoulder=28, r_elbow=70, l_shoulder=8, l_elbow=18)


def think(f: float = 0.0) -> Pose:
    """Hand on the chin, the other arm folded under its elbow, head tilted."""
    return Pose(facing=f, head_tilt=10, head_turn=0.15, r_shoulder=-8, r_elbow=-190,
                l_shoulder=8, l_elbow=-112)  # fmt: skip


def cry(f: float = 0.0) -> Pose:
    """Face buried in both hands, head bowed."""
    return Pose(facing=f, head_tilt=30, lean=8, r_shoulder=-5, r_elbow=-180, l_shoulder=-5, l_elbow=-180)


def laugh(f: float = 0.0) -> Pose:
    return Pose(facing=f, head_tilt=-28, lean=-6, r_shoulder=15, r_elbow=-95, l_shoulder=35, l_elbow=40)


def punch(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=12, r_shoulder=90, r_elbow=0, l_shoulder=40, l_elbow=115,
                r_hip=-18, r_knee=8, l_hip=24, l_knee=18)  # fmt: skip


def kick(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=-18, r_hip=92, r_knee=8, l_hip=-6, l_knee=8, r_shoulder=40, r_elbow=90,
                l_shoulder=-40, l_elbow=40)  # fmt: skip


def block(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=-8, head_tilt=12, r_shoulder=80, r_elbow=95, l_shoulder=65, l_elbow=110,
                r_hip=22, r_knee=15, l_hip=-14, l_knee=18)  # fmt: skip


def fight_stance(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=6, r_shoulder=45, r_elbow=105, l_shoulder=25, l_elbow=125,
                r_hip=26, r_knee=22, l_hip=-16, l_knee=24)  # fmt: skip


def sword_ready(f: float = SIDE) -> Pose:
    """Both hands together on a sword hilt at the waist, blade forward."""
    return Pose(facing=f, lean=5, r_shoulder=38, r_elbow=45, l_shoulder=32, l_elbow=52,
                r_hip=26, r_knee=18, l_hip=-16, l_knee=20)  # fmt: skip


def sword_raised(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=-4, r_shoulder=165, r_elbow=25, l_shoulder=160, l_elbow=32,
                r_hip=20, r_knee=10, l_hip=-14, l_knee=12)  # fmt: skip


def aim_gun(f: float = SIDE) -> Pose:
    return Pose(facing=f, r_shoulder=90, r_elbow=0, l_shoulder=80, l_elbow=12, r_hip=14, l_hip=-10)


def hands_up(f: float = SIDE) -> Pose:
    """Surrender: both hands raised beside the head."""
    return Pose(facing=f, lean=-5, r_shoulder=70, r_elbow=100, l_shoulder=60, l_elbow=110, head_tilt=-5)


def read(f: float = SIDE) -> Pose:
    """Holding a book in front of the chest, head bowed to it."""
    return Pose(facing=f, head_tilt=28, r_shoulder=18, r_elbow=75, l_shoulder=12, l_elbow=82)


def eat(f: float = SIDE) -> Pose:
    """One hand lifted to the mouth, the other holding a plate or bowl."""
    return Pose(facing=f, head_tilt=8, r_shoulder=30, r_elbow=130, l_shoulder=20, l_elbow=70)


def carry_box(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=-6, r_shoulder=30, r_elbow=60, l_shoulder=24, l_elbow=66, r_hip=8, l_hip=-6)


def carry_bag(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=4, r_shoulder=15, r_elbow=150, l_shoulder=10, l_elbow=10, r_hip=16, l_hip=-10)


def blow_kiss(f: float = SIDE) -> Pose:
    return Pose(facing=f, head_tilt=-4, r_shoulder=60, r_elbow=30, l_shoulder=6, l_elbow=8)


def hug_self(f: float = 0.0) -> Pose:
    return Pose(facing=f, head_tilt=14, r_shoulder=-20, r_elbow=-100, l_shoulder=-20, l_elbow=-100)


def clutch_arm(f: float = SIDE) -> Pose:
    return Pose(facing=f, lean=10, head_tilt=20, r_shoulder=10, r_elbow=30, l_shoulder=40, l_elbow=70)

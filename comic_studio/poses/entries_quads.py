"""Four-person library entries (see :mod:`comic_studio.poses.authoring`).

Four is the most characters a racig panel conditions on, so these are the group scenes comics need
most: a group talking, walking, sitting at a table, a family, a team line-up, two against two, three
against one, an audience. Standing figures stand 0.3–0.36 statures apart (shoulder to shoulder, like
the trios) unless they touch; interactions keep the actor on the left facing right, and the mirrored
twins cover the other side.
"""

from __future__ import annotations

from comic_studio.poses import stock_poses as P
from comic_studio.poses.skeleton import ADULT, CHILD, SLIM, TALL
from comic_studio.poses.stage import EntryBook, Stage

S = P.SIDE
N4 = ("neutral",) * 4


def _quad(poses, xs, roles=N4, bodies=(ADULT, SLIM, TALL, ADULT), lifts=(0.0,) * 4) -> Stage:
    return Stage.group(poses, xs, roles, bodies, lifts)


def add_quad_entries(b: EntryBook) -> None:
    a, t, n = "actor", "target", "neutral"
    b.add(
        "stand-four",
        "four people standing in a group",
        "stand group meet",
        _quad((P.stand(S), P.arms_crossed(0.2), P.hands_on_hips(-0.2), P.stand(-S)), (0, 0.34, 0.68, 1.02)),
    )
    b.add(
        "talk-four",
        "four people standing in a group, talking",
        "talk conversation group chat",
        _quad(
            (P.talk(S, True), P.stand(0.3), P.arms_crossed(-0.3), P.talk(-S)),
            (0, 0.34, 0.68, 1.02),
            bodies=(SLIM, ADULT, TALL, SLIM),
        ),
    )
    b.add(
        "two-pairs",
        "two pairs of people having separate conversations",
        "talk conversation pairs chat party",
        _quad(
            (P.talk(S, True), P.stand(-S), P.stand(S), P.talk(-S)),
            (0, 0.42, 0.92, 1.34),
            (a, t, n, n),
            (ADULT, SLIM, SLIM, TALL),
        ),
    )
    b.add(
        "walk-four",
        "four friends walking down the street together",
        "walk together friends street",
        _quad((P.walk(0.7), P.walk(0.7, 0.8), P.walk(0.7, 1.1), P.walk(0.7, 0.9)), (0, 0.36, 0.72, 1.08)),
    )
    b.add(
        "run-four",
        "four friends running together",
        "run together hurry",
        _quad(
            (P.run(0.8), P.run(0.8).with_(r_hip=-30, l_hip=60), P.run(0.8), P.run(0.8).with_(r_hip=-28, l_hip=58)),
            (0, 0.45, 0.9, 1.35),
            bodies=(SLIM, ADULT, ADULT, TALL),
        ),
    )
    # Around a table: a diner at each end in profile, two behind the table facing the viewer; the
    # gap between the profile diners' knees is where the table stands.
    b.add(
        "sit-table-four",
        "four people sitting around a table",
        "sit table meeting dinner",
        _quad(
            (P.sit_chair(S), P.sit_chair(0.15), P.sit_chair(-0.15), P.sit_chair(-S)),
            (0, 0.48, 0.8, 1.28),
            bodies=(ADULT, SLIM, ADULT, TALL),
        ),
    )
    # The children sit on cushions (lifted) so their heads clear the table like the parents'.
    st = _quad((P.sit_chair(S), P.sit_chair(0.15), P.sit_chair(-0.15), P.sit_chair(-S)), (0, 0.44, 0.74, 1.2),
               bodies=(TALL, CHILD, CHILD, SLIM), lifts=(0.0, 0.1, 0.1, 0.0))  # fmt: skip
    st.hand_to_face(0, "mouth")
    st.hand_to_face(3, "mouth")
    b.add("eat-four", "a family of four eating dinner at a table", "eat meal dinner table family", st)
    st = _quad((P.stand(0.15), P.stand(0.1, head_tilt=-12), P.stand(-0.1, head_tilt=-12), P.stand(-0.15)),
               (0, 0.26, 0.48, 0.74), bodies=(TALL, CHILD, CHILD, SLIM))  # fmt: skip
    st.join_hands(0, "l", 1, "r", height=-0.42)
    st.join_hands(1, "l", 2, "r", height=-0.34)
    st.join_hands(2, "l", 3, "r", height=-0.42)
    b.add("family-hands", "a family of four holding hands: two parents and two children", "hold-hands family child",
          st)  # fmt: skip
    st = _quad((P.walk(0.75), P.walk(0.75, 1.2), P.walk(0.75, 0.8), P.walk(0.75, 0.9)), (0, 0.3, 0.58, 0.88),
               bodies=(TALL, CHILD, CHILD, SLIM))  # fmt: skip
    st.join_hands(0, "l", 1, "r", height=-0.45)
    b.add("family-walk", "a family walking together: two parents and two children", "walk family child together", st)
    b.add(
        "team-lineup",
        "a team of four heroes striking a heroic pose",
        "stand team lineup hero heroic",
        _quad(
            (P.fight_stance(0.5), P.hands_on_hips(0.1), P.arms_crossed(-0.1), P.point(-0.5, up=True)),
            (0, 0.36, 0.7, 1.04),
            bodies=(SLIM, TALL, ADULT, SLIM),
        ),
    )
    b.add(
        "lineup-four",
        "four people standing in a row, facing the viewer",
        "stand group lineup row",
        _quad((P.stand(0.1), P.stand(0.05), P.stand(-0.05), P.stand(-0.1)), (0, 0.32, 0.64, 0.96)),
        mirror=False,
    )
    st = _quad((P.stand(S, lean=12), P.stand(0.2, head_tilt=10), P.stand(-0.2, head_tilt=10), P.stand(-S, lean=12)),
               (0, 0.21, 0.43, 0.64), bodies=(ADULT, SLIM, ADULT, SLIM))  # fmt: skip
    st.touch(0, "r", 1, "l_shoulder", (0.0, 0.03))
    st.touch(3, "r", 2, "r_shoulder", (0.0, 0.03))
    st.touch(1, "r", 0, "neck", (0.0, 0.04))
    st.touch(1, "l", 2, "neck", (0.0, 0.04))
    st.touch(2, "r", 1, "neck", (0.0, 0.04))
    st.touch(2, "l", 3, "neck", (0.0, 0.04))
    b.add("group-hug-four", "four friends in a group hug", "hug embrace friends", st, mirror=False)
    st = _quad((P.stand(S, lean=28, head_tilt=20), P.stand(0.4, lean=14, head_tilt=24),
                P.stand(-0.4, lean=14, head_tilt=24), P.stand(-S, lean=28, head_tilt=20)),
               (0, 0.26, 0.56, 0.82), bodies=(TALL, ADULT, SLIM, ADULT))  # fmt: skip
    st.touch(0, "r", 1, "l_shoulder", (0.0, 0.02))
    st.touch(1, "l", 2, "r_shoulder", (0.0, 0.02))
    st.touch(3, "r", 2, "l_shoulder", (0.0, 0.02))
    b.add("huddle", "four people in a huddle, heads together, making a plan", "huddle plan team whisper", st,
          mirror=False)  # fmt: skip
    b.add(
        "argue-two-two",
        "two people argue with two others, face to face",
        "talk argue confront shout",
        _quad(
            (P.talk(S, True), P.arms_crossed(S), P.point(-S), P.hands_on_hips(-S)),
            (0, 0.3, 0.85, 1.15),
            (a, a, t, t),
            (ADULT, SLIM, TALL, ADULT),
        ),
    )
    b.add(
        "meet-stranger",
        "three friends meet a stranger, who waves hello",
        "meet greet stranger wave",
        _quad(
            (P.wave(S), P.stand(-S), P.stand(-S, head_tilt=-6), P.arms_crossed(-S)),
            (0, 0.55, 0.85, 1.15),
            (a, t, n, n),
            (TALL, ADULT, SLIM, ADULT),
        ),
    )
    b.add(
        "surround",
        "three thugs surround a man",
        "fight-stance surround threaten outnumbered fight",
        _quad(
            (P.fight_stance(S), P.fight_stance(-S).with_(head_turn=-0.4), P.fight_stance(-S), P.fight_stance(-S)),
            (0, 0.5, 0.95, 1.3),
            (a, t, a, a),
            (ADULT, SLIM, TALL, ADULT),
        ),
    )
    b.add(
        "fight-two-two",
        "two against two in a street fight",
        "fight-stance fight brawl",
        _quad(
            (P.punch(), P.fight_stance(), P.stagger_back(-S), P.fight_stance(-S)),
            (0.3, -0.05, 0.72, 1.12),
            (a, a, t, t),
            (ADULT, TALL, ADULT, ADULT),
        ),
    )
    b.add(
        "point-off-panel",
        "four people stare at something off-panel while two of them point at it",
        "point look stare surprise shock",
        _quad(
            (P.hands_up(S), P.stand(S, lean=-6), P.point(S).with_(r_shoulder=100), P.point(S)),
            (0, 0.3, 0.6, 0.9),
            (n, n, a, a),
            (SLIM, ADULT, TALL, CHILD),
        ),
    )
    b.add(
        "celebrate-four",
        "four friends celebrating, arms in the air",
        "celebrate cheer jump joy win",
        _quad(
            (P.jump_joy(0.2), P.jump_joy(0.1), P.jump_joy(-0.1), P.jump_joy(-0.2)),
            (0, 0.38, 0.76, 1.14),
            lifts=(0.1, 0.0, 0.14, 0.06),
        ),
        mirror=False,
    )
    b.add(
        "wave-four",
        "four people waving goodbye",
        "wave goodbye greet",
        _quad(
            (P.wave(0.2), P.wave(0.1, True), P.wave(-0.1), P.wave(-0.2)),
            (0, 0.36, 0.72, 1.08),
            bodies=(SLIM, ADULT, CHILD, TALL),
        ),
    )
    b.add(
        "laugh-four",
        "four friends laughing together",
        "laugh friends happy joke",
        _quad(
            (P.laugh(0.5), P.laugh(0.0).with_(lean=12, head_tilt=-10), P.laugh(-0.2), P.laugh(-0.5)),
            (0, 0.36, 0.72, 1.08),
        ),
    )
    b.add(
        "audience",
        "a speaker talks to an audience of three seated listeners",
        "talk speech audience listen lecture",
        _quad(
            (P.talk(S, True), P.sit_chair(-S), P.sit_chair(-S).with_(head_tilt=-6), P.sit_chair(-S)),
            (0, 0.6, 1.0, 1.4),
            (a, n, n, n),
            (TALL, ADULT, SLIM, ADULT),
        ),
    )

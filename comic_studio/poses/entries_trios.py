"""Three-person library entries (see :mod:`comic_studio.poses.authoring`)."""

from __future__ import annotations

from comic_studio.poses import stock_poses as P
from comic_studio.poses.skeleton import ADULT, CHILD, SLIM, TALL
from comic_studio.poses.stage import EntryBook, Stage

S = P.SIDE


def _trio(
    poses, xs, roles=("neutral", "neutral", "neutral"), bodies=(ADULT, ADULT, ADULT), lifts=(0.0, 0.0, 0.0)
) -> Stage:
    return Stage.group(poses, xs, roles, bodies, lifts)


def add_trio_entries(b: EntryBook) -> None:
    a, t, n = "actor", "target", "neutral"
    b.add(
        "stand-row",
        "three people standing in a row",
        "stand group lineup",
        _trio((P.stand(0.1), P.stand(0.0), P.stand(-0.1)), (0, 0.32, 0.64), bodies=(ADULT, SLIM, TALL)),
        mirror=False,
    )
    b.add(
        "stand-group",
        "three people standing in a group",
        "stand group meet",
        _trio((P.stand(S), P.arms_crossed(0.1), P.stand(-S)), (0, 0.36, 0.72), bodies=(ADULT, TALL, SLIM)),
    )
    b.add(
        "walk-three",
        "three friends walking together",
        "walk together friends",
        _trio((P.walk(0.7), P.walk(0.7, 0.8), P.walk(0.7, 1.1)), (0, 0.3, 0.6), bodies=(ADULT, SLIM, ADULT)),
    )
    b.add(
        "run-away",
        "three people running away",
        "run flee escape",
        _trio((P.run(), P.run().with_(r_hip=-30, l_hip=60), P.run(0.8)), (0, 0.45, 0.9), bodies=(ADULT, SLIM, ADULT)),
    )
    b.add(
        "chase-two",
        "two people chasing a third",
        "run chase",
        _trio((P.run(), P.run(), P.run().with_(head_turn=-1.5)), (0, 0.35, 1.0), (a, a, t)),
    )
    b.add(
        "sit-three",
        "three people sitting together",
        "sit group bench",
        _trio((P.sit_chair(0.3), P.sit_chair(0.0), P.sit_chair(-0.3)), (0, 0.32, 0.64), bodies=(ADULT, SLIM, ADULT)),
        mirror=False,
    )
    b.add(
        "kneel-before",
        "a man kneels before two standing people",
        "kneel beg bow",
        _trio(
            (P.kneel(S).with_(head_tilt=30, lean=20), P.stand(-S, head_tilt=15), P.arms_crossed(-0.5)),
            (0, 0.45, 0.8),
            (a, t, n),
        ),
    )
    b.add(
        "stand-over-two",
        "two people stand over a person lying on the ground",
        "lie stand injured",
        _trio((P.stand(S, head_tilt=25), P.lie(S), P.stand(-S, head_tilt=25, lean=10)), (0, 0.55, 1.1), (n, t, n)),
    )
    b.add(
        "jump-three",
        "three friends jumping for joy",
        "jump joy celebrate",
        _trio((P.jump_joy(0.2), P.jump_joy(0.0), P.jump_joy(-0.2)), (0, 0.4, 0.8), lifts=(0.1, 0.14, 0.08)),
        mirror=False,
    )
    b.add(
        "fall-watched",
        "a man falls as two others watch",
        "fall trip watch",
        _trio(
            (P.stand(S, head_tilt=15), P.fall_back(S), P.stand(-S, lean=-8)),
            (0, 0.5, 1.05),
            (n, a, n),
            lifts=(0, 0.1, 0),
        ),
    )
    b.add(
        "point-at-two",
        "a man points at two people",
        "point accuse",
        _trio((P.point(), P.stand(-S), P.arms_crossed(-0.6)), (0, 0.65, 0.95), (a, t, t)),
    )
    b.add(
        "two-point-at-one",
        "two people point at a third",
        "point accuse blame",
        _trio((P.point(), P.point(S).with_(r_shoulder=80), P.hands_up(-S)), (0, 0.3, 0.95), (a, a, t)),
    )
    b.add(
        "wave-three",
        "three people waving",
        "wave greet goodbye",
        _trio((P.wave(0.2), P.wave(0.0, True), P.wave(-0.2)), (0, 0.36, 0.72)),
        mirror=False,
    )
    b.add(
        "talk-group",
        "three people talking in a group",
        "talk conversation group",
        _trio((P.talk(S), P.stand(0.0), P.talk(-S, True)), (0, 0.36, 0.72), bodies=(ADULT, SLIM, ADULT)),
    )
    b.add(
        "talk-to-two",
        "a man talks to two listeners",
        "talk speech explain",
        _trio((P.talk(S, True), P.stand(-S), P.arms_crossed(-0.6)), (0, 0.55, 0.85), (a, t, t)),
    )
    st = _trio((P.talk(S, True), P.talk(-S, True), P.think(-0.3)), (0, 0.45, 0.9), (a, t, n))
    st.hand_to_face(2, "chin")
    b.add("argue-think", "two people argue while a third thinks", "talk argue think", st)
    st = _trio((P.stand(S, lean=6), P.cry(0.0), P.stand(-S, lean=6)), (0, 0.26, 0.52), (n, t, n), (ADULT, SLIM, SLIM))
    st.hand_to_face(1, "face")
    st.touch(0, "r", 1, "r_shoulder")
    st.touch(2, "r", 1, "l_shoulder")
    b.add("comfort-two", "a woman cries while two friends comfort her", "cry comfort sad friends", st)
    b.add(
        "laugh-three",
        "three friends laughing together",
        "laugh friends happy",
        _trio((P.laugh(0.5), P.laugh(0.0).with_(lean=12, head_tilt=-10), P.laugh(-0.5)), (0, 0.36, 0.72)),
    )
    st = _trio((P.punch(), P.stagger_back(-S), P.stand(-0.6, r_shoulder=40, r_elbow=60)), (0, 0.42, 1.0), (a, t, n))
    st.touch(0, "r", 1, "nose")
    b.add("punch-watched", "a man punches another man while a third watches", "punch hit fight", st)
    b.add(
        "kick-two",
        "a man kicks one attacker while another approaches",
        "kick fight attack",
        _trio((P.kick(), P.stagger_back(-S), P.fight_stance(-S)), (0.5, 1.0, -0.1), (a, t, t)),
    )
    st = _trio((P.punch(), P.block(-S).with_(head_tilt=0), P.punch(-S)), (0, 0.42, 0.84), (t, a, t))
    b.add("block-two", "a man blocks attacks from two men", "block defend fight", st)
    st = _trio((P.stand(S, lean=6), P.stand(0.0, lean=0, head_tilt=12), P.stand(-S, lean=6)), (0, 0.3, 0.6), (a, t, a))
    st.touch(0, "r", 1, "r_elbow")
    st.touch(2, "r", 1, "l_elbow")
    b.add("grab-arms", "two guards grab a man by the arms", "grab-arm arrest capture", st)
    st = _trio((P.walk(S).with_(head_turn=-0.4), P.walk(S, 0.8).with_(lean=-6), P.walk(S, 1.3).with_(lean=12,
               head_turn=-1.5)), (0, 0.42, 0.9), (n, t, a), (ADULT, ADULT, SLIM))  # fmt: skip
    st.join_hands(1, "r", 2, "l", height=-0.55)
    b.add("pull-hand-three", "a woman pulls a man by the hand while a friend follows", "pull-hand pull lead", st)
    st = _trio((P.stand(S, lean=15), P.stand(0.0, head_tilt=10), P.stand(-S, lean=15)), (0, 0.2, 0.4))
    st.touch(0, "r", 1, "l_shoulder", (0.0, 0.03))
    st.touch(2, "r", 1, "r_shoulder", (0.0, 0.03))
    st.touch(1, "r", 0, "neck", (0.0, 0.04))
    st.touch(1, "l", 2, "neck", (0.0, 0.04))
    b.add("group-hug", "three friends in a group hug", "hug embrace friends", st, mirror=False)
    st = _trio(
        (P.stand(S, head_tilt=14, lean=3), P.stand(-S, head_tilt=6), P.stand(0.9, head_tilt=-10)),
        (0, 0.16, 0.62),
        (a, t, n),
        (ADULT, SLIM, ADULT),
    )
    st.touch(0, "r", 1, "l_hip", (0.03, -0.04))
    st.touch(1, "r", 0, "l_shoulder", (-0.03, 0.02))
    b.add("kiss-watched", "a couple kissing while a friend looks away", "kiss love romance", st)
    st = _trio((P.stand(0.1), P.stand(0.0), P.stand(-0.1)), (0, 0.33, 0.66), bodies=(ADULT, SLIM, ADULT))
    st.join_hands(0, "l", 1, "r", height=-0.46)
    st.join_hands(1, "l", 2, "r", height=-0.46)
    b.add("hold-hands-three", "three people holding hands in a row", "hold-hands friends", st, mirror=False)
    st = _trio((P.stand(0.2), P.stand(0.0, head_tilt=-12), P.stand(-0.2)), (0, 0.26, 0.52), bodies=(ADULT, CHILD, SLIM))
    st.join_hands(0, "l", 1, "r", height=-0.4)
    st.join_hands(1, "l", 2, "r", height=-0.4)
    b.add("family-hands", "a family holding hands: a child between two adults", "hold-hands family child", st)
    st = _trio((P.stand(-S, lean=6), P.lie(S), P.stand(S, lean=6)), (0.0, 0.45, 0.95), (a, t, a), lifts=(0, 0.42, 0))
    st.touch(0, "r", 1, "neck", (0.0, 0.03))
    st.touch(0, "l", 1, "neck", (0.05, 0.04))
    st.touch(2, "r", 1, "r_knee", (0.0, 0.03))
    st.touch(2, "l", 1, "l_knee", (-0.05, 0.03))
    b.add("carry-two", "two people carry an injured man", "carry rescue injured", st)
    b.add(
        "fight-three",
        "three fighters in fighting stances",
        "fight-stance fight brawl",
        _trio((P.fight_stance(0.7), P.fight_stance(-0.2), P.fight_stance(-0.7)), (0, 0.45, 0.9)),
    )
    b.add(
        "face-two",
        "a fighter faces two opponents",
        "fight-stance fight outnumbered",
        _trio((P.fight_stance(), P.fight_stance(-S), P.fight_stance(-S)), (0, 0.6, 1.0), (a, t, t)),
    )
    b.add(
        "sword-vs-two",
        "a swordsman faces two attackers with swords",
        "weapon sword fight",
        _trio((P.sword_ready(), P.sword_raised(-S), P.sword_ready(-S)), (0, 0.62, 1.02), (a, t, t)),
    )
    st = _trio((P.sit_chair().with_(head_tilt=24, r_shoulder=40, r_elbow=70, l_shoulder=35, l_elbow=75),
                P.sit_floor(-0.7).with_(head_tilt=-10), P.sit_cross_legged(-0.2).with_(head_tilt=-10)), (0, 0.42, 0.72),
               (a, n, n), (SLIM, CHILD, CHILD))  # fmt: skip
    b.add("read-to-two", "a woman reads a book to two children", "read book story children", st)
    st = _trio((P.sit_chair(), P.sit_chair(0.0), P.sit_chair(-S).with_(l_shoulder=60, l_elbow=40)), (0, 0.4, 0.8))
    st.hand_to_face(0, "mouth")
    st.hand_to_face(1, "mouth")
    b.add("eat-three", "three people sharing a meal", "eat meal dinner table", st)
    b.add(
        "sleep-three",
        "three people sleeping on the ground",
        "sleep lie camp night",
        _trio((P.lie(S), P.sleep_curled(S), P.lie(S, knees=30)), (0, 1.15, 2.3)),
        mirror=False,
    )
    b.add(
        "talk-beside-sleeper",
        "two people talk quietly beside a sleeping person",
        "sleep talk whisper",
        _trio((P.talk(S), P.sleep_curled(S), P.stand(-S, head_tilt=10)), (0, 0.6, 1.15), (a, n, n)),
    )

"""Two-person library entries (see :mod:`comic_studio.poses.authoring`). The actor usually
stands on the left facing right; the mirrored twins cover the other side."""

from __future__ import annotations

from comic_studio.poses import stock_poses as P
from comic_studio.poses.skeleton import ADULT, CHILD, SLIM, TALL
from comic_studio.poses.stage import EntryBook, Stage

S = P.SIDE


def _pair(left, right, gap: float, roles=("actor", "target"), bodies=(ADULT, ADULT), lifts=(0.0, 0.0)) -> Stage:
    st = Stage()
    st.add(left, 0.0, roles[0], bodies[0], lifts[0])
    st.add(right, gap, roles[1], bodies[1], lifts[1])
    return st


def _hug(st: Stage, a: int, b: int) -> None:
    """Arms of ``a`` around ``b``'s back and the reverse (``a`` on the left)."""
    st.touch(a, "r", b, "l_shoulder", (0.05, 0.05))
    st.touch(a, "l", b, "r_shoulder", (0.06, 0.12))
    st.touch(b, "l", a, "r_shoulder", (-0.05, 0.1))
    st.touch(b, "r", a, "l_shoulder", (-0.06, 0.02))


def add_pair_entries(b: EntryBook) -> None:
    n, t = "neutral", "target"
    b.add(
        "stand-side-by-side",
        "two people standing side by side",
        "stand group",
        _pair(P.stand(0.1), P.stand(-0.1), 0.32, (n, n)),
        mirror=False,
    )
    b.add(
        "stand-facing",
        "two people standing and facing each other",
        "stand meet",
        _pair(P.stand(S), P.stand(-S), 0.5, (n, n), (ADULT, SLIM)),
    )
    b.add(
        "walk-together",
        "two people walking together side by side",
        "walk together",
        _pair(P.walk(0.7), P.walk(0.7, 0.8), 0.3, (n, n), (ADULT, SLIM)),
    )
    b.add(
        "walk-towards",
        "a man walks towards a woman",
        "walk approach",
        _pair(P.walk(), P.stand(-S), 0.75, bodies=(ADULT, SLIM)),
    )
    b.add("chase", "a man chasing another man", "run chase", _pair(P.run(), P.run().with_(head_turn=-1.5), 0.7))
    b.add(
        "run-together",
        "two people running together",
        "run together",
        _pair(P.run(0.8), P.run(0.8).with_(r_hip=-30, l_hip=60), 0.28, (n, n)),
    )
    b.add(
        "sit-talk",
        "two people sitting and talking",
        "sit talk",
        _pair(P.sit_chair().with_(r_shoulder=40, r_elbow=60), P.sit_chair(-S), 0.6, (n, n)),
    )
    b.add(
        "sit-couple",
        "a couple sitting side by side on a bench",
        "sit bench couple",
        _pair(P.sit_chair(0.0), P.sit_chair(0.0), 0.3, (n, n), (ADULT, SLIM)),
        mirror=False,
    )
    b.add(
        "kneel-beg",
        "a woman kneels and begs a standing man",
        "kneel beg plead",
        _pair(P.beg(), P.stand(-S, head_tilt=18), 0.42, ("actor", t), (SLIM, TALL)),
    )
    st = _pair(P.kneel(S, one_knee=True), P.stand(-S, head_tilt=14), 0.45, bodies=(ADULT, SLIM))
    st.touch(0, "r", 1, "r_wrist")
    b.add("kneel-propose", "a man kneels to propose to a woman", "kneel propose", st)
    b.add(
        "lie-kneel-beside",
        "a person lies on the ground while another kneels beside them",
        "lie kneel help injured",
        _pair(
            P.lie(-S).with_(rotation=-90), P.kneel(-S).with_(lean=35, r_shoulder=60, l_shoulder=50), 0.55, (n, "actor")
        ),
    )
    b.add(
        "stand-over",
        "a man stands over a man lying on the ground",
        "lie stand defeat",
        _pair(P.stand(S, head_tilt=25), P.lie(-S), 0.45, ("actor", t)),
    )
    b.add(
        "jump-two",
        "two friends jumping for joy",
        "jump joy celebrate",
        _pair(P.jump_joy(0.2), P.jump_joy(-0.2), 0.42, (n, n), lifts=(0.12, 0.08)),
        mirror=False,
    )
    b.add("jump-at", "a man jumps at another man", "jump attack", _pair(P.leap(), P.block(-S), 0.6, lifts=(0.18, 0.0)))
    b.add(
        "knock-down",
        "a man knocks another man to the ground",
        "fall punch knock-down",
        _pair(P.punch(), P.fall_back(-S), 0.55, lifts=(0.0, 0.08)),
    )
    b.add(
        "fall-watch",
        "a woman trips and falls while another person watches",
        "fall trip",
        _pair(P.stand(S, head_tilt=10), P.fall_forward(-S), 0.5, ("neutral", "actor"), (ADULT, SLIM), (0, 0.1)),
    )
    b.add("point-at", "a man points at another man", "point accuse", _pair(P.point(), P.stand(-S), 0.6))
    st = _pair(P.point(0.8).with_(r_shoulder=105), P.stand(0.6, head_tilt=-8), 0.3, bodies=(SLIM, ADULT))
    b.add("point-way", "a woman points the way for a man", "point show direction", st)
    b.add(
        "wave-each-other",
        "two people waving at each other",
        "wave greet",
        _pair(P.wave(S).with_(r_shoulder=130), P.wave(-S).with_(r_shoulder=130), 0.9, (n, n)),
    )
    b.add(
        "wave-goodbye",
        "a man waves goodbye to a woman who walks away",
        "wave goodbye leave",
        _pair(P.wave(S).with_(r_shoulder=130), P.walk(S).with_(head_turn=-1.4), 0.8, bodies=(ADULT, SLIM)),
    )
    b.add("talk", "two people talking", "talk conversation", _pair(P.talk(S), P.stand(-S), 0.5, bodies=(ADULT, SLIM)))
    b.add(
        "argue",
        "two people arguing, gesturing angrily",
        "talk argue angry",
        _pair(P.talk(S, True), P.talk(-S, True).with_(r_shoulder=85, r_elbow=10), 0.48),
    )
    b.add(
        "whisper",
        "a man whispers in a woman's ear",
        "talk whisper secret",
        _pair(P.stand(S, lean=14, head_tilt=12, r_shoulder=50, r_elbow=100), P.stand(0.3), 0.2, bodies=(ADULT, SLIM)),
    )
    st = _pair(P.talk(S), P.think(-0.5), 0.55, ("actor", n), (SLIM, ADULT))
    st.hand_to_face(1, "chin")
    b.add("think-listen", "a man thinks while a woman explains", "think talk listen", st)
    st = _pair(P.stand(S, lean=6), P.cry(-0.4), 0.26, bodies=(ADULT, SLIM))
    st.hand_to_face(1, "face")
    st.touch(0, "r", 1, "l_shoulder", (0.0, 0.01))
    b.add("comfort", "a woman cries while a man comforts her", "cry comfort console sad", st)
    b.add(
        "laugh-two",
        "two friends laughing together",
        "laugh friends happy",
        _pair(P.laugh(0.5), P.laugh(-0.5).with_(lean=12, head_tilt=-8), 0.4, (n, n)),
    )
    st = _pair(P.punch(), P.stagger_back(-S), 0.42)
    st.touch(0, "r", 1, "nose", (0.01, 0.01))
    b.add("punch", "a man punches another man who staggers back", "punch hit fight", st)
    st = _pair(P.punch().with_(lean=6), P.stagger_back(-S).with_(lean=-12), 0.4, bodies=(SLIM, ADULT))
    st.touch(0, "r", 1, "nose", (0.0, 0.02))
    b.add("punch-face", "a woman punches a man in the face", "punch hit slap fight", st)
    st = _pair(P.kick(), P.stagger_back(-S).with_(lean=-30), 0.5)
    b.add("kick", "a man kicks another man", "kick fight", st)
    st = _pair(P.punch(), P.block(-S), 0.45)
    st.touch(0, "r", 1, "r_wrist", (0.02, 0.0))
    b.add("block", "a man blocks a punch from another man", "block defend punch fight", st)
    st = _pair(P.stand(S, lean=6), P.walk(S).with_(head_turn=-1.5), 0.33, bodies=(ADULT, SLIM))
    st.touch(0, "r", 1, "r_elbow")
    b.add("grab-arm", "a man grabs a woman's arm", "grab-arm grab stop", st)
    st = _pair(P.stand(S, lean=4), P.stand(-S, lean=-6), 0.3, bodies=(SLIM, ADULT))
    st.touch(0, "r", 1, "r_elbow", (0.0, 0.02))
    b.add("grab-arm-stop", "a woman grabs a man by the arm to stop him", "grab-arm grab stop", st)
    st = _pair(
        P.stand(S, lean=-14, r_hip=24, l_hip=-6),
        P.walk(S, 1.2).with_(lean=12, head_turn=-1.5),
        0.55,
        ("target", "actor"),
        (ADULT, SLIM),
    )
    st.join_hands(0, "r", 1, "l", height=-0.62)
    b.add("pull-hand", "a woman pulls a man by the hand", "pull-hand pull lead", st)
    st = _pair(P.walk(S), P.walk(S, 1.3).with_(lean=10, head_turn=-1.4), 0.42, ("target", "actor"), (CHILD, ADULT))
    st.join_hands(0, "r", 1, "l", height=-0.5)
    b.add("pull-hand-child", "a man pulls a child along by the hand", "pull-hand pull hurry child", st)
    st = _pair(P.stand(S, head_tilt=20, lean=4), P.stand(-S, head_tilt=20, lean=4), 0.19)
    _hug(st, 0, 1)
    b.add("hug", "two people hugging", "hug embrace", st)
    st = _pair(P.stand(S, lean=20, head_tilt=10), P.stand(-S, head_tilt=-10), 0.2, bodies=(SLIM, CHILD))
    _hug(st, 0, 1)
    b.add("hug-child", "a mother hugs her child", "hug embrace child", st)
    st = _pair(P.stand(S, head_tilt=14, lean=3), P.stand(-S, head_tilt=6), 0.16, bodies=(ADULT, SLIM))
    st.touch(0, "r", 1, "l_hip", (0.03, -0.04))
    st.touch(0, "l", 1, "r_hip", (0.05, -0.02))
    st.touch(1, "r", 0, "l_shoulder", (-0.03, 0.02))
    st.touch(1, "l", 0, "r_shoulder", (-0.04, -0.01))
    b.add("kiss", "a couple kissing", "kiss love romance", st)
    st = _pair(P.stand(S, head_tilt=16, lean=6), P.stand(0.3), 0.2, bodies=(ADULT, SLIM))
    st.touch(0, "r", 1, "l_shoulder")
    b.add("kiss-cheek", "a man kisses a woman on the cheek", "kiss cheek love", st)
    st = _pair(P.stand(0.1), P.stand(-0.1), 0.34, (n, n), (ADULT, SLIM))
    st.join_hands(0, "l", 1, "r", height=-0.46)
    b.add("hold-hands", "two people holding hands", "hold-hands couple", st, mirror=False)
    st = _pair(P.walk(0.75), P.walk(0.75, 0.8), 0.3, (n, n), (ADULT, SLIM))
    st.join_hands(0, "l", 1, "r", height=-0.45)
    b.add("hold-hands-walk", "a couple walking hand in hand", "hold-hands walk couple", st)
    st = _pair(P.stand(0.2), P.stand(-0.2, head_tilt=-15), 0.3, ("neutral", "neutral"), (ADULT, CHILD))
    st.join_hands(0, "l", 1, "r", height=-0.42)
    b.add("hold-hands-child", "a parent holding a child's hand", "hold-hands child family", st)
    carried = P.sit_chair(S).with_(rotation=-40, r_shoulder=150, r_elbow=40, l_shoulder=120, l_elbow=60)
    st = _pair(P.stand(S, lean=-6), carried, 0.2, bodies=(ADULT, SLIM), lifts=(0.0, 0.36))
    st.touch(0, "r", 1, "r_knee", (0.0, 0.03))
    st.touch(0, "l", 1, "neck", (0.02, 0.05))
    b.add("carry-arms", "a man carries a woman in his arms", "carry lift rescue", st)
    rider = P.sit_chair(S).with_(lean=15, r_hip=70, r_knee=70, l_hip=65, l_knee=60)
    st = _pair(rider, P.stand(S, lean=18, head_tilt=-12), 0.08, ("target", "actor"), lifts=(0.3, 0.0))
    st.touch(0, "r", 1, "r_shoulder", (0.06, 0.06))
    st.touch(1, "r", 0, "r_knee", (0.0, 0.02))
    b.add("carry-back", "a man carries an injured man on his back", "carry piggyback rescue injured", st)
    b.add(
        "face-off",
        "two fighters facing off in fighting stances",
        "fight-stance fight duel",
        _pair(P.fight_stance(), P.fight_stance(-S), 0.6),
    )
    b.add(
        "sword-duel",
        "two swordsmen dueling",
        "weapon sword duel fight",
        _pair(P.sword_raised(), P.sword_ready(-S).with_(r_shoulder=80, l_shoulder=75), 0.6),
    )
    b.add(
        "gun-threat",
        "a man threatens another man with a gun, who raises his hands",
        "weapon gun threat surrender",
        _pair(P.aim_gun(), P.hands_up(-S), 0.85),
    )
    st = _pair(
        P.sit_chair().with_(head_tilt=24, r_shoulder=40, r_elbow=70, l_shoulder=35, l_elbow=75),
        P.sit_floor(-0.7).with_(head_tilt=-10),
        0.4,
        ("actor", "neutral"),
        (SLIM, CHILD),
    )
    b.add("read-to-child", "a woman reads a book to a child", "read book story child", st)
    b.add(
        "read-together",
        "two people reading side by side",
        "read book",
        _pair(P.read(0.3), P.read(0.2).with_(head_tilt=20), 0.34, (n, n), (ADULT, SLIM)),
        mirror=False,
    )
    st = _pair(P.sit_chair(), P.sit_chair(-S).with_(r_shoulder=50, r_elbow=30), 0.7, (n, n))
    st.hand_to_face(0, "mouth")
    b.add("eat-together", "two people eating together at a table", "eat meal dinner table", st)
    b.add(
        "sleep-two",
        "two people sleeping side by side",
        "sleep lie bed night",
        _pair(P.lie(S), P.lie(S, knees=20), 0.0, (n, n), lifts=(0.0, 0.16)),
        mirror=False,
    )
    b.add(
        "watch-sleep",
        "a person watches over another who sleeps",
        "sleep sit watch",
        _pair(P.sit_chair(S).with_(head_tilt=20), P.sleep_curled(-S), 0.7, ("actor", "target")),
    )

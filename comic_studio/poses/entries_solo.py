"""One-person library entries (see :mod:`comic_studio.poses.authoring`)."""

from __future__ import annotations

from comic_studio.poses import stock_poses as P
from comic_studio.poses.skeleton import ADULT, CHILD, SLIM, TALL
from comic_studio.poses.stage import EntryBook, Stage

S = P.SIDE


def _solo(pose: P.Pose, role: str = "actor", body=ADULT, lift: float = 0.0, gesture: str | None = None) -> Stage:
    st = Stage()
    st.add(pose, 0.0, role, body, lift)  # type: ignore[arg-type]
    if gesture:
        st.hand_to_face(0, gesture)
    return st


def add_solo_entries(b: EntryBook) -> None:
    b.add("stand-front", "a person standing still", "stand idle", _solo(P.stand(), "neutral"), mirror=False)
    b.add(
        "stand-arms-crossed",
        "a man standing with his arms crossed",
        "stand arms-crossed",
        _solo(P.arms_crossed(0.15), "neutral", TALL),
    )
    b.add(
        "stand-hands-hips",
        "a woman standing with her hands on her hips",
        "stand confident",
        _solo(P.hands_on_hips(0.1), "neutral", SLIM),
    )
    b.add("stand-side", "a man stands and looks to the side", "stand look", _solo(P.stand(S), "neutral"))
    b.add("walk", "a man walking", "walk", _solo(P.walk()))
    b.add("walk-brisk", "a woman walking briskly down the street", "walk hurry", _solo(P.walk(S, 1.4), body=SLIM))
    b.add("run", "a person running fast", "run sprint", _solo(P.run()))
    b.add("run-child", "a child running", "run child play", _solo(P.run(), body=CHILD))
    b.add("sit-chair", "a man sitting on a chair", "sit chair", _solo(P.sit_chair(), "neutral"))
    b.add(
        "sit-front",
        "a woman sitting on a chair facing us",
        "sit chair",
        _solo(P.sit_chair(0.0), "neutral", SLIM),
        mirror=False,
    )
    b.add(
        "sit-floor", "a person sitting on the floor hugging their knees", "sit floor", _solo(P.sit_floor(), "neutral")
    )
    b.add(
        "sit-cross",
        "a person sitting cross-legged on the ground",
        "sit floor meditate",
        _solo(P.sit_cross_legged(), "neutral"),
        mirror=False,
    )
    b.add("kneel-one", "a man kneeling on one knee", "kneel propose", _solo(P.kneel(S, one_knee=True)))
    b.add(
        "kneel-pray",
        "a woman kneeling and praying",
        "kneel pray",
        _solo(P.kneel().with_(head_tilt=20, r_shoulder=60, r_elbow=70, l_shoulder=55, l_elbow=75), body=SLIM),
    )
    b.add("lie", "a person lying on the ground", "lie ground", _solo(P.lie(), "neutral"))
    b.add(
        "lie-injured",
        "an injured man lying on his back, one knee raised",
        "lie injured hurt",
        _solo(P.lie(S, knees=50), "neutral"),
    )
    b.add(
        "jump-joy",
        "a person jumping for joy with arms raised",
        "jump joy celebrate",
        _solo(P.jump_joy(), lift=0.12),
        mirror=False,
    )
    b.add("leap", "a man leaping forward", "jump leap", _solo(P.leap(), lift=0.15))
    b.add("fall-back", "a man falling backwards", "fall", _solo(P.fall_back(), lift=0.1))
    b.add("fall-trip", "a woman trips and falls forward", "fall trip", _solo(P.fall_forward(), body=SLIM, lift=0.12))
    b.add("point", "a man pointing ahead", "point show", _solo(P.point()))
    b.add("point-up", "a woman pointing up at the sky", "point look-up", _solo(P.point(S, up=True), body=SLIM))
    b.add("wave", "a woman waving hello", "wave greet", _solo(P.wave(0.2), body=SLIM))
    b.add("wave-both", "a man waving both arms", "wave signal", _solo(P.wave(0.0, both=True)), mirror=False)
    b.add("talk", "a man talking and gesturing with his hands", "talk gesture speak", _solo(P.talk(0.6, True)))
    b.add(
        "talk-explain", "a woman explaining something, one hand raised", "talk explain", _solo(P.talk(0.5), body=SLIM)
    )
    b.add(
        "think",
        "a man thinking with his hand on his chin",
        "think ponder",
        _solo(P.think(0.1), "neutral", gesture="chin"),
    )
    b.add(
        "think-sit",
        "a woman sits deep in thought, head bowed",
        "think sit worry",
        _solo(P.sit_chair().with_(head_tilt=30), "neutral", SLIM, gesture="chin"),
    )
    b.add(
        "cry",
        "a woman crying with her face in her hands",
        "cry sad weep",
        _solo(P.cry(0.1), "neutral", SLIM, gesture="face"),
    )
    b.add(
        "cry-sit",
        "a man sitting on the floor and crying",
        "cry sit sad",
        _solo(P.sit_floor().with_(head_tilt=35), "neutral", gesture="face"),
    )
    b.add("laugh", "a man laughing with his head thrown back", "laugh happy", _solo(P.laugh(0.2)))
    b.add(
        "laugh-belly",
        "a woman laughing and holding her belly",
        "laugh happy",
        _solo(P.laugh(0.5).with_(lean=14, head_tilt=-10), body=SLIM),
    )
    b.add("punch-air", "a boxer punching the air", "punch box train", _solo(P.punch()))
    b.add("kick-high", "a man kicking high", "kick martial-arts", _solo(P.kick()))
    b.add("block", "a man raising his arms to block a blow", "block defend", _solo(P.block()))
    b.add("clutch-arm", "a man clutching his injured arm", "grab-arm hurt pain", _solo(P.clutch_arm()))
    b.add("hug-self", "a woman hugging herself", "hug cold lonely", _solo(P.hug_self(), "neutral", SLIM), mirror=False)
    b.add("blow-kiss", "a woman blowing a kiss", "kiss flirt", _solo(P.blow_kiss(0.6), body=SLIM, gesture="kiss"))
    b.add("carry-box", "a man carrying a heavy box", "carry lift", _solo(P.carry_box()))
    b.add("carry-bag", "a woman carrying a bag over her shoulder", "carry bag", _solo(P.carry_bag(), body=SLIM))
    b.add(
        "fight-stance",
        "a fighter in a fighting stance, fists raised",
        "fight-stance fight ready",
        _solo(P.fight_stance(0.7)),
    )
    b.add(
        "sword-raised",
        "a knight raising a sword above his head",
        "weapon sword attack",
        _solo(P.sword_raised(), body=TALL),
    )
    b.add("sword-ready", "a man holding a sword with both hands", "weapon sword ready", _solo(P.sword_ready()))
    b.add("aim-gun", "a woman aiming a gun", "weapon gun aim shoot", _solo(P.aim_gun(), body=SLIM))
    b.add("read", "a man reading a book while standing", "read book", _solo(P.read(0.6), "neutral"))
    b.add(
        "read-sit",
        "a woman sitting and reading a book",
        "read book sit",
        _solo(P.sit_chair().with_(head_tilt=28, r_shoulder=25, r_elbow=80, l_shoulder=20, l_elbow=85), "neutral", SLIM),
    )
    b.add("eat", "a man eating, hand to mouth", "eat food", _solo(P.eat(0.6), gesture="mouth"))
    b.add(
        "eat-sit",
        "a woman sitting at a table and eating",
        "eat sit meal",
        _solo(P.sit_chair().with_(l_shoulder=40, l_elbow=40), body=SLIM, gesture="mouth"),
    )
    b.add(
        "sleep-curled",
        "a person sleeping curled up on the ground",
        "sleep lie rest",
        _solo(P.sleep_curled(), "neutral"),
    )
    b.add("sleep-chair", "a man asleep in a chair, head drooping", "sleep sit doze", _solo(P.slump_asleep(), "neutral"))
    b.add(
        "sleep-couch",
        "a man dozing on the couch",
        "sleep lie doze nap",
        _solo(P.lie(S, knees=25).with_(r_shoulder=170, r_elbow=60), "neutral", lift=0.22),
    )

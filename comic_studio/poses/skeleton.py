"""A small parametric skeleton: a handful of angles → OpenPose-18 keypoints.

Authoring poses as numbers ("right shoulder 90°, elbow 20°, lean 10°") instead of typing coordinates
keeps every entry anatomically consistent (limb lengths come from :class:`Proportions`) and lets one
pose be mirrored, moved and combined with others.

Conventions (image plane, y pointing down, lengths in *statures*: an adult is 1.0 tall):

* Every limb angle is measured from straight down, in degrees.
* In a **front view** (``|facing| < FRONT_VIEW``) a positive angle opens the limb *outward*, away from
  the torso, on both sides, so symmetric poses use equal numbers (both arms up: 170 and 170).
* Otherwise (three-quarter and profile views) a positive angle swings the limb *forward*, towards
  the direction the figure faces (90 = pointing straight ahead).
* Elbow bend adds to the arm's angle (the forearm swings further the same way); knee bend is the
  natural backward flex (the shin swings back by that much).
* Arm and leg angles are absolute (relative to gravity), which is what an author thinks in; ``lean``
  tilts the torso and head around the hips, ``head_tilt`` nods the head (positive = down/forward),
  ``rotation`` turns the whole body around the hips afterwards (90 = toppled forward; used for
  lying and falling figures).
* A figure "facing" +1 looks image-right and shows its own right side to the viewer (so the
  right eye and ear are visible and the left ones are hidden).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from comic_studio.poses.library import KP, MIRROR_PERMUTATION, Figure, PoseEntry, Role

FRONT_VIEW = 0.35
"""Below this ``|facing|`` a figure counts as seen from the front (outward angle convention)."""

Vec = tuple[float, float]


@dataclass(frozen=True)
class Proportions:
    """Body segment lengths, in statures of an adult (an adult is 1.0 tall)."""

    head_radius: float = 0.062
    neck: float = 0.085  # neck keypoint (base of the neck) → head centre
    torso: float = 0.30  # neck keypoint → mid-hip
    shoulder_half: float = 0.105
    hip_half: float = 0.058
    upper_arm: float = 0.17
    forearm: float = 0.15  # elbow → wrist
    thigh: float = 0.245
    shin: float = 0.245
    foot: float = 0.04  # ankle height above the ground

    def scaled(self, k: float) -> Proportions:
        return Proportions(**{name: getattr(self, name) * k for name in self.__dataclass_fields__})


ADULT = Proportions()
# A woman of the same stature: narrower shoulders, slightly wider hips (a readable silhouette cue).
SLIM = replace(ADULT, shoulder_half=0.092, hip_half=0.064)
TALL = replace(ADULT.scaled(1.1), shoulder_half=0.118, hip_half=0.062)
# A child of about 8: ~0.68 of an adult's height with a proportionally larger head.
CHILD = replace(
    ADULT.scaled(0.68), head_radius=0.062 * 0.82, neck=0.085 * 0.62, torso=0.30 * 0.64,
    thigh=0.245 * 0.62, shin=0.245 * 0.62,
)  # fmt: skip
BODIES: dict[str, Proportions] = {"adult": ADULT, "slim": SLIM, "tall": TALL, "child": CHILD}


@dataclass(frozen=True)
class Pose:
    """One figure's pose parameters (degrees; see the module docstring for the conventions)."""

    facing: float = 0.0
    lean: float = 0.0
    head_tilt: float = 0.0
    head_turn: float = 0.0
    """Extra head yaw relative to the body, in units of ``facing`` (0.5 = a quarter turn)."""
    rotation: float = 0.0
    r_shoulder: float = 8.0
    r_elbow: float = 8.0
    l_shoulder: float = 8.0
    l_elbow: float = 8.0
    r_hip: float = 2.0
    r_knee: float = 0.0
    l_hip: float = 2.0
    l_knee: float = 0.0
    foreshorten: tuple[tuple[str, float], ...] = ()
    """Per-segment length factors for limbs pointing at/away from the viewer, e.g.
    ``(("r_thigh", 0.4),)``. Segment names: ``{r,l}_{upper_arm,forearm,thigh,shin}``, ``torso``."""

    def with_(self, **changes: float) -> Pose:
        return replace(self, **changes)


def _dir(angle_deg: float, sign: float) -> Vec:
    """Unit vector for a limb at ``angle_deg`` from straight down, swung towards ``sign`` (±1) in x."""
    a = math.radians(angle_deg)
    return (sign * math.sin(a), math.cos(a))


def _rotate(p: Vec, angle_deg: float, sign: float, about: Vec = (0.0, 0.0)) -> Vec:
    """Rotate ``p`` about ``about`` so that a point above it moves towards ``sign`` (±1) in x."""
    a = math.radians(angle_deg) * sign
    x, y = p[0] - about[0], p[1] - about[1]
    return (about[0] + x * math.cos(a) - y * math.sin(a), about[1] + x * math.sin(a) + y * math.cos(a))


def _add(p: Vec, d: Vec, length: float) -> Vec:
    return (p[0] + d[0] * length, p[1] + d[1] * length)


@dataclass(frozen=True)
class Skeleton:
    """Keypoints in body space: statures, origin at the mid-hip, y down."""

    points: tuple[Vec, ...]
    visible: tuple[bool, ...]
    facing: float
    body: Proportions

    def ground_offset(self) -> float:
        """Distance from the origin down to the surface the body rests on (its lowest contact)."""
        b, p = self.body, self.points
        contacts = [p[KP["r_ankle"]][1] + b.foot, p[KP["l_ankle"]][1] + b.foot]
        # Knees, hips and the head carry flesh below the joint: matters for kneeling, sitting on the
        # floor and lying figures.
        contacts += [p[KP[k]][1] + 0.035 for k in ("r_knee", "l_knee")]
        contacts += [p[KP[k]][1] + 0.06 for k in ("r_hip", "l_hip")]
        contacts += [p[KP[k]][1] + 0.025 for k in ("r_wrist", "l_wrist", "r_elbow", "l_elbow", "neck")]
        contacts.append(p[KP["nose"]][1] + b.head_radius)
        return max(contacts)


def build_skeleton(pose: Pose, body: Proportions = ADULT) -> Skeleton:
    """Pose parameters → 18 keypoints in body space (see :class:`Skeleton`)."""
    facing = max(-1.0, min(1.0, pose.facing))
    front = abs(facing) < FRONT_VIEW
    fwd = 1.0 if facing >= 0 else -1.0  # image-x direction the figure faces
    fs = dict(pose.foreshorten)
    yaw = facing * math.pi / 2
    width = max(abs(math.cos(yaw)), 0.12)  # shoulders/hips never collapse to one exact point

    neck = _rotate((0.0, -body.torso * fs.get("torso", 1.0)), pose.lean, fwd)
    # The figure's own right side is on the image's left when it faces the viewer.
    r_sh = _rotate((-body.shoulder_half * width, -body.torso * fs.get("torso", 1.0)), pose.lean, fwd)
    l_sh = _rotate((body.shoulder_half * width, -body.torso * fs.get("torso", 1.0)), pose.lean, fwd)
    r_hip, l_hip = (-body.hip_half * width, 0.0), (body.hip_half * width, 0.0)

    def limb_sign(side: str) -> float:
        if front:
            return -1.0 if side == "r" else 1.0  # outward
        return fwd

    def arm(side: str, shoulder: Vec, a_sh: float, a_el: float) -> tuple[Vec, Vec]:
        s = limb_sign(side)
        elbow = _add(shoulder, _dir(a_sh, s), body.upper_arm * fs.get(f"{side}_upper_arm", 1.0))
        wrist = _add(elbow, _dir(a_sh + a_el, s), body.forearm * fs.get(f"{side}_forearm", 1.0))
        return elbow, wrist

    def leg(side: str, hip: Vec, a_hip: float, a_knee: float) -> tuple[Vec, Vec]:
        s = limb_sign(side)
        knee = _add(hip, _dir(a_hip, s), body.thigh * fs.get(f"{side}_thigh", 1.0))
        # Seen from the front a bent knee folds towards the midline (the outward sign flips it).
        shin = _dir(a_hip - a_knee, s)
        ankle = _add(knee, shin, body.shin * fs.get(f"{side}_shin", 1.0))
        return knee, ankle

    r_el, r_wr = arm("r", r_sh, pose.r_shoulder, pose.r_elbow)
    l_el, l_wr = arm("l", l_sh, pose.l_shoulder, pose.l_elbow)
    r_kn, r_an = leg("r", r_hip, pose.r_hip, pose.r_knee)
    l_kn, l_an = leg("l", l_hip, pose.l_hip, pose.l_knee)

    # Head: a sphere above the neck, nodded by lean + tilt; face points on it turned by the yaw.
    head_yaw = max(-1.0, min(1.0, facing + pose.head_turn)) * math.pi / 2
    head_fwd = 1.0 if facing + pose.head_turn >= 0 else -1.0
    centre = _add(neck, _dir(180.0 + pose.lean + pose.head_tilt * 0.5, fwd), body.neck)
    R = body.head_radius

    def face_point(azimuth_deg: float, height: float) -> tuple[Vec, bool]:
        # azimuth: 0 = straight at the viewer, positive = towards image-right (before the yaw).
        az = math.radians(azimuth_deg) + head_yaw
        p = (centre[0] + R * 0.92 * math.sin(az), centre[1] + R * height)
        return _rotate(p, pose.head_tilt * 0.6, head_fwd, centre), math.cos(az) > -0.2

    nose, nose_v = face_point(0.0, 0.15)
    r_eye, r_eye_v = face_point(-32.0, -0.12)
    l_eye, l_eye_v = face_point(32.0, -0.12)
    r_ear, r_ear_v = face_point(-88.0, -0.02)
    l_ear, l_ear_v = face_point(88.0, -0.02)

    pts = [nose, neck, r_sh, r_el, r_wr, l_sh, l_el, l_wr, r_hip, r_kn, r_an, l_hip, l_kn, l_an,
           r_eye, l_eye, r_ear, l_ear]  # fmt: skip
    vis = [nose_v, True] + [True] * 12 + [r_eye_v, l_eye_v, r_ear_v, l_ear_v]
    if pose.rotation:
        pts = [_rotate(p, pose.rotation, fwd) for p in pts]
    return Skeleton(points=tuple(pts), visible=tuple(vis), facing=facing, body=body)


# --------------------------------------------------------------------------- composing a canvas


@dataclass(frozen=True)
class Placed:
    """A posed figure placed on a canvas.

    ``x`` is the mid-hip position in canvas widths (0..1); the figure stands on ``ground`` (canvas
    heights from the top) raised by ``lift`` statures (jumps, being carried); ``scale`` multiplies the
    canvas' adult stature (perspective: smaller is further away).
    """

    pose: Pose
    x: float
    role: Role = "neutral"
    body: Proportions = ADULT
    lift: float = 0.0
    scale: float = 1.0
    ground: float | None = None


@dataclass(frozen=True)
class Canvas:
    aspect: float = 1.0
    ground: float = 0.93
    stature: float = 0.8
    """An adult's height in canvas heights (before any fitting)."""
    margin: float = 0.03
    figures: tuple[Placed, ...] = field(default_factory=tuple)


def _to_canvas(placed: Placed, canvas: Canvas) -> tuple[list[Vec], Skeleton]:
    """Isotropic canvas coordinates (x in canvas heights, so 0..aspect) of one placed figure."""
    sk = build_skeleton(placed.pose, placed.body)
    k = canvas.stature * placed.scale
    ground = canvas.ground if placed.ground is None else placed.ground
    oy = ground - (sk.ground_offset() + placed.lift) * k
    ox = placed.x * canvas.aspect
    return [(ox + p[0] * k, oy + p[1] * k) for p in sk.points], sk


def compose(canvas: Canvas) -> tuple[Figure, ...]:
    """Place every figure, then shrink/shift the group (uniformly) to fit inside the margins."""
    if not canvas.figures:
        raise ValueError("a pose canvas needs at least one figure")
    placed = [_to_canvas(p, canvas) for p in canvas.figures]
    # Bounds include a head-sized pad so heads (drawn as circles around the keypoints) stay inside.
    pad = max(sk.body.head_radius * canvas.stature * pl.scale for (_, sk), pl in zip(placed, canvas.figures))
    xs = [x for pts, _ in placed for x, _ in pts]
    ys = [y for pts, _ in placed for _, y in pts]
    x0, x1, y0, y1 = min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad * 0.4
    m = canvas.margin
    room_w, room_h = canvas.aspect - 2 * m, 1.0 - 2 * m
    k = min(1.0, room_w / (x1 - x0), room_h / (y1 - y0))
    # Keep the composition where the author put it unless it has to move to fit.
    cx = (x0 + x1) / 2

    def fit_x(x: float) -> float:
        return cx + (x - cx) * k

    def fit_y(y: float) -> float:
        return y1 + (y - y1) * k  # scale about the lowest point: feet stay on the ground line

    nx0, nx1 = fit_x(x0), fit_x(x1)
    dx = (m - nx0) if nx0 < m else ((canvas.aspect - m) - nx1 if nx1 > canvas.aspect - m else 0.0)
    ny0, ny1 = fit_y(y0), fit_y(y1)
    dy = (m - ny0) if ny0 < m else ((1.0 - m) - ny1 if ny1 > 1.0 - m else 0.0)
    figures = []
    for (pts, sk), pl in zip(placed, canvas.figures):
        kps = tuple(
            (round((fit_x(x) + dx) / canvas.aspect, 6), round(fit_y(y) + dy, 6), 1.0 if v else 0.0)
            for (x, y), v in zip(pts, sk.visible)
        )
        figures.append(Figure(keypoints=kps, role=pl.role, facing=round(sk.facing, 6)))
    return tuple(figures)


# --------------------------------------------------------------------------- figure transforms


def mirror_figure(fig: Figure) -> Figure:
    """Reflect left↔right: x → 1 − x, the figure's own left and right swap, facing flips."""
    kps = tuple((1.0 - fig.keypoints[j][0], fig.keypoints[j][1], fig.keypoints[j][2]) for j in MIRROR_PERMUTATION)
    return Figure(keypoints=kps, role=fig.role, facing=-fig.facing)


def mirror_entry(entry: PoseEntry, new_id: str, caption: str | None = None) -> PoseEntry:
    return replace(
        entry, id=new_id, caption=caption or entry.caption, figures=tuple(mirror_figure(f) for f in entry.figures)
    )


def transform_figure(fig: Figure, dx: float = 0.0, dy: float = 0.0, scale: float = 1.0,
                     about: Vec = (0.5, 1.0)) -> Figure:  # fmt: skip
    """Scale about ``about`` (normalised canvas point; default: bottom centre), then translate."""
    kps = tuple(
        (about[0] + (x - about[0]) * scale + dx, about[1] + (y - about[1]) * scale + dy, v) for x, y, v in fig.keypoints
    )
    return replace(fig, keypoints=kps)


def facing_pair_positions(distance: float, aspect: float, centre: float = 0.5) -> tuple[float, float]:
    """x positions (canvas widths) of two figures ``distance`` statures apart at the default scale."""
    half = distance * Canvas().stature / aspect / 2
    return (centre - half, centre + half)


# --------------------------------------------------------------------------- reaching (2-bone IK)


def joint(pose: Pose, body: Proportions, name: str) -> Vec:
    """Body-space position of one keypoint of ``pose``."""
    return build_skeleton(pose, body).points[KP[name]]


def reach(pose: Pose, body: Proportions, side: str, target: Vec, elbow_down: bool = True) -> Pose:
    """Return ``pose`` with the ``side`` ("r"/"l") arm bent so the wrist lands on ``target``
    (body space, statures from the mid-hip); a target out of reach gets a straight arm towards it.

    Used for contacts between figures (hugs, holding hands, grabbing an arm) so touching hands
    really touch whatever the proportions and distances.
    """
    if side not in ("r", "l"):
        raise ValueError(f"side must be 'r' or 'l', got {side!r}")
    sk = build_skeleton(pose.with_(rotation=0.0), body)
    sx, sy = sk.points[KP[f"{side}_shoulder"]]
    front = abs(sk.facing) < FRONT_VIEW
    sign = (-1.0 if side == "r" else 1.0) if front else (1.0 if sk.facing >= 0 else -1.0)
    a, b = body.upper_arm, body.forearm
    dx, dy = target[0] - sx, target[1] - sy
    if math.hypot(dx, dy) < 1e-9:
        dy = 1e-6  # target on the shoulder itself: any direction will do
    d = max(abs(a - b) + 1e-6, min(math.hypot(dx, dy), a + b - 1e-6))
    phi = math.degrees(math.atan2(sign * dx, dy))  # direction shoulder→target in the limb convention
    alpha = math.degrees(math.acos((a * a + d * d - b * b) / (2 * a * d)))
    best: Pose | None = None
    best_y = 0.0
    for bend in (alpha, -alpha):
        upper = phi + bend
        elbow = (sx + sign * math.sin(math.radians(upper)) * a, sy + math.cos(math.radians(upper)) * a)
        fore = math.degrees(math.atan2(sign * (sx + dx * d / math.hypot(dx, dy) - elbow[0]),
                                       sy + dy * d / math.hypot(dx, dy) - elbow[1]))  # fmt: skip
        candidate = pose.with_(**{f"{side}_shoulder": upper, f"{side}_elbow": fore - upper})
        if best is None or (elbow[1] > best_y) == elbow_down:
            best, best_y = candidate, elbow[1]
    assert best is not None
    return best

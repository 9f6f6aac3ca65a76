"""A stage for authoring multi-figure poses: figures placed in statures on one ground line, with
contacts (hands on shoulders, held hands, fists on faces) solved by :func:`skeleton.reach`.

World coordinates: x in statures (adult heights), y in statures with the ground at 0 and up
negative. The finished stage becomes normalised canvas figures through :func:`skeleton.compose`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from comic_studio.poses.library import KP, Figure, PoseEntry, Role
from comic_studio.poses.skeleton import (
    ADULT,
    FRONT_VIEW,
    Canvas,
    Placed,
    Pose,
    Proportions,
    build_skeleton,
    compose,
    mirror_entry,
    reach,
)

Vec = tuple[float, float]
STATURE = Canvas().stature


@dataclass
class _Actor:
    pose: Pose
    x: float
    role: Role
    body: Proportions
    lift: float
    scale: float


class Stage:
    def __init__(self) -> None:
        self._actors: list[_Actor] = []

    @classmethod
    def group(cls, poses, xs, roles, bodies, lifts) -> Stage:
        """A stage of figures side by side: one pose, x, role, body and lift per figure."""
        st = cls()
        for pose, x, role, body, lift in zip(poses, xs, roles, bodies, lifts, strict=True):
            st.add(pose, x, role, body, lift)
        return st

    def add(self, pose: Pose, x: float, role: Role = "neutral", body: Proportions = ADULT,
            lift: float = 0.0, scale: float = 1.0) -> int:  # fmt: skip
        self._actors.append(_Actor(pose, x, role, body, lift, scale))
        return len(self._actors) - 1

    def pose(self, i: int) -> Pose:
        return self._actors[i].pose

    def set_pose(self, i: int, pose: Pose) -> None:
        self._actors[i] = replace(self._actors[i], pose=pose)

    def _origin(self, i: int) -> tuple[Vec, float]:
        a = self._actors[i]
        sk = build_skeleton(a.pose, a.body)
        return (a.x, -(sk.ground_offset() + a.lift) * a.scale), a.scale

    def world(self, i: int, name: str, offset: Vec = (0.0, 0.0)) -> Vec:
        """World position of keypoint ``name`` of figure ``i`` (plus an offset in statures)."""
        a = self._actors[i]
        (ox, oy), k = self._origin(i)
        px, py = build_skeleton(a.pose, a.body).points[KP[name]]
        return (ox + px * k + offset[0], oy + py * k + offset[1])

    def local(self, i: int, point: Vec) -> Vec:
        (ox, oy), k = self._origin(i)
        return ((point[0] - ox) / k, (point[1] - oy) / k)

    def reach(self, i: int, side: str, target: Vec, elbow_down: bool = True) -> None:
        """Bend figure ``i``'s ``side`` arm so its wrist lands on the world point ``target``."""
        a = self._actors[i]
        if a.pose.rotation:
            raise ValueError("reach() needs an upright figure (rotation 0)")
        self.set_pose(i, reach(a.pose, a.body, side, self.local(i, target), elbow_down))

    def touch(self, i: int, side: str, j: int, name: str, offset: Vec = (0.0, 0.0), elbow_down: bool = True) -> None:
        """Figure ``i``'s ``side`` hand on figure ``j``'s keypoint ``name`` (plus an offset)."""
        self.reach(i, side, self.world(j, name, offset), elbow_down)

    def hand_to_face(self, i: int, gesture: str) -> None:
        """Self-contact gestures of figure ``i``: ``"chin"`` (thinking), ``"mouth"`` (eating),
        ``"kiss"`` (blowing a kiss), ``"face"`` (both hands over the face: crying)."""
        facing = self._actors[i].pose.facing
        fwd = 0.0 if abs(facing) < FRONT_VIEW else (1.0 if facing > 0 else -1.0)
        side = -0.018 if fwd == 0 else 0.0  # a front-view right hand sits a little to the image-left
        if gesture == "chin":
            self.touch(i, "r", i, "nose", (fwd * 0.01 + side, 0.05))
        elif gesture == "mouth":
            self.touch(i, "r", i, "nose", (fwd * 0.02 + side, 0.035))
        elif gesture == "kiss":
            self.touch(i, "r", i, "nose", (fwd * 0.07 + side, 0.035))
        elif gesture == "face":
            self.touch(i, "r", i, "nose", (fwd * 0.03 - (0.03 if fwd == 0 else 0.0), 0.005))
            self.touch(i, "l", i, "nose", (fwd * 0.03 + (0.03 if fwd == 0 else 0.0), 0.02))
        else:
            raise ValueError(f"unknown gesture {gesture!r}")

    def join_hands(self, i: int, side_i: str, j: int, side_j: str, height: float = -0.5) -> None:
        """Two hands meeting half-way between the figures at ``height`` (world y)."""
        xi, xj = self._actors[i].x, self._actors[j].x
        meet = ((xi + xj) / 2, height)
        self.reach(i, side_i, meet)
        self.reach(j, side_j, meet)

    def figures(self) -> tuple[tuple[Figure, ...], float]:
        """Compose the stage onto a canvas sized to fit it; returns (figures, aspect)."""
        if not self._actors:
            raise ValueError("an empty stage has no figures")
        xs: list[float] = []
        for i, a in enumerate(self._actors):
            pad = a.body.head_radius * a.scale * 1.4
            for name in KP:
                x, _ = self.world(i, name)
                xs += [x - pad, x + pad]
        x0, x1 = min(xs), max(xs)
        aspect = round(min(2.6, max(0.6, (x1 - x0) * STATURE + 0.14)), 2)
        cx = (x0 + x1) / 2
        placed = tuple(
            Placed(
                pose=a.pose,
                x=(aspect / 2 + (a.x - cx) * STATURE) / aspect,
                role=a.role,
                body=a.body,
                lift=a.lift,
                scale=a.scale,
            )
            for a in self._actors
        )
        return compose(Canvas(aspect=aspect, figures=placed)), aspect


class EntryBook:
    """Collects library entries: each stage becomes an entry (id suffixed with its figure count)
    and, unless told otherwise, a mirrored twin (suffix ``-m``)."""

    def __init__(self) -> None:
        self.entries: list[PoseEntry] = []

    def add(self, eid: str, caption: str, tags: str, stage: Stage, mirror: bool = True) -> None:
        figures, aspect = stage.figures()
        full_id = f"{eid}-{len(figures)}p"
        entry = PoseEntry(id=full_id, caption=caption, tags=tuple(tags.split()), figures=figures, aspect=aspect)
        self.entries.append(entry)
        if mirror:
            self.entries.append(mirror_entry(entry, full_id + "-m"))

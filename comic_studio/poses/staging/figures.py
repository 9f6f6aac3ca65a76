"""A panel's pose figures: where they come from and who plays which.

The pose library is the source: a retriever picks an entry for the beat's action and
``assign_figures`` maps characters to figures; a pose picked in the panel (``pose_id``) or given
explicitly (``figures_override``) wins. Poses are duck-typed (anything with ``figures``/``aspect``/
``id`` and figures with ``keypoints``/``role``/``facing``), and a tiny parametric fallback
(standing people) covers a figure count the library has no entry for. Every backend that draws
poses (storyboard, racig) resolves them here, so a storyboard thumbnail previews a racig render.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from comic_studio.core.errors import ComicStudioError
from comic_studio.poses.assign import assign_figures
from comic_studio.poses.library import KEYPOINT_NAMES, KP, MAX_FIGURES, Role
from comic_studio.poses.staging.request import StagedRequest

MAX_FIGURES_FROM_LIBRARY = MAX_FIGURES
"""More characters than this get the largest entries plus standing bystanders."""


class UnknownPoseError(ComicStudioError):
    """The panel names a pose (``pose_id``) that is not in the pose library."""


@dataclass(frozen=True)
class SimpleFigure:
    """A figure with the library's shape; used for fallbacks and synthesised bystanders."""

    keypoints: tuple[tuple[float, float, float], ...]
    role: Role = "neutral"
    facing: float = 0.0


@dataclass(frozen=True)
class SimplePose:
    id: str
    caption: str
    figures: tuple[Any, ...]
    aspect: float = 1.5
    tags: tuple[str, ...] = ()

    def figures_left_to_right(self) -> list[int]:
        """Figure indices by hip-centre x, left first (same rule as the library's PoseEntry)."""
        return sorted(range(len(self.figures)), key=lambda i: (_hip_x(self.figures[i]), i))


def _hip_x(figure: Any) -> float:
    hips = [figure.keypoints[KP[n]] for n in ("r_hip", "l_hip")]
    return (hips[0][0] + hips[1][0]) / 2


@dataclass(frozen=True)
class ResolvedPose:
    """What the renderer draws: figures on a canvas of ``aspect``, and who plays each one."""

    pose_id: str | None
    aspect: float
    figures: tuple[Any, ...]
    character_figure: tuple[int, ...]
    """Figure index per request character (same order as ``request.characters``)."""
    framed: bool = False
    masks: str | None = None
    """The library entry's segmentation maps (:mod:`comic_studio.poses.segmentation`) when the
    figures are that entry's as imported (no bystanders added), else None."""


def entry_masks_path(pose: Any) -> str | None:
    """A library pose's segmentation maps file, if it has one (duck-typed: fallbacks have none)."""
    masks = getattr(pose, "masks", None)
    return masks if isinstance(masks, str) else None


# ------------------------------------------------------------------------ parametric fallback


def standing_figure(
    cx: float,
    ground: float,
    height: float,
    facing: float = 0.0,
    role: Role = "neutral",
    r_arm: tuple[float, float] = (8.0, 4.0),
    l_arm: tuple[float, float] = (-8.0, -4.0),
    r_leg: float = 3.0,
    l_leg: float = -3.0,
) -> SimpleFigure:
    """A standing person from joint angles (degrees from straight down, + turns toward image
    right): shoulder and elbow per arm, hip per leg. ``cx``/``ground``/``height`` are in canvas
    units of the y axis (x already multiplied by the aspect), returned keypoints are not."""
    u = height / 7.5  # one head height: the classic 7.5-heads proportion
    top = ground - height
    turn = max(-1.0, min(1.0, facing))
    # Seen from the front, the person's right side is on the image left; turning toward image
    # right (facing > 0) narrows the shoulders and swings the far side behind.
    side = 1.0 - 0.6 * abs(turn)
    pts: dict[str, tuple[float, float]] = {
        "neck": (cx, top + 1.3 * u),
        "nose": (cx + 0.35 * u * turn, top + 0.62 * u),
        "r_eye": (cx - 0.22 * u * side + 0.3 * u * turn, top + 0.45 * u),
        "l_eye": (cx + 0.22 * u * side + 0.3 * u * turn, top + 0.45 * u),
        "r_ear": (cx - 0.45 * u * side - 0.1 * u * turn, top + 0.5 * u),
        "l_ear": (cx + 0.45 * u * side - 0.1 * u * turn, top + 0.5 * u),
        "r_shoulder": (cx - 0.95 * u * side, top + 1.5 * u),
        "l_shoulder": (cx + 0.95 * u * side, top + 1.5 * u),
        "r_hip": (cx - 0.5 * u * side, top + 3.9 * u),
        "l_hip": (cx + 0.5 * u * side, top + 3.9 * u),
    }

    def chain(start: str, angles: Sequence[float], lengths: Sequence[float], names: Sequence[str]) -> None:
        x, y = pts[start]
        total = 0.0
        for ang, length, name in zip(angles, lengths, names):
            total += ang
            x += math.sin(math.radians(total)) * length * u
            y += math.cos(math.radians(total)) * length * u
            pts[name] = (x, y)

    chain("r_shoulder", (-r_arm[0], -r_arm[1]), (1.45, 1.25), ("r_elbow", "r_wrist"))
    chain("l_shoulder", l_arm, (1.45, 1.25), ("l_elbow", "l_wrist"))
    chain("r_hip", (-r_leg, 0.0), (1.7, 1.7), ("r_knee", "r_ankle"))
    chain("l_hip", (l_leg, 0.0), (1.7, 1.7), ("l_knee", "l_ankle"))
    # In profile the far eye/ear is hidden: mark it invisible like OpenPose would.
    hidden = set()
    if turn > 0.6:
        hidden = {"r_eye", "r_ear"}
    elif turn < -0.6:
        hidden = {"l_eye", "l_ear"}
    kps = tuple((pts[n][0], pts[n][1], 0.0 if n in hidden else 1.0) for n in KEYPOINT_NAMES)
    return SimpleFigure(keypoints=kps, role=role, facing=turn)


def _normalise(figs: list[SimpleFigure], aspect: float) -> tuple[SimpleFigure, ...]:
    """Convert x from canvas-height units back to 0..1 of the canvas width."""
    return tuple(SimpleFigure(tuple((x / aspect, y, v) for x, y, v in f.keypoints), f.role, f.facing) for f in figs)


def fallback_pose(n_figures: int) -> SimplePose:
    """Plain standing people (actor on the left facing right, the others facing back)."""
    aspect = 1.5
    n = max(1, n_figures)
    figs: list[SimpleFigure] = []
    xs = [aspect * (i + 1) / (n + 1) for i in range(n)]
    for i, x in enumerate(xs):
        if n == 1:
            figs.append(standing_figure(x, 0.92, 0.8, 0.0, "actor"))
        elif i == 0:
            figs.append(standing_figure(x, 0.92, 0.8, 0.7, "actor", r_arm=(-40, -30)))
        else:
            figs.append(standing_figure(x, 0.92, 0.78, -0.6, "target" if i == 1 else "neutral"))
    return SimplePose(
        id=f"fallback-stand-{n}", caption=f"{n} people standing", figures=_normalise(figs, aspect), aspect=aspect
    )


def with_bystanders(pose: Any, n_total: int) -> SimplePose:
    """Extend a pose with standing neutral figures beside the group so every character is seen."""
    aspect = float(getattr(pose, "aspect", 1.0))
    figs = [SimpleFigure(tuple(tuple(k) for k in f.keypoints), f.role, float(f.facing)) for f in pose.figures]
    pts = [(x * aspect, y) for f in figs for x, y, v in f.keypoints if v > 0]
    x_max = max((p[0] for p in pts), default=aspect / 2)
    ground = max((p[1] for p in pts), default=0.9)
    top = min((p[1] for p in pts), default=0.1)
    height = max(0.3, min(0.9, ground - top + 0.05))
    extra = [standing_figure(x_max + 0.3 * height * (i + 1), ground, height, -0.4) for i in range(n_total - len(figs))]
    new_aspect = aspect + 0.3 * height * len(extra)
    as_canvas = [SimpleFigure(tuple((x * aspect, y, v) for x, y, v in f.keypoints), f.role, f.facing) for f in figs]
    return SimplePose(
        id=str(getattr(pose, "id", "pose")),
        caption=str(getattr(pose, "caption", "")),
        figures=_normalise(as_canvas + extra, new_aspect),
        aspect=new_aspect,
    )


# ------------------------------------------------------------------------ library access


def _library_entries() -> list[Any]:
    """The bundled pose library plus the author's imported ones. A corrupt bundled library raises
    its own clear error (hiding it behind fallbacks would hide a bug); a broken user library is
    skipped and logged."""
    from comic_studio.poses.user_library import load_all_libraries

    return load_all_libraries()  # file reads cached by the library per modification time


def _retriever(entries: list[Any], embedder: str) -> Any:
    """The process-wide retriever shared by every backend (see poses.retrieval)."""
    from comic_studio.poses.retrieval import shared_retriever

    return shared_retriever(embedder, entries)  # type: ignore[arg-type]


def _pick_pose(entries: list[Any], text: str, n_figures: int, seed: int, embedder: str) -> Any | None:
    return _retriever(entries, embedder).pick(text, n_figures, seed)


def warm_up(embedder: str = "auto") -> None:
    """Build the pose retriever now (loading the sentence model and torch) rather than inside the
    first render: the app calls this in the background right after its window is shown."""
    entries = _library_entries()
    if entries:
        _retriever(entries, embedder)


def prepare_pose_queries(requests: list[StagedRequest], embedder: str = "auto") -> int:
    """Batch-embed the pose queries of many requests before they are rendered one by one."""
    entries = _library_entries()
    if not entries:
        return 0
    return _retriever(entries, embedder).prepare(
        [r.action or r.prompt for r in requests if r.characters and r.pose_id is None]
    )


def assign_characters(request: StagedRequest, pose: Any) -> tuple[int, ...]:
    """Figure index per character: explicit ``figure`` wins, then the library's assignment
    (actor↔actor figure, target↔target, rest by mention order ↔ left to right)."""
    n_figs = len(pose.figures)
    ids = [c.id for c in request.characters]
    auto = list(assign_figures(pose, ids, request.actor_id, request.target_id))
    if len(auto) != len(ids) or not all(isinstance(a, int) for a in auto):
        auto = _assign_by_role(pose, ids, request.actor_id, request.target_id)
    chosen: list[int | None] = [
        c.figure if c.figure is not None and c.figure < n_figs else None for c in request.characters
    ]
    taken = {f for f in chosen if f is not None}
    for i, fig in enumerate(chosen):
        if fig is None:
            candidate = auto[i] if 0 <= auto[i] < n_figs and auto[i] not in taken else None
            if candidate is None:
                candidate = next((j for j in range(n_figs) if j not in taken), i % max(1, n_figs))
            chosen[i] = candidate
            taken.add(candidate)
    return tuple(int(f) for f in chosen)  # type: ignore[arg-type]


def _assign_by_role(pose: Any, ids: list[str], actor: str | None, target: str | None) -> list[int]:
    figs = list(pose.figures)

    def mean_x(f: Any) -> float:
        xs = [x for x, _y, v in f.keypoints if v > 0]
        return sum(xs) / len(xs) if xs else 0.5

    free = sorted(range(len(figs)), key=lambda j: mean_x(figs[j]))
    out = [-1] * len(ids)
    for who, role in ((actor, "actor"), (target, "target")):
        if who in ids:
            j = next((j for j in free if figs[j].role == role), None)
            if j is not None:
                out[ids.index(who)] = j
                free.remove(j)
    for i in range(len(ids)):
        if out[i] < 0 and free:
            out[i] = free.pop(0)
    return out


def resolve_pose(request: StagedRequest, embedder: str = "auto") -> ResolvedPose:
    """The figures to draw for ``request`` and the character → figure mapping. ``embedder`` is
    the retriever's text matcher ("auto", "minilm" or "overlap")."""
    n_chars = len(request.characters)
    if request.figures_override is not None:
        spec = request.figures_override
        pose: Any = SimplePose(id="override", caption="", figures=tuple(spec.figures), aspect=spec.aspect)
        if n_chars > len(pose.figures) and not spec.framed:
            pose = with_bystanders(pose, n_chars)
        return ResolvedPose(None, pose.aspect, tuple(pose.figures), assign_characters(request, pose), spec.framed)
    if n_chars == 0 and request.pose_id is None:
        return ResolvedPose(None, 1.5, (), ())
    entries = _library_entries()
    pose = None
    if request.pose_id is not None:
        fallback = re.fullmatch(r"fallback-stand-(\d)", request.pose_id)
        if fallback:
            pose = fallback_pose(int(fallback.group(1)))
        else:
            pose = next((e for e in entries if e.id == request.pose_id), None)
        if pose is None:
            raise UnknownPoseError(f"pose_id {request.pose_id!r} is not in the pose library")
    else:
        wanted = min(n_chars, MAX_FIGURES_FROM_LIBRARY)
        pose = _pick_pose(entries, request.action or request.prompt, wanted, request.seed, embedder)
        if pose is None:
            pose = fallback_pose(wanted)
    if n_chars > len(pose.figures):
        pose = with_bystanders(pose, n_chars)  # a new canvas: the entry's maps no longer fit it
    return ResolvedPose(
        pose_id=str(pose.id),
        aspect=float(pose.aspect),
        figures=tuple(pose.figures),
        character_figure=assign_characters(request, pose),
        masks=entry_masks_path(pose),
    )

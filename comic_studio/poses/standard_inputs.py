"""What SerialGen's stage 1 reads from a reference besides its pixels (seed 004 §3.3): the background
mask (FBDM) and the reference's own pose (RPIM), found offline, and the refusals a reference earns
before any model is loaded — nobody in it, several people, or a person covering the whole picture
(FBDM then has no background to tell apart). The target is the standard A-pose of
:mod:`comic_studio.poses.standard`, drawn as an OpenPose image.

References are *padded* to the standard 2:3 canvas (§4.1: "reference images are padded to
512 × 768"): white around the picture, background in the mask, black (no limb) in the pose image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from comic_studio.core.errors import ComicStudioError

MAX_FOREGROUND = 0.98
"""A person mask over more than this share of the picture leaves FBDM no background: refused."""
MIN_FOREGROUND = 0.01
PAD_FILL = (255, 255, 255)


class ReferenceInputError(ComicStudioError):
    """A reference SerialGen's stage 1 cannot use; says which picture and what to do instead."""


@dataclass(frozen=True)
class StandardInputs:
    image: Any
    """PIL RGB, padded to the standard aspect."""
    background: np.ndarray
    """bool (H, W) on the padded canvas, True = background (FBDM's m_b)."""
    pose: Any
    """The reference's own pose as an OpenPose image (PIL RGB) on the padded canvas (RPIM's input)."""


def check_person_mask(person: np.ndarray | None, where: str) -> np.ndarray:
    """``person`` (bool, True = the character) if stage 1 can use it; else :class:`ReferenceInputError`."""
    if person is None or float(np.mean(person)) < MIN_FOREGROUND:
        raise ReferenceInputError(f"{where}: no person found in the picture; use a picture that shows the character")
    if float(np.mean(person)) > MAX_FOREGROUND:
        raise ReferenceInputError(
            f"{where}: the character's mask covers the whole picture ({100 * float(np.mean(person)):.0f} %), so "
            "there is no background to tell apart; use a picture with some space around the figure"
        )
    return person


def standard_inputs(image: Any, where: str, *, aspect: float | None = None) -> StandardInputs:
    """The mask and pose of the one person in ``image`` (PIL), padded to ``aspect`` (default: the
    standard canvas's). Refuses nobody, several people and an all-person mask, naming ``where``."""
    from PIL import Image

    from comic_studio.poses.extract import extract_pose
    from comic_studio.poses.staging.openpose import render_openpose
    from comic_studio.poses.standard import STANDARD_ASPECT
    from comic_studio.vision.detect import count_faces, person_mask, plain_background_mask

    rgb = image.convert("RGB")
    faces = count_faces(rgb)
    if faces > 1:
        raise ReferenceInputError(f"{where}: {faces} people in the picture; SerialGen standardizes one character "
                                  "at a time: crop the picture to the one you mean")  # fmt: skip
    person = person_mask(rgb)
    if person is None:
        person = plain_background_mask(rgb)
    person = check_person_mask(person, where)
    found = extract_pose(rgb)
    if found.figure is None:
        raise ReferenceInputError(f"{where}: no person's pose found ({found.reason})")
    w, h = rgb.size
    pose = render_openpose([[(x * w, y * h, v) for x, y, v in found.figure.keypoints]], w, h)
    target = aspect or STANDARD_ASPECT
    padded = pad_to_aspect(rgb, target, PAD_FILL)
    mask = pad_to_aspect(Image.fromarray(np.where(person, 0, 255).astype(np.uint8), "L"), target, 255)
    return StandardInputs(padded, np.asarray(mask) > 127, pad_to_aspect(pose, target, (0, 0, 0)))


def standard_pose_image(width: int, height: int) -> Any:
    """The standard A-pose as an OpenPose image of ``width`` × ``height`` (the PoseGuider's target)."""
    from comic_studio.poses.staging.openpose import render_openpose
    from comic_studio.poses.standard import standard_pose

    figure = standard_pose().figures[0]
    return render_openpose([[(x * width, y * height, v) for x, y, v in figure.keypoints]], width, height)


def pad_to_aspect(image: Any, aspect: float, fill: Any) -> Any:
    """``image`` centred on a canvas of width/height ``aspect`` (padded, never cropped or stretched),
    the margin filled with ``fill``."""
    from PIL import Image

    w, h = image.size
    if abs(w / h - aspect) < 1e-3:
        return image
    cw, ch = (w, round(w / aspect)) if w / h > aspect else (round(h * aspect), h)
    canvas = Image.new(image.mode, (cw, ch), fill)
    canvas.paste(image, ((cw - w) // 2, (ch - h) // 2))
    return canvas

"""The standard pose of a character sheet (SerialGen's stage 1): front view, A-pose, face at a fixed
scale, on a 2:3 portrait canvas — data, drawn deterministically.

SerialGen (seed 004 §3.1) standardizes every reference to one pose, plain background and neutral
expression before personalizing; its standard target is a front-facing full body at a fixed face
position and size. The paper gives no coordinates, so these are chosen (a setting only in the sense
that a different standard is a different tuple here): the figure fills 5 %–93 % of the height, about
8.4 heads tall, arms 30° from the body so hands and sleeves stay clear of the torso, feet at hip
width. Keypoints are OpenPose's 18 (the order of :data:`~comic_studio.poses.library.KEYPOINT_NAMES`),
in pixels of the 512 × 768 reference canvas; any canvas of the same aspect scales them.
"""

from __future__ import annotations

from comic_studio.core.model import PoseFigure, PoseSpec
from comic_studio.poses.library import KEYPOINT_NAMES

STANDARD_CANVAS = (512, 768)
"""Width × height the keypoints are given in (SerialGen's 512 × 768 portrait)."""
STANDARD_ASPECT = STANDARD_CANVAS[0] / STANDARD_CANVAS[1]

_A_POSE_PIXELS: dict[str, tuple[float, float]] = {
    # The subject's right ("r_") is on the image's left: the figure faces the viewer.
    "nose": (256, 84),
    "neck": (256, 138),
    "r_shoulder": (206, 146),
    "r_elbow": (186, 254),
    "r_wrist": (166, 354),
    "l_shoulder": (306, 146),
    "l_elbow": (326, 254),
    "l_wrist": (346, 354),
    "r_hip": (228, 372),
    "r_knee": (226, 540),
    "r_ankle": (224, 700),
    "l_hip": (284, 372),
    "l_knee": (286, 540),
    "l_ankle": (288, 700),
    "r_eye": (244, 74),
    "l_eye": (268, 74),
    "r_ear": (230, 80),
    "l_ear": (282, 80),
}


def standard_pose() -> PoseSpec:
    """The A-pose as an explicit, already framed pose (``figures_override`` of a request)."""
    width, height = STANDARD_CANVAS
    keypoints = [(x / width, y / height, 1.0) for x, y in (_A_POSE_PIXELS[name] for name in KEYPOINT_NAMES)]
    return PoseSpec(figures=[PoseFigure(keypoints=keypoints, role="neutral", facing=0.0)],  # type: ignore[arg-type]
                    aspect=STANDARD_ASPECT, framed=True)  # fmt: skip


def standard_size(long_side: int) -> tuple[int, int]:
    """The standard canvas scaled so its height is ``long_side``, both sides multiples of 8 (what
    SDXL's VAE needs)."""
    height = max(16, long_side // 8 * 8)
    width = max(16, round(height * STANDARD_ASPECT / 8) * 8)
    return width, height

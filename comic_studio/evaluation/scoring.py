"""One rendered panel → its metrics: CLIP-T, and per character masked CLIP-I, pose accuracy and
(when a face-embedding model is plugged in) face similarity.

The CLIP model is a catalogue entry (kind ``openclip``; the seeds measure with ViT-H/14 —
``openclip-vit-h-14`` is the default) loaded by :func:`comic_studio.poses.openclip_embedder.load_clip_model`,
the same loader and the same on-disk feature cache pose retrieval uses: every picture (panel, cut-out
figure, reference) is encoded once per model and pixel content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from comic_studio.evaluation import metrics
from comic_studio.evaluation.masking import SEGMENTATIONS, figure_cutout, reference_cutout, whitened
from comic_studio.evaluation.metrics import EvaluationError
from comic_studio.evaluation.pose_accuracy import detect_figure, in_frame, requested_staging, resolve_detector
from comic_studio.poses.openclip_embedder import OpenClipEmbedder, picture_features

FaceEmbedder = Callable[[Image.Image], "np.ndarray | None"]
"""The face-similarity hook: a face picture → an identity embedding (ArcFace in SerialGen §4.2), or
None when it finds no face. :func:`comic_studio.evaluation.faces.load_face_similarity` gives the
studio's (the face-recognition ViT identity training uses) when it is installed."""


@dataclass(frozen=True)
class ScoringOptions:
    segmentation: str = "auto"
    """Background whitening inside the staging region: ``auto`` (person segmenter) or ``none``."""
    pose_detector: str = "auto"
    """``auto``, ``mediapipe``, ``openpose-drawing`` or ``none`` (see :mod:`.pose_accuracy`)."""

    def __post_init__(self) -> None:
        if self.segmentation not in SEGMENTATIONS:
            raise EvaluationError(f"unknown segmentation {self.segmentation!r} (known: {', '.join(SEGMENTATIONS)})")
        resolve_detector(self.pose_detector)  # refuses an unknown name


@dataclass
class CharacterScore:
    character_id: str
    clip_i: float | None
    """Masked CLIP-I against the character's references (None: no reference, or out of frame)."""
    face_similarity: float | None
    pose: metrics.PoseScore | None
    """None when pose accuracy is not measured (no detector)."""
    cutout: str
    """Which mask cut the figure out: segmentation, staging or empty."""
    feature: np.ndarray | None = field(default=None, repr=False)
    """The cut-out figure's CLIP features (AP-CLIP-I pairs them across panels)."""


@dataclass
class PanelScore:
    clip_t: float
    characters: list[CharacterScore]
    seconds: float
    """Time spent scoring this panel (model loading excluded)."""


class Scorer:
    """Scores panels with one CLIP model; reference features are kept per character after first use."""

    def __init__(self, embedder: OpenClipEmbedder, cache_dir: Path, options: ScoringOptions | None = None,
                 face_embedder: FaceEmbedder | None = None) -> None:  # fmt: skip
        self.embedder = embedder
        self.cache_dir = Path(cache_dir)
        self.options = options or ScoringOptions()
        self.detector = resolve_detector(self.options.pose_detector)
        self.face_embedder = face_embedder
        self._text: dict[str, np.ndarray] = {}
        self._references: dict[str, np.ndarray] = {}
        """Reference features per character id: one run's references do not change."""
        self._face_references: dict[str, list[np.ndarray]] = {}
        """Reference face embeddings per character id (only the references where a face is found)."""

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        return picture_features(self.embedder, images, self.cache_dir)

    def text_feature(self, text: str) -> np.ndarray:
        if text not in self._text:
            self._text[text] = self.embedder.encode_text([text])[0]
        return self._text[text]

    def reference_features(self, references: Sequence[Image.Image]) -> np.ndarray:
        return self.features([reference_cutout(r, self.options.segmentation) for r in references])

    def picture_clip_i(self, pictures: Sequence[Image.Image], references: Sequence[Image.Image],
                       key: str) -> list[float | None]:  # fmt: skip
        """Masked CLIP-I of whole pictures of one figure (a training sample: the subject alone, its
        background whitened by the segmenter exactly as a reference's is) against ``references``,
        whose features are kept under ``key``. None per picture without references."""
        if not references:
            return [None] * len(pictures)
        if key not in self._references:
            self._references[key] = self.reference_features(references)
        features = self.reference_features(pictures)
        return [metrics.clip_i(f, self._references[key]) for f in features]

    def score_panel(self, image: Image.Image, request: Any,
                    references: Mapping[str, Sequence[Image.Image]]) -> PanelScore:  # fmt: skip
        """Metrics of ``image``, rendered for ``request`` (a GenerationRequest: its prompt, characters
        and staging); ``references``: character id → its reference pictures (face and body)."""
        started = time.perf_counter()
        image = image.convert("RGB")
        panel_feature = self.features([image])[0]
        clip_t = metrics.clip_t(panel_feature, self.text_feature(request.prompt))
        scores = []
        if request.characters:
            staging = requested_staging(request, image.width, image.height)
            for i, character in enumerate(request.characters):
                scores.append(self._character(image, staging, i, character.id, references.get(character.id, ())))
        return PanelScore(clip_t=clip_t, characters=scores, seconds=time.perf_counter() - started)

    def _character(self, image: Image.Image, staging: Any, index: int, character_id: str,
                   references: Sequence[Image.Image]) -> CharacterScore:  # fmt: skip
        head, body = staging.head_masks[index], staging.body_masks[index]
        region = head | body
        cutout, how = figure_cutout(image, region, self.options.segmentation)
        feature = self.features([cutout])[0] if cutout is not None else None
        clip_i = None
        if feature is not None and references:
            if character_id not in self._references:
                self._references[character_id] = self.reference_features(references)
            clip_i = metrics.clip_i(feature, self._references[character_id])
        pose = None
        if self.detector is not None:
            requested = in_frame(staging.figure_keypoints[staging.character_figure[index]], image.width, image.height)
            pose = metrics.keypoint_distance(requested, detect_figure(image, region, self.detector))
        return CharacterScore(
            character_id, clip_i, self._face(image, head, references, character_id), pose, how, feature
        )

    def _face(self, image: Image.Image, head: np.ndarray, references: Sequence[Image.Image],
              character_id: str) -> float | None:  # fmt: skip
        if self.face_embedder is None or not references or not head.any():
            return None
        if character_id not in self._face_references:
            embedded = (self.face_embedder(r.convert("RGB")) for r in references)
            self._face_references[character_id] = [v for v in embedded if v is not None]
        refs = self._face_references[character_id]
        face = self.face_embedder(whitened(image, head)) if refs else None
        if face is None:
            return None
        return metrics.clip_i(face, refs)  # the same mean cosine over the references

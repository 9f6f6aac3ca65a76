"""Face similarity through the real loader (a tiny random-weight ViT in the transformers folder format,
:func:`load_face_encoder`) and MediaPipe's face detector on the photo fixtures; absent with a reason
when no encoder is found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("transformers")
pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")

from comic_studio.evaluation import metrics  # noqa: E402
from comic_studio.evaluation.faces import load_face_similarity  # noqa: E402
from comic_studio.evaluation.masking import mask_box  # noqa: E402
from comic_studio.evaluation.pose_accuracy import requested_staging  # noqa: E402
from comic_studio.evaluation.scoring import Scorer, ScoringOptions  # noqa: E402
from comic_studio.generation.registry import get_backend  # noqa: E402
from comic_studio.generation.request import GenerationRequest, RequestCharacter  # noqa: E402
from comic_studio.poses.openclip_embedder import OpenClipEmbedder  # noqa: E402
from comic_studio.testing.tiny import character_picture, write_tiny_openclip  # noqa: E402
from comic_studio.testing.tiny_identity import write_tiny_face_encoder  # noqa: E402
from comic_studio.vision.detect import available_detectors  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "vision" / "fixtures"
pytestmark = pytest.mark.skipif("mediapipe-face" not in available_detectors(), reason="mediapipe is not installed")


def photo(name: str) -> Image.Image:
    return Image.open(FIXTURES / f"{name}.png").convert("RGB")


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    folder = write_tiny_face_encoder(tmp_path_factory.mktemp("vit") / "face-encoder")
    embedder, note = load_face_similarity(str(folder))
    assert embedder is not None and str(folder) in note
    return embedder


def test_the_same_face_is_similarity_one_and_no_face_gives_none(face):
    emma, brandt = face(photo("emma_1female")), face(photo("brandt_1male"))
    assert emma is not None and emma.shape == (32,)  # the tiny ViT's CLS width
    assert metrics.cosine(emma, face(photo("emma_1female").copy())) == pytest.approx(1.0, abs=1e-6)
    assert metrics.cosine(emma, brandt) < 0.9999
    assert face(character_picture(3, 128, 192)) is None  # a drawn figure without a face: undefined, not 0


def test_without_an_encoder_face_similarity_is_absent_and_says_why(tmp_path):
    embedder, note = load_face_similarity(str(tmp_path / "no-such-encoder"))
    assert embedder is None and note.startswith("absent: ") and "no-such-encoder" in note


def test_scorer_measures_the_face_in_each_figure_head(face, tmp_path):
    weights, _model, _pre = write_tiny_openclip(tmp_path / "clip")
    clip = OpenClipEmbedder.load(weights, model_id="tiny-eval")
    request = GenerationRequest(
        backend="storyboard", width=1024, height=768, seed=7, prompt="Mara hands Theo a key",
        action="hands him a key", actor_id="mara", target_id="theo",
        characters=[RequestCharacter(id="mara", name="Mara"), RequestCharacter(id="theo", name="Theo")],
    )  # fmt: skip
    result = get_backend("storyboard").generate(request)
    figures = {p.character_id: p.figure for p in result.heads}
    chars = [c.model_copy(update={"figure": figures[c.id]}) for c in request.characters]
    request = request.model_copy(update={"pose_id": result.pose_id, "characters": chars})
    # Mara's head region shows Emma's photo; Theo's shows the storyboard drawing (no face in it).
    panel = result.images[0].convert("RGB")
    x0, y0, x1, y1 = mask_box(requested_staging(request, 1024, 768).head_masks[0])
    panel.paste(photo("emma_1female").resize((x1 - x0, y1 - y0)), (x0, y0))
    references = {"mara": [photo("emma_1female")], "theo": [photo("brandt_1male")]}
    options = ScoringOptions(segmentation="none", pose_detector="none")
    mara, theo = Scorer(clip, tmp_path / "cache", options, face).score_panel(panel, request, references).characters
    assert mara.face_similarity is not None and -1.0 <= mara.face_similarity <= 1.0 + 1e-9
    assert theo.face_similarity is None
    plain = Scorer(clip, tmp_path / "cache", options).score_panel(panel, request, references).characters
    assert [c.face_similarity for c in plain] == [None, None]  # no encoder: not measured
    assert [c.clip_i for c in plain] == pytest.approx([mara.clip_i, theo.clip_i])  # the other metrics unchanged
    assert np.isfinite(mara.clip_i)

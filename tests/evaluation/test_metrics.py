"""Metric arithmetic on the tiny OpenCLIP model (real laion layout, real loader) with constructed
images, and pose accuracy on the storyboard backend's staging."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")

from comic_studio.evaluation import metrics  # noqa: E402
from comic_studio.evaluation.masking import figure_cutout  # noqa: E402
from comic_studio.evaluation.pose_accuracy import requested_staging  # noqa: E402
from comic_studio.evaluation.scoring import Scorer, ScoringOptions  # noqa: E402
from comic_studio.generation.registry import get_backend  # noqa: E402
from comic_studio.generation.request import GenerationRequest, RequestCharacter  # noqa: E402
from comic_studio.poses.openclip_embedder import OpenClipEmbedder  # noqa: E402
from comic_studio.poses.staging.openpose import render_openpose  # noqa: E402
from comic_studio.testing.tiny import character_picture, write_tiny_openclip  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> OpenClipEmbedder:
    weights, _model, _pre = write_tiny_openclip(tmp_path_factory.mktemp("clip") / "tiny")
    return OpenClipEmbedder.load(weights, model_id="tiny-eval")


@pytest.fixture
def scorer(clip, tmp_path) -> Scorer:
    return Scorer(clip, tmp_path / "cache", ScoringOptions(segmentation="none", pose_detector="none"))


def _figure_on(background: tuple[int, int, int], size: int = 96) -> tuple[Image.Image, np.ndarray]:
    """A red-and-blue figure in the middle of a plain ``background``, and the figure's mask."""
    image, silhouette = Image.new("RGB", (size, size), background), Image.new("L", (size, size), 0)
    for picture, head, body in ((image, (200, 40, 40), (40, 60, 200)), (silhouette, 255, 255)):
        draw = ImageDraw.Draw(picture)
        draw.ellipse((36, 10, 60, 34), fill=head)
        draw.rectangle((34, 34, 62, 86), fill=body)
    return image, np.asarray(silhouette) > 0


def test_identical_pictures_have_clip_i_one_and_different_ones_less(scorer):
    picture = character_picture(1)
    same, other = scorer.features([picture, character_picture(2)])
    refs = scorer.reference_features([picture.copy()])
    assert metrics.clip_i(same, refs) == pytest.approx(1.0, abs=1e-5)
    assert metrics.clip_i(other, refs) < 0.999
    assert metrics.clip_i(same, []) is None


def test_whitened_background_changes_masked_clip_i_only_through_the_foreground(scorer):
    reference = scorer.features([character_picture(5)])
    (on_grey, mask), (on_green, _) = _figure_on((120, 120, 120)), _figure_on((20, 200, 20))
    cut_grey, how = figure_cutout(on_grey, mask, "none")
    cut_green, _ = figure_cutout(on_green, mask, "none")
    assert how == "staging" and cut_grey.tobytes() == cut_green.tobytes()
    masked = [metrics.clip_i(f, reference) for f in scorer.features([cut_grey, cut_green])]
    assert masked[0] == masked[1]  # the backgrounds differ, the masked score does not
    unmasked = [metrics.clip_i(f, reference) for f in scorer.features([on_grey, on_green])]
    assert unmasked[0] != unmasked[1]  # without the whitening the background would count
    changed = on_green.copy()
    ImageDraw.Draw(changed).rectangle((40, 50, 56, 80), fill=(250, 220, 0))  # inside the figure
    cut_changed, _ = figure_cutout(changed, mask, "none")
    assert metrics.clip_i(scorer.features([cut_changed])[0], reference) != masked[1]


def test_ap_clip_i_is_the_mean_over_pairs_and_undefined_for_one_panel():
    a, b, c = np.eye(3, dtype=np.float32)
    ab = (a + b) / np.sqrt(2)
    assert metrics.ap_clip_i([a]) is None
    assert metrics.ap_clip_i([]) is None
    assert metrics.ap_clip_i([a, ab]) == pytest.approx(np.sqrt(0.5))
    assert metrics.ap_clip_i([a, b, c]) == pytest.approx(0.0)
    assert metrics.ap_clip_i([a, ab, b]) == pytest.approx((np.sqrt(0.5) * 2 + 0.0) / 3)


def test_keypoint_distance_normalised_by_figure_size_with_missing_and_failed():
    want = np.zeros((18, 3))
    want[:, 0], want[:, 1], want[:, 2] = 10.0, np.arange(18) * 10.0, 1.0  # a 170 px tall line
    got = want.copy()
    got[:, 0] += 17.0  # everything 17 px to the right: 0.1 figure sizes
    got[:9, 2] = 0.0  # half the keypoints not found
    score = metrics.keypoint_distance(want, got)
    assert score.found and score.akd == pytest.approx(0.1) and score.mkr == pytest.approx(0.5)
    assert metrics.keypoint_distance(want, None) == metrics.PoseScore(found=False)


def _storyboard_request() -> GenerationRequest:
    """A two-character request after a storyboard render: the effective pose and figures pinned."""
    request = GenerationRequest(
        backend="storyboard", width=512, height=384, seed=7, prompt="Mara hands Theo a key",
        action="hands him a key", actor_id="mara", target_id="theo",
        characters=[RequestCharacter(id="mara", name="Mara"), RequestCharacter(id="theo", name="Theo")],
    )  # fmt: skip
    result = get_backend("storyboard").generate(request)
    figures = {p.character_id: p.figure for p in result.heads}
    chars = [c.model_copy(update={"figure": figures[c.id]}) for c in request.characters]
    return request.model_copy(update={"pose_id": result.pose_id, "characters": chars})


def test_pose_accuracy_zero_for_the_requested_skeleton_and_large_for_a_shuffled_one(clip, tmp_path):
    request = _storyboard_request()
    staging = requested_staging(request, request.width, request.height)
    scorer = Scorer(clip, tmp_path, ScoringOptions(segmentation="none", pose_detector="openpose-drawing"))
    exact = render_openpose(staging.figure_keypoints, request.width, request.height)
    scored = scorer.score_panel(exact, request, {})
    assert [c.character_id for c in scored.characters] == ["mara", "theo"]
    for c in scored.characters:
        assert c.pose is not None and c.pose.found
        assert c.pose.akd is not None and c.pose.akd < 0.01 and c.pose.mkr == pytest.approx(0.0)
    order = np.random.default_rng(0).permutation(18)
    shuffled = [[figure[i] for i in order] for figure in staging.figure_keypoints]
    wrong = scorer.score_panel(render_openpose(shuffled, request.width, request.height), request, {})
    for c in wrong.characters:
        assert c.pose is not None and c.pose.found and c.pose.akd is not None and c.pose.akd > 0.15
    blank = scorer.score_panel(Image.new("RGB", (request.width, request.height)), request, {})
    assert all(c.pose == metrics.PoseScore(found=False) for c in blank.characters)


def test_features_are_cached_per_picture(clip, tmp_path):
    scorer = Scorer(clip, tmp_path, ScoringOptions(segmentation="none", pose_detector="none"))
    picture = character_picture(9)
    before = clip.images_encoded
    first = scorer.features([picture, picture.copy()])
    assert clip.images_encoded == before + 1  # the same pixels once
    again = Scorer(clip, tmp_path, scorer.options).features([character_picture(9)])
    assert clip.images_encoded == before + 1 and np.array_equal(first[0], again[0])


def test_unknown_settings_are_refused_by_name():
    from comic_studio.core.errors import ComicStudioError

    with pytest.raises(ComicStudioError, match="segmentation 'sam'"):
        ScoringOptions(segmentation="sam")
    with pytest.raises(ComicStudioError, match="pose detector 'openpose'"):
        ScoringOptions(pose_detector="openpose")

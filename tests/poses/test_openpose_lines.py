"""OpenPose line thickness (issue 15, item 6): by default limbs are as thick as xinsir's SDXL
OpenPose ControlNet was trained on — RaCig's rule (racig/utils.py::draw_bodypose_openpose): 4 px ×
a ratio bucketed by the longer side, limbs blended at 0.7 — measured on drawn images; the
annotator's thinner lines stay available as a setting."""

from __future__ import annotations

import numpy as np
import pytest

from comic_studio.generation.request import GenerationRequest, RequestCharacter
from comic_studio.poses.staging.conditioning import build_conditioning
from comic_studio.poses.staging.openpose import COLOURS, LIMBS, racig_ratio, render_openpose, stroke_sizes


def one_limb(width: int, height: int) -> list[tuple[float, float, float]]:
    """Only limb 0 (neck → right shoulder) visible: a horizontal stroke across the middle."""
    a, b = LIMBS[0]
    kp = [(0.0, 0.0, 0.0)] * 18
    kp[a] = (width * 0.25, height / 2, 1.0)
    kp[b] = (width * 0.75, height / 2, 1.0)
    return kp


def measured_stroke(image, width: int, height: int) -> tuple[int, tuple[int, ...]]:
    """(thickness in pixels, colour at the centre) of the stroke, at a column away from the dots."""
    column = np.asarray(image)[:, width // 2]
    lit = np.flatnonzero(column.any(axis=1))
    assert lit.size and np.all(np.diff(lit) == 1)  # one solid run
    return int(lit.size), tuple(int(c) for c in column[height // 2])


@pytest.mark.parametrize(
    ("size", "half_width"),
    [((480, 320), 4), ((512, 768), 8), ((1344, 768), 12), ((768, 1344), 12), ((1999, 600), 12),
     ((2048, 1024), 16), ((4500, 200), 24), ((6000, 120), 28)],
)  # fmt: skip
def test_racig_thickness_is_bucketed_by_the_longer_side(size, half_width):
    width, height = size
    assert stroke_sizes(width, height) == (half_width, half_width)
    thickness, centre = measured_stroke(render_openpose([one_limb(width, height)], width, height), width, height)
    assert abs(thickness - (2 * half_width + 1)) <= 1
    expected = tuple(int(round(0.7 * c)) for c in COLOURS[0])  # 0.7 of the limb colour over black
    assert all(abs(got - want) <= 1 for got, want in zip(centre, expected))


def test_bucket_edges_follow_racig():
    assert [racig_ratio(w, 10) for w in (499, 500, 999, 1000, 1999, 2000, 2999, 3000, 4999, 5000, 9000)] == [
        1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 7,
    ]  # fmt: skip
    assert racig_ratio(300, 1344) == racig_ratio(1344, 300) == 3  # the longer side, whichever it is


def test_the_annotator_style_is_half_as_thick_at_the_paper_size():
    width, height = 1344, 768
    kp = one_limb(width, height)
    racig, _ = measured_stroke(render_openpose([kp], width, height), width, height)
    thin, centre = measured_stroke(render_openpose([kp], width, height, "annotator"), width, height)
    assert stroke_sizes(width, height, "annotator") == (6.0, 6.0) and abs(thin - 13) <= 1
    assert 1.8 < racig / thin < 2.1
    assert abs(centre[0] - round(0.6 * 255)) <= 1
    with pytest.raises(ValueError, match="unknown OpenPose line style"):
        stroke_sizes(width, height, "crayon")


def test_conditioning_draws_in_the_chosen_style():
    chars = [RequestCharacter(id="ana", name="Ana")]
    req = GenerationRequest(backend="racig", width=1344, height=768, seed=5, action="Ana waves", characters=chars,
                            actor_id="ana")  # fmt: skip
    thick = build_conditioning(req, 1344, 768, embedder="overlap")
    thin = build_conditioning(req, 1344, 768, embedder="overlap", pose_lines="annotator")
    assert thick.pose_id == thin.pose_id
    assert np.array_equal(
        np.asarray(thick.control_image), np.asarray(render_openpose(thick.figure_keypoints, 1344, 768))
    )
    lit_thick = np.asarray(thick.control_image).any(axis=2).sum()
    lit_thin = np.asarray(thin.control_image).any(axis=2).sum()
    assert lit_thick > 1.5 * lit_thin


def test_racig_backend_defaults_to_racig_lines():
    from comic_studio.backends.racig import RacigBackend

    schema = RacigBackend.settings_schema()["pose_lines"]
    assert schema["default"] == "racig" and set(schema["choices"]) == {"racig", "annotator"}

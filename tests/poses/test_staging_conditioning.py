"""Staging without torch: OpenPose drawing, pose choice, disjoint head/body masks (what racig
conditions on and the UI draws)."""

from __future__ import annotations

import numpy as np
import pytest

from comic_studio.generation.request import GenerationError, GenerationRequest, PoseSpec, RequestCharacter
from comic_studio.poses.library import load_library
from comic_studio.poses.staging.conditioning import (
    build_conditioning,
    choose_pose,
    dilate,
    disjoint_masks,
    mask_preview,
)
from comic_studio.poses.staging.openpose import COLOURS, LIMBS, render_openpose


def request(n: int, **fields) -> GenerationRequest:
    chars = [RequestCharacter(id=f"c{i}", name=f"C{i}") for i in range(n)]
    base = dict(backend="racig", width=320, height=192, seed=5, action="Ana hands Ben a brass key", characters=chars,
                actor_id="c0" if n else None, target_id="c1" if n > 1 else None)  # fmt: skip
    base.update(fields)
    return GenerationRequest(**base)


def test_openpose_uses_the_standard_colours_on_black():
    # A straight standing figure: every keypoint at a distinct place.
    kp = [(50 + 10 * (i % 6), 20 + 12 * (i // 6), 1.0) for i in range(18)]
    image = render_openpose([kp], 160, 96)
    pixels = np.asarray(image)
    assert tuple(pixels[0, 0]) == (0, 0, 0) and tuple(pixels[95, 159]) == (0, 0, 0)
    for i, (x, y, _) in enumerate(kp):  # dots are drawn last, in the keypoint's own colour
        assert tuple(pixels[int(y), int(x)]) == COLOURS[i]
    assert len(LIMBS) == 17 and len(COLOURS) == 18


def test_openpose_leaves_out_invisible_points_and_their_limbs():
    kp = [(80.0, 48.0, 0.0)] * 18
    assert not np.asarray(render_openpose([kp], 160, 96)).any()
    with pytest.raises(ValueError, match="18 keypoints"):
        render_openpose([kp[:5]], 160, 96)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_masks_are_disjoint_and_non_empty_for_1_to_4_characters(n):
    cond = build_conditioning(request(n), 320, 192, embedder="overlap", dilation=0.02)
    masks = [*cond.head_masks, *cond.body_masks]
    assert len(cond.head_masks) == len(cond.body_masks) == n == len(cond.placements)
    assert all(m.shape == (192, 320) and m.dtype == bool for m in masks)
    total = np.sum([m.astype(int) for m in masks], axis=0)
    assert total.max() <= 1, "a pixel belongs to at most one character's head or body"
    assert all(h.any() for h in cond.head_masks)
    assert len(set(cond.character_figure)) == n, "every character plays its own figure"
    assert cond.control_image.size == (320, 192) and np.asarray(cond.control_image).any()


def test_dilation_grows_masks_but_they_stay_disjoint():
    tight = build_conditioning(request(2), 320, 192, embedder="overlap", dilation=0.0)
    loose = build_conditioning(request(2), 320, 192, embedder="overlap", dilation=0.05)
    assert loose.union().sum() > tight.union().sum()
    total = np.sum([m.astype(int) for m in [*loose.head_masks, *loose.body_masks]], axis=0)
    assert total.max() <= 1


def test_disjoint_masks_front_figure_wins_and_heads_beat_bodies():
    a = np.zeros((4, 4), bool)
    a[:, :3] = True
    b = np.zeros((4, 4), bool)
    b[:, 1:] = True
    heads, bodies = disjoint_masks([a, np.zeros_like(a)], [np.zeros_like(a), b], [1, 0])
    assert heads[0].sum() == 12 and (bodies[1] == (b & ~a)).all()
    heads, bodies = disjoint_masks([np.zeros_like(a)] * 2, [a, b], [1, 0])  # character 1 in front
    assert (bodies[1] == b).all() and (bodies[0] == (a & ~b)).all()


def test_dilate_is_a_no_op_at_zero_and_grows_a_point():
    m = np.zeros((9, 9), bool)
    m[4, 4] = True
    assert (dilate(m, 0) == m).all()
    assert dilate(m, 2).sum() > 1 and dilate(m, 2)[4, 2]


def test_user_picked_pose_is_used_unless_retrieval_is_forced():
    entry = next(e for e in load_library() if e.n_figures == 2)
    chosen = choose_pose(request(2, pose_id=entry.id), 5, "overlap")
    assert chosen.pose_id == entry.id
    forced = choose_pose(request(2, pose_id=entry.id), 1, "overlap", use_request_pose=False)
    assert forced.pose_id is not None
    override = choose_pose(request(2, figures_override=PoseSpec.from_entry(entry)), 5, "overlap")
    assert len(override.figures) == 2


def test_same_seed_same_pose_and_masks():
    a = build_conditioning(request(3), 320, 192, embedder="overlap")
    b = build_conditioning(request(3), 320, 192, embedder="overlap")
    assert a.pose_id == b.pose_id and all((x == y).all() for x, y in zip(a.body_masks, b.body_masks))


def test_more_characters_than_the_largest_entries_get_standing_bystander_figures():
    cond = build_conditioning(request(5), 320, 192, embedder="overlap")
    assert len(cond.head_masks) == len(cond.placements) == 5
    assert len(set(cond.character_figure)) == 5, "every character plays its own figure"


def test_racig_refuses_more_characters_than_it_renders_with_a_clear_error():
    from comic_studio.backends.racig import RacigBackend
    from comic_studio.backends.racig.backend import MAX_CHARACTERS

    backend = RacigBackend()
    settings = backend.validate_settings({"pose_matching": "overlap"})
    with pytest.raises(GenerationError, match=f"at most {MAX_CHARACTERS} characters"):
        backend.conditioning(request(MAX_CHARACTERS + 1), settings)


def test_placements_point_at_the_heads():
    cond = build_conditioning(request(2), 320, 192, embedder="overlap")
    for placement, head in zip(cond.placements, cond.head_masks):
        x, y = placement.head
        ys, xs = np.nonzero(head)
        assert xs.min() / 320 <= x <= (xs.max() + 1) / 320 and ys.min() / 192 <= y <= (ys.max() + 1) / 192
        assert placement.body is not None and 0 < placement.head_radius < 1


def test_mask_preview_tints_each_character(tmp_path):
    cond = build_conditioning(request(2), 320, 192, embedder="overlap")
    preview = mask_preview(cond, ["#ff0000", "#0000ff"])
    px = np.asarray(preview).astype(int)
    ys, xs = np.nonzero(cond.body_masks[0] & ~np.asarray(cond.control_image).any(-1))
    assert px[ys[0], xs[0], 0] > px[ys[0], xs[0], 2]
    preview.save(tmp_path / "masks.png")


def test_prepare_batches_pose_queries_without_changing_results():
    from comic_studio.backends.racig import RacigBackend

    backend = RacigBackend()
    reqs = [request(2, seed=s, backend_settings={"pose_matching": "overlap"}) for s in range(3)]
    before = [build_conditioning(r, 320, 192, embedder="overlap").pose_id for r in reqs]
    backend.prepare(reqs)
    assert [build_conditioning(r, 320, 192, embedder="overlap").pose_id for r in reqs] == before

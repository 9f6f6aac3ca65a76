"""Head and body masks derived from the pose skeletons."""

from __future__ import annotations

import numpy as np
import pytest

from comic_studio.core.model import Box
from comic_studio.poses.library import KP, load_library
from comic_studio.poses.masks import entry_masks, figure_bbox, figure_masks, head_region


@pytest.fixture(scope="module")
def entries():
    return load_library()


def _px(fig, name, box):
    x, y, _ = fig.keypoints[KP[name]]
    return int(box[0] + x * box[2]), int(box[1] + y * box[3])


def test_every_figure_has_disjoint_non_empty_masks_with_the_nose_in_the_head(entries):
    for e in entries[::3]:  # a third of the library keeps the test fast; mirrored twins are alike
        h = 160
        w = int(round(h * e.aspect))
        box = (0, 0, w, h)
        for fig in e.figures:
            head, body = figure_masks(fig, w, h, box, e.aspect)
            assert head.shape == body.shape == (h, w) and head.dtype == bool
            assert not (head & body).any(), e.id
            assert head.any() and body.sum() > head.sum(), e.id
            nx, ny = _px(fig, "nose", box)
            assert head[min(ny, h - 1), min(nx, w - 1)], f"{e.id}: nose outside the head mask"
            for joint in ("neck", "r_hip", "l_knee", "r_elbow"):
                jx, jy = _px(fig, joint, box)
                jx, jy = min(jx, w - 1), min(jy, h - 1)
                assert body[jy, jx] or head[jy, jx], f"{e.id}: {joint} outside both masks"


def test_head_region_scales_with_the_figure(entries):
    by_id = {e.id: e for e in entries}
    e = by_id["stand-front-1p"]
    head = head_region(e.figures[0], e.aspect)
    nose = e.figures[0].point("nose")
    assert abs(head.cx - nose[0]) < 0.02 and abs(head.cy - nose[1]) < 0.05
    # An adult's head is roughly 1/7.5 of the stature; here the figure is ~0.8 canvas heights tall.
    assert 0.035 < head.radius < 0.08
    child = by_id["hold-hands-child-2p"].figures[1]
    adult = by_id["hold-hands-child-2p"].figures[0]
    aspect = by_id["hold-hands-child-2p"].aspect
    assert head_region(child, aspect).radius < head_region(adult, aspect).radius


def test_masks_follow_the_canvas_box_and_accept_a_model_box(entries):
    e = next(x for x in entries if x.id == "stand-front-1p")
    fig = e.figures[0]
    head_a, body_a = figure_masks(fig, 200, 200, (0, 0, 100, 200), e.aspect)
    head_b, body_b = figure_masks(fig, 200, 200, Box(x=100, y=0, w=100, h=200), e.aspect)
    assert not head_a[:, 100:].any() and not body_b[:, :100].any()
    assert np.array_equal(head_a[:, :100], head_b[:, 100:]) and np.array_equal(body_a[:, :100], body_b[:, 100:])
    # Stretching the canvas turns the head circle into an ellipse: wider than tall.
    head_w, _ = figure_masks(fig, 400, 200, (0, 0, 400, 200), e.aspect)
    ys, xs = np.nonzero(head_w)
    assert (xs.max() - xs.min()) > 1.5 * (ys.max() - ys.min())


def test_entry_masks_give_heads_priority_over_other_bodies(entries):
    e = next(x for x in entries if x.id == "hug-2p")
    h, w = 240, int(240 * e.aspect)
    masks = entry_masks(e.figures, w, h, (0, 0, w, h), e.aspect)
    heads = [m[0] for m in masks]
    for i, (_, body) in enumerate(masks):
        for j, head in enumerate(heads):
            assert not (body & head).any(), (i, j)


def test_bbox_contains_the_masks(entries):
    e = next(x for x in entries if x.id == "punch-2p")
    h, w = 200, int(200 * e.aspect)
    for fig in e.figures:
        x, y, bw, bh = figure_bbox(fig, e.aspect)
        head, body = figure_masks(fig, w, h, (0, 0, w, h), e.aspect)
        ys, xs = np.nonzero(head | body)
        assert xs.min() >= x * w - 2 and xs.max() <= (x + bw) * w + 2
        assert ys.min() >= y * h - 2 and ys.max() <= (y + bh) * h + 2


def test_bad_sizes_are_rejected(entries):
    fig = entries[0].figures[0]
    with pytest.raises(ValueError, match="mask size"):
        figure_masks(fig, 0, 10, (0, 0, 10, 10))
    with pytest.raises(ValueError, match="canvas_box"):
        figure_masks(fig, 10, 10, (0, 0, 0, 10))

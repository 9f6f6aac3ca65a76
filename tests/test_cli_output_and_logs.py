"""The command line refuses a bad ``--out`` before it renders anything, and keeps native libraries'
log lines (MediaPipe / TensorFlow Lite / absl, written from C++ to descriptor 2) off stderr."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from comic_studio.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_a_bad_out_extension_is_refused_before_rendering(tmp_path, capsys):
    story = tmp_path / "story.txt"
    story.write_text("Mara walked into the harbour office.\n\nTheo waved.\n")
    rc = main(["render", str(story), "--out", str(tmp_path / "book.docx"), "--save", str(tmp_path / "b.comic")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "book.docx: unknown output type '.docx'; use .pdf, .cbz or a folder for PNG pages" in err
    assert "render:" not in err  # no progress line: nothing was rendered
    assert not (tmp_path / "b.comic").exists()


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="MediaPipe is not installed")
def test_mediapipe_and_tflite_log_lines_stay_off_stderr(tmp_path):
    """A real child process, as a user runs it: its stderr holds the one error line and nothing
    from C++. With COMIC_STUDIO_NATIVE_LOGS=1 the native lines are kept (for bug reports)."""
    image = Image.new("RGB", (256, 384), "white")
    ImageDraw.Draw(image).ellipse((100, 20, 156, 76), fill="black")
    image.save(tmp_path / "blob.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("COMIC_STUDIO_NATIVE_LOGS", None)
    command = [sys.executable, "-m", "comic_studio", "poses", "extract", str(tmp_path / "blob.png"),
               "--out", str(tmp_path / "pose.json")]  # fmt: skip
    quiet = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [quiet.stderr.strip()]  # one line
    assert quiet.stderr.startswith("comic-studio: error:") and "no person found" in quiet.stderr
    loud = subprocess.run(command, env={**env, "COMIC_STUDIO_NATIVE_LOGS": "1"}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert "XNNPACK" in loud.stderr or "W0000" in loud.stderr  # what the default hides

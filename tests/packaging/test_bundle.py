"""The PyInstaller one-folder bundle (packaging/pyinstaller/comic-studio.spec) builds, and the built
program runs without the source tree: its version, a story rendered to a PDF through the storyboard
backend (entry points, fonts, templates from the bundle), and the window (``--smoke-test``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from comic_studio import __version__

ROOT = Path(__file__).resolve().parents[2]
PYINSTALLER = Path(sys.executable).with_name("pyinstaller")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PYINSTALLER.exists(), reason="pyinstaller is a dev dependency (make setup installs it)"),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("bundle")
    done = subprocess.run(
        [
            str(PYINSTALLER),
            "--noconfirm",
            "--log-level=WARN",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "build"),
            str(ROOT / "packaging" / "pyinstaller" / "comic-studio.spec"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=work,
        env={**os.environ, "PYINSTALLER_CONFIG_DIR": str(work / "config")},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    program = work / "dist" / "comic-studio" / "comic-studio"
    assert program.is_file()
    return program


def _run(program: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # Outside the checkout, with nothing of this environment on the path: only the bundle's own files.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COMIC_STUDIO_RESOURCES", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run([str(program), *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_the_bundle_leaves_the_ml_stack_out(bundle):
    internal = bundle.parent / "_internal"
    assert (internal / "comic_studio" / "resources" / "fonts").is_dir()
    assert not (internal / "torch").exists()
    assert sum(p.stat().st_size for p in internal.rglob("*") if p.is_file()) < 600 * 2**20


def test_the_bundle_renders_a_story_to_a_pdf(bundle, tmp_path):
    assert _run(bundle, "--version", cwd=tmp_path).stdout.strip() == f"comic-studio {__version__}"
    story = tmp_path / "story.txt"
    story.write_text(
        'Mara climbs the lighthouse stairs. "Is anyone up there?" she calls.\n\n'
        'Old Tom waves from the lamp room. "Only the gulls," he laughs.\n',
        encoding="utf-8",
    )
    done = _run(bundle, "render", str(story), "--out", str(tmp_path / "book.pdf"), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reader = PdfReader(tmp_path / "book.pdf")
    assert len(reader.pages) >= 1
    assert reader.pages[0].images  # the storyboard panels were drawn


def test_the_bundle_opens_its_window(bundle, tmp_path):
    done = _run(bundle, "--smoke-test", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["visible"] is True
    assert report["torch_imported"] is False

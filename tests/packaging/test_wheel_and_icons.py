"""What a wheel (pip, pipx, a bundle) carries: the bundled data inside the package, found from the
installed copy; the shipped icon sizes are renderings of the current SVG."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from comic_studio.core.resources import resources_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out,  # setuptools' build/ folder lands in the checkout; the wheel here
    )
    assert done.returncode == 0, done.stderr
    (found,) = out.glob("comic_studio-*.whl")
    return found


def test_the_wheel_carries_every_bundled_file(wheel):
    bundled = {
        "comic_studio/resources/" + p.relative_to(resources_dir()).as_posix()
        for p in resources_dir().rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert len(bundled) > 30
    names = set(zipfile.ZipFile(wheel).namelist())
    assert bundled - names == set()


def test_an_installed_wheel_finds_its_data_outside_any_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "COMIC_STUDIO_RESOURCES"}
    env["PYTHONPATH"] = str(target)
    story = tmp_path / "story.txt"
    story.write_text('Mara opens the door. "Who\'s there?" she asks.\n', encoding="utf-8")
    script = (
        "import sys, comic_studio\n"
        "from comic_studio.core.resources import resources_dir\n"
        "from comic_studio.cli import main\n"
        "print(comic_studio.__file__); print(resources_dir())\n"
        f"sys.exit(main(['desktop', 'install', '--prefix', {str(tmp_path / 'prefix')!r}, '--exec', 'x']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    module_file, data = done.stdout.splitlines()[:2]
    assert Path(module_file).is_relative_to(target) and Path(data).is_relative_to(target)
    parsed = subprocess.run(
        [sys.executable, "-m", "comic_studio", "parse", str(story)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert parsed.returncode == 0, parsed.stderr
    assert "Mara" in parsed.stdout


def _render_icons_module():
    spec = importlib.util.spec_from_file_location("render_icons", ROOT / "packaging" / "linux" / "render_icons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_icon_sizes_are_renderings_of_the_svg(qapp):
    render_icons = _render_icons_module()
    icons = resources_dir() / "icons"
    for size in render_icons.SIZES:
        png = icons / "hicolor" / f"{size}x{size}" / "apps" / "comic-studio.png"
        from PIL import Image

        shipped = np.asarray(Image.open(png).convert("RGBA"), dtype=np.float32)
        image = render_icons.render(icons / "comic-studio.svg", size).convertToFormat(
            render_icons.QImage.Format.Format_RGBA8888
        )
        fresh = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(size, image.bytesPerLine() // 4, 4)
        fresh = fresh[:, :size].astype(np.float32)
        assert shipped.shape == (size, size, 4)
        # The same renderer may round an edge pixel differently between Qt releases; an edited SVG
        # whose PNGs were not re-rendered differs by far more.
        assert np.abs(shipped - fresh).mean() < 1.0, f"{png} is stale: run packaging/linux/render_icons.py"

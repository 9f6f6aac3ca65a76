"""PNG export: files, sizes, pixels, cancel, and memory that does not grow with page count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from export_builders import BLEED, PAGE_H, PAGE_W, make_project
from PIL import Image

from comic_studio.core.errors import ExportError
from comic_studio.export import ExportCancelled, export_pngs

pytestmark = pytest.mark.usefixtures("fake_lettering")


def test_one_png_per_page_sized_for_dpi_and_bleed(assets, tmp_path):
    project = make_project(assets, pages=3, dpi=72)
    calls = []
    paths = export_pngs(project, assets, tmp_path / "out", progress=lambda d, t: calls.append((d, t)))
    assert [p.name for p in paths] == ["page-001.png", "page-002.png", "page-003.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]  # no scratch left
    assert calls[-1] == (3, 3)
    with Image.open(paths[0]) as im:
        assert im.format == "PNG" and im.size == (PAGE_W, PAGE_H)  # 72 dpi, trim box by default
        assert im.getpixel((220, 150))[:3] == (255, 0, 0)  # red panel, beside the balloon (page units == pixels here)
        assert im.getpixel((150, 206))[:3] == (255, 255, 255)  # gutter
        assert im.info["dpi"] == pytest.approx((72, 72), abs=0.01)
    with Image.open(paths[1]) as im:
        assert im.getpixel((150, 300))[:3] == (0, 0, 255)  # page 2's second panel has an image

    bleed_paths = export_pngs(project, assets, tmp_path / "bleed", dpi=144, bleed=True)
    with Image.open(bleed_paths[0]) as im:
        assert im.size == (round((PAGE_W + 2 * BLEED) * 2), round((PAGE_H + 2 * BLEED) * 2))


def test_cancel_keeps_the_folder_as_it_was(assets, tmp_path):
    project = make_project(assets, pages=4)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "page-001.png").write_bytes(b"older export")
    done = []
    with pytest.raises(ExportCancelled):
        export_pngs(project, assets, folder, progress=lambda d, t: done.append(d), cancel=lambda: len(done) >= 3)
    assert [p.name for p in folder.iterdir()] == ["page-001.png"]
    assert (folder / "page-001.png").read_bytes() == b"older export"


def test_folder_that_cannot_be_created_is_reported(assets, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="cannot create the export folder"):
        export_pngs(make_project(assets), assets, blocker / "out")


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, tracemalloc
    from export_builders import make_project, fake_balloon_geometry
    import comic_studio.export.compositor as compositor
    compositor.default_balloon_geometry = lambda: fake_balloon_geometry
    from comic_studio.core.assets import AssetStore
    from comic_studio.export import export_pngs
    assets = AssetStore()
    project = make_project(assets, pages=int(sys.argv[1]), dpi=200)
    tracemalloc.start()
    export_pngs(project, assets, sys.argv[2])
    traced_peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "traced": traced_peak}))
    """
)


def _export_in_fresh_process(pages: int, folder: Path) -> dict:
    here = Path(__file__).parent  # export_builders, for the child
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(pages), str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_memory_does_not_grow_with_page_count(tmp_path):
    # At 200 dpi one page bitmap is 850 × 1250 × 3 ≈ 3.2 MB: keeping 20 extra pages alive would
    # add ~64 MB of RSS. A fresh process per run keeps other tests' peaks out of the numbers.
    ten = _export_in_fresh_process(10, tmp_path / "ten")
    thirty = _export_in_fresh_process(30, tmp_path / "thirty")
    assert len(list((tmp_path / "thirty").iterdir())) == 30
    assert thirty["rss_kib"] - ten["rss_kib"] < 16 * 1024, (ten, thirty)
    assert thirty["traced"] < ten["traced"] * 1.5 + 256 * 1024, (ten, thirty)

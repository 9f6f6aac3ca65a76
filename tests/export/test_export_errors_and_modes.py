"""Export problems name the page, panel and asset (a result image whose pixels are truncated though
its header reads, an asset the store lost), through each writer; and new PDF/CBZ/PNG files get the
mode the umask gives any new file (core/atomic creates its temporary files 0666 less the umask), not
a private 0600."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest
from export_builders import make_project, make_result, solid_png

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import AssetError
from comic_studio.export import export_cbz, export_pdf, export_pngs


def _truncated_png() -> bytes:
    """A PNG whose header (and so its size) reads, but whose pixel data stops early."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((200, 150), 64).convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    return data[: len(data) // 2]


@pytest.fixture
def broken(tmp_path):
    """A two-page project whose page 2, panel 1 (reading order) shows a truncated image."""
    assets = AssetStore()
    project = make_project(assets, pages=2, balloon=False)
    digest = assets.add(_truncated_png(), validate_image=False)
    top = next(p for p in project.pages[1].panels if p.order == 0)
    top.results = [make_result(digest)]
    return project, assets, digest


@pytest.mark.parametrize("writer", [export_pdf, export_cbz, export_pngs])
def test_each_writer_names_a_truncated_image_with_its_page_panel_and_asset(tmp_path, broken, writer):
    """(A project file holding such an image is refused when it is opened; one that is already in
    the store, e.g. read lazily from a file that then broke, reaches the writers.)"""
    project, assets, digest = broken
    out = tmp_path / ("pages" if writer is export_pngs else f"out.{writer.__name__[7:]}")
    with pytest.raises(AssetError, match=rf"page 2, panel 1: the panel's image {digest[:12]}… cannot be read"):
        writer(project, assets, out)
    assert not out.exists() or not list(out.glob("*.png"))


@pytest.mark.parametrize("writer", [export_pdf, export_cbz, export_pngs])
def test_each_writer_names_a_missing_asset_with_its_page_and_panel(tmp_path, writer):
    assets = AssetStore()
    project = make_project(assets, pages=2, balloon=False)
    ghost = "cd" * 32
    next(p for p in project.pages[1].panels if p.order == 1).results = [make_result(ghost)]
    with pytest.raises(AssetError, match=r"page 2, panel 2: asset cdcdcdcdcdcd… is not in this project"):
        writer(project, assets, tmp_path / "out")


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_new_exports_honour_the_umask(tmp_path, umask):
    assets = AssetStore()
    project = make_project(assets, pages=1, balloon=False)
    old = os.umask(umask)
    try:
        pdf = export_pdf(project, assets, tmp_path / "a.pdf")
        cbz = export_cbz(project, assets, tmp_path / "a.cbz")
        pngs = export_pngs(project, assets, tmp_path / "pages")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for path in (Path(pdf), Path(cbz), *pngs):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert zipfile.ZipFile(cbz).testzip() is None


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_replacing_an_export_keeps_the_files_mode(tmp_path):
    assets = AssetStore()
    project = make_project(assets, pages=1, balloon=False)
    target = tmp_path / "a.pdf"
    target.write_bytes(solid_png((1, 2, 3)))
    target.chmod(0o640)
    export_pdf(project, assets, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640

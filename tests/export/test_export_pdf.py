"""PDF export, read back with pypdf: boxes, extractable text, images at the page DPI, cancel."""

from __future__ import annotations

import pytest
from export_builders import BALLOON_TEXT, BLEED, PAGE_H, PAGE_W, make_project
from pypdf import PdfReader

from comic_studio.core.errors import AssetError, ExportError
from comic_studio.core.model import PanelResult
from comic_studio.export import ExportCancelled, export_pdf
from comic_studio.export.pdf import SLUG

pytestmark = pytest.mark.usefixtures("fake_lettering")


def box(rect) -> tuple[float, float, float, float]:
    return tuple(round(float(v), 3) for v in (rect.left, rect.bottom, rect.right, rect.top))


def image_xobjects(page) -> list:
    xobjects = page["/Resources"].get("/XObject", {})
    return [x.get_object() for x in xobjects.values() if x.get_object()["/Subtype"] == "/Image"]


def test_pages_boxes_text_and_images(assets, tmp_path):
    project = make_project(assets, pages=3, dpi=150)
    calls = []
    out = export_pdf(project, assets, tmp_path / "book.pdf", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    reader = PdfReader(out)
    assert len(reader.pages) == 3
    assert reader.metadata.title == "Test Comic" and reader.metadata.author == "Ada Writer"
    for page in reader.pages:
        assert box(page.mediabox) == (0, 0, PAGE_W + 2 * BLEED, PAGE_H + 2 * BLEED)
        assert box(page.bleedbox) == box(page.mediabox)
        assert box(page.trimbox) == (BLEED, BLEED, PAGE_W + BLEED, PAGE_H + BLEED)
        assert BALLOON_TEXT in page.extract_text()
    assert "Ada runs across the rooftop" in reader.pages[0].extract_text()  # placeholder beat text

    # the red panel is 252 × 182 pt: at 150 dpi exactly 525 × 379 pixels, JPEG by default
    first = image_xobjects(reader.pages[0])
    assert [(x["/Width"], x["/Height"]) for x in first] == [(525, 379)]
    assert "/DCTDecode" in str(first[0]["/Filter"])
    # page 2 also shows the blue panel (252 × 202 pt → 525 × 421 px)
    sizes = sorted((x["/Width"], x["/Height"]) for x in image_xobjects(reader.pages[1]))
    assert sizes == [(525, 379), (525, 421)]
    decoded = reader.pages[0].images[0].image.convert("RGB")
    r, g, b = decoded.getpixel((decoded.width // 2, decoded.height - 5))
    assert r > 240 and g < 15 and b < 15


def test_font_is_embedded_truetype(assets, tmp_path):
    project = make_project(assets)
    reader = PdfReader(export_pdf(project, assets, tmp_path / "f.pdf"))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    descriptors = []
    for ref in fonts.values():
        font = ref.get_object()
        if "/DescendantFonts" in font:
            font = font["/DescendantFonts"][0].get_object()
        descriptors.append(font["/FontDescriptor"].get_object())
    assert descriptors and all("/FontFile2" in d for d in descriptors)


def test_image_is_clipped_to_the_panel_polygon(assets, tmp_path):
    project = make_project(assets, balloon=False)
    reader = PdfReader(export_pdf(project, assets, tmp_path / "c.pdf"))
    content = reader.pages[0].get_contents().get_data().decode("latin-1")
    before_image = content[: content.index(" Do")]
    assert "W n" in before_image  # a clip path is set before the image is drawn


def test_trim_marks_add_a_slug_outside_the_bleed(assets, tmp_path):
    project = make_project(assets)
    reader = PdfReader(export_pdf(project, assets, tmp_path / "marks.pdf", trim_marks=True))
    page = reader.pages[0]
    assert box(page.mediabox) == (0, 0, PAGE_W + 2 * BLEED + 2 * SLUG, PAGE_H + 2 * BLEED + 2 * SLUG)
    assert box(page.bleedbox) == (SLUG, SLUG, SLUG + PAGE_W + 2 * BLEED, SLUG + PAGE_H + 2 * BLEED)
    assert box(page.trimbox) == (SLUG + BLEED, SLUG + BLEED, SLUG + BLEED + PAGE_W, SLUG + BLEED + PAGE_H)
    content = page.get_contents().get_data().decode("latin-1")
    # eight crop-mark segments, each a moveto/lineto pair stroked on its own
    assert content.count(" l S") >= 8 or content.count(" l\nS") >= 8


def test_no_bleed_gives_trim_sized_pages_and_lossless_images(assets, tmp_path):
    project = make_project(assets, dpi=100)
    reader = PdfReader(export_pdf(project, assets, tmp_path / "t.pdf", bleed=False, lossless=True, dpi=72))
    page = reader.pages[0]
    assert box(page.mediabox) == (0, 0, PAGE_W, PAGE_H)
    assert box(page.trimbox) == box(page.bleedbox) == box(page.mediabox)
    (image,) = image_xobjects(page)
    assert (image["/Width"], image["/Height"]) == (252, 182)
    assert "/FlateDecode" in str(image["/Filter"]) and "/DCTDecode" not in str(image["/Filter"])


def test_cancel_leaves_existing_file_untouched_and_no_temp(assets, tmp_path):
    project = make_project(assets, pages=3)
    target = tmp_path / "book.pdf"
    target.write_bytes(b"old export")
    done = []
    with pytest.raises(ExportCancelled, match="cancelled after 1 of 3"):
        export_pdf(project, assets, target, progress=lambda d, t: done.append(d), cancel=lambda: len(done) >= 2)
    assert target.read_bytes() == b"old export"
    assert [p.name for p in tmp_path.iterdir()] == ["book.pdf"]

    fresh = tmp_path / "new.pdf"
    with pytest.raises(ExportCancelled):
        export_pdf(project, assets, fresh, cancel=lambda: True)
    assert not fresh.exists()


def test_failure_midway_removes_the_partial_file(assets, tmp_path):
    project = make_project(assets, pages=3)
    project.pages[2].panels[0].results.append(PanelResult(asset="cd" * 32, backend="t", seed=0, created_at="now"))
    target = tmp_path / "broken.pdf"
    with pytest.raises(AssetError, match="page 3, panel 2"):
        export_pdf(project, assets, target)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused_with_clear_errors(assets, tmp_path):
    project = make_project(assets)
    with pytest.raises(ExportError, match="dpi 5000"):
        export_pdf(project, assets, tmp_path / "x.pdf", dpi=5000)
    with pytest.raises(ExportError, match="does not exist"):
        export_pdf(project, assets, tmp_path / "missing" / "x.pdf")
    project.pages = []
    with pytest.raises(ExportError, match="no pages"):
        export_pdf(project, assets, tmp_path / "x.pdf")
    assert list(tmp_path.iterdir()) == []

"""CBZ export: archive members, page images, ComicInfo.xml validated against the v2.0 schema."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import xmlschema
from export_builders import PAGE_H, PAGE_W, make_project
from PIL import Image

from comic_studio.core.errors import ExportError
from comic_studio.core.model import Character
from comic_studio.export import ExportCancelled, PageImageInfo, comicinfo_xml, export_cbz
from comic_studio.export.comicinfo import FIELD_ORDER

# ComicInfo v2.0 schema, copied from the anansi-project/comicinfo repository
# (schema/v2.0/ComicInfo.xsd, https://github.com/anansi-project/comicinfo, MIT licence per that
# repository; /work/shared/specs/SOURCE.md records where it came from).
SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("ComicInfo-v2.0.xsd"))

pytestmark = pytest.mark.usefixtures("fake_lettering")


def test_cbz_members_pages_and_valid_comicinfo(assets, tmp_path):
    project = make_project(assets, pages=3, dpi=72)
    out = export_cbz(project, assets, tmp_path / "book.cbz")
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["page-001.png", "page-002.png", "page-003.png", "ComicInfo.xml"]
        assert archive.getinfo("page-001.png").compress_type == zipfile.ZIP_STORED
        with Image.open(io.BytesIO(archive.read("page-002.png"))) as page:
            assert page.size == (PAGE_W, PAGE_H)
            assert page.getpixel((150, 300))[:3] == (0, 0, 255)
        xml = archive.read("ComicInfo.xml")
        sizes = [archive.getinfo(f"page-00{i}.png").file_size for i in (1, 2, 3)]

    SCHEMA.validate(xml.decode("utf-8"))
    root = ET.fromstring(xml)
    assert [child.tag for child in root] == list(FIELD_ORDER)
    fields = {child.tag: child.text for child in root}
    assert fields["Title"] == "Test Comic" and fields["Series"] == "Tests" and fields["Number"] == "7"
    assert fields["Writer"] == "Ada Writer" and fields["LanguageISO"] == "en"
    assert fields["Summary"] == "Two panels & a balloon <escaped>."
    assert fields["PageCount"] == "3" and fields["Manga"] == "No"
    assert fields["Characters"] == "Ada, Bo"
    pages = root.find("Pages").findall("Page")
    assert [p.get("Type") for p in pages] == ["FrontCover", "Story", "Story"]
    assert [int(p.get("ImageSize")) for p in pages] == sizes
    assert {(p.get("ImageWidth"), p.get("ImageHeight")) for p in pages} == {(str(int(PAGE_W)), str(int(PAGE_H)))}


def test_rtl_project_is_marked_manga_right_to_left_and_jpeg_pages(assets, tmp_path):
    project = make_project(assets, pages=2, rtl=True, dpi=72)
    out = export_cbz(project, assets, tmp_path / "manga.cbz", image_format="jpeg", dpi=100)
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["page-001.jpg", "page-002.jpg", "ComicInfo.xml"]
        with Image.open(io.BytesIO(archive.read("page-001.jpg"))) as page:
            assert page.format == "JPEG" and page.size == (400, 600)
        xml = archive.read("ComicInfo.xml").decode("utf-8")
    SCHEMA.validate(xml)
    assert ET.fromstring(xml).find("Manga").text == "YesAndRightToLeft"


def test_comicinfo_leaves_out_empty_fields_and_strips_invalid_xml_characters(assets):
    project = make_project(assets)
    project.series = ""
    project.number = ""
    project.summary = "bell\x07 and nul\x00 gone"
    project.characters = [Character(name="Smith, John"), Character(name="Émile")]
    xml = comicinfo_xml(project, [PageImageInfo(10, 20, 30)])
    SCHEMA.validate(xml.decode("utf-8"))
    root = ET.fromstring(xml)
    assert root.find("Series") is None and root.find("Number") is None
    assert root.find("Summary").text == "bell and nul gone"
    assert root.find("Characters").text == "Smith  John, Émile"  # a comma would split the name
    assert root.find("PageCount").text == "1"


def test_schema_rejects_what_the_writer_must_not_produce():
    # The validation above can fail: out-of-order elements and unknown Manga values are refused.
    bad_order = "<ComicInfo><Writer>a</Writer><Title>t</Title></ComicInfo>"
    bad_manga = "<ComicInfo><Manga>Sideways</Manga></ComicInfo>"
    for doc in (bad_order, bad_manga):
        with pytest.raises(xmlschema.XMLSchemaValidationError):
            SCHEMA.validate(doc)


def test_cancel_mid_export_leaves_no_archive(assets, tmp_path):
    project = make_project(assets, pages=3)
    done = []
    target = tmp_path / "book.cbz"
    with pytest.raises(ExportCancelled):
        export_cbz(project, assets, target, progress=lambda d, t: done.append(d), cancel=lambda: len(done) >= 2)
    assert list(tmp_path.iterdir()) == []


def test_unknown_image_format_is_refused(assets, tmp_path):
    with pytest.raises(ExportError, match="image_format 'gif'"):
        export_cbz(make_project(assets), assets, tmp_path / "x.cbz", image_format="gif")
    assert list(tmp_path.iterdir()) == []

"""File ▸ Book…: the dialog edits the book's metadata, reading direction and page format as one
undo step, and exports carry it (ComicInfo.xml in a CBZ, the PDF's document information)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile

from pypdf import PdfReader

from comic_studio.core import editing
from comic_studio.core.layout import bbox, load_presets
from comic_studio.core.model import ReadingDirection
from comic_studio.export import export_cbz, export_pdf
from comic_studio.ui.dialogs.book_dialog import BookDialog


def test_the_book_dialog_round_trips_to_comicinfo_and_pdf_metadata(qtbot, ctx, tmp_path, shots):
    editing.add_page(ctx.document, "grid-2x2")
    editing.add_page(ctx.document, "three-tier")
    old_shapes = [[list(p.shape) for p in page.panels] for page in ctx.document.project.pages]
    dialog = BookDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.title.clear()
    qtbot.keyClicks(dialog.title, "The Lighthouse Key")
    qtbot.keyClicks(dialog.author, "Ana Ruiz, Theo Lind")
    qtbot.keyClicks(dialog.series, "Harbour Tales")
    qtbot.keyClicks(dialog.number, "2")
    dialog.language.setCurrentIndex(dialog.language.findData("ja"))
    dialog.direction.setCurrentIndex(dialog.direction.findData(ReadingDirection.RTL.value))
    dialog.page_format.setCurrentIndex(dialog.page_format.findData("manga-b5"))
    dialog.grab().save(str(shots / "book_dialog.png"))
    steps = ctx.undo_stack.count()
    dialog.apply()
    assert dialog.result() == BookDialog.DialogCode.Accepted
    assert ctx.undo_stack.count() == steps + 1 and ctx.undo_stack.undoText() == "Book settings"

    project = ctx.document.project
    assert (project.title, project.author, project.series, project.number, project.language) == (
        "The Lighthouse Key", "Ana Ruiz, Theo Lind", "Harbour Tales", "2", "ja")  # fmt: skip
    b5 = load_presets()["manga-b5"].format
    assert (project.page_format.width, project.page_format.height) == (b5.width, b5.height)
    assert project.reading_direction is ReadingDirection.RTL
    for page in project.pages:  # every panel on the new page, none left where the old page was
        for panel in page.panels:
            box = bbox(panel.shape)
            assert box.x >= 0 and box.x + box.w <= b5.width and box.y + box.h <= b5.height

    export_cbz(project, ctx.document.assets, tmp_path / "book.cbz")
    with zipfile.ZipFile(tmp_path / "book.cbz") as archive:
        info = ET.fromstring(archive.read("ComicInfo.xml"))
    fields = {e.tag: e.text for e in info}
    assert fields["Title"] == "The Lighthouse Key" and fields["Series"] == "Harbour Tales"
    assert fields["Number"] == "2" and fields["Writer"] == "Ana Ruiz, Theo Lind"
    assert fields["LanguageISO"] == "ja" and fields["Manga"] == "YesAndRightToLeft"

    export_pdf(project, ctx.document.assets, tmp_path / "book.pdf")
    reader = PdfReader(tmp_path / "book.pdf")
    meta = reader.metadata
    assert meta.title == "The Lighthouse Key" and meta.author == "Ana Ruiz, Theo Lind"
    assert meta.subject == "Harbour Tales #2"
    assert meta["/Keywords"] == "Harbour Tales, #2, lang:ja"
    width_pt = float(reader.pages[0].trimbox.width)
    assert abs(width_pt - b5.width) < 0.01

    # One undo brings back the old metadata and the old layout.
    ctx.undo_stack.undo()
    assert project.title == "Untitled comic" and project.reading_direction is ReadingDirection.LTR
    assert [[list(p.shape) for p in page.panels] for page in project.pages] == old_shapes


def test_a_refused_format_keeps_the_dialog_open_and_says_why(qtbot, ctx):
    editing.add_page(ctx.document, "grid-2x2")
    dialog = BookDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.presets["manga-b5"] = dialog.presets["manga-b5"].__class__(
        **{**dialog.presets["manga-b5"].__dict__,
           "format": dialog.presets["manga-b5"].format.model_copy(update={"width": 50.0, "margin": 20.0})})  # fmt: skip
    dialog.page_format.setCurrentIndex(dialog.page_format.findData("manga-b5"))
    dialog.show()
    steps = ctx.undo_stack.count()
    dialog.apply()
    assert dialog.isVisible() and ctx.undo_stack.count() == steps
    assert "too small" in dialog.problem.text() and not dialog.problem.isHidden()

"""Export: PDF (print), PNG per page and CBZ (with ComicInfo.xml), all drawn from one page
compositor (:func:`compose_page`) so every format shows the same page.

No Qt, no torch: the writers run headless (CLI, tests) and on the UI's worker thread alike.
"""

from comic_studio.export.cbz import export_cbz
from comic_studio.export.comicinfo import PageImageInfo, comicinfo_xml
from comic_studio.export.common import CancelFn, ExportCancelled, ProgressFn, resolve_dpi
from comic_studio.export.compositor import compose_page
from comic_studio.export.drawing import PageDrawing
from comic_studio.export.pdf import export_pdf
from comic_studio.export.png import export_pngs, page_file_name
from comic_studio.export.raster import render_page, render_project_page

__all__ = [
    "CancelFn",
    "ExportCancelled",
    "PageDrawing",
    "PageImageInfo",
    "ProgressFn",
    "comicinfo_xml",
    "compose_page",
    "export_cbz",
    "export_pdf",
    "export_pngs",
    "page_file_name",
    "render_page",
    "render_project_page",
    "resolve_dpi",
]

"""CBZ export: a zip of page images (``page-001.png`` …) plus ComicInfo.xml.

Pages are rendered, encoded straight into the archive and freed one at a time. Images are stored
uncompressed in the zip (PNG and JPEG are already compressed; deflating them again only costs
time). ComicInfo.xml goes last because its Pages list records each image's encoded size.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Literal

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import ExportError
from comic_studio.core.model import Project
from comic_studio.export.comicinfo import PageImageInfo, comicinfo_xml
from comic_studio.export.common import CancelFn, PageLoop, ProgressFn, atomic_export_file, require_pages, resolve_dpi
from comic_studio.export.png import page_file_name
from comic_studio.export.raster import render_project_page

JPEG_QUALITY = 92


def export_cbz(
    project: Project,
    assets: AssetStore,
    path: str | Path,
    *,
    dpi: float | None = None,
    image_format: Literal["png", "jpeg"] = "png",
    bleed: bool = False,
    placeholder: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    overset: list[str] | None = None,
) -> Path:
    """Write ``project`` as a CBZ at ``path`` (replaced atomically) and return it.

    ``bleed`` is off by default: screen readers show the trimmed page, as the printed book would.
    ``overset``, when given, collects a ``page P panel N`` for every balloon whose text is cut at
    its outline.
    """
    if image_format not in ("png", "jpeg"):
        raise ExportError(f"image_format {image_format!r}: use 'png' or 'jpeg'")
    require_pages(project)
    resolved_dpi = resolve_dpi(project, dpi)
    target = Path(path)
    ext = "png" if image_format == "png" else "jpg"
    loop = PageLoop(len(project.pages), progress, cancel)
    infos: list[PageImageInfo] = []
    with atomic_export_file(target, "the CBZ") as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for index, page in enumerate(project.pages):
            loop.check_cancel()
            image = render_project_page(
                project, page, assets, resolved_dpi, include_bleed=bleed, placeholder=placeholder, overset=overset
            )
            member = zipfile.ZipInfo(page_file_name(index, ext), date_time=time.localtime()[:6])
            member.compress_type = zipfile.ZIP_STORED
            member.external_attr = 0o644 << 16
            with archive.open(member, "w") as out:
                if image_format == "png":
                    image.save(out, format="PNG", dpi=(resolved_dpi, resolved_dpi))
                else:
                    image.save(out, format="JPEG", quality=JPEG_QUALITY, dpi=(resolved_dpi, resolved_dpi))
            infos.append(PageImageInfo(image.width, image.height, member.file_size))
            image.close()  # free the page bitmap before rendering the next one
            loop.page_done()
        loop.check_cancel()
        archive.writestr("ComicInfo.xml", comicinfo_xml(project, infos), compress_type=zipfile.ZIP_DEFLATED)
    return target

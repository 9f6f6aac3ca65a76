"""PNG export: one ``page-001.png`` … per page, rendered, saved and freed one at a time."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import ComicStudioError, ExportError
from comic_studio.core.model import Project
from comic_studio.export.common import CancelFn, PageLoop, ProgressFn, require_pages, resolve_dpi
from comic_studio.export.raster import render_project_page


def page_file_name(index: int, ext: str = "png") -> str:
    """``page-001.png`` for index 0: zero-padded so readers and file managers sort pages right."""
    return f"page-{index + 1:03d}.{ext}"


def export_pngs(
    project: Project,
    assets: AssetStore,
    folder: str | Path,
    *,
    dpi: float | None = None,
    bleed: bool = False,
    placeholder: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    overset: list[str] | None = None,
) -> list[Path]:
    """Write every page as a PNG into ``folder`` (created if missing) and return the paths.

    Pages are first written into a hidden scratch folder inside ``folder`` and moved into place
    only when all of them succeeded, so a cancelled or failed export leaves ``folder`` exactly as
    it was (no half set of pages mixed with an older export). ``overset``, when given, collects a
    ``page P panel N`` for every balloon whose text is cut at its outline.
    """
    require_pages(project)
    resolved_dpi = resolve_dpi(project, dpi)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".png-export-", dir=folder))
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the export folder ({exc.strerror or exc})") from exc

    loop = PageLoop(len(project.pages), progress, cancel)
    written: list[Path] = []
    try:
        for index, page in enumerate(project.pages):
            loop.check_cancel()
            image = render_project_page(
                project, page, assets, resolved_dpi, include_bleed=bleed, placeholder=placeholder, overset=overset
            )
            path = scratch / page_file_name(index)
            image.save(path, format="PNG", dpi=(resolved_dpi, resolved_dpi))
            image.close()  # free the page bitmap before rendering the next one
            written.append(path)
            loop.page_done()
        finals = []
        for path in written:
            final = folder / path.name
            os.replace(path, final)
            finals.append(final)
        return finals
    except ComicStudioError:
        raise
    except OSError as exc:
        raise ExportError(f"{folder}: cannot write page images ({exc.strerror or exc})") from exc
    except Exception as exc:  # Pillow errors while encoding
        raise ExportError(f"{folder}: PNG export failed ({exc.__class__.__name__}: {exc})") from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)

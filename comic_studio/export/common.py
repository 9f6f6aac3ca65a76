"""What every export writer shares: DPI checks, progress/cancel plumbing, atomic output files."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from comic_studio.core.atomic import FileWriteError, atomic_path
from comic_studio.core.errors import ComicStudioError, ExportError
from comic_studio.core.model import Project

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: called with ``(0, total)`` before the first page and after each."""
CancelFn = Callable[[], bool]
"""``cancel()`` → True to stop; checked between pages."""

MIN_DPI = 36
MAX_DPI = 1200


class ExportCancelled(ExportError):
    """The user cancelled an export; nothing was written (any partial output was removed)."""


def resolve_dpi(project: Project, dpi: float | None) -> float:
    """The project's print DPI unless ``dpi`` overrides it; out-of-range values are refused."""
    value = project.page_format.dpi if dpi is None else dpi
    if not (MIN_DPI <= value <= MAX_DPI):
        raise ExportError(f"dpi {value}: must be between {MIN_DPI} and {MAX_DPI}")
    return float(value)


def require_pages(project: Project) -> None:
    if not project.pages:
        raise ExportError(f"project {project.title!r} has no pages to export; add a page first")


class PageLoop:
    """Reports progress and checks cancel between pages, the same way in every writer."""

    def __init__(self, total: int, progress: ProgressFn | None, cancel: CancelFn | None):
        self.total = total
        self.progress = progress
        self.cancel = cancel
        self.done = 0
        if progress:
            progress(0, total)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise ExportCancelled(f"export cancelled after {self.done} of {self.total} pages; nothing was written")

    def page_done(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)


@contextlib.contextmanager
def atomic_export_file(path: str | Path, what: str) -> Iterator[Path]:
    """:func:`comic_studio.core.atomic.atomic_path` with the export's errors: yield a temporary path
    beside ``path`` that replaces ``path`` on success; on any error (cancel included) it is deleted
    and an existing ``path`` is left untouched.

    Errors that are not already :class:`ComicStudioError` are wrapped in :class:`ExportError`
    naming the output file; KeyboardInterrupt and friends still clean up and propagate as they are.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"{target}: folder {folder} does not exist")
    try:
        with atomic_path(target, what) as tmp:
            yield tmp
    except FileWriteError as exc:
        raise ExportError(str(exc)) from exc
    except ComicStudioError:
        raise
    except Exception as exc:  # a library bug or bad data deep in Pillow/reportlab (already cleaned up)
        raise ExportError(f"{target}: writing {what} failed ({exc.__class__.__name__}: {exc})") from exc


def overset_message(locations: list[str]) -> str:
    """One line for the author about balloons whose text is cut at their outline (the export
    dialog and the CLI show it), or ``""`` when every balloon fits. ``locations`` are the
    ``page P panel N`` entries of :attr:`PageDrawing.overset`, one per balloon."""
    if not locations:
        return ""
    count = len(locations)
    places = ", ".join(dict.fromkeys(locations))  # two overset balloons in one panel: named once
    verb = "balloon has" if count == 1 else "balloons have"
    return (
        f"{count} {verb} more text than fits: {places}. The text is cut at the balloon's outline; "
        "shorten it or make the balloon bigger."
    )

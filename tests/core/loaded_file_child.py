"""Child process of the loaded-files fuzz test: each .comic file in a folder is opened, rendered
with the storyboard backend, exported to PDF, CBZ and PNG and saved again; one JSON line per file
says how it went. The parent runs this under RLIMIT_AS / RLIMIT_CPU, so a file that blows up
memory or time fails the test instead of the machine.

Usage: python loaded_file_child.py FOLDER REPORT.jsonl SECONDS_PER_FILE
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from comic_studio.core import editing
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.projectfile import load_project
from comic_studio.export import export_cbz, export_pdf, export_pngs
from comic_studio.workflows.batch import render_panel

RENDERED_PANELS = 2
"""Panels rendered per file: the render path is the same for every panel; the budget is small."""
EXPORT_DPI = 36
"""The lowest DPI the exporters take (a user's choice in the export dialog): every step of the
export runs, on the fewest pixels. A page too large even at 36 dpi is still refused."""


class _OutOfTime(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001 — signal handler signature
    raise _OutOfTime


def _work(path: Path, scratch: Path) -> str:
    """Each stage that refuses cleanly (a ComicStudioError) is noted and the next one still runs;
    anything else escapes to ``main``, which reports it as an error."""
    doc = Document.open(path)
    refused: list[str] = []
    for panel in [panel for page in doc.project.pages for panel in page.panels][:RENDERED_PANELS]:
        try:
            # Word-overlap pose matching, set as the inspector would: the default loads a sentence
            # model (9 s of CPU) that says nothing about the file.
            settings = {**panel.backend_settings, "pose_matching": "overlap"}
            editing.set_panel_fields(doc, panel.id, "Pose matching", backend_settings=settings)
            render_panel(doc, panel.id, "storyboard")
        except ComicStudioError as exc:
            refused.append(f"render: {exc}")
    if doc.project.pages:
        for name, export in (("pdf", export_pdf), ("cbz", export_cbz), ("png", export_pngs)):
            try:
                export(doc.project, doc.assets, scratch / f"out.{name}", dpi=EXPORT_DPI)
            except ComicStudioError as exc:
                refused.append(f"{name}: {exc}")
    doc.save(scratch / "again.comic")  # what loaded and was edited must save: no refusal allowed
    again, _ = load_project(scratch / "again.comic")
    if again != doc.project:
        return "error: saved again, the project did not load back equal"
    return "ok" + "".join(f"; refused {r}" for r in refused)


def main() -> None:
    folder, report, per_file = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    signal.signal(signal.SIGALRM, _alarm)
    with report.open("w", encoding="utf-8") as out:
        for path in sorted(folder.glob("*.comic")):
            started, cpu = time.monotonic(), time.process_time()
            signal.alarm(per_file)
            try:
                with tempfile.TemporaryDirectory() as scratch:
                    outcome = _work(path, Path(scratch))
            except _OutOfTime:
                outcome = f"error: over {per_file} s"
            except MemoryError:
                outcome = "error: out of memory (RLIMIT_AS)"
            except ComicStudioError as exc:
                outcome = f"refused at load: {exc}"
            except Exception:  # noqa: BLE001 — reported to the parent, which fails the test
                outcome = "error: " + traceback.format_exc(limit=8)
            finally:
                signal.alarm(0)
            line = {"file": path.name, "outcome": outcome, "seconds": round(time.monotonic() - started, 2),
                    "cpu": round(time.process_time() - cpu, 2)}  # fmt: skip
            out.write(json.dumps(line) + "\n")
            out.flush()


if __name__ == "__main__":
    main()

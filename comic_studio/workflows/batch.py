"""Headless runs: render a panel or a whole document here, synchronously, and write files.

What the CLI's ``render`` and ``demo`` do, and what the app does in two halves (the engine generates
on its worker thread, then :func:`~comic_studio.workflows.results.record_result` runs on the GUI
thread)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from comic_studio.core.assets import AssetStore
from comic_studio.core.character_file import load_characters
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import page_format
from comic_studio.core.model import PanelResult
from comic_studio.core.resources import resource
from comic_studio.generation.messages import JobEvent, JobMessage
from comic_studio.generation.request import GenerationRequest, StepCallback
from comic_studio.parsing.files import read_story
from comic_studio.workflows import anchors, banks
from comic_studio.workflows.lettering import letter_panel
from comic_studio.workflows.requests import build_request, check_character_training, check_image_settings, panel_label
from comic_studio.workflows.results import record_result
from comic_studio.workflows.story import story_to_document

Progress = Callable[[str, int, int], None]
Cancel = Callable[[], bool]


class JobEngine(Protocol):
    """What a batch needs of an engine: the local :class:`~comic_studio.generation.engine.Engine` and
    the Ray :class:`~comic_studio.generation.cluster.ClusterEngine` both are one."""

    def submit(self, request: GenerationRequest, priority: int = 0) -> str: ...

    def subscribe(self, callback: Callable[[JobMessage], None]) -> Callable[[], None]: ...

    def cancel_all(self) -> None: ...


DEMO_STORY = ("samples", "lighthouse_key.txt")
DEMO_CHARACTERS = ("samples", "lighthouse_key.characters.json")


def _no_progress(label: str, done: int, total: int) -> None:
    return None


def _no_warning(message: str) -> None:
    return None


def render_panel(
    doc: Document, panel_id: str, backend: str | None = None, on_step: StepCallback | None = None
) -> PanelResult:
    """Generate one panel synchronously and record the result (an undoable "Render panel" step).
    The app does the same in two halves: the engine generates on its worker thread, then
    :func:`~comic_studio.workflows.results.record_result` runs on the GUI thread."""
    from comic_studio.generation.registry import get_backend

    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} does not exist")
    request = build_request(doc.project, found[1], backend, doc.assets)
    if banks.uses_identity_banks(request.backend):
        # Banks the project does not carry (too big for it) are rebuilt first; one that came out
        # different (another device) is recorded on its character, so the request names it anew.
        if anchors.rebuild_missing_banks(doc, request.backend, [c.id for c in request.characters]):
            request = build_request(doc.project, found[1], backend, doc.assets)
    engine = get_backend(request.backend)
    request = request.model_copy(update={"backend_settings": engine.validate_settings(request.backend_settings)})
    return record_result(doc, panel_id, request, engine.generate(request, on_step))


def render_document(
    doc: Document,
    backend: str | None = None,
    *,
    only_missing: bool = True,
    progress: Progress = _no_progress,
    cancel: Cancel | None = None,
    engine: JobEngine | None = None,
) -> int:
    """Render (and letter) every panel, page by page in reading order. Returns panels rendered.

    Here, one panel after the other; with an ``engine`` (e.g. a Ray cluster) every panel is submitted
    at once and the results are recorded in reading order as they arrive."""
    from comic_studio.generation.registry import get_backend

    panels = [panel for page in doc.project.pages for panel in page.panels_in_order()]
    todo = [p for p in panels if not (only_missing and p.result())]
    requests = [build_request(doc.project, p, backend) for p in todo]
    for panel, request in zip(todo, requests):
        # Before any backend sees them (a batch warm-up validates settings): named by page and panel.
        check_image_settings(request, panel_label(doc.project, panel))
    check_character_training(requests)  # every character without its LoRA/identity named at once, before any render
    if engine is not None:
        return _render_on_engine(doc, todo, backend, engine, progress, cancel)
    for name in {r.backend for r in requests}:
        get_backend(name).prepare([r for r in requests if r.backend == name])  # batch warm-up
    for done, panel in enumerate(todo):
        if cancel and cancel():
            raise ComicStudioError("rendering was cancelled")
        progress("render", done, len(todo))
        render_panel(doc, panel.id, backend)
        letter_panel(doc, panel.id)
    progress("render", len(todo), len(todo))
    return len(todo)


def _engine_request(doc: Document, panel_id: str, backend: str | None) -> GenerationRequest:
    found = doc.project.find_panel(panel_id)
    assert found is not None
    request = build_request(doc.project, found[1], backend, doc.assets)
    if banks.uses_identity_banks(request.backend):
        # As render_panel: banks the project lacks are rebuilt here first, before the jobs go out.
        if anchors.rebuild_missing_banks(doc, request.backend, [c.id for c in request.characters]):
            request = build_request(doc.project, found[1], backend, doc.assets)
    return request


def _render_on_engine(
    doc: Document, todo: list, backend: str | None, engine: JobEngine, progress: Progress, cancel: Cancel | None
) -> int:
    finals: dict[str, JobMessage] = {}
    arrived = threading.Condition()

    def on_message(message: JobMessage) -> None:
        if message.event.is_final:
            with arrived:
                finals[message.job_id] = message
                arrived.notify_all()

    requests = [_engine_request(doc, panel.id, backend) for panel in todo]
    if hasattr(engine, "call_workers"):  # a cluster: every worker must have the models, said per worker
        from comic_studio.workflows.cluster_probe import check_worker_models

        check_worker_models(engine, requests)
    unsubscribe = engine.subscribe(on_message)
    try:
        job_ids = [engine.submit(request) for request in requests]
        for done, (panel, job_id) in enumerate(zip(todo, job_ids)):
            progress("render", done, len(todo))
            with arrived:
                while job_id not in finals:
                    if cancel and cancel():
                        engine.cancel_all()
                        raise ComicStudioError("rendering was cancelled")
                    arrived.wait(0.25)
                message = finals[job_id]
            if message.event is not JobEvent.FINISHED or message.result is None or message.request is None:
                engine.cancel_all()
                if message.event is JobEvent.CANCELLED:
                    raise ComicStudioError("rendering was cancelled")
                raise ComicStudioError(f"{panel_label(doc.project, panel)}: {message.error}")
            record_result(doc, panel.id, message.request, message.result)
            letter_panel(doc, panel.id)
    finally:
        unsubscribe()
    progress("render", len(todo), len(todo))
    return len(todo)


# --------------------------------------------------------------------------- files


def output_kind(out: Path) -> str:
    """What ``out`` asks for: "pdf", "cbz" or "png" (a folder of pages). Refuses any other
    extension with :class:`ComicStudioError`; ``render`` asks before rendering anything, so a typo
    in ``--out`` costs no render."""
    suffix = out.suffix.lower()
    if suffix in (".pdf", ".cbz"):
        return suffix[1:]
    if suffix in ("", ".png") or out.is_dir():
        return "png"
    raise ComicStudioError(f"{out}: unknown output type {suffix!r}; use .pdf, .cbz or a folder for PNG pages")


def export_to(
    doc: Document,
    out: Path,
    *,
    dpi: int | None = None,
    trim_marks: bool = False,
    progress: Progress = _no_progress,
    warn: Callable[[str], None] = _no_warning,
) -> Path:
    """Write ``out``: ``.pdf`` → PDF, ``.cbz`` → CBZ, a folder (or ``.png``) → PNG pages. ``warn``
    hears, once, about balloons whose text is cut at their outline (the file is still written)."""
    from comic_studio.export import export_cbz, export_pdf, export_pngs
    from comic_studio.export.common import overset_message

    kind = output_kind(out)
    overset: list[str] = []
    if kind == "pdf":
        export_pdf(
            doc.project,
            doc.assets,
            out,
            dpi=dpi,
            trim_marks=trim_marks,
            progress=lambda d, t: progress("pdf", d, t),
            overset=overset,
        )
    elif kind == "cbz":
        export_cbz(doc.project, doc.assets, out, dpi=dpi, progress=lambda d, t: progress("cbz", d, t), overset=overset)
    else:
        export_pngs(doc.project, doc.assets, out, dpi=dpi, progress=lambda d, t: progress("png", d, t), overset=overset)
    if overset:
        warn(f"{out.name}: {overset_message(overset)}")
    return out


def render_input(
    input_path: Path,
    out: Path,
    *,
    backend: str | None = None,
    characters_file: Path | None = None,
    parser: str = "rules",
    preset: str = "us-comic",
    dpi: int | None = None,
    trim_marks: bool = False,
    save_project_to: Path | None = None,
    rerender: bool = False,
    progress: Progress = _no_progress,
    engine: JobEngine | None = None,
    warn: Callable[[str], None] = _no_warning,
) -> Path:
    """``comic-studio render``: a project or a story file in, PDF/CBZ/PNGs out. Panels without an
    image are rendered; with ``rerender`` every panel is (earlier images stay in its history)."""
    output_kind(out)  # a bad extension is refused before minutes of rendering, not after
    if input_path.suffix.lower() == ".comic":
        doc = Document.open(input_path)
    else:
        text = read_story(input_path)
        library = AssetStore()
        if characters_file:
            # Its reference images (paths inside the library's folder) enter as assets, then the
            # new document's store takes them over.
            characters = load_characters(characters_file, library)
        else:
            from comic_studio.parsing import infer_characters

            characters = infer_characters(text)
        doc = story_to_document(
            text, characters, title=input_path.stem.replace("_", " ").title(), parser=parser, preset=preset
        )
        # Their trained files too (a LoRA or identity tokens beside the JSON; a LoRA too big for a
        # project is in the user's LoRA library instead, not in this store).
        files = (h for c in characters for h in (*c.face_refs, *c.body_refs, c.lora_asset, c.identity_asset))
        for digest in dict.fromkeys(h for h in files if h is not None and h in library):
            doc.assets.add(library.get(digest), validate_image=False)  # validated when the library was read
    render_document(doc, backend, only_missing=not rerender, progress=progress, engine=engine)
    if save_project_to:
        doc.save(save_project_to)
    return export_to(doc, out, dpi=dpi, trim_marks=trim_marks, progress=progress, warn=warn)


def sample_document() -> Document:
    """The bundled sample story parsed and laid out with its cast (nothing rendered yet): the
    studio's File ▸ Open Sample Project and the start of ``demo``."""
    doc = Document.new("The Lighthouse Key", page_format("us-comic"))
    doc.project.series, doc.project.number, doc.project.author = "Comic Studio Samples", "1", "Comic Studio"
    characters = load_characters(resource(*DEMO_CHARACTERS), doc.assets)
    story_to_document(read_story(resource(*DEMO_STORY)), characters, document=doc)
    doc.undo_stack.clear()  # a fresh project: nothing to undo
    doc.undo_stack.set_clean()
    return doc


def run_demo(
    out: Path, backend: str = "storyboard", progress: Progress = _no_progress, warn: Callable[[str], None] = _no_warning
) -> dict[str, Path]:
    """The bundled sample story through parser → auto-layout → backend → lettering → all outputs."""
    out.mkdir(parents=True, exist_ok=True)
    doc = sample_document()
    render_document(doc, backend, progress=progress)
    written = {"project": doc.save(out / "demo.comic")}
    written["pdf"] = export_to(doc, out / "demo.pdf", progress=progress, warn=warn)
    written["cbz"] = export_to(doc, out / "demo.cbz", progress=progress, warn=warn)
    written["pages"] = export_to(doc, out / "pages", dpi=150, progress=progress, warn=warn)
    return written

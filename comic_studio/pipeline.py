"""Story → document → rendered, lettered pages → files: the authoring loop without a window.

The CLI (``demo``, ``render``, ``parse``) and the desktop app share these functions. Every change to
a document goes through commands, so what the app does with them is undoable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from comic_studio import identity_anchors
from comic_studio.core.assets import AssetStore
from comic_studio.core.character_file import load_characters
from comic_studio.core.commands import Compound, InsertItem, ReplaceList, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import auto_layout, bbox, page_format
from comic_studio.core.lettering import place_balloons
from comic_studio.core.model import (
    Beat,
    Character,
    DialogueKind,
    Balloon,
    BalloonKind,
    Panel,
    PanelResult,
    Project,
    ReadingDirection,
)
from comic_studio.core.resources import resource
from comic_studio.parsing.files import read_story
from comic_studio.generation.request import (
    GenerationRequest,
    GenerationResult,
    RequestCharacter,
    StepCallback,
    data_uri_bytes,
    png_data_uri,
)

Progress = Callable[[str, int, int], None]
Cancel = Callable[[], bool]

MAX_RENDER_SIDE = 1536
"""Longest side, in pixels, of a panel render: enough for print at the page DPI after the
exporter's resampling, small enough that the storyboard stays interactive."""

DEMO_STORY = ("samples", "lighthouse_key.txt")
DEMO_CHARACTERS = ("samples", "lighthouse_key.characters.json")

_BALLOON_KIND = {
    DialogueKind.SPEECH: BalloonKind.SPEECH,
    DialogueKind.THOUGHT: BalloonKind.THOUGHT,
    DialogueKind.SHOUT: BalloonKind.SHOUT,
    DialogueKind.WHISPER: BalloonKind.WHISPER,
}


def _no_progress(label: str, done: int, total: int) -> None:
    return None


# --------------------------------------------------------------------------- story → document


def story_to_document(
    text: str,
    characters: list[Character],
    *,
    title: str = "Untitled comic",
    parser: str = "rules",
    preset: str = "us-comic",
    direction: ReadingDirection = ReadingDirection.LTR,
    document: Document | None = None,
) -> Document:
    """Parse ``text`` and lay its beats out on pages (one undoable "Lay out story" step)."""
    from comic_studio.parsing import parse, promote_suggestions

    # Proper names the library does not know become characters (the author can merge them later).
    parsed, created = promote_suggestions(parse(text, characters, parser=parser), characters)
    characters = [*characters, *created]
    if document is None:
        title = parsed.title.title() if parsed.title else title
        document = Document.new(title, page_format(preset))
        document.project.reading_direction = direction  # a brand-new document: nothing to undo yet
    doc = document
    project = doc.project
    scenes = parsed.scenes
    pages = auto_layout(scenes, project.page_format, project.reading_direction)
    doc.execute(
        Compound(
            "Lay out story",
            [
                ReplaceList(("characters",), characters, "Characters"),
                SetFields(("story",), "Story", text=text, scenes=scenes),
                ReplaceList(("pages",), pages, "Pages"),
            ],
        )
    )
    return doc


# --------------------------------------------------------------------------- panels → images


def panel_pixel_size(project: Project, panel: Panel) -> tuple[int, int]:
    box = bbox(panel.shape)
    scale = project.page_format.dpi / 72
    w, h = box.w * scale, box.h * scale
    shrink = min(1.0, MAX_RENDER_SIDE / max(w, h, 1))
    return max(16, round(w * shrink)), max(16, round(h * shrink))


def panel_seed(panel: Panel) -> int:
    """The panel's seed: its own when set, else derived from its id (stable across runs)."""
    if panel.seed is not None:
        return panel.seed
    return int.from_bytes(hashlib.sha256(panel.id.encode()).digest()[:4], "big")


def build_prompt(project: Project, panel: Panel, beat: Beat | None) -> str:
    if panel.prompt:
        return panel.prompt
    # Sentence punctuation would read as "…of tea., Theo Okafor: …" once the parts are joined.
    parts = [beat.action.rstrip(" .!?;:,") if beat else ""]
    for placement in panel.characters:
        character = project.character(placement.character_id)
        if character and character.description:
            parts.append(f"{character.name}: {character.description}")
    if panel.setting:
        parts.append(panel.setting)
    style = project.active_style()
    if style and style.prompt_suffix:
        parts.append(style.prompt_suffix)
    return ", ".join(p for p in parts if p)


def build_request(project: Project, panel: Panel, backend: str | None = None, assets: AssetStore | None = None) -> GenerationRequest:
    """Snapshot everything a backend needs for ``panel`` (the backend never reads the document).

    With ``assets``, a backend that declares ``needs_reference_images`` also gets the characters'
    reference images inline (:func:`hydrate_request`); without, the request only names them."""
    beat = project.story.beat(panel.beat_id) if panel.beat_id else None
    width, height = panel_pixel_size(project, panel)
    characters = []
    for placement in panel.characters:
        character = project.character(placement.character_id)
        if character is None:
            continue
        characters.append(
            RequestCharacter(
                id=character.id,
                name=character.name,
                colour=character.colour,
                description=character.description,
                face_refs=character.face_refs,
                body_refs=character.body_refs,
                # Once a render (or the author) has placed the character, the figure assignment
                # is pinned so regenerating keeps who-is-who; before that the backend assigns.
                figure=placement.figure if placement.head is not None else None,
                face_scale=character.face_scale,
                body_scale=character.body_scale,
            )
        )
    style = project.active_style()
    name = backend or panel.backend or project.default_backend
    settings = panel.backend_settings if name == panel.backend else {}
    if identity_anchors.uses_identity_banks(name):
        # Characters with an anchor: name their banks (hashes only; hydrate_request adds the folder).
        settings = identity_anchors.with_anchor_banks(settings, project, [c.id for c in characters])
    request = GenerationRequest(
        backend=name,
        backend_settings=settings,
        width=width,
        height=height,
        seed=panel_seed(panel),
        prompt=build_prompt(project, panel, beat),
        negative_prompt=panel.negative_prompt or (style.negative if style else ""),
        shot=panel.shot,
        setting=panel.setting or (beat.setting if beat else ""),
        time_of_day=beat.time_of_day if beat else "",
        action=beat.action if beat else "",
        characters=characters,
        actor_id=beat.actor_id if beat else None,
        target_id=beat.target_id if beat else None,
        pose_id=panel.pose_id,
        figures_override=panel.pose,
        panel_id=panel.id,
    )
    return hydrate_request(request, assets) if assets is not None else request


# --------------------------------------------------------------------------- inline images in requests
# Backends never read the document, so images they need travel inside the request: reference images
# in the ``reference_images`` setting, an init image as a data URI. Stored requests
# (``PanelResult.request``) must stay small, so before storing, those images are replaced by what
# names them in the asset store (the reference hashes are already in the request's characters; an
# inline image becomes ``asset:<hash>``), and :func:`hydrate_request` puts them back for a replay.

REFERENCE_SETTING = "reference_images"
ASSET_PREFIX = "asset:"
_ASSET_VALUE = re.compile(r"^asset:([0-9a-f]{64})$")
_INLINE_MIN = 1024
"""Data URIs shorter than this stay in a stored request (not worth an asset)."""


def backend_needs_references(name: str) -> bool:
    """Whether the installed backend ``name`` wants reference images inline (False if unknown)."""
    from comic_studio.generation.registry import get_backend_class

    try:
        return bool(get_backend_class(name).needs_reference_images)
    except (ComicStudioError, KeyError):
        return False


def reference_hashes(request: GenerationRequest) -> list[str]:
    """Every face/body reference of the request's characters, in order, without repeats."""
    return list(dict.fromkeys(h for c in request.characters for h in (*c.face_refs, *c.body_refs)))


def _asset_bytes(assets: AssetStore, digest: str, what: str) -> bytes:
    if digest not in assets:
        raise ComicStudioError(f"{what} {digest[:12]}… is not in this project's assets (was its image removed?)")
    return assets.get(digest)


def hydrate_request(request: GenerationRequest, assets: AssetStore) -> GenerationRequest:
    """``request`` ready to run: ``asset:<hash>`` settings become data URIs, and a backend that
    ``needs_reference_images`` gets every character reference in its ``reference_images``
    setting (replacing whatever was there), and a consistent-character backend gets this machine's
    bank folder with the identity banks the project carries written into it. Raises
    :class:`ComicStudioError` naming a missing asset."""
    settings = dict(request.backend_settings)
    for key, value in settings.items():
        match = _ASSET_VALUE.match(value) if isinstance(value, str) else None
        if match:
            settings[key] = png_data_uri(_asset_bytes(assets, match.group(1), f"setting {key!r}: image"))
    if backend_needs_references(request.backend):
        refs = {h: png_data_uri(_asset_bytes(assets, h, "reference image")) for h in reference_hashes(request)}
        if refs:
            settings[REFERENCE_SETTING] = json.dumps(refs)
        else:
            settings.pop(REFERENCE_SETTING, None)
    if identity_anchors.uses_identity_banks(request.backend):
        # This machine's bank folder, with the banks the project carries written out into it.
        settings[identity_anchors.BANK_FOLDER_SETTING] = str(identity_anchors.materialise_banks(settings, assets))
    return request.model_copy(update={"backend_settings": settings})


def dehydrate_request(request: GenerationRequest, assets: AssetStore) -> GenerationRequest:
    """The inverse of :func:`hydrate_request`, for storing: no ``reference_images`` payload, no bank
    folder, and inline image data URIs replaced by ``asset:<hash>`` (added to ``assets`` if not
    there yet)."""
    settings = dict(request.backend_settings)
    settings.pop(REFERENCE_SETTING, None)
    if identity_anchors.uses_identity_banks(request.backend):
        settings.pop(identity_anchors.BANK_FOLDER_SETTING, None)  # a path of this machine; hydrate sets it
    for key, value in settings.items():
        if isinstance(value, str) and len(value) >= _INLINE_MIN and value.startswith("data:") and ";base64," in value[:100]:
            try:
                data = data_uri_bytes(value)
            except ValueError:
                continue  # not ours to interpret: the backend validated it; keep it as it was
            settings[key] = ASSET_PREFIX + assets.add(data, validate_image=False)
    return request.model_copy(update={"backend_settings": settings})


def render_panel(doc: Document, panel_id: str, backend: str | None = None, on_step: StepCallback | None = None) -> PanelResult:
    """Generate one panel synchronously and record the result (an undoable "Render panel" step).
    The app does the same in two halves: the engine generates on its worker thread, then
    :func:`record_result` runs on the GUI thread."""
    from comic_studio.generation.registry import get_backend

    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} does not exist")
    request = build_request(doc.project, found[1], backend, doc.assets)
    if identity_anchors.uses_identity_banks(request.backend):
        # Banks the project does not carry (too big for it) are rebuilt first; one that came out
        # different (another device) is recorded on its character, so the request names it anew.
        if identity_anchors.rebuild_missing_banks(doc, [c.id for c in request.characters]):
            request = build_request(doc.project, found[1], backend, doc.assets)
    engine = get_backend(request.backend)
    request = request.model_copy(update={"backend_settings": engine.validate_settings(request.backend_settings)})
    return record_result(doc, panel_id, request, engine.generate(request, on_step))


def record_result(
    doc: Document, panel_id: str, request: GenerationRequest, generated: GenerationResult, png: bytes | None = None
) -> PanelResult:
    """Store a generated image in the panel's history and show it (one undoable step).

    ``png``: the image already encoded (the engine encodes on its worker thread so the GUI thread
    does not spend ~100 ms in the PNG encoder)."""
    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} was deleted while it was rendering")
    panel = found[1]
    asset = doc.assets.add(png, validate_image=False) if png else doc.assets.add_image(generated.image)
    # Store the *effective* request: the pose and figure assignment the backend chose are pinned,
    # so replaying it reproduces this image even after the pose library changes its ranking.
    figures = {p.character_id: p.figure for p in generated.heads}
    effective = request.model_copy(
        update={
            "pose_id": generated.pose_id or request.pose_id,
            "characters": [c.model_copy(update={"figure": figures.get(c.id, c.figure)}) for c in request.characters],
            "backend_settings": generated.settings or request.backend_settings,
        }
    )
    effective = dehydrate_request(effective, doc.assets)
    result = PanelResult(
        asset=asset,
        backend=generated.backend,
        seed=generated.seed,
        request=effective.to_dict(),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        heads=generated.heads,
    )
    placements = {p.character_id: p for p in generated.heads}
    characters = [placements.get(p.character_id, p) for p in panel.characters]
    doc.execute(
        Compound(
            "Render panel",
            [
                InsertItem(("results", panel.id), result, text="Add result"),
                SetFields(("panel", panel.id), "Show result", current_result=result.id, seed=generated.seed, characters=characters),
            ],
        )
    )
    return result


def lettering_lines(beat: Beat) -> list[tuple[BalloonKind, str, str | None]]:
    """What a panel's balloons say: the beat's caption first, then its dialogue in order."""
    lines = [(_BALLOON_KIND[line.kind], line.text, line.speaker_id) for line in beat.dialogue]
    if beat.caption:
        lines.insert(0, (BalloonKind.CAPTION, beat.caption, None))
    return lines


def plan_lettering(project: Project, panel: Panel) -> list[Balloon] | None:
    """The panel's balloons after automatic lettering (hand-moved balloons kept, automatic ones
    placed afresh), or None when there is nothing to do. Pure: safe on a copy in a worker thread."""
    beat = project.story.beat(panel.beat_id) if panel.beat_id else None
    if beat is None:
        return None
    lines = lettering_lines(beat)
    if not lines and not any(b.auto_placed for b in panel.balloons):
        return None
    kept = [b for b in panel.balloons if not b.auto_placed]
    return kept + (place_balloons(panel, lines, project) if lines else [])


def apply_lettering(doc: Document, panel_id: str, balloons: list[Balloon]) -> None:
    """Store planned balloons as one undoable "Letter panel" step."""
    doc.execute(ReplaceList(("balloons", panel_id), balloons, "Letter panel"))


def letter_panel(doc: Document, panel_id: str) -> int:
    """Place balloons for the panel's beat (dialogue + caption), replacing earlier automatic ones.
    Balloons the author moved by hand stay. Returns the number of automatic balloons placed; no
    undo step when there is nothing to letter."""
    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} does not exist")
    balloons = plan_lettering(doc.project, found[1])
    if balloons is None:
        return 0
    apply_lettering(doc, panel_id, balloons)
    return sum(1 for b in balloons if b.auto_placed)


def render_document(
    doc: Document,
    backend: str | None = None,
    *,
    only_missing: bool = True,
    progress: Progress = _no_progress,
    cancel: Cancel | None = None,
) -> int:
    """Render (and letter) every panel, page by page in reading order. Returns panels rendered."""
    from comic_studio.generation.registry import get_backend

    panels = [panel for page in doc.project.pages for panel in page.panels_in_order()]
    todo = [p for p in panels if not (only_missing and p.result())]
    requests = [build_request(doc.project, p, backend) for p in todo]
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


# --------------------------------------------------------------------------- files


def export_to(doc: Document, out: Path, *, dpi: int | None = None, trim_marks: bool = False, progress: Progress = _no_progress) -> Path:
    """Write ``out``: ``.pdf`` → PDF, ``.cbz`` → CBZ, anything else → a folder of PNG pages."""
    from comic_studio.export import export_cbz, export_pdf, export_pngs

    suffix = out.suffix.lower()
    if suffix == ".pdf":
        export_pdf(doc.project, doc.assets, out, dpi=dpi, trim_marks=trim_marks, progress=lambda d, t: progress("pdf", d, t))
    elif suffix == ".cbz":
        export_cbz(doc.project, doc.assets, out, dpi=dpi, progress=lambda d, t: progress("cbz", d, t))
    elif suffix in ("", ".png") or out.is_dir():
        export_pngs(doc.project, doc.assets, out, dpi=dpi, progress=lambda d, t: progress("png", d, t))
    else:
        raise ComicStudioError(f"{out}: unknown output type {suffix!r}; use .pdf, .cbz or a folder for PNG pages")
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
) -> Path:
    """``comic-studio render``: a project or a story file in, PDF/CBZ/PNGs out. Panels without an
    image are rendered; with ``rerender`` every panel is (earlier images stay in its history)."""
    if input_path.suffix.lower() == ".comic":
        doc = Document.open(input_path)
    else:
        text = read_story(input_path)
        if characters_file:
            characters = load_characters(characters_file)
        else:
            from comic_studio.parsing import infer_characters

            characters = infer_characters(text)
        doc = story_to_document(text, characters, title=input_path.stem.replace("_", " ").title(), parser=parser, preset=preset)
    render_document(doc, backend, only_missing=not rerender, progress=progress)
    if save_project_to:
        doc.save(save_project_to)
    return export_to(doc, out, dpi=dpi, trim_marks=trim_marks, progress=progress)


def run_demo(out: Path, backend: str = "storyboard", progress: Progress = _no_progress) -> dict[str, Path]:
    """The bundled sample story through parser → auto-layout → backend → lettering → all outputs."""
    out.mkdir(parents=True, exist_ok=True)
    doc = Document.new("The Lighthouse Key", page_format("us-comic"))
    doc.project.series, doc.project.number, doc.project.author = "Comic Studio Samples", "1", "Comic Studio"
    characters = load_characters(resource(*DEMO_CHARACTERS), doc.assets)
    story_to_document(read_story(resource(*DEMO_STORY)), characters, document=doc)
    render_document(doc, backend, progress=progress)
    written = {"project": doc.save(out / "demo.comic")}
    written["pdf"] = export_to(doc, out / "demo.pdf", progress=progress)
    written["cbz"] = export_to(doc, out / "demo.cbz", progress=progress)
    written["pages"] = export_to(doc, out / "pages", dpi=150, progress=progress)
    return written

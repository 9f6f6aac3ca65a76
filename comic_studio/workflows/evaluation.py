"""``comic-studio eval``: render chosen panels with several backends at the panels' seeds, score every
render (:mod:`comic_studio.evaluation`) and write the report.

Each render goes through :func:`~comic_studio.workflows.batch.render_panel`, the ``render`` command's
path (requests, identity banks, the effective request stored in the history). The panels keep showing
what they showed before: renders are added to the history only. With ``dry`` the caller simply does
not save the document.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.commands import Command, Compound, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.lookup import find_panel, panel_label
from comic_studio.core.model import Panel, Project
from comic_studio.core.safe_read import decode_image
from comic_studio.evaluation import metrics
from comic_studio.evaluation.report import (
    BackendEntry,
    CharacterBackend,
    CharacterEntry,
    CharacterInPanel,
    EvalReport,
    EvalSettings,
    PanelEntry,
    PanelRun,
    PoseEntry,
    thumbnail_png,
    write_report,
)
from comic_studio.evaluation.scoring import PanelScore, Scorer
from comic_studio.generation.request import GenerationRequest
from comic_studio.workflows.batch import render_panel
from comic_studio.workflows.requests import build_request, check_image_settings

Progress = Callable[[str, int, int], None]
MAX_BACKENDS = 8


def select_panels(project: Project, spec: str | None) -> list[Panel]:
    """Panels named by ``spec``: comma-separated panel ids, ``PAGE.PANEL`` (1-based) or ``PAGE`` (a
    whole page); None or ``all``: every panel in reading order."""
    pages = project.pages
    if not spec or spec.strip().lower() == "all":
        return [p for page in pages for p in page.panels_in_order()]
    chosen: dict[str, Panel] = {}
    for part in (s.strip() for s in spec.split(",")):
        if not part:
            continue
        if part.isdigit():
            n = int(part)
            if not 1 <= n <= len(pages):
                raise ComicStudioError(f"--panels {part}: there is no page {n} (the project has {len(pages)})")
            chosen.update((p.id, p) for p in pages[n - 1].panels_in_order())
        else:
            panel = find_panel(project, part)
            chosen[panel.id] = panel
    if not chosen:
        raise ComicStudioError(f"--panels {spec!r} names no panel")
    return list(chosen.values())


def parse_backends(spec: str) -> list[str]:
    from comic_studio.generation.registry import available_backends

    names = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    if not names:
        raise ComicStudioError("--backends names no backend (e.g. --backends storyboard,sdxl)")
    if len(names) > MAX_BACKENDS:
        raise ComicStudioError(f"--backends: at most {MAX_BACKENDS} methods are compared at once, got {len(names)}")
    known = available_backends()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ComicStudioError(f"unknown backend(s) {', '.join(unknown)}; installed: {', '.join(sorted(known))}")
    return names


@dataclass
class Collected:
    """Per (backend, character): the cut-out figures' features (AP-CLIP-I) and CLIP-I values, over
    the panels scored so far (``eval`` and the app's "Compare on this page / character")."""

    features: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict)
    clip_i: dict[tuple[str, str], list[float | None]] = field(default_factory=dict)

    def add(self, backend: str, score: PanelScore) -> None:
        """One panel's render by ``backend``: each character's figure and CLIP-I."""
        for c in score.characters:
            key = (backend, c.character_id)
            if c.feature is not None:
                self.features.setdefault(key, []).append(c.feature)
            self.clip_i.setdefault(key, []).append(c.clip_i)


def evaluate(doc: Document, panels: Sequence[Panel], backends: Sequence[str], scorer: Scorer, out: Path, *,
             project_name: str, clip_model: str, dry: bool, progress: Progress | None = None,
             face_note: str = "") -> tuple[EvalReport, Path, Path]:  # fmt: skip
    """Render ``panels`` with each of ``backends``, score them, write ``out/report.json``,
    ``out/report.html`` and the renders under ``out/images/``. Returns (report, json, html)."""
    from comic_studio.generation.registry import get_backend

    started = time.perf_counter()
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    shown = {p.id: (p.current_result, p.seed, list(p.characters)) for p in panels}
    entries = {
        p.id: PanelEntry(panel_id=p.id, label=panel_label(doc.project, p.id), prompt="", runs=[]) for p in panels
    }
    thumbnails: dict[str, bytes] = {}
    collected = Collected()
    summaries = []
    total, done = len(panels) * len(backends), 0
    for backend in backends:
        requests = [build_request(doc.project, p, backend) for p in panels]
        for panel, request in zip(panels, requests):
            check_image_settings(request, panel_label(doc.project, panel.id))
        get_backend(backend).prepare(requests)  # the batch warm-up the render command does too
        runs: list[PanelRun] = []
        settings: dict = {}
        for panel in panels:
            if progress:
                progress(f"eval {backend}", done, total)
            run, used = _render_and_score(doc, panel, backend, scorer, images, thumbnails, collected)
            if used is not None:
                settings = settings or dict(used.backend_settings)
                entries[panel.id].prompt = entries[panel.id].prompt or used.prompt
            entries[panel.id].runs.append(run)
            runs.append(run)
            done += 1
        summaries.append(_backend_entry(backend, settings, runs, collected))
    if progress:
        progress("eval", total, total)
    _keep_shown_results(doc, shown)
    characters = character_entries(doc.project, backends, collected)
    for summary in summaries:
        summary.ap_clip_i = metrics.mean_or_none(
            cb.ap_clip_i for c in characters for cb in c.backends if cb.backend == summary.backend
        )
    report = EvalReport(
        project=project_name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        settings=EvalSettings(
            clip_model=clip_model,
            clip_cache_key=scorer.embedder.cache_key,
            segmentation=scorer.options.segmentation,
            pose_detector=scorer.options.pose_detector,
            pose_detector_used=scorer.detector,
            face_similarity=scorer.face_embedder is not None,
            face_similarity_note=face_note,
            dry=dry,
        ),  # fmt: skip
        backends=summaries,
        panels=list(entries.values()),
        characters=characters,
        wall_seconds=time.perf_counter() - started,
    )
    json_path, html_path = write_report(report, out, thumbnails)
    return report, json_path, html_path


def _render_and_score(doc: Document, panel: Panel, backend: str, scorer: Scorer, images: Path,
                      thumbnails: dict[str, bytes], collected: Collected) -> tuple[PanelRun, GenerationRequest | None]:  # fmt: skip
    label = panel_label(doc.project, panel.id)
    t0 = time.perf_counter()
    try:
        result = render_panel(doc, panel.id, backend)
    except ComicStudioError as exc:  # one method failing on one panel does not end the comparison
        return PanelRun(backend=backend, image=None, error=str(exc)), None
    render_seconds = time.perf_counter() - t0
    png = doc.assets.get(result.asset)
    image = decode_image(png, where=f"{label} ({backend})")
    name = f"images/{panel.id}-{backend}.png"
    atomic_write_bytes(images.parent / name, png, "evaluation render")
    thumbnails[name] = thumbnail_png(image)
    request = GenerationRequest.from_dict(result.request)
    score = scorer.score_panel(image, request, references_of(doc, request))
    return _panel_run(doc.project, backend, name, result.asset, result.seed, render_seconds, score, collected), request


def references_of(doc: Document, request: GenerationRequest) -> dict[str, list]:
    """Character id → its reference pictures (face and body), decoded from the project's assets."""
    out = {}
    for rc in request.characters:
        character = doc.project.character(rc.id)
        if character is None:
            continue
        hashes = list(dict.fromkeys((*character.face_refs, *character.body_refs)))
        out[rc.id] = [decode_image(doc.assets.get(h), where=f"{character.name}'s reference {h[:12]}") for h in hashes]
    return out


def _name(project: Project, character_id: str) -> str:
    character = project.character(character_id)
    return character.name if character else character_id


def _panel_run(project: Project, backend: str, image: str, asset: str, seed: int, render_seconds: float,
               score: PanelScore, collected: Collected) -> PanelRun:  # fmt: skip
    collected.add(backend, score)
    characters = []
    for c in score.characters:
        pose = None if c.pose is None else PoseEntry(found=c.pose.found, akd=c.pose.akd, mkr=c.pose.mkr)
        characters.append(CharacterInPanel(character_id=c.character_id, name=_name(project, c.character_id),
                                           clip_i=c.clip_i, face_similarity=c.face_similarity, pose=pose,
                                           cutout=c.cutout))  # type: ignore[arg-type]  # fmt: skip
    return PanelRun(backend=backend, image=image, asset=asset, seed=seed, render_seconds=render_seconds,
                    metric_seconds=score.seconds, clip_t=score.clip_t, characters=characters)  # fmt: skip


def _backend_entry(backend: str, settings: dict, runs: list[PanelRun], collected: Collected) -> BackendEntry:
    ok = [r for r in runs if r.error is None]
    poses = [c.pose for r in ok for c in r.characters if c.pose is not None]
    return BackendEntry(
        backend=backend, settings=settings, panels=len(ok), failed=len(runs) - len(ok),
        render_seconds=sum(r.render_seconds or 0.0 for r in ok),
        metric_seconds=sum(r.metric_seconds or 0.0 for r in ok),
        clip_t=metrics.mean_or_none(r.clip_t for r in ok),
        clip_i=metrics.mean_or_none(c.clip_i for r in ok for c in r.characters),
        ap_clip_i=None,  # filled once every character's value is known
        akd=metrics.mean_or_none(p.akd for p in poses),
        mkr=metrics.mean_or_none(p.mkr for p in poses),
        pose_fail_rate=(sum(not p.found for p in poses) / len(poses)) if poses else None,
        face_similarity=metrics.mean_or_none(c.face_similarity for r in ok for c in r.characters),
    )  # fmt: skip


def character_entries(project: Project, backends: Sequence[str], collected: Collected) -> list[CharacterEntry]:
    """Per character, per backend: panels, mean CLIP-I and AP-CLIP-I (with why it is undefined)."""
    ids = list(dict.fromkeys(cid for (_b, cid) in collected.clip_i))
    out = []
    for cid in ids:
        rows = []
        for backend in backends:
            values = collected.clip_i.get((backend, cid))
            if values is None:
                continue
            features = collected.features.get((backend, cid), [])
            ap = metrics.ap_clip_i(features)
            note = "" if ap is not None else (
                f"undefined: in {len(features)} rendered panel(s); AP-CLIP-I needs at least two"
            )  # fmt: skip
            rows.append(CharacterBackend(backend=backend, panels=len(values), mean_clip_i=metrics.mean_or_none(values),
                                         ap_clip_i=ap, ap_clip_i_note=note))  # fmt: skip
        out.append(CharacterEntry(character_id=cid, name=_name(project, cid), backends=rows))
    return out


def _keep_shown_results(doc: Document, shown: dict[str, tuple]) -> None:
    """Put back what each panel showed: the renders stay in the history, the author's pick stays shown."""
    steps: list[Command] = []
    for panel_id, (current, seed, characters) in shown.items():
        found = doc.project.find_panel(panel_id)
        if found is None or found[1].current_result == current:
            continue
        steps.append(SetFields(("panel", panel_id), "Show result", current_result=current, seed=seed,
                               characters=characters))  # fmt: skip
    if steps:
        doc.execute(Compound("Keep the shown results after evaluation", steps))

"""The GUI side of the generation engine: turn panels into jobs, follow them, record the results.

``RenderService`` builds a :class:`GenerationRequest` per panel (``workflows.requests.build_request``),
submits it to the :class:`~comic_studio.generation.engine.Engine` and follows the job through the
:class:`~comic_studio.ui.engine_bridge.EngineBridge`, which delivers every message on the GUI
thread. On FINISHED it records the result (``workflows.results.record_result``, one undoable step; the
image was already PNG-encoded on the worker, so the GUI thread never encodes or decodes it) and
letters the panel: the balloon placement is computed on a helper thread and applied as one
"Letter panel" step, the same balloons ``workflows.lettering.letter_panel`` would place (it takes 15-50 ms,
too long for the GUI thread while a queue runs).

The engine is created lazily on first use and never imports torch itself (backends import it when
they run), so building the main window stays cheap. The panels of the page the user is looking at
run first: they get :attr:`RenderService.PAGE_BOOST` on top of their priority, and queued jobs are
re-prioritised when the user turns to another page.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.lettering import place_balloons
from comic_studio.core.lettering.grow import house_style
from comic_studio.core.model import Balloon, Beat, Panel, Project
from comic_studio.generation.backend_api import MissingCharacterTraining
from comic_studio.generation.request import GenerationRequest
from comic_studio.ui.anchor_jobs import ANCHOR_PRIORITY, AnchorJobs
from comic_studio.ui.background import BackgroundJobs, wait_painting
from comic_studio.ui.context import StudioContext
from comic_studio.ui.images import pil_to_qimage
from comic_studio.ui.training_jobs import TrainingJobs
from comic_studio.workflows.lettering import apply_lettering, letter_panel, lettering_lines
from comic_studio.workflows.readiness import Readiness, backend_readiness, missing_models_text
from comic_studio.workflows.requests import build_request, hydrate_request, panel_pixel_size, panel_seed
from comic_studio.workflows.results import record_comparison, record_comparisons, record_result
from comic_studio.workflows.standardize import record_standard_sheet, standardize_request
from comic_studio.workflows.tryon import tryon_request

MAX_COMPARED = 6
"""Methods one "Compare methods…" group renders side by side."""
PREVIEW_SIDE = 256
"""Longest side of the live preview kept per job: enough for the panel on the page canvas at a
working zoom (the canvas scales it up smoothly); the queue scales it down to its thumbnail."""


@dataclass
class RenderJob:
    """What the queue panel shows for one job. ``state`` is a :class:`JobEvent` value string:
    "queued", "started", "progress" or "error" (finished and cancelled jobs leave the list)."""

    job_id: str
    panel_id: str | None
    label: str
    document: Document
    base_priority: int = 0
    state: str = "queued"
    step: int = 0
    total: int = 0
    elapsed: float = 0.0
    eta: float | None = None
    preview: QImage | None = None
    error: str = ""
    detail: str = ""
    regenerate: bool = False
    anchor_for: str | None = None
    """An identity-anchor job of this character (``panel_id`` is None)."""
    expected_bank: str | None = None
    """For an anchor job that rebuilds a missing bank: the bank hash it should reproduce."""
    sheet_for: str | None = None
    """A standard-sheet job (SerialGen's stage 1) of this character (``panel_id`` is None)."""
    batch: tuple[str, int] | None = None
    """The merge key its result and lettering share with the rest of its request (one undo step)."""
    step_label: str = "Render panel"
    kind: str = "render"
    """"render", or a task job's kind (``"train-lora"``: :class:`~comic_studio.ui.training_jobs.TrainingJobs`)."""
    info: dict[str, Any] = field(default_factory=dict)
    """A task job's newest figures (training: loss, lr, steps_per_second)."""

    @property
    def is_task(self) -> bool:
        return self.kind != "render"

    comparison: str | None = None
    """A "Compare methods" job: its result waits in that :class:`Comparison` instead of the history."""

    @property
    def active(self) -> bool:
        return self.state != "error"

    @property
    def running(self) -> bool:
        return self.state in ("started", "progress")


@dataclass
class CompareCell:
    """One method's render in a comparison (kept out of the history until the author picks)."""

    backend: str
    request: GenerationRequest
    result: Any = None
    png: bytes | None = None
    seconds: float = 0.0
    error: str = ""


@dataclass
class Comparison:
    """One "Compare methods…" group: the same panel and seed, one job per backend."""

    group_id: str
    panel_id: str
    seed: int
    cells: dict[str, CompareCell]
    jobs: dict[str, str] = field(default_factory=dict)
    """Job id → backend."""
    kept: str | None = None

    @property
    def done(self) -> bool:
        return all(c.result is not None or c.error for c in self.cells.values())


@dataclass
class ComparisonSet:
    """ "Compare on this page / character": one :class:`Comparison` per panel (each at its own seed),
    queued together; the picks are kept as one undo step (:meth:`RenderService.keep_comparisons`)."""

    set_id: str
    title: str
    comparisons: list[Comparison]
    kept: dict[str, str] | None = None
    """Panel id → the backend kept there, once kept."""

    @property
    def done(self) -> bool:
        return all(g.done for g in self.comparisons)

    def panel(self, panel_id: str) -> Comparison | None:
        return next((g for g in self.comparisons if g.panel_id == panel_id), None)


class RenderService(QObject):
    """Render queue front end shared by the inspector, the canvas menus and the queue panel."""

    jobs_changed = Signal()
    """Jobs were added or removed, or a job changed state (queued → running → error)."""
    job_message = Signal(object)
    """Every :class:`JobMessage` of this service's jobs, after the service handled it."""
    panel_rendered = Signal(str, str)
    """``(panel_id, result_id)`` once a result is recorded in the document."""
    idle = Signal()
    """Nothing is queued, running or being lettered any more."""
    loras_missing = Signal(list)
    """``[(character_id, name), …]``: panels were not queued because their backend draws every
    character with its trained LoRA (StoryBooth) and these have none; the window offers training."""
    identities_missing = Signal(list)
    """``[(character_id, name), …]``: likewise for a backend that needs every character's learned
    identity tokens (StableIdentity); the window offers Train identity…."""
    models_missing = Signal(str)
    """Panels were not queued because their backends lack models: the whole story in words (every
    backend, every model, the total size). The window offers the Models dialog."""
    comparison_changed = Signal(str)
    """A comparison's render finished or failed (its group id)."""

    PAGE_BOOST = 5

    def __init__(self, ctx: StudioContext, engine: Any = None, parent: QObject | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self._engine = engine
        self._owns_engine = engine is None
        self._engine_settings: Any = None  # EngineSettings for the engine made on first use
        self._bridge: Any = None
        self._jobs: dict[str, RenderJob] = {}
        self.comparisons: dict[str, Comparison] = {}
        self.comparison_sets: dict[str, ComparisonSet] = {}
        self._last_problem = ""
        self._previews: dict[str, QImage] = {}
        self._previews_lock = threading.Lock()
        self._unsubscribe_previews: Any = None
        self._boosted_page: str | None = ctx.current_page_id
        self._closed = False
        self._batches = 0
        self._cluster: tuple[str, int] | None = None  # (address, workers): render on a Ray cluster
        self._engine_target: tuple[str, int] | None = None  # the target the current engine was made for
        self.cluster_fallback: Any = None
        """``(message) -> bool``, asked on the GUI thread when the cluster cannot be used (unreachable,
        versions differ): True renders on this machine instead (until the preferences change), False
        queues nothing. None: nothing is queued."""
        self.model_places: Any = None
        """Where models are looked for (``weights.locate.Places``); None: from the Preferences."""
        self._lettering = BackgroundJobs(self, "lettering")
        self._lettering.start_worker()  # now, at idle: not on the GUI thread inside the first render
        self._jobs_change_pending = False
        self.anchors = AnchorJobs(self)
        self.training = TrainingJobs(self)
        if engine is not None:
            self._connect_bridge(engine)
        ctx.selection_changed.connect(self._follow_current_page)
        ctx.document_replaced.connect(self._document_replaced)

    # ------------------------------------------------------------------ engine
    @property
    def engine(self):
        """The engine, created on first use (its worker thread starts then); made again on the
        render target the preferences chose since, once nothing is waiting or running."""
        if self._engine is not None and self._engine_target != self._cluster and self._owns_engine:
            if not any(j.active for j in self._jobs.values()):
                self._drop_engine()
        if self._engine is None:
            if self._closed:
                raise ComicStudioError("the render service has been shut down")
            self._engine = self._cluster_engine() if self._cluster else None
            if self._engine is None:
                from comic_studio.generation.engine import Engine

                self._engine = Engine(self._engine_settings)
            self._engine_target = self._cluster  # None after a fallback: this session renders here
            self._connect_bridge(self._engine)
        return self._engine

    def set_render_target(self, address: str = "", workers: int = 0) -> None:
        """Render on the Ray cluster at ``address`` (``workers`` there; 0: one per GPU), or on this
        machine (empty address). The engine follows on its next use when no job is waiting or
        running (a running book is not moved mid-way)."""
        target = (address.strip(), int(workers)) if address.strip() else None
        if target == self._cluster:
            return
        self._cluster = target  # the engine follows on its next use (see :attr:`engine`)

    def _drop_engine(self) -> None:
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None
        if self._unsubscribe_previews is not None:
            self._unsubscribe_previews()
            self._unsubscribe_previews = None
        engine, self._engine = self._engine, None
        wait_painting(engine.shutdown)  # a cluster's workers take a moment to stop: the window paints

    def _cluster_lacks(self, panel: Panel) -> str | None:
        """What the cluster's workers lack to render ``panel`` ("" when nothing), asked of every worker
        while the window paints; None when this session renders here after all (fallback)."""
        from comic_studio.generation.cluster import ClusterError
        from comic_studio.workflows.cluster_probe import check_worker_models

        engine = self.engine  # connects on first use
        if not hasattr(engine, "call_workers"):
            return None
        probe = GenerationRequest(backend=panel.backend, width=64, height=64, backend_settings=panel.backend_settings)
        try:
            wait_painting(check_worker_models, engine, [probe])
        except ClusterError as exc:
            return str(exc)
        return ""

    def _cluster_engine(self) -> Any:
        """A :class:`ClusterEngine` on the configured cluster (connecting while the window paints), or
        None when the user chose to render here instead; raises when the user chose neither."""
        from comic_studio.generation.cluster import ClusterEngine, ClusterError, parse_cluster_address

        assert self._cluster is not None
        address, workers = self._cluster
        try:
            where, count = parse_cluster_address(address)
            self.ctx.message.emit(f"Connecting to the render cluster at {address}…")
            return wait_painting(lambda: ClusterEngine(where, workers=workers or count, settings=self._engine_settings))
        except ClusterError as exc:
            message = f"Cannot render on the cluster at {address}: {exc}"
            if self.cluster_fallback is not None and self.cluster_fallback(message):
                self._cluster = None  # this session renders here; the preferences keep the cluster
                self.ctx.message.emit("Rendering on this computer (the cluster could not be used)")
                return None
            raise ComicStudioError(message) from exc

    def set_engine_settings(self, settings: Any) -> None:
        """Device / precision / memory mode (an EngineSettings) from the preferences: used when the
        engine starts, or by a running engine before its next job (never mid-job)."""
        self._engine_settings = settings
        if self._engine is not None:
            self._engine.set_settings(settings)

    def _connect_bridge(self, engine: Any) -> None:
        from comic_studio.ui.engine_bridge import EngineBridge

        self._bridge = EngineBridge(engine, self)
        self._bridge.message.connect(self._on_message)
        self._unsubscribe_previews = engine.subscribe(self._shrink_preview)

    def _shrink_preview(self, msg: Any) -> None:
        """Worker thread: reduce a PROGRESS preview to a thumbnail here, not on the GUI thread (a
        backend may send its full-size image as the last preview; scaling that costs ~20 ms)."""
        if msg.preview is None or msg.event.value != "progress":
            return
        image = _preview_image(msg.preview)
        if image is not None:
            with self._previews_lock:
                self._previews[msg.job_id] = image

    # ------------------------------------------------------------------ submitting
    def render_panels(self, panel_ids: list[str], priority: int = 0) -> list[str]:
        """Queue a render of each panel (skipping panels already waiting or running). Returns
        the new job ids; problems (unknown backend, bad settings) go to ``ctx.message``."""
        project = self.ctx.document.project
        busy = {j.panel_id for j in self._jobs.values() if j.active}
        job_ids: list[str] = []
        problems: list[str] = []
        lacking: dict[str, list[tuple[str, str]]] = {}  # "lora"/"identity" → who lacks it
        # One request ("Render all", "Render page", one panel): its results and their lettering are
        # one undo step, not two per panel.
        self._batches += 1
        batch = ("render", self._batches)
        step_label = "Render panel" if len(panel_ids) == 1 else f"Render {len(panel_ids)} panels"
        # Backends that lack models are found before anything is queued: one message naming every
        # missing model, not one failure per panel minutes later.
        readiness: dict[tuple[str, str], Readiness] = {}
        on_cluster: dict[tuple[str, str], str] = {}  # what the cluster's workers lack ("": nothing)
        blocked: list[str] = []
        for panel_id in panel_ids:
            found = project.find_panel(panel_id)
            if found is None:
                problems.append(f"panel {panel_id!r} does not exist")
                continue
            if panel_id in busy:
                continue
            page, panel = found
            key = (panel.backend, json.dumps(panel.backend_settings, sort_keys=True, default=str))
            if key not in readiness and key not in on_cluster and self._cluster:
                # The models live on the cluster's workers: each is asked (per worker, in words).
                try:
                    lacks = self._cluster_lacks(panel)
                except ComicStudioError as exc:  # the cluster was declined: nothing is queued
                    problems.append(str(exc))
                    break
                if lacks is not None:
                    on_cluster[key] = lacks
            if on_cluster.get(key):
                problems.append(f"{self.panel_label(panel_id)}: {on_cluster[key]}")
                continue
            if key not in readiness and key not in on_cluster:
                readiness[key] = backend_readiness(panel.backend, self.model_places, panel.backend_settings)
            if key in readiness and readiness[key].installed and not readiness[key].ready:
                blocked.append(panel_id)
                continue
            if self.anchors.defer_panel(panel, priority):
                continue  # queued once the missing identity banks it needs are rebuilt
            try:
                request = self._request_for(panel)
            except MissingCharacterTraining as exc:
                problems.append(f"{self.panel_label(panel_id)}: {exc}")
                lacking.setdefault(exc.training, []).extend(exc.characters)
                continue
            except ComicStudioError as exc:
                problems.append(f"{self.panel_label(panel_id)}: {exc}")
                continue
            job_id = self._submit(request, priority, self.panel_label(panel_id), page.id)
            if job_id is None:
                problems.append(self._last_problem)
            else:
                self._jobs[job_id].batch, self._jobs[job_id].step_label = batch, step_label
                job_ids.append(job_id)
                busy.add(panel_id)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self.ctx.message.emit(problems[0] + more)
        for training, signal in (("lora", self.loras_missing), ("identity", self.identities_missing)):
            if lacking.get(training):
                signal.emit(list(dict.fromkeys(lacking[training])))
        if blocked:
            report = list({r.backend: r for r in readiness.values() if r.installed and not r.ready}.values())
            self.models_missing.emit(missing_models_text(report, len(blocked)))
        if job_ids:
            self.jobs_changed.emit()
        return job_ids

    def render_page(self, page_id: str | None = None, priority: int = 0, only_missing: bool = False) -> list[str]:
        """Queue every panel of a page (the current page by default), in reading order."""
        page = self.ctx.document.project.page(page_id or self.ctx.current_page_id or "")
        if page is None:
            self.ctx.message.emit("There is no page to render")
            return []
        return self.render_panels([p.id for p in page.panels_in_order() if not (only_missing and p.result())], priority)

    def render_all(self, only_missing: bool = True, priority: int = 0) -> list[str]:
        """Queue every panel of the book page by page (by default only panels without an image)."""
        panels = [p for page in self.ctx.document.project.pages for p in page.panels_in_order()]
        todo = [p.id for p in panels if not (only_missing and p.result())]
        if not todo:
            self.ctx.message.emit("Every panel already has an image")
            return []
        return self.render_panels(todo, priority)

    def regenerate(self, panel_id: str, result_id: str, priority: int = 0) -> str | None:
        """Replay a result's stored request exactly (same seed, pose, figures and settings). Returns
        the job id, or None: the reason is in ``ctx.message`` (or the job waits for a missing identity
        bank to be rebuilt and is queued afterwards)."""
        found = self.ctx.document.project.find_panel(panel_id)
        result = next((r for r in found[1].results if r.id == result_id), None) if found else None
        if result is None:
            self.ctx.message.emit(f"panel {panel_id!r} has no result {result_id!r}")
            return None
        try:
            # Stored requests name their images by hash; the engine needs them inline again.
            request = hydrate_request(GenerationRequest.from_dict(result.request), self.ctx.document.assets)
        except ComicStudioError as exc:
            self.ctx.message.emit(f"Cannot regenerate this result: {exc}")
            return None
        # The stored request names the panel it was made for; a duplicated page's copy has a new id.
        request = request.model_copy(update={"panel_id": panel_id})
        # Identity banks it names that are missing here: a current anchor's is rebuilt first (the job
        # is submitted once that is done), an older anchor's is gone and the author is told so.
        request = self.anchors.replay(panel_id, result_id, request, priority)
        if request is None:
            return None
        job_id = self._submit(request, priority, self.panel_label(panel_id) + " (same seed)", found[0].id)
        if job_id is None:
            self.ctx.message.emit(self._last_problem)
            return None
        self._batches += 1
        job = self._jobs[job_id]
        job.regenerate, job.batch = True, ("render", self._batches)
        self.jobs_changed.emit()
        return job_id

    def rerender_at_panel_size(self, panel_id: str, priority: int = 0) -> str | None:
        """A stale panel (its crop cuts a figure, :mod:`comic_studio.workflows.stale`) rendered
        again: the current result's request replayed (same seed, pose, figures and settings) at
        the panel's present pixel size. Returns the job id, or None (the reason in ``ctx.message``)."""
        project = self.ctx.document.project
        found = project.find_panel(panel_id)
        result = found[1].result() if found else None
        if found is None or result is None:
            self.ctx.message.emit(f"panel {panel_id!r} has no image to render again")
            return None
        try:
            request = hydrate_request(GenerationRequest.from_dict(result.request), self.ctx.document.assets)
        except ComicStudioError as exc:
            self.ctx.message.emit(f"Cannot render this panel again: {exc}")
            return None
        width, height = panel_pixel_size(project, found[1])
        request = request.model_copy(update={"panel_id": panel_id, "width": width, "height": height})
        request = self.anchors.replay(panel_id, result.id, request, priority)
        if request is None:
            return None
        job_id = self._submit(request, priority, self.panel_label(panel_id) + " (new size)", found[0].id)
        if job_id is None:
            self.ctx.message.emit(self._last_problem)
            return None
        self._batches += 1
        self._jobs[job_id].batch = ("render", self._batches)
        self.jobs_changed.emit()
        return job_id

    def try_on(
        self, panel_id: str, character_id: str, outfit_asset: str, scope: str = "body", priority: int = 0
    ) -> str | None:
        """Queue a racig try-on: ``character_id`` wears ``outfit_asset`` (an image in the project's
        assets). ``scope="body"`` repaints only that character's body region of the panel's current
        image; ``"panel"`` renders the whole panel again with the new outfit. The result is added to
        the panel's history like any render (the old one stays). Returns the job id, or ``None``
        with the reason in ``ctx.message``."""
        try:
            page_id, request = self._tryon_request(panel_id, character_id, outfit_asset, scope)
        except ComicStudioError as exc:
            self.ctx.message.emit(f"{self.panel_label(panel_id)}: cannot try on: {exc}")
            return None
        job_id = self._submit(request, priority, self.panel_label(panel_id) + " (try-on)", page_id)
        if job_id is None:
            self.ctx.message.emit(self._last_problem)
            return None
        self.jobs_changed.emit()
        return job_id

    def compare(self, panel_id: str, backends: list[str], priority: int = 0) -> Comparison | None:
        """Queue one render of ``panel_id`` per backend, all at the panel's seed, as one group. The
        renders stay out of the history until :meth:`keep_comparison`. None (reason in
        ``ctx.message``) when a request cannot be built or submitted; nothing is queued then."""
        if self.ctx.document.project.find_panel(panel_id) is None or not 2 <= len(backends) <= MAX_COMPARED:
            self.ctx.message.emit(f"Compare methods: pick 2 to {MAX_COMPARED} backends for an existing panel")
            return None
        groups = self._queue_comparisons([panel_id], backends, priority, "compare")
        return groups[0] if groups else None

    def compare_panels(self, panel_ids: list[str], backends: list[str], title: str,
                       priority: int = 0) -> ComparisonSet | None:  # fmt: skip
        """ "Compare on this page / character": :meth:`compare` over ``panel_ids`` (each panel at its
        own seed), every job queued at once; None (reason in ``ctx.message``, nothing queued) when
        any request cannot be built or submitted."""
        project = self.ctx.document.project
        ids = [p for p in dict.fromkeys(panel_ids) if project.find_panel(p) is not None]
        if not ids or not 2 <= len(backends) <= MAX_COMPARED:
            self.ctx.message.emit(f"Compare methods: pick 2 to {MAX_COMPARED} backends and at least one panel")
            return None
        groups = self._queue_comparisons(ids, backends, priority, f"compare {title}")
        if groups is None:
            return None
        cset = ComparisonSet(uuid.uuid4().hex[:12], title, groups)
        self.comparison_sets[cset.set_id] = cset
        return cset

    def _queue_comparisons(self, panel_ids: list[str], backends: list[str], priority: int,
                           tag: str) -> list[Comparison] | None:  # fmt: skip
        project = self.ctx.document.project
        groups: list[tuple[str, Comparison]] = []
        for panel_id in panel_ids:
            page, panel = project.find_panel(panel_id)
            seed = panel_seed(panel)
            try:
                requests = {
                    name: build_request(project, panel, name, self.ctx.document.assets).model_copy(
                        update={"seed": seed}
                    )
                    for name in dict.fromkeys(backends)
                }
            except ComicStudioError as exc:
                self.ctx.message.emit(f"{self.panel_label(panel_id)}: cannot compare: {exc}")
                return None
            cells = {n: CompareCell(n, r) for n, r in requests.items()}
            groups.append((page.id, Comparison(uuid.uuid4().hex[:12], panel_id, seed, cells)))
        submitted: list[str] = []
        for page_id, group in groups:
            for name, cell in group.cells.items():
                label = f"{self.panel_label(group.panel_id)} ({name}, {tag})"
                job_id = self._submit(cell.request, priority, label, page_id)
                if job_id is None:
                    for other in submitted:
                        self.cancel(other)
                    self.ctx.message.emit(self._last_problem)
                    return None
                self._jobs[job_id].comparison = group.group_id
                group.jobs[job_id] = name
                submitted.append(job_id)
        for _page_id, group in groups:
            self.comparisons[group.group_id] = group
        self.jobs_changed.emit()
        return [group for _page_id, group in groups]

    def keep_comparisons(self, set_id: str, picks: dict[str, str]) -> bool:
        """Keep ``picks`` (panel id → backend) of a :class:`ComparisonSet`: each picked panel gets
        every finished render of its comparison in its history and shows the picked one, all as
        ONE undo step; panels without a pick are left as they were. False (reason in
        ``ctx.message``) when a pick has no finished render."""
        cset = self.comparison_sets.get(set_id)
        if cset is None or not picks:
            self.ctx.message.emit("Compare methods: pick a method for at least one panel")
            return False
        chosen = []
        for panel_id, backend in picks.items():
            group = cset.panel(panel_id)
            finished = [c for c in group.cells.values() if c.result is not None] if group else []
            names = [c.backend for c in finished]
            if backend not in names:
                self.ctx.message.emit(
                    f"Compare methods: {self.panel_label(panel_id)} has no finished {backend} render to keep"
                )
                return False
            chosen.append((panel_id, [(c.request, c.result, c.png) for c in finished], names.index(backend)))
        kept = self.ctx.edit(record_comparisons, chosen)
        if kept is None:
            return False
        cset.kept = dict(picks)
        for (panel_id, _renders, index), results in zip(chosen, kept):
            group = cset.panel(panel_id)
            if group is not None:
                group.kept = picks[panel_id]
            self.panel_rendered.emit(panel_id, results[index].id)
        return True

    def keep_comparison(self, group_id: str, backend: str) -> bool:
        """Add every finished render of the group to the panel's history and show ``backend``'s, as
        one undo step. False (reason in ``ctx.message``) when that render is not there."""
        group = self.comparisons.get(group_id)
        finished = [c for c in group.cells.values() if c.result is not None] if group else []
        names = [c.backend for c in finished]
        if group is None or backend not in names:
            self.ctx.message.emit(f"Compare methods: there is no finished {backend} render to keep")
            return False
        renders = [(c.request, c.result, c.png) for c in finished]
        kept = self.ctx.edit(record_comparison, group.panel_id, renders, names.index(backend))
        if kept is None:
            return False
        group.kept = backend
        self.panel_rendered.emit(group.panel_id, kept[names.index(backend)].id)
        return True

    def _tryon_request(
        self, panel_id: str, character_id: str, outfit: str, scope: str
    ) -> tuple[str, GenerationRequest]:
        # The request itself is built without Qt (the CLI's `tryon` uses the same function).
        document = self.ctx.document
        request = tryon_request(document.project, document.assets, panel_id, character_id, outfit, scope)
        return document.project.find_panel(panel_id)[0].id, request

    def render_anchor(
        self, character_id: str, picture: str | None = None, priority: int = ANCHOR_PRIORITY
    ) -> str | None:
        """Queue a character's identity-anchor job (generate, regenerate with a new anchor seed, or
        from ``picture``: an asset hash such as a panel result). Returns the job id, or None with
        the reason in ``ctx.message``. See :class:`~comic_studio.ui.anchor_jobs.AnchorJobs`."""
        return self.anchors.render(character_id, picture, priority)

    def standardize(self, character_id: str, priority: int = ANCHOR_PRIORITY, standardizer: str = "kit") -> str | None:
        """Queue the character's standard-sheet job (SerialGen's stage 1 by ``standardizer``, a new
        seed each time: run again to regenerate). The finished sheet becomes the character's first
        outfit reference in one undo step. Returns the job id, or None with the reason in ``ctx.message``."""
        document = self.ctx.document
        character = document.project.character(character_id)
        if character is None:
            self.ctx.message.emit(f"character {character_id!r} does not exist")
            return None
        if any(j.sheet_for == character_id and j.active for j in self._jobs.values()):
            self.ctx.message.emit(f"{character.name}'s standard sheet is already being drawn")
            return None
        try:
            request = standardize_request(document.project, character_id, document.assets,
                                          seed=random.randrange(2**31), standardizer=standardizer)  # fmt: skip
        except ComicStudioError as exc:
            self.ctx.message.emit(f"Standard sheet: {character.name}: {exc}")
            return None
        job_id = self._submit(request, priority, f"Standard sheet: {character.name}", "")
        if job_id is None:
            self.ctx.message.emit(self._last_problem)
            return None
        self._jobs[job_id].sheet_for = character_id
        self.jobs_changed.emit()
        return job_id

    def _request_for(self, panel: Panel) -> GenerationRequest:
        request = build_request(self.ctx.document.project, panel, assets=self.ctx.document.assets)
        # An unlocked seed that was already rendered gives a new variation; a seed the user typed
        # (or locked) is used as it is.
        if not panel.seed_locked and any(r.seed == request.seed for r in panel.results):
            request = request.model_copy(update={"seed": random.randrange(2**32)})
        return request

    def _submit(self, request: GenerationRequest, priority: int, label: str, page_id: str) -> str | None:
        effective = priority + (self.PAGE_BOOST if page_id == self.ctx.current_page_id else 0)
        try:
            job_id = self.engine.submit(request, effective)
        except ComicStudioError as exc:
            self._last_problem = f"{label}: {exc}"
            return None
        self._jobs[job_id] = RenderJob(job_id, request.panel_id, label, self.ctx.document, base_priority=priority)
        return job_id

    def add_task_job(self, job_id: str, label: str, kind: str = "train-lora") -> None:
        """Show a task job submitted to this service's engine (e.g. by :attr:`training`) in the queue."""
        self._jobs[job_id] = RenderJob(job_id, None, label, self.ctx.document, kind=kind)
        self.jobs_changed.emit()

    # ------------------------------------------------------------------ cancelling
    def cancel(self, job_id: str) -> bool:
        """Cancel a waiting or running job; an errored job is just removed from the list."""
        job = self._jobs.get(job_id)
        if job is None:
            return False
        if not job.active:
            return self.dismiss(job_id)
        if self._engine is not None and self._engine.cancel(job_id):
            return True
        # The engine no longer knows it (already over): drop our record.
        self._jobs.pop(job_id, None)
        self.jobs_changed.emit()
        return False

    def cancel_all(self) -> None:
        """Cancel every job of this service and clear the errors from the list."""
        for job_id in [j for j, job in self._jobs.items() if not job.active]:
            del self._jobs[job_id]
        if self._engine is not None:
            for job_id in list(self._jobs):
                self._engine.cancel(job_id)
        self.jobs_changed.emit()

    def dismiss(self, job_id: str) -> bool:
        """Remove a failed job's row (running jobs are cancelled instead)."""
        job = self._jobs.get(job_id)
        if job is None or job.active:
            return False
        del self._jobs[job_id]
        self.jobs_changed.emit()
        return True

    # ------------------------------------------------------------------ state
    def jobs(self) -> list[RenderJob]:
        """This service's jobs in the order they run: running, then waiting (as the engine will
        take them), then failed."""
        running = [j for j in self._jobs.values() if j.running]
        waiting = [j for j in self._jobs.values() if j.state == "queued"]
        if len(waiting) > 1 and self._engine is not None:
            rank = {job_id: i for i, job_id in enumerate(self._engine.pending())}
            # A job the engine already took (STARTED not delivered yet) is no longer pending: first.
            waiting.sort(key=lambda j: rank.get(j.job_id, -1))
        return running + waiting + [j for j in self._jobs.values() if j.state == "error"]

    def job(self, job_id: str) -> RenderJob | None:
        return self._jobs.get(job_id)

    def is_idle(self) -> bool:
        """Nothing of this service's is queued, running, being lettered or being recorded (failed rows
        may remain)."""
        return (
            self._lettering.pending() == 0
            and self.anchors.pending() == 0
            and not any(j.active for j in self._jobs.values())
        )

    def panel_label(self, panel_id: str | None) -> str:
        found = self.ctx.document.project.find_panel(panel_id) if panel_id else None
        if found is None:
            return "Deleted panel"
        page, panel = found
        return f"Page {self.ctx.document.project.pages.index(page) + 1} · Panel {panel.order + 1}"

    # ------------------------------------------------------------------ engine messages (GUI thread)
    def _on_message(self, msg: Any) -> None:
        job = self._jobs.get(msg.job_id)
        if job is None:
            return  # another component's job on a shared engine, or one we already dropped
        event = msg.event.value
        if job.is_task:
            self._on_task_message(job, msg)
            return
        if event in ("started", "progress"):
            changed = job.state == "queued"
            job.state = event
            job.step, job.total, job.elapsed, job.eta = msg.step, msg.total, msg.elapsed, msg.eta
            if msg.preview is not None:
                with self._previews_lock:
                    job.preview = self._previews.pop(msg.job_id, job.preview)
            self.job_message.emit(msg)
            if changed:
                self._jobs_changed_soon()
            return
        if event == "queued":
            self.job_message.emit(msg)
            return
        with self._previews_lock:
            self._previews.pop(msg.job_id, None)
        if event == "finished":
            del self._jobs[msg.job_id]
            if job.comparison is not None:
                self._compared(job, msg)
            else:
                self._record(job, msg)
        elif event == "error":
            job.state, job.error, job.detail, job.elapsed = "error", msg.error, msg.detail, msg.elapsed
            self.ctx.message.emit(f"{job.label}: rendering failed: {msg.error}")
            if job.comparison is not None:
                self._compared(job, msg)
        elif event == "cancelled":
            del self._jobs[msg.job_id]
            if msg.error:  # a backend that did not stop in time: the user should know why
                self.ctx.message.emit(f"{job.label}: {msg.error}")
        if job.anchor_for is not None and event in ("error", "cancelled"):
            self.anchors.job_over(job.anchor_for, ok=False)
        self.job_message.emit(msg)
        self._jobs_changed_soon()
        if self.is_idle():
            self._emit_idle()

    def _on_task_message(self, job: RenderJob, msg: Any) -> None:
        """A task job's message (training): the queue row follows it, :attr:`training` records it."""
        event = msg.event.value
        thumb = self.training.on_message(msg)
        if thumb is not None:
            job.preview = thumb  # the newest sample is the row's picture
        if event in ("started", "progress", "sample"):
            changed = job.state == "queued"
            if event != "sample":
                job.state = event
                job.step, job.total, job.elapsed, job.eta = msg.step, msg.total, msg.elapsed, msg.eta
                job.info = dict(msg.info)
            self.job_message.emit(msg)
            if changed:
                self._jobs_changed_soon()
            return
        if event == "queued":
            self.job_message.emit(msg)
            return
        if event == "error":
            job.state, job.error, job.detail, job.elapsed = "error", msg.error, msg.detail, msg.elapsed
            self.ctx.message.emit(f"{job.label}: failed: {msg.error}")
        else:  # finished (stored by self.training) or cancelled (its checkpoint is kept)
            del self._jobs[msg.job_id]
            if event == "cancelled" and msg.error:
                self.ctx.message.emit(f"{job.label}: {msg.error}")
        self.job_message.emit(msg)
        self._jobs_changed_soon()
        if self.is_idle():
            self._emit_idle()

    # A fast backend (or a batch) finishes many jobs in one event-loop turn: each message used to
    # emit jobs_changed, and every follower (queue rows, live overlays, stale markers, the
    # character library) re-synced once per message. One emission per turn, after the last one.
    def _jobs_changed_soon(self) -> None:
        if not self._jobs_change_pending:
            self._jobs_change_pending = True
            QTimer.singleShot(0, self, self._flush_jobs_changed)

    def _flush_jobs_changed(self) -> None:
        """Emit the coalesced jobs_changed now if one is pending."""
        if self._jobs_change_pending:
            self._jobs_change_pending = False
            self.jobs_changed.emit()

    def _emit_idle(self) -> None:
        # Whoever waits for idle sees the followers already in step with the jobs (no row left).
        self._flush_jobs_changed()
        self.idle.emit()

    def _compared(self, job: RenderJob, msg: Any) -> None:
        group = self.comparisons.get(job.comparison or "")
        cell = group.cells.get(group.jobs.get(job.job_id, "")) if group else None
        if group is None or cell is None:
            return
        if msg.event.value == "finished":
            cell.result, cell.png, cell.seconds = msg.result, msg.png, msg.elapsed
        else:
            cell.error, cell.seconds = msg.error or "failed", msg.elapsed
        self.comparison_changed.emit(group.group_id)

    def _record(self, job: RenderJob, msg: Any) -> None:
        if job.anchor_for is not None:
            self.anchors.record(job, msg)
            return
        if job.sheet_for is not None:
            if job.document is self.ctx.document and self.ctx.edit(record_standard_sheet, job.sheet_for, msg.png):
                name = self.ctx.document.project.character(job.sheet_for).name
                self.ctx.message.emit(f"{name}'s standard sheet is now the first outfit reference (Undo discards it)")
            return
        if job.document is not self.ctx.document:
            return  # the project was closed while this job ran
        if self.ctx.document.project.find_panel(job.panel_id or "") is None:
            self.ctx.message.emit(
                f"{job.label.split(' (')[0]}: the panel was deleted while it was rendering; its image was dropped"
            )
            return
        result = self.ctx.edit(
            record_result, job.panel_id, msg.request, msg.result, msg.png, batch=job.batch, step_label=job.step_label
        )
        if result is None:
            return  # ctx.edit already reported why
        self.panel_rendered.emit(job.panel_id, result.id)
        self._letter_in_background(job.panel_id, job.batch)

    # ------------------------------------------------------------------ lettering
    # letter_panel does the same in one call, but its balloon placement (a search over
    # candidate positions) takes 15-50 ms for a panel with dialogue: too long for the GUI thread
    # while a queue is running. The placement is computed on a helper thread from a snapshot, and
    # only the resulting one-step edit runs on the GUI thread.
    def _letter_in_background(self, panel_id: str, batch: tuple[str, int] | None = None) -> None:
        project = self.ctx.document.project
        found = project.find_panel(panel_id)
        beat = project.story.beat(found[1].beat_id) if found and found[1].beat_id else None
        if beat is None:
            return
        panel = found[1]
        lines = lettering_lines(beat)
        if not lines and not any(b.auto_placed for b in panel.balloons):
            return
        snapshot = panel.model_copy(deep=True)
        # place_balloons reads only the reading direction from the project: a bare stand-in
        # avoids copying (or sharing across threads) the whole book.
        stand_in = Project(page_format=project.page_format.model_copy(), reading_direction=project.reading_direction)
        key = _lettering_key(project, panel, beat)
        document = self.ctx.document
        self._lettering.submit(
            place_balloons,
            snapshot,
            lines,
            stand_in,
            house_style(project),  # the stand-in has no pages to take the book's type size from
            on_result=lambda balloons: self._apply_lettering(document, panel_id, key, balloons, None, batch),
            on_error=lambda error: self._apply_lettering(document, panel_id, key, None, error, batch),
        )

    def _apply_lettering(
        self,
        document: Document,
        panel_id: str,
        key: str,
        balloons: list[Balloon] | None,
        error: BaseException | None,
        batch: tuple[str, int] | None = None,
    ) -> None:
        try:
            if document is not self.ctx.document or self._closed:
                return
            project = document.project
            found = project.find_panel(panel_id)
            if found is None:
                return  # deleted meanwhile: nothing to letter
            panel = found[1]
            beat = project.story.beat(panel.beat_id) if panel.beat_id else None
            if beat is None:
                return
            if _lettering_key(project, panel, beat) != key:
                # The panel changed while the placement ran (undo, a moved balloon…): redo it here.
                self.ctx.edit(letter_panel, panel_id, batch)
                return
            if error is not None:
                self.ctx.message.emit(f"{self.panel_label(panel_id)}: lettering failed: {error}")
                return
            kept = [b for b in panel.balloons if not b.auto_placed]
            self.ctx.edit(apply_lettering, panel_id, kept + (balloons or []), batch)
        finally:
            if self.is_idle():
                self._emit_idle()

    # ------------------------------------------------------------------ following the user
    def _follow_current_page(self) -> None:
        page_id = self.ctx.current_page_id
        if page_id == self._boosted_page or self._engine is None:
            self._boosted_page = page_id
            return
        self._boosted_page = page_id
        project = self.ctx.document.project
        pending = set(self._engine.pending())
        for job in self._jobs.values():
            if job.job_id not in pending:
                continue
            found = project.find_panel(job.panel_id or "")
            on_page = found is not None and found[0].id == page_id
            self._engine.reprioritize(job.job_id, job.base_priority + (self.PAGE_BOOST if on_page else 0))

    def _document_replaced(self, _document: Document) -> None:
        # Results of the old project must not land in the new one: cancel, and forget the rows.
        if self._engine is not None:
            for job_id, job in list(self._jobs.items()):
                if job.active:
                    self._engine.cancel(job_id)
        self._jobs.clear()
        self.anchors.clear()
        self.training.clear()
        self._boosted_page = self.ctx.current_page_id
        self.jobs_changed.emit()

    def shutdown(self) -> None:
        """Stop listening, cancel this service's jobs and stop the engine if it created it."""
        if self._closed:
            return
        self._closed = True
        if self._bridge is not None:
            self._bridge.close()
        if self._unsubscribe_previews is not None:
            self._unsubscribe_previews()
        if self._engine is not None:
            if self._owns_engine:
                self._engine.shutdown(wait=True)
            else:
                for job_id in list(self._jobs):
                    self._engine.cancel(job_id)
        self._jobs.clear()
        self._lettering.shutdown(wait=True)
        self.anchors.shutdown()


def _lettering_key(project: Project, panel: Panel, beat: Beat) -> str:
    """Everything balloon placement depends on; if it differs, a computed placement is stale."""
    manual = [b.box.model_dump() for b in panel.balloons if not b.auto_placed]
    return json.dumps([panel.shape, [c.model_dump() for c in panel.characters], manual,
                       lettering_lines(beat), project.reading_direction.value], default=str)  # fmt: skip


def _preview_image(preview: Any) -> QImage | None:
    """A small QImage of a PIL preview (copied, so it owns its pixels)."""
    try:
        image = preview.convert("RGB")
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        return pil_to_qimage(image)
    except Exception:  # a malformed preview is not worth failing the job for
        return None


__all__ = ["RenderJob", "RenderService"]

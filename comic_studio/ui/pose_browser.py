"""The pose browser of the panel inspector: pick the panel's pose from the library, take it from a
reference image, go back to automatic retrieval, and choose who plays which figure.

The grid lists the library entries (bundled + imported) with as many figures as the panel has
characters, ranked by the search text (default: the beat's action) with the same retriever the
backends use, each drawn as its OpenPose skeleton. Above it, the panel's *current* pose as the
backend will draw it (same pose choice, assignment and framing:
:func:`~comic_studio.poses.staging.conditioning.build_conditioning`, with the staging options of the
panel's backend), with the character names on their figures.

Every change is one undoable panel edit that also stores the characters' placements for the new
pose (figure, head, body): pinned placements are what ``workflows.requests.build_request`` sends, so the next
render keeps exactly the assignment shown here. Retrieval may load a text model (torch), pose
extraction runs MediaPipe and skeletons are rasterised with numpy, so all of that runs on one helper
thread; results that arrive after the panel or the query changed are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import editing
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import CharacterPlacement, Panel, PoseFigure, PoseSpec
from comic_studio.generation.request import GenerationRequest
from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.context import StudioContext
from comic_studio.ui.images import pil_to_pixmap
from comic_studio.workflows.requests import build_request

THUMB = QSize(96, 64)
PREVIEW_WIDTH, PREVIEW_MAX_HEIGHT = 300, 220
MAX_RESULTS = 48
"""Entries shown for a search (the best first); an empty search lists every entry of that size."""
SUPERSAMPLE = 3
"""Skeletons are drawn this much larger and reduced: the OpenPose stroke width is for ~512 px images."""


# ---------------------------------------------------------------------------- helper-thread work


@dataclass(frozen=True)
class PosePlan:
    """A pose choice worked out for a panel: what the backend will draw and where everyone stands."""

    pose_id: str | None
    preview: Image.Image
    figure_keypoints: list[list[tuple[float, float, float]]]
    character_figure: tuple[int, ...]
    placements: list[CharacterPlacement]


def panel_embedder(panel: Panel) -> str:
    """The text matcher the panel's backend retrieves with (storyboard and racig share the name),
    OpenCLIP included: the grid must rank as the render will pick."""
    from comic_studio.poses.retrieval import EMBEDDERS

    value = panel.backend_settings.get("pose_matching", "auto")
    return value if value in EMBEDDERS else "auto"


def search_entries(text: str, n_figures: int, embedder: str, limit: int = MAX_RESULTS) -> list[Any]:
    """Library entries for ``n_figures`` characters: ranked by ``text`` (token-overlap matches with
    no word in common are left out), or all of them in library order for an empty ``text``."""
    from comic_studio.poses.library import MAX_FIGURES
    from comic_studio.poses.retrieval import shared_retriever

    retriever = shared_retriever(embedder)  # type: ignore[arg-type]
    if not text.strip():
        # As retrieval does: more characters than the largest entries take the largest ones.
        sizes = {e.n_figures for e in retriever.entries}
        n = min(n_figures, MAX_FIGURES)
        while n > 0 and n not in sizes:
            n -= 1
        return [e for e in retriever.entries if e.n_figures == n]
    ranked = retriever.search(text, n_figures, k=limit)
    if retriever.embedder == "overlap":
        ranked = [(e, s) for e, s in ranked if s > 0]
    return [e for e, _s in ranked]


def skeleton_thumbnail(entry: Any, width: int = THUMB.width(), height: int = THUMB.height()) -> Image.Image:
    """``entry``'s figures as an OpenPose image fitted into ``width`` × ``height``."""
    from comic_studio.poses.staging.openpose import render_openpose

    w, h = width * SUPERSAMPLE, height * SUPERSAMPLE
    aspect = float(entry.aspect)
    scale = min(w / aspect, h) * 0.92
    ox, oy = (w - aspect * scale) / 2, (h - scale) / 2
    figures = [[(x * aspect * scale + ox, y * scale + oy, v) for x, y, v in f.keypoints] for f in entry.figures]
    return render_openpose(figures, w, h).resize((width, height), Image.Resampling.LANCZOS)


def thumbnails(entries: list[Any]) -> list[tuple[str, str, Image.Image]]:
    """``(id, caption, thumbnail)`` per entry (helper thread)."""
    return [(str(e.id), str(e.caption), skeleton_thumbnail(e)) for e in entries]


def plan_pose(request: GenerationRequest, width: int = PREVIEW_WIDTH) -> PosePlan:
    """Resolve ``request``'s pose exactly as a render would (retrieval, assignment, framing) at a
    preview size: the OpenPose preview, the figures and the characters' placements."""
    from comic_studio.poses.staging.conditioning import build_conditioning
    from comic_studio.ui.pose_staging import staging_options

    options = staging_options(request)
    width = max(
        16, min(width, round(PREVIEW_MAX_HEIGHT * request.width / request.height))
    )  # tall panels: capped height
    height = max(16, round(width * request.height / request.width))
    cond = build_conditioning(
        request, width, height, top_k=options.top_k, embedder=options.pose_matching, dilation=0.0,
        use_request_pose=options.use_request_pose,
    )  # fmt: skip
    return PosePlan(cond.pose_id, cond.control_image, cond.figure_keypoints, cond.character_figure, cond.placements)


def extract_pose_spec(path: str | Path) -> PoseSpec:
    """The person in the image at ``path`` as an unframed one-figure :class:`PoseSpec` with the
    image's aspect; :class:`ComicStudioError` with the detector's reason when nobody is found."""
    from comic_studio.poses.extract import extract_pose

    found = extract_pose(Path(path))
    if found.figure is None:
        raise ComicStudioError(f"{Path(path).name}: {found.reason}")
    figure = PoseFigure(
        keypoints=[tuple(k) for k in found.figure.keypoints], role=found.figure.role, facing=found.figure.facing
    )
    return PoseSpec(figures=[figure], aspect=min(5.0, max(0.2, found.aspect)), framed=False)


def _pose_from_image(path: str, request: GenerationRequest) -> tuple[PoseSpec, PosePlan]:
    spec = extract_pose_spec(path)
    return spec, plan_pose(request.model_copy(update={"figures_override": spec}))


# ---------------------------------------------------------------------------- the widget


def ask_image_file(parent: QWidget) -> str:
    """The file picker for "Pose from image…" (module-level so tests can answer it)."""
    path, _ = QFileDialog.getOpenFileName(
        parent, "Take the pose from an image", "", "Images (*.png *.jpg *.jpeg *.webp)"
    )
    return path


class PoseBrowser(QWidget):
    """Follows the inspected panel (:meth:`set_panel`); computes nothing while hidden."""

    entries_ready = Signal()
    """The grid shows the results of the latest search."""
    plan_ready = Signal(str)
    """``panel_id`` once the current-pose preview shows that panel's pose."""
    pose_applied = Signal(str)
    """``panel_id`` after a pose edit was applied to it."""

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.panel_id: str | None = None
        self.plan: PosePlan | None = None
        self.jobs = BackgroundJobs(self, "pose-browser")
        self._plan_key: tuple | None = None
        self._query_panel: str | None = None

        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.preview = QLabel(self)
        self.preview.setObjectName("poseBrowserPreview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cast = QFormLayout()
        self.figure_boxes: list[QComboBox] = []
        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText("Search poses (e.g. two people hugging)…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.returnPressed.connect(lambda: self.search(self.search_edit.text()))
        self.grid = QListWidget(self)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(THUMB)
        self.grid.setGridSize(QSize(THUMB.width() + 10, THUMB.height() + 10))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setMinimumHeight(2 * THUMB.height() + 30)
        self.grid.itemDoubleClicked.connect(lambda _item: self.use_selected())
        self.grid.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.use_button = QPushButton("Use this pose", self)
        self.use_button.clicked.connect(self.use_selected)
        self.auto_button = QPushButton("Back to automatic", self)
        self.auto_button.setToolTip("Retrieve the pose from the beat's action again")
        self.auto_button.clicked.connect(self.back_to_automatic)
        self.image_button = QPushButton("Pose from image…", self)
        self.image_button.setToolTip("Take the pose of the person in a reference image (offline detector)")
        self.image_button.clicked.connect(lambda: self.pose_from_image(ask_image_file(self) or None))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addWidget(self.preview)
        layout.addLayout(self.cast)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.grid)
        buttons = QHBoxLayout()
        for button in (self.use_button, self.auto_button, self.image_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self._update_buttons()

    # ------------------------------------------------------------------ following the panel
    def panel(self) -> Panel | None:
        found = self.ctx.document.project.find_panel(self.panel_id) if self.panel_id else None
        return found[1] if found else None

    def set_panel(self, panel: Panel | None) -> None:
        self.panel_id = panel.id if panel else None
        if panel is not None and panel.id != self._query_panel and self.isVisible():
            self._start_panel(panel)
        self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        panel = self.panel()
        if panel is not None and panel.id != self._query_panel:
            self._start_panel(panel)
        self.refresh()

    def _start_panel(self, panel: Panel) -> None:
        """A newly shown panel: the search starts from its beat's action."""
        self._query_panel = panel.id
        beat = self.ctx.document.project.story.beat(panel.beat_id) if panel.beat_id else None
        self.search_edit.setText(beat.action if beat else "")
        self.search(self.search_edit.text())

    def refresh(self) -> None:
        """Show the panel's pose choice; recompute the preview only when what it depends on changed."""
        panel = self.panel()
        self._update_buttons()
        if panel is None or not self.isVisible():
            return
        if panel.pose is not None:
            choice = "From an image" if not panel.pose.framed else "Adjusted by hand"
        elif panel.pose_id is not None:
            choice = f"Picked: {panel.pose_id}"
        else:
            choice = "Automatic (from the beat's action)"
        # A backend staging with pose_choice "retrieved" (racig's 'Pose' setting) ignores the panel's pose.
        ignored = panel.backend_settings.get("pose_choice") == "retrieved"
        if ignored and choice[0] != "A":
            choice += f" — ignored while the {panel.backend} setting 'Pose' is 'retrieved'"
        self.status.setText(f"Pose: {choice}")
        if not panel.characters:
            self.status.setText("Add characters to the panel to choose their pose.")
            self.preview.clear()
            return
        try:
            request = self._request(panel)
        except ComicStudioError as exc:
            self.status.setText(str(exc))
            return
        key = (panel.id, request.to_json())
        if key != self._plan_key:
            self._plan_key = key
            self._submit("plan", panel.id, plan_pose, request)

    def _request(self, panel: Panel) -> GenerationRequest:
        return build_request(self.ctx.document.project, panel)

    # ------------------------------------------------------------------ search
    def search(self, text: str) -> None:
        panel = self.panel()
        if panel is None or not panel.characters:
            self.grid.clear()
            return
        self._submit("search", panel.id, _search_with_thumbnails, text, len(panel.characters), panel_embedder(panel))

    def entry_ids(self) -> list[str]:
        return [self.grid.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.grid.count())]

    def _show_entries(self, found: list[tuple[str, str, Image.Image]]) -> None:
        self.grid.clear()
        for entry_id, caption, image in found:
            item = QListWidgetItem(QIcon(pil_to_pixmap(image)), "")
            item.setData(Qt.ItemDataRole.UserRole, entry_id)
            item.setToolTip(f"{caption}\n({entry_id})")
            self.grid.addItem(item)
        self._update_buttons()
        self.entries_ready.emit()

    # ------------------------------------------------------------------ actions
    def use_selected(self) -> None:
        item = self.grid.currentItem()
        if item is None:
            self.ctx.message.emit("Select a pose in the grid first")
            return
        self.use_pose(item.data(Qt.ItemDataRole.UserRole))

    def use_pose(self, pose_id: str) -> None:
        """The library pose ``pose_id`` for the panel (clears a pose from an image); the characters
        get the figures the library's assignment gives them."""
        self._change("Pick pose", {"pose_id": pose_id, "pose": None}, unpin=True)

    def back_to_automatic(self) -> None:
        self._change("Automatic pose", {"pose_id": None, "pose": None}, unpin=True)

    def pose_from_image(self, path: str | Path | None) -> None:
        """Take the pose from the image at ``path`` (helper thread); a clear message and no change
        when nobody is found."""
        panel = self.panel()
        if panel is None or not path:
            return
        request = self._unpinned(self._request(panel)).model_copy(update={"pose_id": None})
        self.ctx.message.emit(f"Looking for a person in {Path(path).name}…")
        before = _pose_state(panel)

        def apply(result: tuple[PoseSpec, PosePlan]) -> None:
            spec, plan = result
            self._apply("Pose from image", {"pose": spec}, plan, before)

        self._submit("edit", panel.id, _pose_from_image, str(path), request, then=apply)

    def set_figure(self, character_index: int, figure: int) -> None:
        """Character ``character_index`` (of the panel) plays ``figure``; whoever played it takes the
        character's old figure (a swap). Pinned, so the next render keeps it."""
        panel, plan = self.panel(), self.plan
        if panel is None or plan is None or not 0 <= character_index < len(plan.character_figure):
            return
        assignment = list(plan.character_figure)
        if not 0 <= figure < len(plan.figure_keypoints) or assignment[character_index] == figure:
            return
        if figure in assignment:
            assignment[assignment.index(figure)] = assignment[character_index]
        assignment[character_index] = figure
        request = self._request(panel)
        chars = [c.model_copy(update={"figure": f}) for c, f in zip(request.characters, assignment)]
        request = request.model_copy(update={"characters": chars})
        if request.pose_id is None and request.figures_override is None:
            request = request.model_copy(update={"pose_id": plan.pose_id})  # the pose shown, not a new retrieval
        before = _pose_state(panel)
        self._submit("edit", panel.id, plan_pose, request, then=lambda p: self._apply("Swap figures", {}, p, before))

    def _unpinned(self, request: GenerationRequest) -> GenerationRequest:
        return request.model_copy(
            update={"characters": [c.model_copy(update={"figure": None}) for c in request.characters]}
        )

    def _change(self, label: str, fields: dict[str, Any], unpin: bool) -> None:
        panel = self.panel()
        if panel is None:
            return
        request = self._request(panel).model_copy(
            update={"pose_id": fields.get("pose_id"), "figures_override": fields.get("pose")}
        )
        if unpin:
            request = self._unpinned(request)
        before = _pose_state(panel)
        self._submit("edit", panel.id, plan_pose, request, then=lambda plan: self._apply(label, fields, plan, before))

    def _apply(self, label: str, fields: dict[str, Any], plan: PosePlan, before: tuple) -> None:
        panel = self.panel()
        if panel is None:
            return
        if _pose_state(panel) != before:  # an undo or another edit landed while the plan was computed
            self.ctx.message.emit(f"{label}: the panel changed meanwhile; nothing was changed, try again")
            return
        placed = {p.character_id: p for p in plan.placements}
        characters = [placed.get(p.character_id, p) for p in panel.characters]
        self.ctx.edit(editing.set_panel_fields, panel.id, label, characters=characters, **fields)
        self.pose_applied.emit(panel.id)

    # ------------------------------------------------------------------ preview
    def _show_plan(self, plan: PosePlan) -> None:
        self.plan = plan
        panel = self.panel()
        project = self.ctx.document.project
        pixmap = pil_to_pixmap(plan.preview)
        painter = QPainter(pixmap)
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        for placement in plan.placements:
            character = project.character(placement.character_id)
            if character is None or placement.head is None:
                continue
            x, y = placement.head[0] * pixmap.width(), placement.head[1] * pixmap.height()
            rect = painter.fontMetrics().boundingRect(character.name).adjusted(-3, -1, 3, 1)
            rect.moveTo(
                int(x - rect.width() / 2), int(max(0, y - placement.head_radius * pixmap.height() - rect.height() - 2))
            )
            painter.fillRect(rect, QColor(0, 0, 0, 170))
            painter.setPen(QPen(QColor(character.colour)))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, character.name)
        painter.end()
        self.preview.setPixmap(pixmap)
        self._fill_cast(panel, plan)

    def _fill_cast(self, panel: Panel | None, plan: PosePlan) -> None:
        while self.cast.rowCount():
            self.cast.removeRow(0)
        self.figure_boxes = []
        if panel is None:
            return
        project = self.ctx.document.project
        names = [c.name for c in (project.character(p.character_id) for p in panel.characters) if c is not None]
        for index, (name, figure) in enumerate(zip(names, plan.character_figure)):
            box = QComboBox(self)
            for f in range(len(plan.figure_keypoints)):
                box.addItem(f"figure #{f + 1}", f)
            box.setCurrentIndex(figure)
            box.currentIndexChanged.connect(lambda _i, index=index, box=box: self.set_figure(index, box.currentData()))
            self.figure_boxes.append(box)
            self.cast.addRow(f"{name} plays", box)

    def character_labels(self) -> dict[str, int]:
        """Character name → the figure (0-based) it plays in the preview (tests, status text)."""
        if self.plan is None:
            return {}
        project = self.ctx.document.project
        return {
            project.character(p.character_id).name: p.figure
            for p in self.plan.placements
            if project.character(p.character_id)
        }

    # ------------------------------------------------------------------ the helper thread
    def _submit(
        self, kind: str, panel_id: str, fn: Callable[..., Any], *args: Any, then: Callable[[Any], None] | None = None
    ) -> None:
        """One lane per kind ("search", "plan", "edit"): a newer job of a kind supersedes the older."""
        self.jobs.submit(
            fn,
            *args,
            lane=kind,
            on_result=lambda result: self._on_result(kind, panel_id, result, then),
            on_error=lambda error: self._on_error(kind, panel_id, error),
        )

    def _on_result(self, kind: str, panel_id: str, result: Any, then: Callable[[Any], None] | None) -> None:
        if panel_id != self.panel_id:
            return  # the user moved to another panel
        if kind == "search":
            self._show_entries(result)
        elif kind == "plan":
            self._show_plan(result)
            self.plan_ready.emit(panel_id)
        elif then is not None:
            then(result)

    def _on_error(self, kind: str, panel_id: str, error: BaseException) -> None:
        if panel_id != self.panel_id:
            return
        self.ctx.message.emit(f"Pose: {error}")
        if kind == "plan":
            self._plan_key = None

    def _update_buttons(self) -> None:
        panel = self.panel()
        has_cast = panel is not None and bool(panel.characters)
        self.use_button.setEnabled(has_cast and self.grid.currentItem() is not None)
        self.auto_button.setEnabled(has_cast and (panel.pose_id is not None or panel.pose is not None))
        self.image_button.setEnabled(has_cast)

    def shutdown(self) -> None:
        self.jobs.shutdown()


def _search_with_thumbnails(text: str, n_figures: int, embedder: str) -> list[tuple[str, str, Image.Image]]:
    return thumbnails(search_entries(text, n_figures, embedder))


__all__ = ["PoseBrowser", "PosePlan", "extract_pose_spec", "plan_pose", "search_entries", "skeleton_thumbnail"]


def _pose_state(panel: Panel) -> tuple:
    """What a pose edit is computed from: an edit whose panel no longer has this state is stale."""
    return (panel.characters, panel.pose, panel.pose_id, panel.shot, panel.shape, panel.backend, panel.backend_settings)

"""The pose and references part of the panel inspector: "Pose…" (the pose browser,
:mod:`comic_studio.ui.pose_browser`) for every backend with the "pose" capability, a "Show masks"
overlay for one with "masks" and "Try on…" an outfit for one with "tryon" (racig has all three).

The mask overlay is :func:`comic_studio.poses.staging.conditioning.mask_preview` over the panel's
current image, staged with the panel backend's options: each character's body in its colour, its
head lighter — what the face and outfit references will condition. Computing it runs pose
retrieval (which may load a text embedder and so torch), so it runs on a helper thread and that
module is imported there, never on the GUI thread; a result that arrives after the panel changed
is dropped. The overlay shows the current image's own masks only while the panel's pose choice
(picked pose, explicit figures, pinned figures) is the one that image was rendered with; after a
change it shows the new choice's masks.

Try-on adds the chosen outfit image to the character's body references (one undo step, the same
edit the character library makes) and queues :meth:`RenderService.try_on`; the new image lands in
the panel's history like any render.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import character_edits
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Panel
from comic_studio.generation.registry import get_backend_class, has_capability
from comic_studio.generation.request import GenerationRequest
from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.context import StudioContext
from comic_studio.ui.images import pil_to_pixmap
from comic_studio.ui.pose_browser import PoseBrowser
from comic_studio.workflows.requests import build_request

PREVIEW_SIDE = 360
"""Longest side of the mask overlay (masks are built at this size: fast, and enough to judge)."""
THUMB = 56


def same_pose_choice(stored: GenerationRequest, fresh: GenerationRequest) -> bool:
    """Whether the panel (``fresh``: its request now) still has the pose choice a render
    (``stored``: its effective request) was made with: the same explicit figures, the same picked
    library pose (an automatic panel accepts the stored one, see :func:`mask_requests`), and the
    same pinned figure per character (a swap changes whose masks are where)."""
    if stored.figures_override != fresh.figures_override:
        return False
    if fresh.figures_override is None and fresh.pose_id is not None and fresh.pose_id != stored.pose_id:
        return False
    for character in fresh.characters:
        was = stored.character(character.id)
        if character.figure is not None and (was is None or was.figure != character.figure):
            return False
    return True


def mask_requests(ctx: StudioContext, panel: Panel) -> tuple[GenerationRequest, GenerationRequest | None]:
    """``(request, fallback)`` for the overlay. ``request`` is the current image's own (pose and
    figures pinned) while it was rendered by the panel's backend and the panel's pose choice is
    unchanged since that render, else what rendering the panel would use now. A stored request
    records the pose a render *used*, not whether it was picked or retrieved, so for an automatic
    panel ``fallback`` carries the fresh request and the helper thread keeps the stored one only if
    retrieval really gives its pose (:func:`compute_mask_overlay`). Names images only."""
    fresh = build_request(ctx.document.project, panel)
    current = panel.result()
    if current is not None and current.backend == fresh.backend:
        stored = GenerationRequest.from_dict(current.request)
        if same_pose_choice(stored, fresh):
            automatic = fresh.pose_id is None and fresh.figures_override is None and stored.pose_id is not None
            return stored, fresh if automatic else None
    return fresh, None


def mask_request(ctx: StudioContext, panel: Panel) -> GenerationRequest:
    """The request whose masks the overlay shows (see :func:`mask_requests`; without the
    helper-thread retrieval check)."""
    return mask_requests(ctx, panel)[0]


def retrieved_anew(request: GenerationRequest) -> bool:
    """Worker thread: whether automatic retrieval for ``request`` (its own action, seed and cast)
    picks the pose it records — False when that pose was picked by hand (or the library changed)."""
    from comic_studio.poses.staging.conditioning import choose_pose  # helper thread: numpy, retrieval
    from comic_studio.ui.pose_staging import staging_options

    options = staging_options(request)
    plain = request.model_copy(update={"pose_id": None, "figures_override": None})
    return choose_pose(plain, options.top_k, options.pose_matching).pose_id == request.pose_id


def compute_mask_overlay(request: GenerationRequest, base_png: bytes | None, side: int = PREVIEW_SIDE,
                         fallback: GenerationRequest | None = None) -> Image.Image:  # fmt: skip
    """Worker thread: the masks of ``request`` over ``base_png`` (or the OpenPose image), at most
    ``side`` pixels on the longest side. With ``fallback`` (an automatic panel), ``request`` is used
    only if retrieval picks its pose anew; otherwise the panel moved off a hand-picked pose since
    that render and ``fallback`` (what a render would use now) is shown."""
    from comic_studio.poses.staging.conditioning import build_conditioning, mask_preview
    from comic_studio.ui.pose_staging import staging_options

    if fallback is not None and not retrieved_anew(request):
        request = fallback
    options = staging_options(request)
    k = min(1.0, side / max(request.width, request.height))
    width, height = max(16, round(request.width * k)), max(16, round(request.height * k))
    cond = build_conditioning(
        request, width, height, top_k=options.top_k, embedder=options.pose_matching,
        dilation=options.mask_dilation, use_request_pose=options.use_request_pose, masks_from=options.masks_from,
        segment_dilation=options.segment_dilation,
    )  # fmt: skip
    base = None
    if base_png:
        base = Image.open(io.BytesIO(base_png)).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    return mask_preview(cond, [c.colour for c in request.characters], base)


class RacigTools(QGroupBox):
    """Shown by the inspector for panels whose backend draws poses ("pose": the pose browser), with
    "Show masks" and "Try on…" where the backend also has the "masks" and "tryon" capabilities."""

    masks_ready = Signal(str)
    """``panel_id`` once the overlay shows that panel's masks (tests and the status bar)."""

    def __init__(self, ctx: StudioContext, render_service: Any = None, parent: QWidget | None = None):
        super().__init__("Characters' references (RaCig)", parent)
        self.ctx = ctx
        self.render_service = render_service
        self.panel_id: str | None = None
        self.overlay_image: Image.Image | None = None
        self._shown_key: tuple | None = None
        self.jobs = BackgroundJobs(self, "racig-masks")
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.show_masks = QCheckBox("Show masks", self)
        self.show_masks.setToolTip("Overlay where each character's face (light) and outfit (colour) references apply")
        self.show_masks.toggled.connect(self._masks_toggled)
        self.try_on_button = QPushButton("Try on…", self)
        self.try_on_button.setToolTip(
            "Give a character another outfit and repaint its body (the old image stays in the history)"
        )
        self.try_on_button.clicked.connect(self.open_try_on_dialog)
        self.poses_button = QPushButton("Pose…", self)
        self.poses_button.setCheckable(True)
        self.poses_button.setToolTip(
            "Browse the pose library, take a pose from an image, choose who plays which figure"
        )
        self.poses_button.toggled.connect(self._poses_toggled)
        row.addWidget(self.show_masks)
        row.addStretch(1)
        row.addWidget(self.poses_button)
        row.addWidget(self.try_on_button)
        layout.addLayout(row)
        self.poses = PoseBrowser(ctx, self)
        self.poses.hide()  # computes nothing until opened
        layout.addWidget(self.poses)
        self.overlay = QLabel(self)
        self.overlay.setObjectName("racigMaskOverlay")
        self.overlay.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.overlay.hide()
        layout.addWidget(self.overlay)

    # ------------------------------------------------------------------ following the panel
    def panel(self) -> Panel | None:
        found = self.ctx.document.project.find_panel(self.panel_id) if self.panel_id else None
        return found[1] if found else None

    def set_panel(self, panel: Panel | None) -> None:
        """Follow the inspected panel (called by the inspector on every refresh)."""
        self.panel_id = panel.id if panel else None
        backend = panel.backend if panel is not None else None
        # Every backend that draws the library's poses (the "pose" capability: storyboard, racig,
        # plugins built on them) gets the pose browser, as it gets the canvas's pose overlay;
        # masks and try-on are about a reference-driven backend's characters ("masks", "tryon").
        draws_poses = backend is not None and has_capability(backend, "pose")
        self.setVisible(draws_poses)
        masks = backend is not None and has_capability(backend, "masks")
        self.setTitle(f"Characters' references ({_short_name(backend)})" if masks else "Pose")
        self.show_masks.setVisible(masks)
        self.try_on_button.setVisible(backend is not None and has_capability(backend, "tryon"))
        self.try_on_button.setEnabled(self.render_service is not None and panel is not None and bool(panel.characters))
        self.poses.set_panel(panel if draws_poses else None)
        self._refresh_overlay()

    def _poses_toggled(self, on: bool) -> None:
        self.poses.setVisible(on)

    def _masks_toggled(self, on: bool) -> None:
        self._refresh_overlay()

    def _refresh_overlay(self) -> None:
        panel = self.panel()
        if (
            not self.show_masks.isChecked()
            or panel is None
            or not has_capability(panel.backend, "masks")
            or not panel.characters
        ):
            self.jobs.invalidate("masks")  # any overlay still being computed is for an older state
            self._shown_key = None
            self.overlay.hide()
            self.overlay_image = None
            return
        try:
            request, fallback = mask_requests(self.ctx, panel)
            current = panel.result()
            base = self.ctx.document.assets.get(current.asset) if current is not None else None
        except ComicStudioError as exc:
            self.ctx.message.emit(f"Cannot show the masks: {exc}")
            return
        # The inspector refreshes on every edit of the panel (each keystroke in the prompt): only
        # recompute when what the masks depend on changed.
        key = (
            panel.id,
            request.to_json(),
            fallback.to_json() if fallback else None,
            current.asset if current else None,
        )
        if key == self._shown_key:
            return
        self._shown_key = key
        panel_id = panel.id
        self.jobs.submit(
            compute_mask_overlay,
            request,
            base,
            PREVIEW_SIDE,
            fallback,
            lane="masks",
            on_result=lambda image: self._show_overlay(panel_id, image),
            on_error=lambda error: self.ctx.message.emit(f"Cannot show the masks: {error}"),
        )

    def _show_overlay(self, panel_id: str, image: Image.Image) -> None:
        if not self.show_masks.isChecked():
            return
        self.overlay_image = image
        side = min(PREVIEW_SIDE, max(160, self.contentsRect().width() - 16))
        self.overlay.setPixmap(pil_to_pixmap(self.overlay_image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                                  Qt.TransformationMode.SmoothTransformation))  # fmt: skip
        self.overlay.show()
        self.masks_ready.emit(panel_id)

    # ------------------------------------------------------------------ try-on
    def try_on(self, character_id: str, outfit: bytes | str | Path | Image.Image, scope: str = "body") -> str | None:
        """Add ``outfit`` (asset bytes, an image file or a PIL image) to the character's body
        references and queue the try-on. Returns the job id (``None``: reason in ``ctx.message``)."""
        if self.render_service is None or self.panel_id is None:
            return None
        digest = self.ctx.edit(character_edits.add_reference, character_id, "body", outfit)
        if digest is None:
            return None  # ctx.edit reported why
        return self.render_service.try_on(self.panel_id, character_id, digest, scope)

    def open_try_on_dialog(self) -> str | None:
        panel = self.panel()
        if panel is None:
            return None
        dialog = TryOnDialog(self.ctx, panel, self)
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.outfit is None:
            return None
        return self.try_on(dialog.character_id(), dialog.outfit, dialog.scope())

    def shutdown(self) -> None:
        self.jobs.shutdown()
        self.poses.shutdown()


def _short_name(backend: str) -> str:
    """The backend's display name without its parenthesised description ("RaCig (consistent
    characters)" → "RaCig")."""
    return get_backend_class(backend).display_name.split(" (")[0] or backend


class TryOnDialog(QDialog):
    """Pick a character of the panel and an outfit: one of its body references or an image file."""

    def __init__(self, ctx: StudioContext, panel: Panel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Try on an outfit")
        self.ctx = ctx
        self.outfit: bytes | Path | None = None
        project = ctx.document.project
        form = QFormLayout(self)
        self.character = QComboBox(self)
        for placement in panel.characters:
            character = project.character(placement.character_id)
            if character is not None:
                self.character.addItem(character.name, character.id)
        self.character.currentIndexChanged.connect(self._fill_references)
        self.references = QListWidget(self)
        self.references.setViewMode(QListWidget.ViewMode.IconMode)
        self.references.setIconSize(QSize(THUMB, THUMB))
        self.references.setFixedHeight(THUMB + 36)
        self.references.currentItemChanged.connect(self._reference_chosen)
        self.file_button = QPushButton("Image file…", self)
        self.file_button.clicked.connect(self._choose_file)
        self.chosen = QLabel("No outfit chosen", self)
        self.scope_box = QComboBox(self)
        self.scope_box.addItem("Only the character's body", "body")
        self.scope_box.addItem("The whole panel", "panel")
        if panel.result() is None:
            self.scope_box.setCurrentIndex(1)
            self.scope_box.model().item(0).setEnabled(False)  # nothing to repaint yet
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        form.addRow("Character", self.character)
        form.addRow("Outfit", self.references)
        pick = QHBoxLayout()
        pick.addWidget(self.chosen, 1)
        pick.addWidget(self.file_button)
        form.addRow(pick)
        form.addRow("Repaint", self.scope_box)
        form.addRow(buttons)
        self._fill_references()

    def character_id(self) -> str:
        return self.character.currentData()

    def scope(self) -> str:
        return self.scope_box.currentData()

    def _fill_references(self) -> None:
        self.references.clear()
        character = self.ctx.document.project.character(self.character_id() or "")
        assets = self.ctx.document.assets
        for digest in character.body_refs if character else []:
            item = QListWidgetItem(f"#{self.references.count() + 1}")
            item.setData(Qt.ItemDataRole.UserRole, digest)
            try:
                image = assets.open_image(digest)
                image.thumbnail((THUMB, THUMB))
                item.setIcon(QIcon(pil_to_pixmap(image)))
            except (ComicStudioError, OSError):
                item.setText(f"#{self.references.count() + 1} (unreadable)")
            self.references.addItem(item)
        self.outfit = None
        self._update()

    def _reference_chosen(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.outfit = self.ctx.document.assets.get(item.data(Qt.ItemDataRole.UserRole))
            self.chosen.setText(f"Body reference {item.text()}")
        self._update()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Outfit image", "", "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.outfit = Path(path)
            self.references.clearSelection()
            self.chosen.setText(Path(path).name)
        self._update()

    def _update(self) -> None:
        self.ok.setEnabled(self.outfit is not None and self.character.count() > 0)


__all__ = ["RacigTools", "TryOnDialog", "compute_mask_overlay", "mask_request", "mask_requests", "same_pose_choice"]

"""The poses-and-masks overlay of the page canvas, and nudging figures by dragging them.

For every panel of the page whose backend draws poses (storyboard, racig: the "pose" capability)
the overlay shows, clipped to the panel, each character's body region in its colour and its head
lighter (the regions racig conditions the face and outfit references on), every figure's skeleton
in the OpenPose colours, and the character names at the heads. It shows the panel's request as
``workflows.requests.build_request`` makes it now, so it follows every edit: a nudge, a pose picked in the
inspector, a resized panel, a new render that pinned the figure assignment. (An automatic pose is
picked among close matches by seed, and "Render panel" on a rendered panel with an unlocked seed
takes a new seed: to keep exactly the pose shown, pick it, nudge it, or lock the seed.)

Figures and masks come from :func:`comic_studio.poses.staging.overlay.compute_pose_overlay`, with
the staging options of the panel's backend (asked through the registry), run on one helper thread
(pose retrieval may load the text embedder and torch: never on the GUI thread). Each panel remembers the request it wants shown; a result computed for an older request
is dropped, and a queued job whose request is already stale is skipped.

Nudging: each figure has a move handle (round, at its hips) and a scale handle (square, at the top
right of its visible keypoints; it scales about the feet). While dragging only the overlay moves;
the release writes the panel's explicit pose (all figures, panel-normalised, ``framed=True``) and
pins the characters to their figures, as one undo step labelled "Nudge figure". A nudge is built
from the figures shown, so it needs them to be the panel's current ones: while a changed panel's
overlay is being computed (a pose picked, an undo, the last nudge) a drag is refused with a status
message, and a drag during which the figures changed is dropped.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneMouseEvent, QStyleOptionGraphicsItem, QWidget

from comic_studio.core import editing, pose_nudge as nudging
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import bbox
from comic_studio.core.model import Page, Panel
from comic_studio.core.pose_nudge import Nudge
from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.canvas.items import Z_BORDER, Z_HANDLE, cosmetic_pen
from comic_studio.ui.canvas.painting import polygon_path
from comic_studio.workflows.requests import build_request

if TYPE_CHECKING:
    from comic_studio.poses.staging.overlay import PoseOverlay
    from comic_studio.ui.canvas.scene import PageScene

Z_POSE_OVERLAY = Z_BORDER + 5
"""Above the panel art and the gutter strips, below balloons (they stay readable and clickable)."""
NUDGE_LABEL = "Nudge figure"
BYSTANDER_COLOUR = "#8a8a8a"


def pose_capable(backend: str) -> bool:
    """Whether ``backend`` draws the panel's pose (declares the "pose" capability)."""
    from comic_studio.generation.registry import has_capability

    return has_capability(backend, "pose")


def _openpose_palette() -> tuple[tuple, tuple]:
    """The OpenPose limbs and colours (imported when the overlay is first drawn: the window opens
    without loading the pose library)."""
    from comic_studio.poses.staging.openpose import COLOURS, LIMBS

    return LIMBS, COLOURS


def _compute(wanted: dict[str, str], panel_id: str, key: str, request: Any) -> PoseOverlay | None:
    """Worker thread. ``None``: the panel changed again before this job started (skipped)."""
    if wanted.get(panel_id) != key:
        return None
    from comic_studio.poses.staging.overlay import compute_pose_overlay
    from comic_studio.ui.pose_staging import staging_options

    return compute_pose_overlay(request, staging_options(request))


class PoseOverlayController(QObject):
    """Keeps one :class:`PoseOverlayItem` per pose-drawing panel of the scene's page while the
    overlay is on, computes their figures off the GUI thread, and runs the nudge gestures."""

    overlay_ready = Signal(str)
    """``panel_id`` once its overlay shows the panel's current state (tests, status bar)."""

    def __init__(self, scene: PageScene):
        super().__init__(scene)
        self.scene = scene
        self.ctx = scene.ctx
        self.enabled = False
        self.items: dict[str, PoseOverlayItem] = {}
        self._wanted: dict[str, str] = {}
        """Per panel, the request (as JSON) whose overlay should be shown; read by the worker."""
        self.jobs = BackgroundJobs(self, "pose-overlay")
        self._drag: dict | None = None
        self._gesture = itertools.count(1)

    # ------------------------------------------------------------------ following the page
    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        page = self.scene.page
        if on and page is not None and page.id == self.scene.page_id:
            self.sync(page)
        else:
            self._remove_all()

    def forget_items(self) -> None:
        """The scene was cleared (its items are gone): drop our references."""
        self.items, self._drag = {}, None
        self._wanted.clear()  # in place: queued jobs read this very dict and skip themselves

    def _remove_all(self) -> None:
        for item in self.items.values():
            item.remove()
        self.forget_items()

    def sync(self, page: Page) -> None:
        """Follow the page after a document change: new/removed panels, changed requests."""
        if not self.enabled:
            return
        project = self.ctx.document.project
        live: set[str] = set()
        for panel in page.panels:
            if not panel.characters or not pose_capable(panel.backend):
                continue
            try:
                request = build_request(project, panel)
            except ComicStudioError as exc:
                self.ctx.message.emit(f"Cannot show the poses of panel {panel.order + 1}: {exc}")
                continue
            live.add(panel.id)
            item = self.items.get(panel.id)
            if item is None:
                item = self.items[panel.id] = PoseOverlayItem(self, panel.id)
                self.scene.addItem(item)
            item.set_shape(panel)
            key = request.to_json()
            if self._wanted.get(panel.id) != key:
                self._wanted[panel.id] = key
                item.labels = {c.id: (c.name, c.colour) for c in request.characters}
                self._submit(panel.id, key, request)
        for pid in [pid for pid in self.items if pid not in live]:
            self.items.pop(pid).remove()
            self._wanted.pop(pid, None)

    def _submit(self, panel_id: str, key: str, request: Any) -> None:
        self.jobs.submit(
            _compute,
            self._wanted,
            panel_id,
            key,
            request,
            lane=panel_id,
            on_result=lambda overlay: self._arrived(panel_id, key, overlay),
            on_error=lambda error: self._failed(panel_id, key, error),
        )

    def _current_item(self, panel_id: str, key: str) -> PoseOverlayItem | None:
        """The panel's item if it still wants the overlay of ``key`` (else it was computed for a
        state the panel has left)."""
        item = self.items.get(panel_id)
        return item if self.enabled and item is not None and self._wanted.get(panel_id) == key else None

    def _failed(self, panel_id: str, key: str, error: BaseException) -> None:
        item = self._current_item(panel_id, key)
        if item is not None:
            item.set_overlay(None)
            self.ctx.message.emit(f"Cannot show the poses of panel {self._panel_number(panel_id)}: {error}")

    def _arrived(self, panel_id: str, key: str, overlay: PoseOverlay | None) -> None:
        item = self._current_item(panel_id, key)
        if item is None or overlay is None:
            return
        if self._drag is not None and self._drag["item"] is item:
            # Replacing the figures would delete the handle under the mouse: shown after the gesture.
            self._drag["arrived"] = (key, overlay)
            return
        item.set_overlay(overlay)
        self.overlay_ready.emit(panel_id)

    def _panel_number(self, panel_id: str) -> str:
        found = self.ctx.document.project.find_panel(panel_id)
        return str(found[1].order + 1) if found else panel_id

    def pending(self) -> bool:
        """Whether some shown panel still waits for its overlay (tests wait on this)."""
        return any(item.key_shown != self._wanted.get(pid) for pid, item in self.items.items())

    def shutdown(self) -> None:
        self._wanted.clear()
        self.jobs.shutdown()

    # ------------------------------------------------------------------ nudging
    def _panel(self, panel_id: str) -> Panel | None:
        found = self.ctx.document.project.find_panel(panel_id)
        return found[1] if found else None

    def _is_current(self, item: PoseOverlayItem) -> bool:
        """Whether ``item`` shows the panel's current figures. While the overlay of a new state
        (a pick in the inspector, the last nudge) is computed, the old figures are still shown: a
        nudge built from them would silently drop that change."""
        return item.overlay is not None and item.key_shown == self._wanted.get(item.panel_id)

    def begin_nudge(self, handle: FigureHandleItem, pos: QPointF) -> None:
        item = handle.overlay_item
        if item.overlay is None:
            return
        if not self._is_current(item):
            self.ctx.message.emit("The figures are being updated; nudge again in a moment")
            return
        box = item.box
        keypoints = item.overlay.figures[handle.figure].keypoints
        feet = nudging.figure_feet(keypoints)
        self._drag = {
            "item": item, "figure": handle.figure, "role": handle.role, "press": QPointF(pos),
            "keypoints": keypoints, "box": box, "pivot": feet,
            "pivot_page": QPointF(box.x + feet[0] * box.w, box.y + feet[1] * box.h),
            "start": QPointF(handle.pos()), "nudge": Nudge(),
        }  # fmt: skip

    def drag_nudge(self, pos: QPointF) -> None:
        drag = self._drag
        if drag is None:
            return
        box, keypoints = drag["box"], drag["keypoints"]
        if drag["role"] == "move":
            d = pos - drag["press"]
            dx, dy = nudging.clamp_move(keypoints, d.x() / max(box.w, 1e-6), d.y() / max(box.h, 1e-6))
            drag["nudge"] = Nudge(dx=dx, dy=dy)
        else:
            # Scale by how far the pointer is from the feet along the feet → handle direction.
            pivot, start = drag["pivot_page"], drag["start"]
            ux, uy = start.x() - pivot.x(), start.y() - pivot.y()
            length2 = max(ux * ux + uy * uy, 1e-6)
            scale = ((pos.x() - pivot.x()) * ux + (pos.y() - pivot.y()) * uy) / length2
            drag["nudge"] = Nudge(scale=nudging.clamp_scale(keypoints, scale), pivot=drag["pivot"])
        drag["item"].set_live(drag["figure"], drag["nudge"])

    def end_nudge(self) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return
        item: PoseOverlayItem = drag["item"]
        nudge: Nudge = drag["nudge"]
        arrived = drag.get("arrived")
        if arrived is not None:
            # The panel changed during the gesture (e.g. a render of it pinned its cast) and the new
            # state's overlay came in meanwhile: the nudge stands only if the figures dragged are
            # still the panel's (anything else would silently undo that change).
            key, fresh = arrived
            still = (self._wanted.get(item.panel_id) == key and item.overlay is not None
                     and (fresh.figures, fresh.character_figure) == (item.overlay.figures, item.overlay.character_figure))  # fmt: skip
            if still:
                item.key_shown = key  # the same figures: those shown are the current ones
            elif not nudge.is_identity:
                self.ctx.message.emit("The figures changed while you dragged them; nudge again")
            if not (still and not nudge.is_identity and self.nudge_figure(item.panel_id, drag["figure"], nudge)):
                item.set_live(None, None)
                self._wanted.pop(item.panel_id, None)
                if self.scene.page is not None:
                    self.sync(self.scene.page)  # show the new state's overlay (fetched again)
            return
        panel = self._panel(item.panel_id)
        applied = panel is not None and item.overlay is not None and not nudge.is_identity
        if not applied or not self.nudge_figure(item.panel_id, drag["figure"], nudge):
            item.set_live(None, None)

    def nudge_figure(self, panel_id: str, figure: int, nudge: Nudge) -> bool:
        """Apply ``nudge`` to figure ``figure`` of the panel's shown pose as one undo step (the
        scene-API twin of a handle drag). False when nothing was changed (reason in
        ``ctx.message``)."""
        item, panel = self.items.get(panel_id), self._panel(panel_id)
        if item is None or item.overlay is None or panel is None:
            self.ctx.message.emit("Turn on View → Show Poses and Masks and wait for the panel's figures to nudge them")
            return False
        if not self._is_current(item):
            self.ctx.message.emit("The figures are being updated; nudge again in a moment")
            return False  # (the last nudge stays drawn until its overlay arrives)
        if panel.backend_settings.get("pose_choice") == "retrieved":
            self.ctx.message.emit(f"This panel's {panel.backend} Pose setting is 'retrieved', which ignores the panel's "
                                  "own pose: set it to 'panel' in the inspector to nudge figures")  # fmt: skip
            item.set_live(None, None)
            return False
        overlay, box = item.overlay, item.box
        try:
            spec = nudging.nudged_pose(overlay.figures, figure, nudge, box.w / max(box.h, 1e-6))
        except ValueError as exc:
            self.ctx.message.emit(f"Cannot nudge: {exc}")
            item.set_live(None, None)
            return False
        placements = nudging.pinned_placements(panel.characters, overlay.placements, figure, nudge)
        changes = self.ctx.edit(editing.set_panel_fields, panel_id, NUDGE_LABEL,
                                merge_key=("nudge-figure", panel_id, next(self._gesture)),
                                pose=spec, characters=placements)  # fmt: skip
        self.ctx.document.undo_stack.break_merge()
        if changes is None:
            item.set_live(None, None)
            return False
        # The overlay keeps showing the nudged figure until the recomputed one arrives (no jump back).
        item.set_live(figure, nudge)
        return True


# --------------------------------------------------------------------------- drawing


def _pixmap(rgba: Any) -> QPixmap:
    height, width = rgba.shape[:2]
    return QPixmap.fromImage(QImage(rgba.tobytes(), width, height, 4 * width, QImage.Format.Format_RGBA8888))


def _nudge_transform(nudge: Nudge) -> QTransform:
    """``nudge`` as a QTransform in panel-normalised units (scale about the pivot, then move)."""
    px, py = nudge.pivot
    to_pivot = QTransform.fromTranslate(-px, -py)
    back = QTransform.fromTranslate(px + nudge.dx, py + nudge.dy)
    return to_pivot * QTransform.fromScale(nudge.scale, nudge.scale) * back


class PoseOverlayItem(QGraphicsItem):
    """One panel's masks, skeletons and names, clipped to the panel; mouse-transparent (the
    handles are separate top-level items so they stack above balloons)."""

    def __init__(self, controller: PoseOverlayController, panel_id: str):
        super().__init__()
        self.controller = controller
        self.panel_id = panel_id
        self.setZValue(Z_POSE_OVERLAY)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.path = QPainterPath()
        self.box = bbox([(0, 0), (1, 0), (1, 1)])
        self.rect = QRectF()
        self.overlay: PoseOverlay | None = None
        self.key_shown: str | None = None
        self.labels: dict[str, tuple[str, str]] = {}
        """character id → (name, colour), from the request being computed."""
        self._shown_labels: dict[str, tuple[str, str]] = {}
        self.layers: list[QPixmap] = []
        self.handles: list[FigureHandleItem] = []
        self.live: tuple[int, Nudge] | None = None
        self._shape_key: tuple = ()

    def set_shape(self, panel: Panel) -> None:
        key = tuple(map(tuple, panel.shape))
        if key == self._shape_key:
            return
        self.prepareGeometryChange()
        self._shape_key = key
        self.path = polygon_path([tuple(p) for p in panel.shape])
        self.box = bbox(panel.shape)
        self.rect = QRectF(self.box.x, self.box.y, self.box.w, self.box.h)
        self._place_handles()
        self.update()

    def set_overlay(self, overlay: PoseOverlay | None) -> None:
        self.overlay = overlay
        self.key_shown = self.controller._wanted.get(self.panel_id)
        self._shown_labels = dict(self.labels)
        self.layers = [_pixmap(layer) for layer in overlay.layers] if overlay else []
        self.live = None
        self._make_handles()
        self.update()

    def set_live(self, figure: int | None, nudge: Nudge | None) -> None:
        """Show figure ``figure`` nudged (during a drag, and until the new pose's overlay arrives)."""
        self.live = (figure, nudge) if figure is not None and nudge is not None else None
        self._place_handles()
        self.update()

    def remove(self) -> None:
        scene = self.scene()
        for handle in self.handles:
            if handle.scene() is not None:
                handle.scene().removeItem(handle)
        self.handles = []
        if scene is not None:
            scene.removeItem(self)

    # ------------------------------------------------------------------ geometry
    def figure_points(self, index: int) -> list[tuple[float, float, float]]:
        """Figure ``index``'s keypoints as shown (live nudge applied), panel-normalised."""
        assert self.overlay is not None
        keypoints = self.overlay.figures[index].keypoints
        if self.live is not None and self.live[0] == index:
            return nudging.nudge_keypoints(keypoints, self.live[1])
        return list(keypoints)

    def to_page(self, u: float, v: float) -> QPointF:
        return QPointF(self.box.x + u * self.box.w, self.box.y + v * self.box.h)

    def handle_positions(self, index: int) -> tuple[QPointF, QPointF]:
        """Page positions of figure ``index``'s move handle (hips) and scale handle (top right)."""
        points = self.figure_points(index)
        cx, cy = nudging.figure_centre(points)
        _x0, y0, x1, _y1 = nudging.visible_bounds(points)
        return self.to_page(cx, cy), self.to_page(x1, y0)

    def _make_handles(self) -> None:
        for handle in self.handles:
            if handle.scene() is not None:
                handle.scene().removeItem(handle)
        self.handles = []
        if self.overlay is None or self.scene() is None:
            return
        owner = {f: cid for cid, f in zip(self.overlay.character_ids, self.overlay.character_figure)}
        for index in range(len(self.overlay.figures)):
            colour = self._shown_labels.get(owner.get(index, ""), ("", BYSTANDER_COLOUR))[1]
            for role in ("move", "scale"):
                handle = FigureHandleItem(self, index, role, colour)
                self.scene().addItem(handle)
                self.handles.append(handle)
        self._place_handles()

    def _place_handles(self) -> None:
        if self.overlay is None:
            return
        for handle in self.handles:
            move, scale = self.handle_positions(handle.figure)
            handle.setPos(move if handle.role == "move" else scale)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-2, -2, 2, 2)

    def shape(self) -> QPainterPath:
        return self.path

    # ------------------------------------------------------------------ painting
    def _layer_transform(self) -> QTransform:
        """Panel-normalised units → page."""
        t = QTransform()
        t.translate(self.box.x, self.box.y)
        t.scale(self.box.w, self.box.h)
        return t

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        overlay = self.overlay
        if overlay is None:
            return
        painter.save()
        painter.setClipPath(self.path)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        base = painter.worldTransform()
        for layer, fig in zip(self.layers, overlay.character_figure):
            t = self._layer_transform()
            if self.live is not None and self.live[0] == fig:
                t = _nudge_transform(self.live[1]) * t  # the mask moves with its figure
            painter.setWorldTransform(t * base)
            painter.drawPixmap(QRectF(0, 0, 1, 1), layer, QRectF(layer.rect()))
        painter.setWorldTransform(base)
        for index in range(len(overlay.figures)):
            self._paint_skeleton(painter, self.figure_points(index))
        self._paint_names(painter, overlay)
        painter.restore()

    def _paint_skeleton(self, painter: QPainter, points: list[tuple[float, float, float]]) -> None:
        limbs, colours = _openpose_palette()
        page = [self.to_page(x, y) for x, y, _v in points]
        visible = [v > 0.5 for _x, _y, v in points]
        for j, (a, b) in enumerate(limbs):
            if visible[a] and visible[b]:
                r, g, bl = colours[j]
                painter.setPen(cosmetic_pen(QColor(r, g, bl, 230), 3.0))
                painter.drawLine(page[a], page[b])
        painter.setPen(Qt.PenStyle.NoPen)
        lod = max(1e-6, painter.worldTransform().m11())
        radius = 2.5 / lod  # ~2.5 px whatever the zoom
        for i, (point, shown) in enumerate(zip(page, visible)):
            if shown:
                painter.setBrush(QColor(*colours[i]))
                painter.drawEllipse(point, radius, radius)

    def _paint_names(self, painter: QPainter, overlay: PoseOverlay) -> None:
        """Each character's name above its head, at a fixed screen size."""
        base = painter.worldTransform()
        # Tags stay inside the panel (the overlay is clipped to it): a figure at the panel's edge
        # would otherwise show half a name.
        frame = base.mapRect(QRectF(self.to_page(0.0, 0.0), self.to_page(1.0, 1.0)))
        font = QFont(painter.font())
        font.setPixelSize(12)
        font.setBold(True)
        for cid, fig, placement in zip(overlay.character_ids, overlay.character_figure, overlay.placements):
            name, colour = self._shown_labels.get(cid, ("", BYSTANDER_COLOUR))
            if not name or placement.head is None:
                continue
            if self.live is not None and self.live[0] == fig:
                placement = nudging.nudged_placement(placement, self.live[1])
            # Just above the head circle (its radius is in units of the panel's shorter side).
            hx, hy = placement.head
            top = self.to_page(hx, hy) - QPointF(0, placement.head_radius * min(self.box.w, self.box.h))
            anchor = base.map(top)
            painter.save()
            painter.resetTransform()
            painter.setFont(font)
            metrics = painter.fontMetrics()
            w, h = metrics.horizontalAdvance(name) + 10, metrics.height() + 4
            x = min(max(anchor.x() - w / 2, frame.left() + 2), frame.right() - w - 2)
            tag = QRectF(x, max(anchor.y() - h - 3, frame.top() + 2), w, h)
            painter.setPen(QPen(QColor("#ffffff"), 1.0))
            painter.setBrush(QBrush(QColor(colour)))
            painter.drawRoundedRect(tag, 4, 4)
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, name)
            painter.restore()


class FigureHandleItem(QGraphicsItem):
    """A figure's move handle (round) or scale handle (square), the same size at every zoom."""

    SIZE = 7.0

    def __init__(self, overlay_item: PoseOverlayItem, figure: int, role: str, colour: str):
        super().__init__()
        self.overlay_item = overlay_item
        self.figure = figure
        self.role = role
        self.colour = QColor(colour)
        self.setZValue(Z_HANDLE)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setCursor(Qt.CursorShape.SizeAllCursor if role == "move" else Qt.CursorShape.SizeBDiagCursor)
        self.setToolTip("Drag to move this figure" if role == "move" else "Drag to scale this figure about its feet")
        self._pressed = False

    def boundingRect(self) -> QRectF:
        s = self.SIZE + 2
        return QRectF(-s, -s, 2 * s, 2 * s)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        s = self.SIZE
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor("#ffffff"), 2.0))
        painter.setBrush(self.colour)
        if self.role == "move":
            painter.drawEllipse(QPointF(0, 0), s, s)
        else:
            painter.drawRect(QRectF(-s * 0.8, -s * 0.8, 1.6 * s, 1.6 * s))

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._pressed = True
        self.overlay_item.controller.begin_nudge(self, event.scenePos())
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._pressed:
            self.overlay_item.controller.drag_nudge(event.scenePos())

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._pressed:
            self._pressed = False
            self.overlay_item.controller.end_nudge()


__all__ = ["FigureHandleItem", "NUDGE_LABEL", "PoseOverlayController", "PoseOverlayItem", "pose_capable"]

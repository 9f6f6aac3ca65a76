"""PageCanvas: the central view of the studio, one page at a time.

Conventions (documented in the View menu tooltips too):

* **Zoom**: Ctrl + wheel zooms about the cursor (as in Krita, Inkscape, Clip Studio and browsers);
  the plain wheel scrolls, Shift + wheel scrolls sideways. ``zoom_in``/``zoom_out`` step by 25 %.
* **100 %** maps one point to one logical pixel. Matching physical inches on screen would need a
  trustworthy screen DPI, which many displays misreport; 1 pt → 1 px is predictable and close.
* **Pan**: middle-button drag, or hold Space and drag with the left button.
* **Tools**: ``select`` (click, Ctrl-click, rubber band; drag gutters and balloons) or a balloon
  kind (click inside a panel to add one there and type its text straight away).
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QLineEdit, QMenu, QWidget

from comic_studio.core import editing
from comic_studio.ui.canvas import tools
from comic_studio.ui.canvas.scene import PageScene
from comic_studio.ui.context import StudioContext

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.05, 16.0


class BalloonTextEditor(QLineEdit):
    """The in-place editor over a balloon. Every keystroke is an edit (merged into one undo step,
    so the page re-letters live); Enter or focus loss ends it, Escape restores the old text."""

    def __init__(self, canvas: PageCanvas, balloon_id: str, text: str):
        super().__init__(canvas.viewport())
        self.canvas, self.balloon_id, self.original = canvas, balloon_id, text
        self.setText(text)
        self.setPlaceholderText("Type the balloon's text")
        self.setFrame(True)
        self.setStyleSheet("QLineEdit { background: rgba(255,255,255,235); color: black; border: 2px solid #2f80ed; }")
        self.textEdited.connect(self._typed)
        self.returnPressed.connect(self.finish)
        self._done = False

    def _typed(self, text: str) -> None:
        self.canvas.ctx.edit(editing.edit_balloon_text, self.balloon_id, text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            if self.text() != self.original:
                self.canvas.ctx.edit(editing.edit_balloon_text, self.balloon_id, self.original)
            self.finish()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        # Deferred, with the editor as context: when focus is lost because the window is being
        # torn down, the editor dies first and the call never runs against a dead canvas.
        QTimer.singleShot(0, self, self.finish)

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.canvas.ctx.document.undo_stack.break_merge()
        self.canvas._editor_closed(self)
        self.hide()
        self.deleteLater()


class PageCanvas(QGraphicsView):
    panel_activated = Signal(str)
    """A panel was double-clicked (the main window focuses the inspector on it)."""
    zoom_changed = Signal(float)
    pose_overlay_toggled = Signal(bool)
    """The poses-and-masks overlay was turned on or off (the View action follows it)."""

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None):
        self.ctx = ctx
        self._scene = PageScene(ctx)
        super().__init__(self._scene, parent)
        self._scene.setParent(self)
        self.tool = "select"
        self.editor: BalloonTextEditor | None = None
        self._pan_start: QPoint | None = None
        self._space_down = False
        self._tool_press = False
        self._fitted_once = False
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing
            | QPainter.RenderHint.SmoothPixmapTransform
            | QPainter.RenderHint.TextAntialiasing
        )
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setBackgroundBrush(QColor("#5a5d61"))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._scene.text_edit_requested.connect(self.edit_balloon_text)
        self._scene.panel_activated.connect(self.panel_activated)
        ctx.document_replaced.connect(self._document_replaced)
        ctx.document_changed.connect(lambda _changes: self._place_editor())  # follow a moved balloon

    def _document_replaced(self, _document) -> None:
        self._close_editor()
        self.fit_page()

    @property
    def page_scene(self) -> PageScene:
        return self._scene

    # ------------------------------------------------------------------ zoom and pan
    @property
    def zoom(self) -> float:
        """Logical pixels per point (1.0 = 100 %)."""
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        factor = zoom / self.zoom
        if abs(factor - 1) > 1e-9:
            self.scale(factor, factor)
        self._close_editor()
        self.zoom_changed.emit(self.zoom)
        self.ctx.message.emit(f"Zoom {self.zoom * 100:.0f} %")

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit_page(self) -> None:
        item = self._scene.page_item
        if item is None:
            return
        # Fit the page with its bit of desk (the scene rect), so no scroll bar appears.
        rect = self.sceneRect()
        vw, vh = max(self.viewport().width() - 4, 10), max(self.viewport().height() - 4, 10)
        self.set_zoom(min(vw / rect.width(), vh / rect.height()))
        self.centerOn(item.paper_rect().center())
        self._fitted_once = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._fitted_once:
            self.fit_page()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            if steps:
                self.set_zoom(self.zoom * ZOOM_STEP**steps)
            event.accept()
            return
        super().wheelEvent(event)

    def _start_pan(self, pos: QPoint) -> None:
        self._pan_start = pos
        self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_down):
            self._start_pan(event.position().toPoint())
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and self.tool != "select":
            kind = tools.tool_kind(self.tool)
            if kind is not None:
                balloon = self._scene.add_balloon_at(kind, self.mapToScene(event.position().toPoint()))
                if balloon is not None:
                    self.edit_balloon_text(balloon.id)
                self._tool_press = True
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_start is not None:
            pos = event.position().toPoint()
            d = pos - self._pan_start
            self._pan_start = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - d.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - d.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_start is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_start = None
            self.viewport().unsetCursor()
            event.accept()
            return
        if self._tool_press:  # the press added a balloon: its release belongs to nobody else
            self._tool_press = False
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selected()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self._place_editor()

    # ------------------------------------------------------------------ tools and toggles
    def set_tool(self, name: str) -> None:
        tools.tool_kind(name)  # validates the name
        self.tool = name
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag if name == "select" else QGraphicsView.DragMode.NoDrag)
        self.viewport().setCursor(Qt.CursorShape.ArrowCursor if name == "select" else Qt.CursorShape.CrossCursor)

    def set_show_reading_order(self, show: bool) -> None:
        self._scene.set_show_reading_order(show)

    def set_show_guides(self, show: bool) -> None:
        self._scene.set_show_guides(show)

    @property
    def show_pose_overlay(self) -> bool:
        return self._scene.pose_overlay.enabled

    def set_show_pose_overlay(self, show: bool) -> None:
        """Each pose-drawing panel's figures (with move/scale handles), head/body masks and
        character names; what other widgets (the inspector's "Show masks") call to turn it on."""
        if show == self.show_pose_overlay:
            return
        self._scene.set_show_pose_overlay(show)
        self.pose_overlay_toggled.emit(show)

    def follow_renders(self, render_service) -> None:
        """Show ``render_service``'s jobs in their panels: queued badge, live preview with progress
        and a cancel button, error badge (see :mod:`.live_render`)."""
        self._scene.live.follow(render_service)
        self._scene.stale.follow(render_service)  # stale panels' one-click re-render

    def shutdown(self) -> None:
        """Stop the overlay's helper thread (the window calls this when it closes)."""
        self._scene.pose_overlay.shutdown()

    # ------------------------------------------------------------------ panel operations
    def split_selected(self, direction: str) -> None:
        ids = list(self.ctx.selected_panel_ids)
        if not ids:
            self.ctx.message.emit("Select a panel to split")
            return
        for pid in ids:
            self.ctx.edit(editing.split_panel, pid, direction)

    def merge_selected(self) -> None:
        ids = self.ctx.selected_panel_ids
        if len(ids) != 2:
            self.ctx.message.emit("Select exactly two neighbouring panels to merge")
            return
        if self.ctx.edit(editing.merge_panels, ids[0], ids[1]) is not None:
            self.ctx.select_panels([ids[0]])

    def delete_selected(self) -> None:
        """The selected balloon if there is one, else the selected panels."""
        if self.ctx.selected_balloon_id:
            balloon_id = self.ctx.selected_balloon_id
            self.ctx.select_balloon(None)
            self.ctx.edit(editing.delete_balloon, balloon_id)
            return
        ids = list(self.ctx.selected_panel_ids)
        if not ids:
            self.ctx.message.emit("Nothing selected to delete")
            return
        for pid in ids:
            self.ctx.edit(editing.delete_panel, pid)

    def apply_template(self, template_id: str) -> None:
        page = self.ctx.current_page
        if page is None:
            self.ctx.message.emit("No page to apply a template to")
            return
        self.ctx.edit(editing.apply_template, page.id, template_id)

    def panel_menu(self) -> QMenu:
        menu = QMenu(self)
        for label, direction in (
            ("Split horizontally", "horizontal"),
            ("Split vertically", "vertical"),
            ("Split diagonally", "diagonal"),
        ):
            menu.addAction(label, lambda d=direction: self.split_selected(d))
        merge = menu.addAction("Merge panels", self.merge_selected)
        merge.setEnabled(len(self.ctx.selected_panel_ids) == 2)
        menu.addSeparator()
        menu.addAction("Delete panel", self.delete_selected)
        return menu

    # ------------------------------------------------------------------ text editing
    def edit_balloon_text(self, balloon_id: str) -> BalloonTextEditor | None:
        """Open the in-place editor over a balloon of the current page."""
        box = self._scene.box_of(balloon_id)
        if box is None:
            return None
        self._close_editor()
        self.ctx.select_balloon(balloon_id)
        found = self._scene._balloon(balloon_id)
        self.editor = BalloonTextEditor(self, balloon_id, found[0].text if found else "")
        self._place_editor()
        self.editor.show()
        self.editor.setFocus(Qt.FocusReason.MouseFocusReason)
        return self.editor

    def _place_editor(self) -> None:
        editor = self.editor
        if editor is None:
            return
        box = self._scene.box_of(editor.balloon_id)
        if box is None:
            return
        rect = self.mapFromScene(QRectF(box.x, box.y, box.w, box.h)).boundingRect()
        height = max(24, min(40, int(12 * self.zoom) + 10))
        width = max(160, rect.width())
        font = QFont(editor.font())
        font.setPixelSize(max(11, min(24, int(10 * self.zoom))))
        editor.setFont(font)
        # Just under the balloon, so the live re-lettering stays visible while typing.
        editor.setGeometry(rect.center().x() - width // 2, rect.bottom() + 6, width, height)

    def _close_editor(self) -> None:
        if self.editor is not None:
            self.editor.finish()

    def _editor_closed(self, editor: BalloonTextEditor) -> None:
        if self.editor is editor:
            self.editor = None
            if self.isVisible():
                self.setFocus()

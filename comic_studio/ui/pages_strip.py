"""PagesStrip: a vertical list of page thumbnails beside the canvas.

Click selects the page (``ctx.select_page``); the buttons and the context menu add, duplicate and
delete pages; dragging a thumbnail up or down reorders pages (``editing.move_page``).

Thumbnails are painted from the model with QPainter (paper, panel images from the shared image
cache, placeholders, borders, balloon shapes), which is far cheaper than rasterising the page with
the exporter. Each page's thumbnail is cached under a signature of what it shows and repainted only
when that changes; repaints are queued and done a few per timer tick within a time budget, so a
200-page book never stalls the GUI thread.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QPoint, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import editing
from comic_studio.core.changes import Changes
from comic_studio.core.model import Page, Project
from comic_studio.ui.canvas.painting import ImageCache, polygon_path, shared_image_cache
from comic_studio.ui.context import StudioContext

THUMB_HEIGHT = 132  # pixels; the width follows the page's aspect ratio
TICK_BUDGET_S = 0.012  # thumbnail painting per timer tick, well under the 50 ms stall limit
PLACEHOLDER = QColor("#e6e6e6")


def page_signature(project: Project, page: Page) -> tuple:
    """What a thumbnail shows: panel shapes, images, balloons and the page format."""
    fmt = project.page_format
    panels = []
    for p in page.panels:
        result = p.result()
        balloons = tuple((b.kind.value, b.box.x, b.box.y, b.box.w, b.box.h) for b in p.balloons)
        panels.append((tuple(map(tuple, p.shape)), result.asset if result else None, balloons))
    return (fmt.width, fmt.height, tuple(panels))


def paint_thumbnail(
    project: Project, page: Page, images: ImageCache, assets, height: int = THUMB_HEIGHT
) -> tuple[QPixmap, bool]:
    """The page's thumbnail at ``height`` pixels (trim box only) and whether every panel image
    was available (False: painted grey, repaint when the image is decoded)."""
    fmt = project.page_format
    scale = height / fmt.height
    width = max(8, round(fmt.width * scale))
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor("#ffffff"))
    complete = True
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    painter.scale(scale, scale)
    for panel in page.panels:
        path = polygon_path([tuple(p) for p in panel.shape])
        rect = path.boundingRect()
        result = panel.result()
        pix = images.cover_pixmap(assets, result.asset, rect, scale) if result else None
        if pix is not None:
            painter.save()
            painter.setClipPath(path)
            painter.drawPixmap(rect, pix, QRectF(pix.rect()))
            painter.restore()
        else:
            complete = complete and result is None
            painter.fillPath(path, PLACEHOLDER)
        painter.setPen(QPen(QColor("#000000"), max(1.0 / scale * 0.8, 1.5)))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
    painter.setPen(QPen(QColor("#000000"), 1.0 / scale * 0.6))
    for panel in page.panels:
        for b in panel.balloons:
            if b.kind.value == "sfx":
                continue
            painter.setBrush(QColor("#fff6c4") if b.kind.value == "caption" else QColor("#ffffff"))
            r = QRectF(b.box.x, b.box.y, b.box.w, b.box.h)
            painter.drawRect(r) if b.kind.value == "caption" else painter.drawEllipse(r)
    painter.resetTransform()
    painter.setPen(QPen(QColor("#8a8a8a"), 1))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(0, 0, width - 1, height - 1)  # the page edge, on a white list background
    painter.end()
    return pixmap, complete


class PageList(QListWidget):
    """The thumbnail list with a hand-made drag-to-reorder (press, move past a threshold, release
    between two pages); it does not use QDrag, so it works the same with any platform plugin."""

    def __init__(self, strip: PagesStrip):
        super().__init__(strip)
        self.strip = strip
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.TopToBottom)
        self.setWrapping(False)
        self.setMovement(QListWidget.Movement.Static)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setIconSize(QSize(THUMB_HEIGHT, THUMB_HEIGHT))
        self.setSpacing(6)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._press: tuple[QPoint, int] | None = None
        self.drop_row: int | None = None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        super().mousePressEvent(event)
        item = self.itemAt(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and item is not None:
            self._press = (event.position().toPoint(), self.row(item))
            self.strip.ctx.select_page(item.data(Qt.ItemDataRole.UserRole))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is None:
            super().mouseMoveEvent(event)
            return
        pos = event.position().toPoint()
        if self.drop_row is None and (pos - self._press[0]).manhattanLength() < 8:
            return
        self.drop_row = self.insertion_row(pos)
        self.viewport().update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        press, drop = self._press, self.drop_row
        self._press, self.drop_row = None, None
        self.viewport().update()
        if press is not None and drop is not None:
            source = press[1]
            target = drop - 1 if drop > source else drop  # index after removing the source
            if target != source:
                page_id = self.item(source).data(Qt.ItemDataRole.UserRole)
                self.strip.ctx.edit(editing.move_page, page_id, target)
            return
        super().mouseReleaseEvent(event)

    def insertion_row(self, pos: QPoint) -> int:
        """The gap (0..count) nearest to ``pos``: above a thumbnail's middle inserts before it."""
        for row in range(self.count()):
            rect = self.visualItemRect(self.item(row))
            if pos.y() < rect.center().y():
                return row
        return self.count()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.drop_row is None or self.count() == 0:
            return
        if self.drop_row < self.count():
            y = self.visualItemRect(self.item(self.drop_row)).top() - 3
        else:
            y = self.visualItemRect(self.item(self.count() - 1)).bottom() + 3
        painter = QPainter(self.viewport())
        painter.setPen(QPen(QColor("#2f80ed"), 3))
        painter.drawLine(4, y, self.viewport().width() - 4, y)
        painter.end()


class PagesStrip(QWidget):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None, images: ImageCache | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.images = images or shared_image_cache()
        self.list = PageList(self)
        self._signatures: dict[str, tuple] = {}
        self._pending: list[str] = []  # page ids whose thumbnails need painting
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._paint_some)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(4, 4, 4, 0)
        self.add_button = self._button("Add", "Add a page after the current one", self.add_page)
        self.duplicate_button = self._button("Duplicate", "Duplicate the current page", self.duplicate_page)
        self.delete_button = self._button("Delete", "Delete the current page", self.delete_page)
        for b in (self.add_button, self.duplicate_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.list)
        self.setMinimumWidth(THUMB_HEIGHT + 40)

        self.list.customContextMenuRequested.connect(self._context_menu)
        ctx.document_changed.connect(self._document_changed)
        ctx.document_replaced.connect(lambda _doc: self.rebuild(forget=True))
        ctx.selection_changed.connect(self._highlight_current)
        self.images.image_ready.connect(self._image_ready)
        self.rebuild()

    def _button(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # ------------------------------------------------------------------ actions
    def add_page(self) -> None:
        index = self._current_index()
        page = self.ctx.edit(editing.add_page, index=None if index is None else index + 1)
        if page is not None:
            self.ctx.select_page(page.id)

    def duplicate_page(self) -> None:
        page = self.ctx.current_page
        if page is None:
            self.ctx.message.emit("No page to duplicate")
            return
        copy = self.ctx.edit(editing.duplicate_page, page.id)
        if copy is not None:
            self.ctx.select_page(copy.id)

    def delete_page(self) -> None:
        page = self.ctx.current_page
        if page is None:
            self.ctx.message.emit("No page to delete")
            return
        index = self._current_index() or 0
        self.ctx.edit(editing.delete_page, page.id)
        pages = self.ctx.document.project.pages
        self.ctx.select_page(pages[min(index, len(pages) - 1)].id if pages else None)

    def _current_index(self) -> int | None:
        pages = self.ctx.document.project.pages
        ids = [p.id for p in pages]
        return ids.index(self.ctx.current_page_id) if self.ctx.current_page_id in ids else None

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is not None:
            self.ctx.select_page(item.data(Qt.ItemDataRole.UserRole))
        self.context_menu().exec(self.list.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Add page", self.add_page)
        has_page = self.ctx.current_page is not None
        menu.addAction("Duplicate page", self.duplicate_page).setEnabled(has_page)
        menu.addAction("Delete page", self.delete_page).setEnabled(has_page)
        return menu

    # ------------------------------------------------------------------ list upkeep
    def _document_changed(self, changes: Changes) -> None:
        self.rebuild()

    def rebuild(self, forget: bool = False) -> None:
        """Make the rows match the pages (order, numbers) and queue changed thumbnails."""
        if forget:
            self._signatures.clear()
        project = self.ctx.document.project
        pages = project.pages
        self.list.blockSignals(True)
        try:
            existing = {
                self.list.item(r).data(Qt.ItemDataRole.UserRole): self.list.takeItem(r)
                for r in reversed(range(self.list.count()))
            }
            for number, page in enumerate(pages, start=1):
                item = existing.pop(page.id, None)
                if item is None:
                    item = QListWidgetItem()
                    item.setData(Qt.ItemDataRole.UserRole, page.id)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
                item.setText(str(number))
                # A fixed cell size up front: icons arrive later, and the list must not lay rows
                # out at text height in the meantime (they would overlap).
                item.setSizeHint(QSize(THUMB_HEIGHT + 12, THUMB_HEIGHT + 24))
                self.list.addItem(item)
                signature = page_signature(project, page)
                if self._signatures.get(page.id) != signature:
                    self._signatures[page.id] = signature
                    if page.id not in self._pending:
                        self._pending.append(page.id)
            for page_id in existing:
                self._signatures.pop(page_id, None)
        finally:
            self.list.blockSignals(False)
        self._highlight_current()
        if self._pending:
            self._timer.start()

    def _paint_some(self) -> None:
        """Paint queued thumbnails until the tick's time budget is spent."""
        start = time.perf_counter()
        project = self.ctx.document.project
        rows = {self.list.item(r).data(Qt.ItemDataRole.UserRole): self.list.item(r) for r in range(self.list.count())}
        while self._pending and time.perf_counter() - start < TICK_BUDGET_S:
            page_id = self._pending.pop(0)
            page, item = project.page(page_id), rows.get(page_id)
            if page is None or item is None:
                continue
            pixmap, complete = paint_thumbnail(project, page, self.images, self.ctx.document.assets)
            icon = QIcon(pixmap)
            icon.addPixmap(pixmap, QIcon.Mode.Selected)  # no blue tint: the row highlight says it
            item.setIcon(icon)
            if not complete:
                self._signatures.pop(page_id, None)  # repaint once its images are decoded
        if not self._pending:
            self._timer.stop()

    def _image_ready(self, digest: str) -> None:
        project = self.ctx.document.project
        for page in project.pages:
            if page.id not in self._signatures and page.id not in self._pending:
                if any(p.result() and p.result().asset == digest for p in page.panels):
                    self._signatures[page.id] = page_signature(project, page)
                    self._pending.append(page.id)
        if self._pending:
            self._timer.start()

    def flush(self) -> None:
        """Paint every queued thumbnail now (tests, screenshots)."""
        while self._pending:
            self._paint_some()

    def _highlight_current(self) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == self.ctx.current_page_id:
                if self.list.currentRow() != row:
                    self.list.blockSignals(True)
                    self.list.setCurrentRow(row)
                    self.list.blockSignals(False)
                return
        self.list.clearSelection()

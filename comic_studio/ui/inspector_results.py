"""The panel inspector's result history: thumbnails, accept / discard, compare two side by side, and
"Use as anchor for ▸ character" (the result becomes that character's identity anchor).

Thumbnails are decoded off the GUI thread (a full panel render is a ~1500 px PNG; decoding it on
the GUI thread costs tens of milliseconds, which would break the 50 ms heartbeat budget while a
render queue is recording results) and cached by asset hash, so a result is decoded once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.assets import AssetStore
from comic_studio.core.model import Panel, PanelResult

THUMB_SIDE = 96
_CACHE_SIZE = 256


class ThumbnailLoader(QObject):
    """Decodes asset images to small QImages on one worker thread; ``ready(digest)`` fires on the
    GUI thread once :meth:`get` can answer for that digest."""

    ready = Signal(str)
    _decoded = Signal(str, QImage)

    def __init__(self, side: int = THUMB_SIDE, parent: QObject | None = None):
        super().__init__(parent)
        self.side = side
        self._cache: OrderedDict[str, QImage] = OrderedDict()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails")
        # Emitted from the worker thread; Qt queues it to this object's (GUI) thread.
        self._decoded.connect(self._store)

    def get(self, digest: str, assets: AssetStore) -> QImage | None:
        """The cached thumbnail, or ``None`` after scheduling its decoding."""
        image = self._cache.get(digest)
        if image is not None:
            self._cache.move_to_end(digest)
            return image
        with self._lock:
            if digest not in self._pending:
                self._pending.add(digest)
                self._pool.submit(self._decode, digest, assets)
        return None

    def _decode(self, digest: str, assets: AssetStore) -> None:
        try:
            image = QImage.fromData(assets.get(digest))
        except Exception:  # a damaged asset shows as a blank tile, never a crash
            image = QImage()
        if not image.isNull():
            image = image.scaled(
                self.side, self.side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        self._decoded.emit(digest, image)

    def _store(self, digest: str, image: QImage) -> None:
        with self._lock:
            self._pending.discard(digest)
        self._cache[digest] = image
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        self.ready.emit(digest)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ResultHistory(QWidget):
    """Thumbnails of a panel's results, newest last; the current one is marked with a ✓."""

    accept_requested = Signal(str)
    discard_requested = Signal(str)
    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._loader = ThumbnailLoader(parent=self)
        self._loader.ready.connect(self._thumbnail_ready)
        self._assets: AssetStore | None = None
        self._panel: Panel | None = None
        self._ctx: Any = None
        self._render_service: Any = None

        self.list = QListWidget(self)
        self.list.setObjectName("resultList")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.list.setGridSize(QSize(THUMB_SIDE + 36, THUMB_SIDE + 44))
        self.list.setFixedHeight(THUMB_SIDE + 66)
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self.list.itemSelectionChanged.connect(self.selection_changed)
        self.list.itemDoubleClicked.connect(
            lambda item: self.accept_requested.emit(item.data(Qt.ItemDataRole.UserRole))
        )

        self.accept_button = QPushButton("Use as current", self)
        self.accept_button.setToolTip("Show the selected result in the panel and mark it accepted")
        self.accept_button.clicked.connect(self._accept)
        self.discard_button = QPushButton("Discard", self)
        self.discard_button.setToolTip("Remove the selected results from the history (undoable)")
        self.discard_button.clicked.connect(self._discard)
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.setToolTip("Select two results to see them side by side")
        self.compare_button.clicked.connect(self.compare_selected)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.accept_button, self.discard_button, self.compare_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._update_buttons()

    # ------------------------------------------------------------------ content
    def show_panel(self, panel: Panel | None, assets: AssetStore | None) -> None:
        """Rebuild the list for ``panel`` (keeps the selection where results survive)."""
        selected = set(self.selected_ids())
        self._panel, self._assets = panel, assets
        self.list.blockSignals(True)
        self.list.clear()
        current = panel.result() if panel else None
        for index, result in enumerate(panel.results if panel else []):
            item = QListWidgetItem(self._caption(index, result, current))
            item.setData(Qt.ItemDataRole.UserRole, result.id)
            item.setToolTip(f"seed {result.seed} · {result.backend} · {result.created_at}")
            if current is not None and result.id == current.id:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            item.setIcon(self._icon(result))
            self.list.addItem(item)
            item.setSelected(result.id in selected)
        self.list.blockSignals(False)
        if self.list.count():
            self.list.scrollToItem(self.list.item(self.list.count() - 1))
        self._update_buttons()

    def _caption(self, index: int, result: PanelResult, current: PanelResult | None) -> str:
        mark = "✓ " if current is not None and result.id == current.id else ""
        return f"{mark}#{index + 1}\nseed {result.seed}"

    def _icon(self, result: PanelResult) -> QIcon:
        image = self._loader.get(result.asset, self._assets) if self._assets is not None else None
        if image is None or image.isNull():
            blank = QPixmap(THUMB_SIDE, THUMB_SIDE * 2 // 3)
            blank.fill(QColor("#d8d8d8"))
            return QIcon(blank)
        return QIcon(QPixmap.fromImage(image))

    def _thumbnail_ready(self, digest: str) -> None:
        if self._panel is None:
            return
        by_id = {r.id: r for r in self._panel.results}
        for row in range(self.list.count()):
            item = self.list.item(row)
            result = by_id.get(item.data(Qt.ItemDataRole.UserRole))
            if result is not None and result.asset == digest:
                item.setIcon(self._icon(result))

    def thumbnails_pending(self) -> bool:
        return bool(self._loader._pending)

    # ------------------------------------------------------------------ selection and actions
    def selected_ids(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()]

    def select(self, result_ids: list[str]) -> None:
        wanted = set(result_ids)
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) in wanted)

    def _update_buttons(self) -> None:
        n = len(self.list.selectedItems())
        self.accept_button.setEnabled(n == 1)
        self.discard_button.setEnabled(n >= 1)
        self.compare_button.setEnabled(n == 2)

    def _accept(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.accept_requested.emit(ids[0])

    def _discard(self) -> None:
        for result_id in self.selected_ids():
            self.discard_requested.emit(result_id)

    def compare_selected(self) -> CompareDialog | None:
        """Open the side-by-side dialog for the two selected results (non-modal; returned)."""
        ids = self.selected_ids()
        if len(ids) != 2 or self._panel is None or self._assets is None:
            return None
        by_id = {r.id: r for r in self._panel.results}
        order = [r.id for r in self._panel.results]
        left, right = sorted(ids, key=order.index)
        dialog = CompareDialog(
            by_id[left], by_id[right], self._assets, order.index(left) + 1, order.index(right) + 1, self
        )
        dialog.accept_requested.connect(self.accept_requested)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # ------------------------------------------------------------------ identity anchors
    def enable_anchor_actions(self, ctx: Any, render_service: Any) -> None:
        """Offer "Use as anchor for ▸ <character>" in the list's context menu (needs the render
        service that runs anchor jobs; without one the menu stays off)."""
        self._ctx, self._render_service = ctx, render_service
        if render_service is not None:
            self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            self.list.customContextMenuRequested.connect(self._context_menu)

    def anchor_candidates(self, result_id: str) -> list[tuple[str, str]]:
        """``(character id, name)`` of the characters the result shows (its placed heads, else the
        characters its request had) that still exist."""
        result = next((r for r in self._panel.results if r.id == result_id), None) if self._panel else None
        if result is None or self._ctx is None:
            return []
        ids = [h.character_id for h in result.heads] or [c.get("id") for c in result.request.get("characters", [])]
        project = self._ctx.document.project
        found = [project.character(cid) for cid in dict.fromkeys(ids) if cid]
        return [(c.id, c.name) for c in found if c is not None]

    def anchor_menu(self, result_id: str) -> QMenu | None:
        """The "Use as anchor for" submenu for one result (None when it shows nobody)."""
        candidates = self.anchor_candidates(result_id)
        if not candidates or self._render_service is None:
            return None
        menu = QMenu("Use as anchor for", self)
        menu.setToolTip("This image becomes the character's identity anchor (its bank is made from it)")
        for character_id, name in candidates:
            menu.addAction(name, lambda cid=character_id: self.use_as_anchor(result_id, cid))
        return menu

    def use_as_anchor(self, result_id: str, character_id: str) -> str | None:
        """Queue the anchor job that banks this result's image for ``character_id``."""
        result = next((r for r in self._panel.results if r.id == result_id), None) if self._panel else None
        if result is None or self._render_service is None:
            return None
        return self._render_service.render_anchor(character_id, picture=result.asset)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        submenu = self.anchor_menu(item.data(Qt.ItemDataRole.UserRole))
        if submenu is None:
            return
        menu = QMenu(self)
        menu.addMenu(submenu)
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def shutdown(self) -> None:
        self._loader.shutdown()


class CompareDialog(QDialog):
    """Two results side by side at a readable size, with "use this one" under each."""

    accept_requested = Signal(str)
    SIDE = 420

    def __init__(
        self,
        left: PanelResult,
        right: PanelResult,
        assets: AssetStore,
        left_number: int,
        right_number: int,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle(f"Compare results #{left_number} and #{right_number}")
        grid = QGridLayout()
        self.images: list[QLabel] = []
        for column, (result, number) in enumerate(((left, left_number), (right, right_number))):
            image = QLabel(self)
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image.setMinimumSize(self.SIDE // 2, self.SIDE // 2)
            pixmap = QPixmap()
            try:
                pixmap.loadFromData(assets.get(result.asset))
            except Exception as exc:  # a damaged asset: say so in place of the image
                image.setText(f"cannot show this image: {exc}")
            if not pixmap.isNull():
                scaled = pixmap.scaled(
                    self.SIDE, self.SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
                image.setPixmap(scaled)
                image.setMinimumSize(scaled.size())  # the dialog grows to show both images whole
            self.images.append(image)
            caption = QLabel(f"#{number} · seed {result.seed} · {result.backend}\n{result.created_at}", self)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            use = QPushButton(f"Use #{number}", self)
            use.clicked.connect(lambda _=False, rid=result.id: (self.accept_requested.emit(rid), self.accept()))
            grid.addWidget(image, 0, column)
            grid.addWidget(caption, 1, column)
            grid.addWidget(use, 2, column)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(close)


__all__ = ["CompareDialog", "ResultHistory", "ThumbnailLoader"]

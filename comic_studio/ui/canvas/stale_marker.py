"""The "stale" marker on panels whose crop now cuts a figure, with one-click re-render.

After a gutter drag, a template change or a split, a panel's image may no longer show its figures
whole (:mod:`comic_studio.workflows.stale` decides). Such a panel carries an amber pill at its
bottom left (balloons gather at the top), "⟳ Stale · re-render": its tooltip names who is cut; a click renders the panel again at its
new size with the same seed and pose (``RenderService.rerender_at_panel_size``). The marker is
derived from the document on every sync, so the finished re-render clears it and undoing it (or
the layout edit) brings it back. While the panel has a render queued or running, the live overlay
speaks for it and the pill is hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPointF, QRectF
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from comic_studio.core.model import Page
from comic_studio.ui.canvas.badge import BadgeButton, paint_badge
from comic_studio.ui.canvas.items import Z_BALLOON
from comic_studio.workflows.stale import stale_crop, stale_reason

if TYPE_CHECKING:
    from comic_studio.ui.canvas.scene import PageScene
    from comic_studio.ui.render_service import RenderService

Z_STALE = Z_BALLOON + 4
"""Above the balloons (it must stay clickable), just under the live-render overlay."""
LABEL = "⟳ Stale · re-render"
PILL_HEIGHT = 20.0
MARGIN = 6.0
AMBER = QColor("#e67e22")
RERENDER_PRIORITY = 10
"""As a render asked for on one panel in the Inspector: ahead of a running "Render all"."""


def _font() -> QFont:
    font = QFont()
    font.setPixelSize(11)
    font.setBold(True)
    return font


class StaleMarkerItem(BadgeButton):
    """The pill on one panel: the same size on screen at every zoom; a click re-renders."""

    def __init__(self, markers: StaleMarkers, panel_id: str):
        super().__init__()
        self.markers = markers
        self.panel_id = panel_id
        self.setZValue(Z_STALE)
        width = QFontMetricsF(_font()).horizontalAdvance(LABEL) + 16
        # Inside the panel from its bottom-left corner: balloons gather at the top (reading start).
        self._rect = QRectF(MARGIN, -MARGIN - PILL_HEIGHT, width, PILL_HEIGHT)
        self.signature: tuple = ()

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-1, -1, 1, 1)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self._rect, PILL_HEIGHT / 2, PILL_HEIGHT / 2)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        paint_badge(painter, self.shape(), AMBER.darker(120) if self._hover else AMBER, LABEL, _font())

    def click(self) -> tuple[QObject, Callable[[], object]]:
        markers, panel_id = self.markers, self.panel_id
        # Queuing the job re-syncs the markers and may remove this item.
        return markers, lambda: markers.rerender(panel_id)


class StaleMarkers(QObject):
    """One :class:`StaleMarkerItem` per stale panel of the scene's page."""

    def __init__(self, scene: PageScene):
        super().__init__(scene)
        self.scene = scene
        self.service: RenderService | None = None
        self.items: dict[str, StaleMarkerItem] = {}

    def follow(self, service: RenderService) -> None:
        if self.service is service:
            return
        if self.service is not None:
            self.service.jobs_changed.disconnect(self._jobs_changed)
        self.service = service
        service.jobs_changed.connect(self._jobs_changed)
        self._jobs_changed()

    def _jobs_changed(self) -> None:
        page = self.scene.page
        if page is not None:
            self.sync(page)

    def forget_items(self) -> None:
        """The scene was cleared (its items are gone): drop our references."""
        self.items = {}

    def sync(self, page: Page) -> None:
        project = self.scene.ctx.document.project
        busy = {j.panel_id for j in self.service.jobs() if j.active} if self.service is not None else set()
        wanted: dict[str, str] = {}
        for panel in page.panels:
            stale = stale_crop(panel) if panel.id not in busy else None
            if stale is not None:
                wanted[panel.id] = stale_reason(project, panel, stale)
        for panel_id in [pid for pid in self.items if pid not in wanted]:
            self.scene.removeItem(self.items.pop(panel_id))
        for panel_id, reason in wanted.items():
            item = self.items.get(panel_id)
            if item is None:
                item = self.items[panel_id] = StaleMarkerItem(self, panel_id)
                self.scene.addItem(item)
            panel_item = self.scene.panel_items.get(panel_id)
            points = panel_item.shape_points if panel_item is not None else []
            rect = panel_item.rect if panel_item is not None else QRectF()
            # The panel corner nearest its bounding box's bottom left (inside a slanted panel too).
            corner = min(points, key=lambda p: (p[0] - rect.left()) ** 2 + (p[1] - rect.bottom()) ** 2, default=(0, 0))
            item.setPos(QPointF(*corner))
            item.setToolTip(reason)

    def rerender(self, panel_id: str) -> str | None:
        """Render the stale panel again (same seed and pose, the panel's size); the job's id."""
        if self.service is None:
            self.scene.ctx.message.emit("Rendering is not available here")
            return None
        return self.service.rerender_at_panel_size(panel_id, priority=RERENDER_PRIORITY)


__all__ = ["StaleMarkerItem", "StaleMarkers"]

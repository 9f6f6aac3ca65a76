"""Renders in progress, shown in their panel on the page canvas.

While a panel's job waits, the panel carries a "Queued · n" badge (n: its place in the queue) and
a × that cancels it.
While it runs, the panel draws the job's latest live preview instead of its image (clipped to the
panel and cover-cropped like the final image, by :class:`~.items.PanelItem`), a thin progress bar
along its bottom edge with "step n/N · ETA", and a × button that cancels the job. When the job
finishes, the new image replaces the preview (the preview stays up until the image is decoded, so
nothing flashes grey); a cancelled job leaves the old image; a failed one leaves a red badge whose
tooltip is the error, until the panel's next render or a click on the badge.

Everything follows :class:`~comic_studio.ui.render_service.RenderService`: which job each panel
shows is worked out again on ``jobs_changed`` (jobs added, removed, or changing state), and a
progress message only repaints the overlay of its own panel (and the panel, when the preview
changed). The previews were already reduced on the worker thread (``render_service.PREVIEW_SIDE``);
each is turned into a pixmap once, here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from comic_studio.core.model import Page
from comic_studio.ui.canvas.badge import BadgeButton, paint_badge
from comic_studio.ui.canvas.items import SELECTION_COLOUR, Z_BALLOON, PanelItem
from comic_studio.ui.queue_panel import format_seconds

if TYPE_CHECKING:
    from comic_studio.ui.canvas.scene import PageScene
    from comic_studio.ui.render_service import RenderJob, RenderService

Z_LIVE = Z_BALLOON + 5
"""Above the balloons (the × must stay clickable over a balloon), below the guides and handles."""
BUTTON_SIZE = 20.0
"""Diameter of the × and error badges, in screen pixels at every zoom."""
BUTTON_MARGIN = 6.0
STRIP_HEIGHT = 18.0
"""Height in screen pixels of the dark strip that carries the progress text."""
BAR_HEIGHT = 3.0
TEXT_PX = 11
ERROR_COLOUR = QColor("#c0392b")
BADGE_FILL = QColor(20, 20, 20, 170)


def progress_text(job: RenderJob) -> str:
    """``step 3/20 · ETA 12s`` (no ETA while it says nothing: unknown or under a second)."""
    if job.total <= 0:
        return "starting…"
    eta = format_seconds(job.eta) if job.eta is not None and job.eta >= 1 else ""
    return f"step {min(job.step, job.total)}/{job.total}" + (f" · ETA {eta}" if eta else "")


def _nearest_vertex(points: list[tuple[float, float]], x: float, y: float) -> QPointF:
    """The panel corner closest to a corner of its bounding box (where a badge goes, so it sits
    inside a slanted panel too)."""
    px, py = min(points, key=lambda p: (p[0] - x) ** 2 + (p[1] - y) ** 2)
    return QPointF(px, py)


def _ui_font() -> QFont:
    font = QFont()
    font.setPixelSize(TEXT_PX)
    return font


class LiveRenderItem(QGraphicsItem):
    """The overlay of one panel with a job: queued badge, or progress strip and ×, or error badge.
    Drawn in screen pixels (the same size at every zoom) inside the panel's outline; it takes no
    clicks itself, only its two small buttons do, so panels and balloons under it stay usable."""

    def __init__(self, controller: LiveRenderController, panel_id: str):
        super().__init__()
        self.controller = controller
        self.panel_id = panel_id
        self.setZValue(Z_LIVE)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.path = QPainterPath()
        self.rect = QRectF()
        self.job_id = ""
        self.state = ""  # "queued", "running" or "error"
        self.text = ""
        self.fraction: float | None = None
        self._signature: tuple = ()
        self.cancel_button = OverlayButton(self, "cancel")
        self.error_badge = OverlayButton(self, "error")

    def set_outline(self, panel_item: PanelItem) -> None:
        if panel_item.path == self.path:
            return
        self.prepareGeometryChange()
        self.path, self.rect = QPainterPath(panel_item.path), QRectF(panel_item.rect)
        points = panel_item.shape_points or [(self.rect.left(), self.rect.top())]
        # Top right: clear of the placeholder's number and beat text at the top left.
        corner = _nearest_vertex(points, self.rect.right(), self.rect.top())
        self.cancel_button.setPos(corner)
        self.error_badge.setPos(corner)

    def show_job(self, job: RenderJob, position: int | None) -> None:
        """Show ``job``'s state; repaints only when what is drawn changed."""
        if job.state == "error":
            state, text, fraction = "error", job.error, None
        elif job.running:
            state, text = "running", progress_text(job)
            fraction = min(1.0, job.step / job.total) if job.total > 0 else None
        else:
            state, text, fraction = "queued", "Queued" + (f" · {position}" if position else ""), None
        signature = (job.job_id, state, text, fraction)
        if signature == self._signature:
            return
        self._signature = signature
        self.job_id, self.state, self.text, self.fraction = job.job_id, state, text, fraction
        self.cancel_button.setVisible(state != "error")
        self.error_badge.setVisible(state == "error")
        self.error_badge.setToolTip(f"{job.error}\n(click to dismiss)" if state == "error" else "")
        self.update()

    def boundingRect(self) -> QRectF:
        return self.rect

    def shape(self) -> QPainterPath:
        return self.path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.state not in ("queued", "running"):
            return
        # Screen pixels from here on: the badge and the strip keep their size at every zoom.
        to_screen = painter.worldTransform()
        box = to_screen.mapRect(self.rect)
        painter.save()
        painter.resetTransform()
        painter.setClipPath(to_screen.map(self.path), Qt.ClipOperation.IntersectClip)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setFont(_ui_font())
        metrics = QFontMetricsF(painter.font())
        if self.state == "queued":
            width = metrics.horizontalAdvance(self.text) + 12
            # Bottom left, where the progress strip will be (the top left shows the panel's number).
            pill = QRectF(box.left() + BUTTON_MARGIN, box.bottom() - BUTTON_MARGIN - STRIP_HEIGHT, width, STRIP_HEIGHT)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(BADGE_FILL)
            painter.drawRoundedRect(pill, STRIP_HEIGHT / 2, STRIP_HEIGHT / 2)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, self.text)
        else:
            show_text = box.height() >= 3 * STRIP_HEIGHT and box.width() >= 60
            height = STRIP_HEIGHT if show_text else BAR_HEIGHT
            strip = QRectF(box.left(), box.bottom() - height, box.width(), height)
            painter.fillRect(strip, QColor(0, 0, 0, 150))
            if self.fraction is not None:
                painter.fillRect(
                    QRectF(strip.left(), box.bottom() - BAR_HEIGHT, strip.width() * self.fraction, BAR_HEIGHT),
                    SELECTION_COLOUR,
                )
            if show_text:
                painter.setPen(QColor("#ffffff"))
                text_box = strip.adjusted(6, 0, -6, -BAR_HEIGHT)
                painter.drawText(
                    text_box,
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                    metrics.elidedText(self.text, Qt.TextElideMode.ElideRight, text_box.width()),
                )
        painter.restore()


class OverlayButton(BadgeButton):
    """A round button the same size on screen at every zoom, at the panel's top right: × (cancel the
    job), or the red error badge (tooltip: the error; click: dismiss)."""

    def __init__(self, owner: LiveRenderItem, role: str):
        super().__init__(owner)
        self.owner = owner
        self.role = role
        self.setVisible(False)
        if role == "cancel":
            self.setToolTip("Cancel this render")

    def boundingRect(self) -> QRectF:
        # Inside the panel from its top-right corner: left and down.
        return QRectF(-BUTTON_MARGIN - BUTTON_SIZE, BUTTON_MARGIN, BUTTON_SIZE, BUTTON_SIZE)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(self.boundingRect())
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.role == "cancel":
            paint_badge(painter, self.shape(), ERROR_COLOUR if self._hover else BADGE_FILL)
            d = BUTTON_SIZE * 0.22
            c = self.boundingRect().center()
            painter.setPen(QPen(QColor("#ffffff"), 2.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            painter.drawLine(QPointF(c.x() - d, c.y() - d), QPointF(c.x() + d, c.y() + d))
            painter.drawLine(QPointF(c.x() - d, c.y() + d), QPointF(c.x() + d, c.y() - d))
        else:
            font = _ui_font()
            font.setBold(True)
            font.setPixelSize(int(BUTTON_SIZE * 0.7))
            paint_badge(painter, self.shape(), ERROR_COLOUR, "!", font)

    def click(self) -> tuple[QObject, Callable[[], object]]:
        controller, job_id = self.owner.controller, self.owner.job_id
        act = controller.cancel if self.role == "cancel" else controller.dismiss_error
        # The answer may remove this very button from the scene (and free it).
        return controller, lambda: act(job_id)


class LiveRenderController(QObject):
    """Follows a :class:`RenderService` for its :class:`PageScene`: one :class:`LiveRenderItem`
    per panel of the page that has a job to show, and the live previews on the panel items."""

    def __init__(self, scene: PageScene):
        super().__init__(scene)
        self.scene = scene
        self.service: RenderService | None = None
        self.items: dict[str, LiveRenderItem] = {}
        self._shown: dict[str, RenderJob] = {}
        """Per panel, the job its overlay shows (see :meth:`refresh`)."""
        self._panel_of: dict[str, str] = {}
        self._positions: dict[str, int] = {}
        self._order = itertools.count()
        self._seq: dict[str, int] = {}
        """A number per job, in the order the jobs were first seen: the newest job of a panel wins."""
        self._latest: dict[str, int] = {}
        """Per panel, the number of its newest job: an older failure is no longer shown."""
        self._dismissed: set[str] = set()
        self._pixmaps: dict[str, tuple[Any, QPixmap]] = {}
        """Per job, its latest preview QImage and the pixmap made from it (made once per preview)."""

    # ------------------------------------------------------------------ following the service
    def follow(self, service: RenderService) -> None:
        if self.service is service:
            return
        if self.service is not None:
            self.service.jobs_changed.disconnect(self.refresh)
            self.service.job_message.disconnect(self._on_message)
        self.service = service
        service.jobs_changed.connect(self.refresh)
        service.job_message.connect(self._on_message)
        self.refresh()

    def refresh(self) -> None:
        """Work out again which job each panel shows: its running job, else its waiting one, else
        its newest job's failure unless dismissed. Then bring the page's overlays in line."""
        jobs = self.service.jobs() if self.service is not None else []
        # Every waiting job counts for the position, anchors too: they run before the panel.
        self._positions = {j.job_id: n for n, j in enumerate((j for j in jobs if j.state == "queued"), 1)}
        for job in jobs:
            if job.panel_id is not None:
                seq = self._seq.setdefault(job.job_id, next(self._order))
                self._latest[job.panel_id] = max(seq, self._latest.get(job.panel_id, -1))
        shown: dict[str, RenderJob] = {}
        for job in jobs:  # running, then waiting in queue order, then failed
            panel_id = job.panel_id
            if panel_id is None or panel_id in shown:
                continue
            if job.state == "error" and (
                job.job_id in self._dismissed or self._seq[job.job_id] < self._latest[panel_id]
            ):
                continue
            shown[panel_id] = job
        live = {j.job_id for j in jobs}
        self._seq = {job_id: n for job_id, n in self._seq.items() if job_id in live}
        self._dismissed &= live
        self._pixmaps = {job_id: p for job_id, p in self._pixmaps.items() if job_id in live}
        self._shown = shown
        self._panel_of = {job.job_id: panel_id for panel_id, job in shown.items()}
        page = self.scene.page
        if page is not None and page.id == self.scene.page_id:
            self.sync(page)

    def _on_message(self, msg: Any) -> None:
        """One job's message: repaint that panel only (no scene sync per step)."""
        panel_id = self._panel_of.get(msg.job_id)
        if panel_id is None:
            return
        event = msg.event.value
        panel_item = self.scene.panel_items.get(panel_id)
        if event in ("started", "progress"):
            job = self.service.job(msg.job_id) if self.service is not None else None
            if (
                job is not None
                and self._shown.get(panel_id) is job
                and panel_id in self.items
                and panel_item is not None
            ):
                self._show(panel_item, job)
        elif panel_item is not None and event in ("cancelled", "error"):
            panel_item.set_live_preview(None)  # the old image is back at once
        elif panel_item is not None and event == "finished":
            panel_item.keep_preview_until_image()

    # ------------------------------------------------------------------ the page's items
    def sync(self, page: Page) -> None:
        """After a scene sync or a change of jobs: an overlay for every panel of ``page`` with a
        job to show, following the panel's outline; none for the others."""
        for panel_id in [p for p in self.items if p not in self._shown or p not in self.scene.panel_items]:
            self._remove(panel_id)
        for panel_id, panel_item in self.scene.panel_items.items():
            job = self._shown.get(panel_id)
            if job is None:
                if panel_item.preview_is_live:
                    panel_item.keep_preview_until_image()  # its job ended without a final message here
                continue
            item = self.items.get(panel_id)
            if item is None:
                item = self.items[panel_id] = LiveRenderItem(self, panel_id)
                self.scene.addItem(item)
            item.set_outline(panel_item)
            self._show(panel_item, job)

    def _show(self, panel_item: PanelItem, job: RenderJob) -> None:
        self.items[panel_item.panel_id].show_job(job, self._positions.get(job.job_id))
        if job.running:
            pixmap = self._pixmap(job)
            if pixmap is not None:
                panel_item.set_live_preview(pixmap)
        elif panel_item.preview_is_live:
            panel_item.set_live_preview(None)

    def _pixmap(self, job: RenderJob) -> QPixmap | None:
        if job.preview is None or job.preview.isNull():
            return None
        cached = self._pixmaps.get(job.job_id)
        if cached is None or cached[0] is not job.preview:
            cached = self._pixmaps[job.job_id] = (job.preview, QPixmap.fromImage(job.preview))
        return cached[1]

    def _remove(self, panel_id: str) -> None:
        item = self.items.pop(panel_id)
        if item.scene() is self.scene:
            self.scene.removeItem(item)

    def forget_items(self) -> None:
        """The scene was cleared (its items are gone): drop our references."""
        self.items = {}

    # ------------------------------------------------------------------ buttons
    def cancel(self, job_id: str) -> None:
        if self.service is not None:
            self.service.cancel(job_id)

    def dismiss_error(self, job_id: str) -> None:
        """Hide a failure's badge on the canvas (the queue keeps its row until dismissed there)."""
        self._dismissed.add(job_id)
        self.refresh()


__all__ = ["LiveRenderController", "LiveRenderItem", "OverlayButton", "progress_text"]

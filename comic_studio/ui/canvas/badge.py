"""Items of the page canvas that answer the mouse (:class:`HoverItem`), and small buttons drawn over it (the stale pill, the live render's × and error badge):
the same size on screen at every zoom, a pointing cursor, a darker fill under the mouse, and a left
click (press and release on the button's shape) whose answer runs after the event, because it may
remove the very button from the scene.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneMouseEvent

OUTLINE = QColor("#ffffff")


class HoverItem(QGraphicsItem):
    """An item drawn differently under the mouse: ``_hover`` says whether it is, and it repaints
    when that changes."""

    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.setAcceptHoverEvents(True)
        self._hover = False

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()


class BadgeButton(HoverItem):
    """The interaction of a canvas button; a subclass draws it (:func:`paint_badge`) and says what a
    click does (:meth:`click`)."""

    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._pressed = False

    def click(self) -> tuple[QObject, Callable[[], object]]:
        """``(receiver, action)``: the action runs after the click's event, while ``receiver`` lives."""
        raise NotImplementedError

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._pressed = True
        event.accept()  # the press must not select the panel underneath or start a rubber band

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if not self._pressed:
            return
        self._pressed = False
        if self.shape().contains(event.pos()):
            receiver, action = self.click()
            QTimer.singleShot(0, receiver, action)


def paint_badge(
    painter: QPainter, shape: QPainterPath, fill: QColor, text: str = "", font: QFont | None = None
) -> None:
    """``shape`` filled with ``fill``, outlined in white, with ``text`` (white, centred) on it."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(OUTLINE, 1.5))
    painter.setBrush(fill)
    painter.drawPath(shape)
    if text:
        if font is not None:
            painter.setFont(font)
        painter.setPen(OUTLINE)
        painter.drawText(shape.boundingRect(), Qt.AlignmentFlag.AlignCenter, text)

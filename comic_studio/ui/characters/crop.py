"""The crop tool: cut a face or body region out of a reference image.

:class:`CropArea` shows the image with a crop rectangle kept in *image pixels*: drag inside to
move it, drag a corner or an edge to resize it, drag outside to draw a new one. :class:`CropDialog`
adds "Suggest face" / "Suggest body" (the offline detector in :mod:`comic_studio.vision.detect`,
run on a worker thread so the window never stalls on model loading) and "Add as face" / "Add as
body", which emit :attr:`CropDialog.crop_chosen`; the caller stores the crop.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.model import Box
from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.images import pil_to_qimage

HANDLE = 8  # screen pixels within which a press grabs an edge or corner
MIN_SIDE = 8  # smallest crop side in image pixels


class CropArea(QWidget):
    """An image with a movable, resizable crop rectangle (image pixel coordinates)."""

    crop_changed = Signal(object)  # Box

    def __init__(self, image, parent: QWidget | None = None):
        super().__init__(parent)
        self._image = pil_to_qimage(image)
        self._size = (image.width, image.height)
        self._crop = QRectF(0, 0, image.width, image.height)
        self._drag: tuple[str, QPointF, QRectF] | None = None  # (mode, press point in image px, crop at press)
        self.setMouseTracking(True)
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # ------------------------------------------------------------------ crop value
    def crop(self) -> Box:
        r = self._crop
        return Box(x=round(r.x()), y=round(r.y()), w=round(r.width()), h=round(r.height()))

    def set_crop(self, box: Box) -> None:
        w, h = self._size
        x0, y0 = max(0.0, min(box.x, w - MIN_SIDE)), max(0.0, min(box.y, h - MIN_SIDE))
        x1, y1 = min(float(w), max(box.x + box.w, x0 + MIN_SIDE)), min(float(h), max(box.y + box.h, y0 + MIN_SIDE))
        self._crop = QRectF(x0, y0, x1 - x0, y1 - y0)
        self.update()
        self.crop_changed.emit(self.crop())

    # ------------------------------------------------------------------ geometry
    def sizeHint(self) -> QSize:
        return QSize(480, 480)

    def _scale_and_origin(self) -> tuple[float, QPointF]:
        w, h = self._size
        scale = min(self.width() / w, self.height() / h)
        return scale, QPointF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2)

    def image_to_widget(self, rect: QRectF) -> QRectF:
        scale, origin = self._scale_and_origin()
        return QRectF(
            origin.x() + rect.x() * scale, origin.y() + rect.y() * scale, rect.width() * scale, rect.height() * scale
        )

    def widget_to_image(self, point: QPointF) -> QPointF:
        scale, origin = self._scale_and_origin()
        w, h = self._size
        x = (point.x() - origin.x()) / scale
        y = (point.y() - origin.y()) / scale
        return QPointF(max(0.0, min(float(w), x)), max(0.0, min(float(h), y)))

    def _hit(self, pos: QPointF) -> str:
        """What a press at ``pos`` grabs: edges named by compass letters ("nw", "e"), "move"
        inside, "new" outside."""
        r = self.image_to_widget(self._crop)
        near = lambda a, b: abs(a - b) <= HANDLE  # noqa: E731
        inside_x = r.left() - HANDLE <= pos.x() <= r.right() + HANDLE
        inside_y = r.top() - HANDLE <= pos.y() <= r.bottom() + HANDLE
        mode = ""
        if inside_x and inside_y:
            mode += "n" if near(pos.y(), r.top()) else "s" if near(pos.y(), r.bottom()) else ""
            mode += "w" if near(pos.x(), r.left()) else "e" if near(pos.x(), r.right()) else ""
        if mode:
            return mode
        return "move" if r.contains(pos) else "new"

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        mode = self._hit(pos)
        start = self.widget_to_image(pos)
        if mode == "new":
            self._crop = QRectF(start, start)
            mode = "se"
        self._drag = (mode, start, QRectF(self._crop))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            cursor = {
                "move": Qt.CursorShape.SizeAllCursor,
                "new": Qt.CursorShape.CrossCursor,
                "n": Qt.CursorShape.SizeVerCursor,
                "s": Qt.CursorShape.SizeVerCursor,
                "e": Qt.CursorShape.SizeHorCursor,
                "w": Qt.CursorShape.SizeHorCursor,
                "nw": Qt.CursorShape.SizeFDiagCursor,
                "se": Qt.CursorShape.SizeFDiagCursor,
            }
            self.setCursor(cursor.get(self._hit(event.position()), Qt.CursorShape.SizeBDiagCursor))
            return
        mode, start, original = self._drag
        point = self.widget_to_image(event.position())
        dx, dy = point.x() - start.x(), point.y() - start.y()
        w, h = self._size
        r = QRectF(original)
        if mode == "move":
            r.translate(max(-r.left(), min(w - r.right(), dx)), max(-r.top(), min(h - r.bottom(), dy)))
        else:
            if "n" in mode:
                r.setTop(min(r.top() + dy, r.bottom() - MIN_SIDE))
            if "s" in mode:
                r.setBottom(max(r.bottom() + dy, r.top() + MIN_SIDE))
            if "w" in mode:
                r.setLeft(min(r.left() + dx, r.right() - MIN_SIDE))
            if "e" in mode:
                r.setRight(max(r.right() + dx, r.left() + MIN_SIDE))
            r = r.intersected(QRectF(0, 0, w, h))
        self._crop = r
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None:
            self._drag = None
            self.set_crop(self.crop())  # normalise, clamp and announce once per gesture

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), self.palette().window())
        full = self.image_to_widget(QRectF(0, 0, *self._size))
        painter.drawImage(full, self._image)
        crop = self.image_to_widget(self._crop)
        shade = QPainterPath()
        shade.addRect(full)
        hole = QPainterPath()
        hole.addRect(crop)
        painter.fillPath(shade.subtracted(hole), QColor(0, 0, 0, 130))  # dim what will be cut away
        painter.setPen(QPen(QColor("#ffd400"), 2, Qt.PenStyle.DashLine))
        painter.drawRect(crop)
        painter.setPen(QPen(QColor("#202020"), 1))
        painter.setBrush(QColor("#ffd400"))
        for x in (crop.left(), crop.center().x(), crop.right()):
            for y in (crop.top(), crop.center().y(), crop.bottom()):
                if (x, y) != (crop.center().x(), crop.center().y()):
                    painter.drawRect(QRectF(x - 4, y - 4, 8, 8))
        painter.end()


def _suggest(kind: str, image) -> tuple[Box | None, str]:
    """Helper thread: one suggestion (importing mediapipe alone takes ~0.5 s); ``(box, problem)``."""
    from comic_studio.vision import detect

    if not detect.available_detectors():
        return None, "This copy of Comic Studio has no face detector; draw the crop by hand."
    suggest = detect.suggest_face if kind == "face" else detect.suggest_body
    return suggest(image), ""


class CropDialog(QDialog):
    """Crop a reference image. Emits ``crop_chosen(slot, box)`` for "Add as face/body"; stays
    open so several crops can be cut from one image."""

    crop_chosen = Signal(str, object)  # "face" | "body", Box in image pixels
    suggestion_finished = Signal(str, bool)  # kind, found (tests and status wait on this)

    def __init__(self, image, parent: QWidget | None = None, title: str = "Crop reference"):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.image = image
        self.area = CropArea(image, self)
        self.status = QLabel("Drag to draw a crop, or ask for a suggestion.")
        self.status.setWordWrap(True)
        self.size_label = QLabel()
        self.area.crop_changed.connect(self._show_size)
        self._show_size(self.area.crop())
        self.jobs = BackgroundJobs(self, "crop-detector")

        self.suggest_face_button = QPushButton("Suggest face")
        self.suggest_body_button = QPushButton("Suggest body")
        self.add_face_button = QPushButton("Add as face")
        self.add_body_button = QPushButton("Add as body")
        self.suggest_face_button.clicked.connect(lambda: self.suggest("face"))
        self.suggest_body_button.clicked.connect(lambda: self.suggest("body"))
        self.add_face_button.clicked.connect(lambda: self._choose("face"))
        self.add_body_button.clicked.connect(lambda: self._choose("body"))
        self.keep_source = QCheckBox("Keep the whole picture too")
        self.keep_source.setToolTip(
            "Off: the crop replaces the reference it was cut from (a reference of the whole scene would "
            "condition the render on everything in it). On: both stay."
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        row = QHBoxLayout()
        for button in (self.suggest_face_button, self.suggest_body_button):
            row.addWidget(button)
        row.addStretch(1)
        for button in (self.add_face_button, self.add_body_button):
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.area, 1)
        layout.addWidget(self.size_label)
        layout.addWidget(self.status)
        layout.addLayout(row)
        layout.addWidget(self.keep_source)
        layout.addWidget(buttons)
        self.resize(560, 640)

    def _show_size(self, box: Box) -> None:
        self.size_label.setText(
            f"Crop: {box.w:.0f} × {box.h:.0f} px at ({box.x:.0f}, {box.y:.0f}) of {self.image.width} × {self.image.height}"
        )

    def suggest(self, kind: str) -> None:
        """Ask the detector for a face or body box; the rectangle moves there when it answers."""
        for button in (self.suggest_face_button, self.suggest_body_button):
            button.setEnabled(False)
        self.status.setText(f"Looking for the {kind}…")
        self.jobs.submit(
            _suggest,
            kind,
            self.image.copy(),
            on_result=lambda answer: self._suggested(kind, *answer),
            # a detector failure must never take the dialog down
            on_error=lambda error: self._suggested(kind, None, f"The {kind} detector failed: {error}"),
        )

    def _suggested(self, kind: str, box: Box | None, error: str) -> None:
        for button in (self.suggest_face_button, self.suggest_body_button):
            button.setEnabled(True)
        if box is not None and box.w >= MIN_SIDE and box.h >= MIN_SIDE:
            self.area.set_crop(box)
            self.status.setText(f"Suggested {kind}: adjust the rectangle if needed, then add it.")
        else:
            self.status.setText(error or f"No {kind} found; draw the crop by hand.")
        self.suggestion_finished.emit(kind, box is not None)

    def _choose(self, slot: str) -> None:
        box = self.area.crop()
        self.crop_chosen.emit(slot, box)
        self.status.setText(f"Added a {box.w:.0f} × {box.h:.0f} crop as a {slot} reference.")

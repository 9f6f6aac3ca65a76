"""Pictures for the character library: card icons (colour frame + face or initials, and the identity
anchor as a badge) and reference thumbnails, decoded from the project's asset store and cached by
content hash."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import AssetError
from comic_studio.core.model import Character
from comic_studio.ui.images import pil_to_qimage

CARD_SIZE = 76
ANCHOR_STATES = {
    "none": "no identity anchor",
    "ready": "identity anchor ready",
    "generating": "identity anchor being generated…",
    "rebuilding": "identity bank being rebuilt…",
}
"""What a card's anchor badge can show (``AnchorJobs.state``), and how the tooltip says it."""


def initials(name: str) -> str:
    """ "Mara Vance" → "MV", "ada" → "A"; what a card shows before it has a face reference."""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    return "".join(w[0].upper() for w in words[:2]) or "?"


class ThumbnailCache:
    """Scaled thumbnails of assets, keyed by (hash, size): assets never change under a hash, so
    entries stay valid; the cache is dropped when another document is opened."""

    def __init__(self, limit: int = 512):
        self._items: dict[tuple[str, int], QImage | None] = {}
        self._limit = limit

    def clear(self) -> None:
        self._items.clear()

    def get(self, assets: AssetStore, digest: str, size: int) -> QImage | None:
        key = (digest, size)
        if key not in self._items:
            if len(self._items) >= self._limit:
                self._items.clear()
            self._items[key] = self._load(assets, digest, size)
        return self._items[key]

    @staticmethod
    def _load(assets: AssetStore, digest: str, size: int) -> QImage | None:
        try:
            image = assets.open_image(digest)
        except (AssetError, OSError, ValueError):
            return None  # a damaged asset shows as initials, never as an exception in paint code
        image.thumbnail((size * 2, size * 2))  # 2× for high-DPI screens
        return pil_to_qimage(image)


def card_pixmap(
    character: Character,
    face: QImage | None,
    size: int = CARD_SIZE,
    anchor: QImage | None = None,
    anchor_state: str = "none",
    sample: QImage | None = None,
) -> QPixmap:
    """The card's picture: a rounded frame in the character's colour around the face thumbnail
    (cropped to fill) or, without one, the initials on a tint of the colour; with an identity
    anchor (or one on its way) a badge in the lower right corner shows it; the newest LoRA
    training sample (``sample``), a badge in the upper right corner."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    colour = QColor(character.colour)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    frame = QRectF(2, 2, size - 4, size - 4)
    path = QPainterPath()
    path.addRoundedRect(frame, 10, 10)
    if face is not None and not face.isNull():
        painter.save()
        painter.setClipPath(path)
        scaled = face.scaled(
            size, size, Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation
        )
        # Keep the top of the image: faces sit in the upper part of a reference.
        painter.drawImage(QRectF((size - scaled.width()) / 2, 0, scaled.width(), scaled.height()), scaled)
        painter.restore()
    else:
        painter.fillPath(path, colour.lighter(170))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(size * 0.36))
        painter.setFont(font)
        painter.setPen(colour.darker(160))
        painter.drawText(frame, Qt.AlignmentFlag.AlignCenter, initials(character.name))
    painter.setPen(QPen(colour, 4))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPath(path)
    if anchor_state != "none":
        _draw_anchor_badge(painter, size, colour, anchor, anchor_state)
    if sample is not None and not sample.isNull():
        _draw_picture_badge(painter, QRectF(size - round(size * 0.4) - 1, 1, round(size * 0.4), round(size * 0.4)),
                            colour, sample)  # fmt: skip
    painter.end()
    return pixmap


def _draw_anchor_badge(painter: QPainter, size: int, colour: QColor, anchor: QImage | None, state: str) -> None:
    """The anchor picture in a small framed square; dimmed with "…" while a job makes it."""
    side = round(size * 0.46)
    box = QRectF(size - side - 1, size - side - 1, side, side)
    path = QPainterPath()
    path.addRoundedRect(box, 5, 5)
    painter.save()
    painter.setClipPath(path)
    if anchor is not None and not anchor.isNull():
        scaled = anchor.scaled(
            side, side, Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation
        )
        painter.drawImage(
            QRectF(box.x() + (side - scaled.width()) / 2, box.y(), scaled.width(), scaled.height()), scaled
        )
    else:
        painter.fillPath(path, QColor("#e6e6e6"))
    if state in ("generating", "rebuilding"):
        painter.fillPath(path, QColor(0, 0, 0, 120))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(side * 0.5))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "…")
    painter.restore()
    painter.setPen(QPen(QColor("white"), 2))
    painter.drawPath(path)
    painter.setPen(QPen(colour.darker(130), 1))
    painter.drawPath(path)


def _draw_picture_badge(painter: QPainter, box: QRectF, colour: QColor, image: QImage) -> None:
    """A picture cropped to fill a small framed square (white rim, then the character's colour)."""
    path = QPainterPath()
    path.addRoundedRect(box, 5, 5)
    painter.save()
    painter.setClipPath(path)
    side = round(box.width())
    scaled = image.scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation
    )
    painter.drawImage(QRectF(box.x() + (side - scaled.width()) / 2, box.y(), scaled.width(), scaled.height()), scaled)
    painter.restore()
    painter.setPen(QPen(QColor("white"), 2))
    painter.drawPath(path)
    painter.setPen(QPen(colour.darker(130), 1))
    painter.drawPath(path)


def thumbnail_pixmap(image: QImage | None, size: int) -> QPixmap:
    """A reference thumbnail fitted into a square (letterboxed, never cropped)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    if image is None or image.isNull():
        return pixmap
    scaled = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    painter = QPainter(pixmap)
    painter.drawImage((size - scaled.width()) // 2, (size - scaled.height()) // 2, scaled)
    painter.end()
    return pixmap

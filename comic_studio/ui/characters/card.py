"""Pictures for the character library: card icons (colour frame + face or initials) and reference
thumbnails, decoded from the project's asset store and cached by content hash."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import AssetError
from comic_studio.core.model import Character

CARD_SIZE = 76


def initials(name: str) -> str:
    """"Mara Vance" → "MV", "ada" → "A"; what a card shows before it has a face reference."""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    return "".join(w[0].upper() for w in words[:2]) or "?"


def pil_to_qimage(image) -> QImage:
    """A PIL image as a QImage that owns its pixels (the PIL buffer may go away)."""
    rgba = image.convert("RGBA")
    data = rgba.tobytes("raw", "RGBA")
    return QImage(data, rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888).copy()


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


def card_pixmap(character: Character, face: QImage | None, size: int = CARD_SIZE) -> QPixmap:
    """The card's picture: a rounded frame in the character's colour around the face thumbnail
    (cropped to fill) or, without one, the initials on a tint of the colour."""
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
        scaled = face.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation)
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
    painter.end()
    return pixmap


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

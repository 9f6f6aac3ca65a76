"""PIL images to Qt images: the one conversion every widget uses."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QImage, QPixmap


def pil_to_qimage(image: Any) -> QImage:
    """A PIL image as a QImage that owns its pixels (the PIL buffer may go away)."""
    rgba = image.convert("RGBA")
    data = rgba.tobytes("raw", "RGBA")
    return QImage(data, rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888).copy()


def pil_to_pixmap(image: Any) -> QPixmap:
    return QPixmap.fromImage(pil_to_qimage(image))

"""Turning core geometry into Qt drawing: outlines → QPainterPath, balloon geometry → paths in
the bundled Comic Neue font, and a shared, zoom-aware cache of panel images.

Everything here works in *page units* (points); the view's transform maps them to pixels, so a
path built once stays valid at every zoom level.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QPainter, QPainterPath, QPen, QPixmap, QTransform

from comic_studio.core.assets import AssetStore
from comic_studio.core.lettering import BalloonGeometry, text_clip
from comic_studio.core.resources import resource
from comic_studio.export.compositor import cover_crop

log = logging.getLogger(__name__)

Point = tuple[float, float]

# Glyph outlines are built at this pixel size and scaled down to the fitted point size: QFont
# takes integer pixel sizes, and outlines built large keep their curves exact when scaled.
_GLYPH_REFERENCE_PX = 100


def polygon_path(points: Sequence[Point]) -> QPainterPath:
    """A closed path through ``points`` (the last point joins the first)."""
    path = QPainterPath()
    if not points:
        return path
    path.moveTo(QPointF(*points[0]))
    for x, y in points[1:]:
        path.lineTo(QPointF(x, y))
    path.closeSubpath()
    return path


# --------------------------------------------------------------------------- fonts


@lru_cache(maxsize=16)
def font_family(font_file: Path) -> str:
    """Register a bundled TTF with Qt once and return its family name.

    The canvas letters with the very files the exporters embed, so a balloon wraps and sizes
    the same on screen as in the PDF (line positions come from core lettering; Qt only draws).
    """
    font_id = QFontDatabase.addApplicationFont(str(font_file))
    families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if not families:
        log.warning("Qt could not load font %s; balloon text falls back to the default font", font_file)
        return QFont().family()
    return families[0]


def lettering_font(font_file: Path) -> QFont:
    """A QFont for ``font_file`` at the reference pixel size, unhinted and without kerning: core
    lettering measures advance widths without kerning, as reportlab does. A fresh copy each call
    (callers may resize it)."""
    return QFont(_lettering_font(font_file))


@lru_cache(maxsize=16)
def _lettering_font(font_file: Path) -> QFont:
    font = QFont(font_family(font_file))
    stem = font_file.stem.lower()
    font.setBold("bold" in stem)
    font.setItalic("italic" in stem)
    font.setPixelSize(_GLYPH_REFERENCE_PX)
    font.setKerning(False)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    return font


def text_path(text: str, font_file: Path, size: float, x: float, y: float) -> QPainterPath:
    """Glyph outlines of ``text`` at ``size`` points with its baseline starting at ``(x, y)``."""
    path = QPainterPath()
    path.addText(QPointF(0, 0), lettering_font(font_file), text)
    scale = size / _GLYPH_REFERENCE_PX
    return QTransform(scale, 0, 0, scale, x, y).map(path)


# --------------------------------------------------------------------------- balloons


class BalloonPaths:
    """A balloon's geometry prepared for painting (built once per geometry, drawn many times)."""

    def __init__(self, geometry: BalloonGeometry):
        self.geometry = geometry
        self.shapes = [polygon_path(shape) for shape in geometry.shapes]
        self.outline = QPainterPath()
        for shape in self.shapes:
            self.outline = self.outline.united(shape) if not self.outline.isEmpty() else shape
        self.text = QPainterPath()
        for line in geometry.lines:
            if line.text:
                self.text.addPath(text_path(line.text, geometry.font_file, geometry.font_size, line.x, line.y))

    def bounding_rect(self) -> QRectF:
        pad = 2 * self.geometry.stroke_width + self.geometry.text_outline + 1
        rect = self.outline.boundingRect().united(self.text.boundingRect())
        return rect.adjusted(-pad, -pad, pad, pad)

    def paint(self, painter: QPainter, error: bool = False) -> None:
        """Stroke every shape at twice the width, then fill them all: the fill hides the inner half
        of each stroke, so body and tail read as one outline (the exporters' recipe)."""
        g = self.geometry
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.shapes and g.stroke_width > 0:
            pen = QPen(QColor(g.stroke), 2 * g.stroke_width)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            if g.dashed:
                pen.setDashPattern([3.0, 2.0])  # in pen widths: reads as a whisper at every zoom
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for shape in self.shapes:
                painter.drawPath(shape)
        if self.shapes and g.fill:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(g.fill))
            for shape in self.shapes:
                painter.drawPath(shape)
        if not self.text.isEmpty():
            if text_clip(g):
                # Overset text stays inside the balloon (as in a layout program; the exporters
                # apply the same rule); the note under the balloon says what to do about the rest.
                painter.setClipPath(self.outline)
            if g.text_outline > 0:
                outline_pen = QPen(QColor("#ffffff"), 2 * g.text_outline)
                outline_pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
                painter.setPen(outline_pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(self.text)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(g.text_colour))
            painter.drawPath(self.text)
        painter.setClipping(False)
        if error:
            # Text does not fit at the type size: a red outline, explained by the balloon's note.
            pen = QPen(QColor("#e0201b"), 2.0)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            target = self.outline if not self.outline.isEmpty() else self.text
            painter.drawRect(target.boundingRect()) if self.outline.isEmpty() else painter.drawPath(target)
        painter.restore()


# --------------------------------------------------------------------------- panel images


def cover_source_rect(image_size: tuple[int, int], dest: QRectF) -> QRectF:
    """The centred part of an image that, scaled uniformly, exactly covers ``dest`` (the same
    *cover* crop the exporters apply)."""
    x0, y0, x1, y1 = cover_crop(image_size, (dest.left(), dest.top(), dest.right(), dest.bottom()))
    return QRectF(x0, y0, x1 - x0, y1 - y0)


def _bucket(pixels: float) -> int:
    """Round a wanted pixel width up to a coarse step so zooming reuses scaled pixmaps."""
    steps = (64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
    for step in steps:
        if pixels <= step:
            return step
    return steps[-1]


class ImageCache(QObject):
    """Decoded panel images per asset hash, plus downscaled pixmaps per (hash, size bucket).

    Decoding runs on a worker thread (a 1.5k PNG takes tens of milliseconds, too long for the GUI
    thread when a page shows nine of them); :meth:`pixmap` returns ``None`` until the image is
    ready and :attr:`image_ready` tells the items to repaint. Both caches are LRU-bounded.
    """

    image_ready = Signal(str)
    """The asset hash whose image finished decoding."""
    _decoded = Signal(str, object)  # worker → GUI thread (queued): the cache is only touched there

    def __init__(self, max_images: int = 48, max_pixmaps: int = 160, parent: QObject | None = None):
        super().__init__(parent)
        self._images: OrderedDict[str, QImage] = OrderedDict()
        self._pixmaps: OrderedDict[tuple[str, int, int, int, int, int], QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._failed: set[str] = set()
        self._max_images, self._max_pixmaps = max_images, max_pixmaps
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="canvas-decode")
        self._decoded.connect(self._store)

    # ------------------------------------------------------------------ decoding
    def image(self, assets: AssetStore, digest: str) -> QImage | None:
        """The decoded image, or ``None`` while it decodes (a decode is started if needed)."""
        image = self._images.get(digest)
        if image is not None:
            self._images.move_to_end(digest)
            return image
        if digest not in self._pending and digest not in self._failed:
            self._pending.add(digest)
            # Reading the bytes happens on the worker too: an asset of a saved project is read
            # from the zip and hash-checked, a few milliseconds each.
            self._pool.submit(self._decode_in_worker, assets, digest)
        return None

    @staticmethod
    def _decode_bytes(data: bytes) -> QImage | None:
        image = QImage.fromData(data)
        return None if image.isNull() else image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)

    def _decode_in_worker(self, assets: AssetStore, digest: str) -> None:
        try:
            image = self._decode_bytes(assets.get(digest))
        except Exception as exc:  # a damaged asset must not break painting
            log.warning("panel image %s… cannot be read: %s", digest[:12], exc)
            image = None
        self._decoded.emit(digest, image)

    def _store(self, digest: str, image: QImage | None) -> None:
        self._pending.discard(digest)
        if image is None:
            log.warning("panel image %s… is not a readable image", digest[:12])
            self._failed.add(digest)
        else:
            self._images[digest] = image
            while len(self._images) > self._max_images:
                self._images.popitem(last=False)
        self.image_ready.emit(digest)

    def decode_now(self, assets: AssetStore, digests: Iterable[str]) -> None:
        """Decode synchronously (tests, and thumbnails that must not flash grey)."""
        for digest in digests:
            if digest in self._images or digest in self._failed:
                continue
            try:
                self._store(digest, self._decode_bytes(assets.get(digest)))
            except Exception as exc:
                log.warning("panel image %s… cannot be read: %s", digest[:12], exc)
                self._failed.add(digest)

    def busy(self) -> bool:
        return bool(self._pending)

    # ------------------------------------------------------------------ scaled pixmaps
    def cover_pixmap(self, assets: AssetStore, digest: str, dest: QRectF, device_scale: float) -> QPixmap | None:
        """The image cropped to cover ``dest`` and scaled to about the pixels ``dest`` occupies on
        screen at ``device_scale`` pixels per point (rounded up to a bucket)."""
        image = self.image(assets, digest)
        if image is None:
            return None
        source = cover_source_rect((image.width(), image.height()), dest)
        want_w = _bucket(max(dest.width() * device_scale, 1.0))
        # Never upscale beyond the source: the painter's smooth transform does that on the fly.
        width = max(1, min(want_w, int(source.width())))
        height = max(1, round(width * dest.height() / max(dest.width(), 1e-6)))
        key = (digest, width, height, int(source.x()), int(source.y()), int(source.width()))
        pixmap = self._pixmaps.get(key)
        if pixmap is None:
            crop = image.copy(source.toAlignedRect())
            scaled = crop.scaled(
                width, height, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            pixmap = QPixmap.fromImage(scaled)
            self._pixmaps[key] = pixmap
            while len(self._pixmaps) > self._max_pixmaps:
                self._pixmaps.popitem(last=False)
        else:
            self._pixmaps.move_to_end(key)
        return pixmap

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_shared_cache: ImageCache | None = None


def shared_image_cache() -> ImageCache:
    """One cache for the canvas and the pages strip: an image decoded for one serves both."""
    global _shared_cache
    if _shared_cache is None:
        _shared_cache = ImageCache()
    return _shared_cache


def shutdown_shared_image_cache() -> None:
    """Stop the decode threads (window closing). A later window gets a fresh cache."""
    global _shared_cache
    if _shared_cache is not None:
        _shared_cache.shutdown()
        _shared_cache = None


def placeholder_font_file() -> Path:
    return resource("fonts", "ComicNeue-Regular.ttf")

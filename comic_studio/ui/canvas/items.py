"""The graphics items of a page: paper and guides, panels, gutter handles, balloons and their
handles. Scene units are page points (origin at the trim's top-left, y down).

Items only *draw* and turn mouse gestures into calls on their :class:`~.scene.PageScene`, which
runs the document edits; they never mutate the model. Each item keeps a small signature of what it
shows so a document change repaints (or re-lays-out text) only when its own data changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneMouseEvent, QStyleOptionGraphicsItem, QWidget

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import Border, bbox, centroid
from comic_studio.core.lettering import balloon_geometry
from comic_studio.core.lettering.grow import fit_problem
from comic_studio.core.lettering.tails import head_to_page, image_window
from comic_studio.core.model import Balloon, BalloonKind, PageFormat, Panel, Project
from comic_studio.ui.canvas.badge import HoverItem
from comic_studio.ui.canvas.painting import (
    BalloonPaths,
    cover_source_rect,
    lettering_font,
    placeholder_font_file,
    polygon_path,
)

if TYPE_CHECKING:
    from comic_studio.ui.canvas.scene import PageScene

Z_PAGE, Z_PANEL, Z_BORDER, Z_BALLOON, Z_GUIDES, Z_HANDLE = 0, 10, 20, 30, 40, 50

PANEL_BORDER_WIDTH = 1.5  # points, as the exporters print it
PLACEHOLDER_FILL = QColor("#e6e6e6")
PLACEHOLDER_TEXT = QColor("#555555")
SELECTION_COLOUR = QColor("#2f80ed")
TRIM_COLOUR = QColor("#ff00ff")
SAFE_COLOUR = QColor("#00a0ff")
BLEED_COLOUR = QColor("#9a9a9a")


def cosmetic_pen(colour: QColor, width: float = 1.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen whose width is in screen pixels whatever the zoom (guides, selection, handles)."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


def _page_scene(item: QGraphicsItem) -> PageScene:
    return item.scene()  # type: ignore[return-value]


# --------------------------------------------------------------------------- page and guides


class PageItem(QGraphicsItem):
    """White paper covering trim + bleed, with a soft drop shadow on the desk."""

    SHADOW = 6.0

    def __init__(self, fmt: PageFormat):
        super().__init__()
        self.setZValue(Z_PAGE)
        self.fmt = fmt

    def paper_rect(self) -> QRectF:
        b = self.fmt.bleed
        return QRectF(-b, -b, self.fmt.width + 2 * b, self.fmt.height + 2 * b)

    def boundingRect(self) -> QRectF:
        return self.paper_rect().adjusted(0, 0, self.SHADOW * 2, self.SHADOW * 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        paper = self.paper_rect()
        painter.setPen(Qt.PenStyle.NoPen)
        # A cheap two-layer shadow instead of QGraphicsDropShadowEffect, which re-blurs the whole
        # page (images included) on every repaint.
        for offset, alpha in ((self.SHADOW, 40), (self.SHADOW / 2, 50)):
            painter.setBrush(QColor(0, 0, 0, alpha))
            painter.drawRect(paper.translated(offset, offset))
        painter.setBrush(QColor("#ffffff"))
        painter.drawRect(paper)


class GuidesItem(QGraphicsItem):
    """Bleed edge (grey), trim (magenta) and safe area (dashed cyan), above the art."""

    def __init__(self, fmt: PageFormat):
        super().__init__()
        self.fmt = fmt
        self.setZValue(Z_GUIDES)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def boundingRect(self) -> QRectF:
        b = self.fmt.bleed + 2
        return QRectF(-b, -b, self.fmt.width + 2 * b, self.fmt.height + 2 * b)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        f = self.fmt
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(cosmetic_pen(BLEED_COLOUR))
        painter.drawRect(QRectF(-f.bleed, -f.bleed, f.width + 2 * f.bleed, f.height + 2 * f.bleed))
        painter.setPen(cosmetic_pen(TRIM_COLOUR))
        painter.drawRect(QRectF(0, 0, f.width, f.height))
        live = f.live_box()
        painter.setPen(cosmetic_pen(SAFE_COLOUR, 1.0, Qt.PenStyle.DashLine))
        painter.drawRect(QRectF(live.x, live.y, live.w, live.h))


# --------------------------------------------------------------------------- panels


class PanelItem(QGraphicsItem):
    """A panel: its current image cropped to cover the polygon, or a grey placeholder with the
    reading-order number and the beat; black border; selection tint; optional order badge."""

    def __init__(self, panel_id: str):
        super().__init__()
        self.panel_id = panel_id
        self.setZValue(Z_PANEL)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self._signature: tuple = ()
        self.path = QPainterPath()
        self.rect = QRectF()
        self.number = 1
        self.beat_text = ""
        self.asset: str | None = None
        self.shape_points: list[tuple[float, float]] = []
        self.heads: list[tuple[str, QPointF, float]] = []
        self.show_heads = False
        self.live_preview: QPixmap | None = None
        """The running job's latest preview (see :mod:`.live_render`), drawn instead of the image."""
        self.preview_is_live = False
        """False once the job finished: the preview then only stands in until the new image is decoded."""

    def set_panel(self, panel: Panel, beat_text: str) -> bool:
        """Show ``panel``; returns False (and does nothing) when nothing visible changed."""
        result = panel.result()
        heads = tuple((c.character_id, c.head, c.head_radius) for c in panel.characters if c.head)
        signature = (tuple(map(tuple, panel.shape)), panel.order, beat_text, result.asset if result else None, heads)
        if signature == self._signature:
            return False
        self.prepareGeometryChange()
        self._signature = signature
        self.shape_points = [tuple(p) for p in panel.shape]
        self.path = polygon_path(self.shape_points)
        self.rect = self.path.boundingRect()
        self.number = panel.order + 1
        self.beat_text = beat_text
        self.asset = result.asset if result else None
        self.heads = head_targets(panel)
        self.update()
        return True

    def set_live_preview(self, pixmap: QPixmap | None) -> None:
        """Draw ``pixmap`` (a render's live preview) instead of the image; ``None``: the image again."""
        if pixmap is self.live_preview and self.preview_is_live == (pixmap is not None):
            return
        self.live_preview, self.preview_is_live = pixmap, pixmap is not None
        self.update()

    def keep_preview_until_image(self) -> None:
        """The render finished: keep its last preview up until the new image is decoded (instead of
        a grey flash), then drop it."""
        self.preview_is_live = False
        self.update()

    def boundingRect(self) -> QRectF:
        pad = PANEL_BORDER_WIDTH + 2
        return self.rect.adjusted(-pad, -pad, pad, pad)

    def shape(self) -> QPainterPath:
        return self.path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        scene = _page_scene(self)
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        drawn = False
        preview = self.live_preview
        if preview is not None and self.preview_is_live:
            self._draw_clipped(painter, preview, cover_source_rect((preview.width(), preview.height()), self.rect))
            drawn = True
        elif self.asset and scene is not None:
            pixmap = scene.images.cover_pixmap(scene.ctx.document.assets, self.asset, self.rect, lod)
            if pixmap is not None:
                self._draw_clipped(painter, pixmap, QRectF(pixmap.rect()))
                self.live_preview = None  # a finished render's stand-in has served its purpose
                drawn = True
            elif preview is not None:
                self._draw_clipped(painter, preview, cover_source_rect((preview.width(), preview.height()), self.rect))
                drawn = True
        if not drawn:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(PLACEHOLDER_FILL)
            painter.drawPath(self.path)
            if not self.asset:
                self._paint_placeholder_text(painter)
        if self.isSelected():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(47, 128, 237, 40))
            painter.drawPath(self.path)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        pen = QPen(QColor("#000000"), PANEL_BORDER_WIDTH)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.setPen(pen)
        painter.drawPath(self.path)
        if self.isSelected():
            painter.setPen(cosmetic_pen(SELECTION_COLOUR, 3.0))
            painter.drawPath(self.path)
        if scene is not None and scene.show_reading_order:
            self._paint_order_badge(painter)
        if self.show_heads:
            self._paint_heads(painter)

    def _draw_clipped(self, painter: QPainter, pixmap: QPixmap, source: QRectF) -> None:
        painter.save()
        painter.setClipPath(self.path)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawPixmap(self.rect, pixmap, source)
        painter.restore()

    def _paint_placeholder_text(self, painter: QPainter) -> None:
        r = self.rect
        if r.width() < 12 or r.height() < 12:
            return
        pad = min(6.0, r.width() * 0.08, r.height() * 0.08)
        number_size = max(6.0, min(18.0, r.height() / 4, r.width() / 3))
        painter.setPen(PLACEHOLDER_TEXT)
        painter.setFont(_scaled_font(number_size))
        painter.drawText(
            QRectF(r.x() + pad, r.y() + pad, r.width() - 2 * pad, number_size * 1.3),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
            str(self.number),
        )
        if self.beat_text:
            size = max(4.0, min(7.0, r.height() / 8))
            painter.setFont(_scaled_font(size))
            top = r.y() + pad + number_size * 1.3
            painter.drawText(
                QRectF(r.x() + pad, top, r.width() - 2 * pad, r.bottom() - pad - top),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                self.beat_text,
            )

    def _paint_order_badge(self, painter: QPainter) -> None:
        cx, cy = centroid(self.shape_points)
        radius = max(8.0, min(18.0, min(self.rect.width(), self.rect.height()) / 6))
        painter.setPen(cosmetic_pen(QColor("#ffffff"), 2.0))
        painter.setBrush(QColor(47, 128, 237, 220))
        painter.drawEllipse(QPointF(cx, cy), radius, radius)
        painter.setPen(QColor("#ffffff"))
        painter.setFont(_scaled_font(radius * 1.1))
        painter.drawText(
            QRectF(cx - radius, cy - radius, 2 * radius, 2 * radius), Qt.AlignmentFlag.AlignCenter, str(self.number)
        )

    def _paint_heads(self, painter: QPainter) -> None:
        """Drop targets while a tail is dragged: each character's head in this panel."""
        painter.setPen(cosmetic_pen(QColor("#e67e22"), 2.0, Qt.PenStyle.DashLine))
        painter.setBrush(QColor(230, 126, 34, 50))
        for _character_id, centre, radius in self.heads:
            painter.drawEllipse(centre, radius, radius)


def _scaled_font(size_pt: float) -> QFont:
    """A UI font sized in page points (QFont's own point size depends on the screen DPI)."""
    font = lettering_font(placeholder_font_file())
    font.setPixelSize(max(1, round(size_pt)))
    return font


def head_targets(panel: Panel) -> list[tuple[str, QPointF, float]]:
    """``(character_id, centre, radius)`` in page units for every head a tail may aim at: the
    panel's placements, then the heads the current image reported (the same order lettering
    uses). The radius is the placement's, at least 10 pt so a small head is still a target."""
    box = bbox(panel.shape)
    window = image_window(panel)  # heads where the (possibly re-cropped) image draws them
    result = panel.result()
    out = []
    for placement in list(panel.characters) + (list(result.heads) if result else []):
        if placement.head is None:
            continue
        centre = QPointF(*head_to_page(panel, placement.head, window))
        scale = max(box.w / window.w, box.h / window.h)
        out.append((placement.character_id, centre, max(10.0, placement.head_radius * scale)))
    return out


# --------------------------------------------------------------------------- gutters


class BorderHandleItem(HoverItem):
    """An invisible strip over a shared gutter; hover shows it, dragging moves the gutter."""

    def __init__(self, border: Border, gutter: float):
        super().__init__()
        self.border = border
        self.setZValue(Z_BORDER)
        cursor = {"vertical": Qt.CursorShape.SizeHorCursor, "horizontal": Qt.CursorShape.SizeVerCursor}
        self.setCursor(cursor.get(border.orientation, Qt.CursorShape.SizeAllCursor))
        line = QPainterPath(QPointF(*border.start))
        line.lineTo(QPointF(*border.end))
        stroker = QPainterPathStroker()
        stroker.setWidth(max(gutter, 6.0))
        stroker.setCapStyle(Qt.PenCapStyle.FlatCap)
        self.path = stroker.createStroke(line)
        self._press: QPointF | None = None

    def boundingRect(self) -> QRectF:
        return self.path.boundingRect()

    def shape(self) -> QPainterPath:
        return self.path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._hover or self._press is not None:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(47, 128, 237, 90))
            painter.drawPath(self.path)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._press = event.scenePos()
        _page_scene(self).begin_border_drag(self)
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._press is None:
            return
        d = event.scenePos() - self._press
        nx, ny = self.border.normal
        _page_scene(self).drag_border_to(self, d.x() * nx + d.y() * ny)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._press is not None:
            self._press = None
            _page_scene(self).end_border_drag(self)


# --------------------------------------------------------------------------- balloons


class BalloonItem(QGraphicsItem):
    """A balloon drawn from core lettering geometry. Drag the body to move it; when selected, a
    corner handle resizes it and a tail handle retargets its tail."""

    def __init__(self, balloon_id: str, panel_id: str):
        super().__init__()
        self.balloon_id = balloon_id
        self.panel_id = panel_id
        self.setZValue(Z_BALLOON)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self._signature: tuple = ()
        self.paths: BalloonPaths | None = None
        self.box = QRectF()
        self.kind = BalloonKind.SPEECH
        self.tail_tip: QPointF | None = None
        self.selected = False
        self._press: QPointF | None = None
        self.resize_handle = HandleItem(self, "resize")
        self.tail_handle = HandleItem(self, "tail")
        self.fit_note = FitNoteItem(self)
        self.problem = ""
        """Why the text does not fit and what to do (empty when it fits): tooltip and inline note."""
        self._bounds = QRectF()

    def set_balloon(self, balloon: Balloon, panel: Panel, project: Project) -> bool:
        """Show ``balloon`` (geometry depends on its panel's heads and shape); False if unchanged."""
        result = panel.result()
        heads = tuple((c.character_id, c.head) for c in list(panel.characters) + (list(result.heads) if result else []))
        signature = (balloon.model_dump_json(), tuple(map(tuple, panel.shape)), heads, result.id if result else None)
        if signature == self._signature:
            return False
        self.prepareGeometryChange()
        self._signature = signature
        self.panel_id = panel.id
        self.kind = balloon.kind
        self.box = QRectF(balloon.box.x, balloon.box.y, balloon.box.w, balloon.box.h)
        try:
            self.paths = BalloonPaths(balloon_geometry(balloon, panel, project))
        except ComicStudioError:
            self.paths = None  # a broken box draws as its outline only (see paint)
        self.tail_tip = tail_tip_point(balloon, panel, project)
        self.problem = fit_problem(balloon, panel) if self.paths is not None and not self.paths.geometry.fits else ""
        self.setToolTip(self.problem)
        self.fit_note.set_text(self.problem)
        self.fit_note.setPos(self.box.bottomLeft() + QPointF(0, 3))
        self._bounds = (self.paths.bounding_rect() if self.paths else self.box).united(self.box.adjusted(-4, -4, 4, 4))
        self._place_handles()
        self.update()
        return True

    def _place_handles(self) -> None:
        self.resize_handle.setPos(self.box.bottomRight())
        has_tail = self.kind not in (BalloonKind.CAPTION, BalloonKind.SFX)
        # No tail yet: offer the handle just under the balloon, to be pulled out onto a speaker.
        self.tail_handle.setPos(
            self.tail_tip if self.tail_tip is not None else QPointF(self.box.center().x(), self.box.bottom() + 8)
        )
        self.resize_handle.setVisible(self.selected)
        self.tail_handle.setVisible(self.selected and has_tail)

    def set_selected(self, selected: bool) -> None:
        if selected != self.selected:
            self.selected = selected
            self._place_handles()
            self.update()

    @property
    def fits(self) -> bool:
        return self.paths is None or self.paths.geometry.fits

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        if self.paths is not None and not self.paths.outline.isEmpty():
            return self.paths.outline
        path.addRect(self.box)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.paths is not None:
            self.paths.paint(painter, error=not self.paths.geometry.fits)
        else:
            painter.setPen(cosmetic_pen(QColor("#e0201b"), 2.0))
            painter.drawRect(self.box)
        if self.selected:
            painter.setPen(cosmetic_pen(SELECTION_COLOUR, 1.0, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.box)

    # ------------------------------------------------------------------ moving
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._press = event.scenePos()
        _page_scene(self).begin_balloon_drag(self)
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._press is not None:
            d = event.scenePos() - self._press
            _page_scene(self).drag_balloon_to(self, d.x(), d.y())

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._press is not None:
            self._press = None
            _page_scene(self).end_drag()

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        _page_scene(self).request_text_edit(self.balloon_id)
        event.accept()


class FitNoteItem(QGraphicsItem):
    """The inline note under a balloon whose text does not fit: why, and what to do. Drawn in
    screen pixels (readable at every zoom), word-wrapped; it takes no clicks."""

    WIDTH = 240.0
    PAD = 5.0

    def __init__(self, owner: BalloonItem):
        super().__init__(owner)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(Z_HANDLE)
        self.text = ""
        self._rect = QRectF()
        self.setVisible(False)

    @staticmethod
    def font() -> QFont:
        font = QFont()
        font.setPixelSize(11)
        return font

    def set_text(self, text: str) -> None:
        if text == self.text:
            return
        self.prepareGeometryChange()
        self.text = text
        flags = int(Qt.TextFlag.TextWordWrap)
        metrics = QFontMetricsF(self.font())
        inner = metrics.boundingRect(QRectF(0, 0, self.WIDTH, 10_000), flags, text)
        self._rect = inner.adjusted(-self.PAD, -self.PAD, self.PAD, self.PAD).translated(self.PAD, self.PAD)
        self.setVisible(bool(text))
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self.text:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor("#e0201b"), 1.0))
        painter.setBrush(QColor(255, 243, 240, 240))
        painter.drawRoundedRect(self._rect, 4, 4)
        painter.setPen(QColor("#7a1410"))
        painter.setFont(self.font())
        painter.drawText(
            self._rect.adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD), int(Qt.TextFlag.TextWordWrap), self.text
        )


def tail_tip_point(balloon: Balloon, panel: Panel, project: Project) -> QPointF | None:
    """Where the drawn tail ends (page units), or None without a tail."""
    from comic_studio.core.lettering.shapes import body_outline
    from comic_studio.core.lettering.tails import edge_point, tail_tip, target_point

    try:
        target = target_point(balloon, panel, project)
    except ComicStudioError:
        return None
    body = body_outline(balloon.kind, balloon.box, balloon.id)
    if target is None or body is None:
        return None
    edge = edge_point(body, (balloon.box.cx, balloon.box.cy), target)
    if edge is None:
        return None
    return QPointF(*tail_tip(edge, target))


class HandleItem(QGraphicsItem):
    """A small square (resize) or round (tail) handle, the same size on screen at every zoom."""

    SIZE = 9.0

    def __init__(self, owner: BalloonItem, role: str):
        super().__init__(owner)
        self.owner = owner
        self.role = role
        self.setZValue(Z_HANDLE)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setCursor(Qt.CursorShape.SizeFDiagCursor if role == "resize" else Qt.CursorShape.CrossCursor)
        self.setVisible(False)
        self._press: QPointF | None = None
        self.drag_pos: QPointF | None = None

    def boundingRect(self) -> QRectF:
        s = self.SIZE
        return QRectF(-s, -s, 2 * s, 2 * s)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        s = self.SIZE / 2
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor("#ffffff"), 1.5))
        painter.setBrush(QBrush(SELECTION_COLOUR if self.role == "resize" else QColor("#e67e22")))
        if self.role == "resize":
            painter.drawRect(QRectF(-s, -s, 2 * s, 2 * s))
        else:
            painter.drawEllipse(QPointF(0, 0), s + 1, s + 1)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._press = event.scenePos()
        scene = _page_scene(self)
        if self.role == "resize":
            scene.begin_balloon_drag(self.owner)
        else:
            scene.begin_tail_drag(self.owner)
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._press is None:
            return
        scene = _page_scene(self)
        if self.role == "resize":
            d = event.scenePos() - self._press
            scene.resize_balloon_to(self.owner, d.x(), d.y())
        else:
            self.drag_pos = event.scenePos()
            self.setPos(self.drag_pos)
            scene.drag_tail_to(self.owner, self.drag_pos)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._press is None:
            return
        self._press = None
        scene = _page_scene(self)
        if self.role == "resize":
            scene.end_drag()
        else:
            drop, self.drag_pos = event.scenePos(), None
            scene.end_tail_drag(self.owner, drop)

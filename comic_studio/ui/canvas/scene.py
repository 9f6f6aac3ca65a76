"""The scene of one page: keeps its items in step with the document and turns item gestures into
undoable edits through ``ctx.edit``.

Updating is *in place*: every document change re-syncs the current page, and each item compares a
small signature of its data, so only items whose panel or balloon changed re-lay-out and repaint.
Items are created or removed only when panels/balloons appear or disappear. That keeps an item
that is being dragged alive while its own drag edits the document (a rebuild would destroy the
mouse grabber mid-gesture).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsLineItem, QGraphicsScene, QMenu

from comic_studio.core import editing
from comic_studio.core.changes import Changes
from comic_studio.core.layout import clamp_border_delta, find_shared_borders
from comic_studio.core.lettering.grow import house_style
from comic_studio.core.model import Balloon, BalloonKind, Box, Page, Panel
from comic_studio.ui.canvas import tools
from comic_studio.ui.canvas.items import (
    Z_HANDLE,
    BalloonItem,
    BorderHandleItem,
    GuidesItem,
    PageItem,
    PanelItem,
    cosmetic_pen,
)
from comic_studio.ui.canvas.live_render import LiveRenderController
from comic_studio.ui.canvas.painting import ImageCache, shared_image_cache
from comic_studio.ui.canvas.pose_overlay import PoseOverlayController
from comic_studio.ui.canvas.stale_marker import StaleMarkers
from comic_studio.ui.context import StudioContext


class PageScene(QGraphicsScene):
    text_edit_requested = Signal(str)
    """A balloon was double-clicked: the view opens the in-place editor for this balloon id."""
    panel_activated = Signal(str)

    def __init__(self, ctx: StudioContext, parent=None, images: ImageCache | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.images = images or shared_image_cache()
        self.show_reading_order = False
        self.show_guides = True
        self.page_id: str | None = None
        self.page_item: PageItem | None = None
        self.guides_item: GuidesItem | None = None
        self.panel_items: dict[str, PanelItem] = {}
        self.balloon_items: dict[str, BalloonItem] = {}
        self.border_items: list[BorderHandleItem] = []
        self._format_key: tuple = ()
        self._border_key: tuple = ()
        self._syncing = False
        self._drag: dict | None = None  # state of the gesture in progress
        self.last_sync_ms = 0.0
        self.pose_overlay = PoseOverlayController(self)
        self.live = LiveRenderController(self)
        """Renders in progress shown in their panels, once :meth:`LiveRenderController.follow` is called."""
        self.stale = StaleMarkers(self)
        """Panels whose crop now cuts a figure: marked, with one-click re-render."""
        self.selectionChanged.connect(self._qt_selection_changed)
        self.images.image_ready.connect(self._image_ready)
        ctx.document_changed.connect(self._document_changed)
        ctx.document_replaced.connect(lambda _doc: self.sync(full=True))
        ctx.selection_changed.connect(self._ctx_selection_changed)
        self.sync(full=True)

    # ------------------------------------------------------------------ syncing
    @property
    def page(self) -> Page | None:
        return self.ctx.current_page

    def _document_changed(self, changes: Changes) -> None:
        pages = self.ctx.document.project.pages
        if self.ctx.current_page is None and pages:
            # The first pages of an empty document (a story was laid out): show the first one.
            self.ctx.select_page(pages[0].id)  # re-syncs through selection_changed
            return
        self.sync()

    def sync(self, full: bool = False) -> None:
        """Bring the items in line with the current page (see the module docstring)."""
        start = time.perf_counter()
        self._syncing = True
        try:
            self._sync(full)
        finally:
            self._syncing = False
        self.last_sync_ms = (time.perf_counter() - start) * 1000

    def _sync(self, full: bool) -> None:
        page, project = self.page, self.ctx.document.project
        fmt = project.page_format
        format_key = (fmt.width, fmt.height, fmt.bleed, fmt.margin, fmt.gutter)
        if full or page is None or page.id != self.page_id or format_key != self._format_key:
            self._clear()
            self.page_id, self._format_key = (page.id if page else None), format_key
            if page is None:
                return
            self.page_item = PageItem(fmt)
            self.guides_item = GuidesItem(fmt)
            self.guides_item.setVisible(self.show_guides)
            self.addItem(self.page_item)
            self.addItem(self.guides_item)
            b = fmt.bleed + 20  # a little desk around the page so it can be scrolled to the edge
            self.setSceneRect(QRectF(-b, -b, fmt.width + 2 * b, fmt.height + 2 * b))
        assert page is not None
        self._sync_panels(page)
        self._sync_balloons(page)
        self.pose_overlay.sync(page)
        self.live.sync(page)
        self.stale.sync(page)
        if self._drag is None or self._drag["kind"] != "border":
            self._sync_borders(page)
        self._ctx_selection_changed()

    def _clear(self) -> None:
        self._drag = None
        self.pose_overlay.forget_items()
        self.live.forget_items()
        self.stale.forget_items()
        self.clear()
        self.page_item = self.guides_item = None
        self.panel_items, self.balloon_items, self.border_items = {}, {}, []
        self._border_key = ()

    def _sync_panels(self, page: Page) -> None:
        story = self.ctx.document.project.story
        live = {p.id for p in page.panels}
        for pid in [pid for pid in self.panel_items if pid not in live]:
            self.removeItem(self.panel_items.pop(pid))
        for panel in page.panels:
            item = self.panel_items.get(panel.id)
            if item is None:
                item = self.panel_items[panel.id] = PanelItem(panel.id)
                self.addItem(item)
            beat = story.beat(panel.beat_id) if panel.beat_id else None
            item.set_panel(panel, ((beat.action if beat and beat.action else panel.prompt) or "").strip())

    def _sync_balloons(self, page: Page) -> None:
        project = self.ctx.document.project
        live: dict[str, tuple[Balloon, Panel]] = {b.id: (b, p) for p in page.panels for b in p.balloons}
        for bid in [bid for bid in self.balloon_items if bid not in live]:
            self.removeItem(self.balloon_items.pop(bid))
        for bid, (balloon, panel) in live.items():
            item = self.balloon_items.get(bid)
            if item is None:
                item = self.balloon_items[bid] = BalloonItem(bid, panel.id)
                self.addItem(item)
            item.set_balloon(balloon, panel, project)

    def _sync_borders(self, page: Page) -> None:
        gutter = self.ctx.document.project.page_format.gutter
        key = (gutter, tuple((p.id, tuple(map(tuple, p.shape))) for p in page.panels))
        if key == self._border_key:
            return
        self._border_key = key
        for item in self.border_items:
            self.removeItem(item)
        self.border_items = [BorderHandleItem(b, gutter) for b in find_shared_borders(page.panels, gutter)]
        for item in self.border_items:
            self.addItem(item)

    def _image_ready(self, digest: str) -> None:
        for item in self.panel_items.values():
            if item.asset == digest:
                item.update()

    def set_show_guides(self, show: bool) -> None:
        self.show_guides = show
        if self.guides_item is not None:
            self.guides_item.setVisible(show)

    def set_show_pose_overlay(self, show: bool) -> None:
        """Figures, masks and nudge handles over the page's pose-drawing panels (see
        :mod:`.pose_overlay`)."""
        self.pose_overlay.set_enabled(show)

    def set_show_reading_order(self, show: bool) -> None:
        self.show_reading_order = show
        for item in self.panel_items.values():
            item.update()

    # ------------------------------------------------------------------ selection
    def _qt_selection_changed(self) -> None:
        if self._syncing:
            return
        ids = [item.panel_id for item in self.selectedItems() if isinstance(item, PanelItem)]
        page = self.page
        if page is not None:  # keep the page's order so "first selected" is predictable
            order = {p.id: p.order for p in page.panels}
            ids.sort(key=lambda pid: order.get(pid, 0))
        self.ctx.select_panels(ids)

    def _ctx_selection_changed(self) -> None:
        if self.page is not None and self.page.id != self.page_id:
            self.sync()
            return
        was = self._syncing
        self._syncing = True  # mirroring ctx → Qt must not echo back as a new selection
        try:
            wanted = set(self.ctx.selected_panel_ids)
            for pid, item in self.panel_items.items():
                item.setSelected(pid in wanted)
            for bid, item in self.balloon_items.items():
                item.set_selected(bid == self.ctx.selected_balloon_id)
        finally:
            self._syncing = was

    def panel_at(self, pos: QPointF) -> PanelItem | None:
        for item in self.items(pos):
            if isinstance(item, PanelItem):
                return item
        return None

    # ------------------------------------------------------------------ border drags
    def begin_border_drag(self, handle: BorderHandleItem) -> None:
        page = self.page
        if page is None:
            return
        self._drag = {"kind": "border", "page": page.id, "original": [p.model_copy(deep=True) for p in page.panels]}
        for item in self.border_items:
            item.setVisible(item is handle)

    def drag_border_to(self, handle: BorderHandleItem, delta: float) -> None:
        drag = self._drag
        if drag is None or drag["kind"] != "border":
            return
        fmt = self.ctx.document.project.page_format
        applied = clamp_border_delta(drag["original"], handle.border, delta, fmt)
        # Original panels + cumulative delta: every step of the drag merges into one undo step.
        self.ctx.edit(editing.drag_border, drag["page"], handle.border, delta, original=drag["original"])
        nx, ny = handle.border.normal
        handle.setPos(nx * applied, ny * applied)

    def end_border_drag(self, handle: BorderHandleItem) -> None:
        self.ctx.document.undo_stack.break_merge()
        self._drag = None
        self._border_key = ()  # borders moved: find them again
        if self.page is not None:
            self._sync_borders(self.page)

    # ------------------------------------------------------------------ balloon drags
    def _balloon(self, balloon_id: str) -> tuple[Balloon, Panel] | None:
        page = self.page
        for panel in page.panels if page else []:
            for balloon in panel.balloons:
                if balloon.id == balloon_id:
                    return balloon, panel
        return None

    def begin_balloon_drag(self, item: BalloonItem) -> None:
        found = self._balloon(item.balloon_id)
        self.ctx.select_balloon(item.balloon_id)
        if found:
            self._drag = {"kind": "balloon", "box": found[0].box.model_copy(), "moved": False}

    def drag_balloon_to(self, item: BalloonItem, dx: float, dy: float) -> None:
        if self._drag and self._drag["kind"] == "balloon":
            self._drag["moved"] = True
            self.ctx.edit(editing.move_balloon, item.balloon_id, tools.moved_box(self._drag["box"], dx, dy))

    def resize_balloon_to(self, item: BalloonItem, dw: float, dh: float) -> None:
        if self._drag and self._drag["kind"] == "balloon":
            self._drag["moved"] = True
            self.ctx.edit(editing.move_balloon, item.balloon_id, tools.resized_box(self._drag["box"], dw, dh))

    def end_drag(self) -> None:
        self.ctx.document.undo_stack.break_merge()
        self._drag = None

    def begin_tail_drag(self, item: BalloonItem) -> None:
        # A dashed rubber line from the balloon to the cursor shows where the tail will aim.
        line = QGraphicsLineItem()
        line.setPen(cosmetic_pen(QColor("#e67e22"), 1.5, Qt.PenStyle.DashLine))
        line.setZValue(Z_HANDLE - 1)
        self.addItem(line)
        self._drag = {"kind": "tail", "line": line}
        panel_item = self.panel_items.get(item.panel_id)
        if panel_item is not None:
            panel_item.show_heads = True
            panel_item.update()

    def drag_tail_to(self, item: BalloonItem, pos: QPointF) -> None:
        if self._drag and self._drag["kind"] == "tail":
            centre = item.box.center()
            self._drag["line"].setLine(centre.x(), centre.y(), pos.x(), pos.y())

    def end_tail_drag(self, item: BalloonItem, drop: QPointF) -> None:
        """A tip dropped on a character's head aims the tail at that character; anywhere else it
        becomes a fixed point with the tip exactly where it was dropped."""
        if self._drag and self._drag.get("line") is not None:
            self.removeItem(self._drag["line"])
        self._drag = None
        panel_item = self.panel_items.get(item.panel_id)
        if panel_item is not None:
            panel_item.show_heads = False
            panel_item.update()
        found = self._balloon(item.balloon_id)
        if found is None:
            return
        balloon, _panel = found
        heads = [(cid, c.x(), c.y(), r) for cid, c, r in (panel_item.heads if panel_item else [])]
        character = tools.head_at(heads, (drop.x(), drop.y()))
        if character is not None:
            self.ctx.edit(editing.retarget_tail, balloon.id, character_id=character)
        else:
            self.ctx.edit(editing.retarget_tail, balloon.id, point=tools.aim_for_tip(balloon, (drop.x(), drop.y())))
        item._signature = ()  # the handle was moved by hand: force it back onto the real tip
        self.sync()

    def request_text_edit(self, balloon_id: str) -> None:
        self.ctx.select_balloon(balloon_id)
        self.text_edit_requested.emit(balloon_id)

    # ------------------------------------------------------------------ adding
    def add_balloon_at(self, kind: BalloonKind, pos: QPointF) -> Balloon | None:
        """The balloon tools: a click inside a panel adds a balloon of ``kind`` centred there,
        its tail aimed at the nearest character's head (none for captions and SFX)."""
        panel_item = self.panel_at(pos)
        found = self.ctx.document.project.find_panel(panel_item.panel_id) if panel_item else None
        if found is None:
            self.ctx.message.emit("Click inside a panel to add a balloon there")
            return None
        panel = found[1]
        at = (pos.x(), pos.y())
        style = house_style(self.ctx.document.project)  # the book's type size, not a default
        box = tools.new_balloon_box(kind, panel, at, style)
        speaker = None if kind in (BalloonKind.CAPTION, BalloonKind.SFX) else tools.nearest_speaker(panel, at)
        balloon = self.ctx.edit(editing.add_balloon, panel.id, kind, box, "", speaker, style)
        if balloon is not None:
            self.ctx.select_balloon(balloon.id)
        return balloon

    # ------------------------------------------------------------------ menus
    def balloon_menu(self, balloon_id: str, parent=None) -> QMenu:
        menu = QMenu(parent)
        # An explicitly parented submenu: the one addMenu(str) creates can lose its wrapper early.
        kinds = QMenu("Kind", menu)
        menu.addMenu(kinds)
        found = self._balloon(balloon_id)
        current = found[0].kind if found else None
        for kind in BalloonKind:
            action = kinds.addAction(kind.value.capitalize())
            action.setCheckable(True)
            action.setChecked(kind == current)
            action.triggered.connect(lambda _=False, k=kind: self.ctx.edit(editing.set_balloon_kind, balloon_id, k))
        menu.addAction("Edit text", lambda: self.request_text_edit(balloon_id))
        menu.addAction("Remove tail", lambda: self.ctx.edit(editing.retarget_tail, balloon_id))
        menu.addSeparator()
        menu.addAction("Delete balloon", lambda: self.ctx.edit(editing.delete_balloon, balloon_id))
        return menu

    def contextMenuEvent(self, event) -> None:
        for item in self.items(event.scenePos()):
            if isinstance(item, BalloonItem):
                self.ctx.select_balloon(item.balloon_id)
                self.balloon_menu(item.balloon_id).exec(event.screenPos())
                event.accept()
                return
            if isinstance(item, PanelItem):
                if item.panel_id not in self.ctx.selected_panel_ids:
                    self.ctx.select_panels([item.panel_id])
                view = self.views()[0] if self.views() else None
                if view is not None and hasattr(view, "panel_menu"):
                    view.panel_menu().exec(event.screenPos())
                event.accept()
                return
        super().contextMenuEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        super().mouseDoubleClickEvent(event)
        if event.isAccepted() and any(isinstance(i, BalloonItem) for i in self.items(event.scenePos())):
            return
        panel_item = self.panel_at(event.scenePos())
        if panel_item is not None:
            self.panel_activated.emit(panel_item.panel_id)

    def box_of(self, balloon_id: str) -> Box | None:
        found = self._balloon(balloon_id)
        return found[0].box if found else None

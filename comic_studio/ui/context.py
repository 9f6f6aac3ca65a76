"""The state every widget of the main window shares: the open document, the selection, the
mirrored undo stack. Widgets receive a :class:`StudioContext` and talk to each other only through
it (and through the document's change reports), never directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from comic_studio.core.changes import Changes
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError


class _CoreStep(QUndoCommand):
    """One entry of the Qt undo stack standing for one entry of the core stack. The core stack
    already executed the command; Qt's first ``redo()`` (called by ``push``) is skipped."""

    def __init__(self, doc: Document, text: str):
        super().__init__(text)
        self._doc = doc
        self._pushed = False

    def redo(self) -> None:
        if self._pushed:
            self._doc.redo()
        self._pushed = True

    def undo(self) -> None:
        self._doc.undo()


class StudioContext(QObject):
    document_replaced = Signal(object)
    """A different document is open now (new/open/recover): rebuild views."""
    document_changed = Signal(object)
    """The document changed (a :class:`Changes`), delivered on the GUI thread."""
    selection_changed = Signal()
    """Current page, selected panels or selected balloon changed."""
    message = Signal(str)
    """A short status-bar message (errors of edits, finished exports…)."""

    def __init__(self, document: Document | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.document: Document = document or Document.new()
        self.current_page_id: str | None = None
        self.selected_panel_ids: list[str] = []
        self.selected_balloon_id: str | None = None
        self._connect(self.document)
        self._select_first_page()

    # ------------------------------------------------------------------ document
    def set_document(self, document: Document) -> None:
        self.document.changed.disconnect(self._on_changes)
        self.document = document
        self.undo_stack.clear()
        self._connect(document)
        self.selected_panel_ids, self.selected_balloon_id = [], None
        self._select_first_page()
        self.document_replaced.emit(document)
        self.selection_changed.emit()

    def _connect(self, document: Document) -> None:
        document.changed.connect(self._on_changes)

    def _on_changes(self, changes: Changes) -> None:
        # Keep the selection valid after deletes/undo.
        project = self.document.project
        if self.current_page_id is None or project.page(self.current_page_id) is None:
            self._select_first_page()  # also when the first pages appear in an empty document
        self.selected_panel_ids = [p for p in self.selected_panel_ids if project.find_panel(p)]
        self.document_changed.emit(changes)

    def edit(self, action: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run an edit from :mod:`comic_studio.core.editing` (or any function that executes
        commands on the document) and mirror the resulting undo step into the Qt stack. Errors
        become a status message; the document is unchanged by a failed edit."""
        stack = self.document.undo_stack
        before_index = stack.index
        try:
            value = action(self.document, *args, **kwargs)
        except ComicStudioError as exc:
            self.message.emit(str(exc))
            return None
        if stack.index > before_index:
            self.undo_stack.push(_CoreStep(self.document, stack.undo_text()))
        # else: merged into the previous step (drag, typing): its Qt entry already stands for it.
        # Undo/redo in the UI must go through ``self.undo_stack`` so both stacks stay in step.
        return value

    def mark_saved(self) -> None:
        self.undo_stack.setClean()

    # ------------------------------------------------------------------ selection
    def _select_first_page(self) -> None:
        pages = self.document.project.pages
        self.current_page_id = pages[0].id if pages else None

    def select_page(self, page_id: str | None) -> None:
        if page_id != self.current_page_id:
            self.current_page_id = page_id
            self.selected_panel_ids, self.selected_balloon_id = [], None
            self.selection_changed.emit()

    def select_panels(self, panel_ids: list[str]) -> None:
        if panel_ids != self.selected_panel_ids:
            self.selected_panel_ids = list(panel_ids)
            if panel_ids:
                found = self.document.project.find_panel(panel_ids[0])
                if found:
                    self.current_page_id = found[0].id
            self.selection_changed.emit()

    def select_balloon(self, balloon_id: str | None) -> None:
        if balloon_id != self.selected_balloon_id:
            self.selected_balloon_id = balloon_id
            self.selection_changed.emit()

    @property
    def current_page(self):
        return self.document.project.page(self.current_page_id) if self.current_page_id else None

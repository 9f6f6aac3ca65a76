"""The open document: a project, its assets, its file, its undo stack and its change signal.

Views subscribe to :attr:`Document.changed` (a psygnal signal carrying
:class:`~comic_studio.core.changes.Changes`) and refresh what the report names; they never poll.
"""

from __future__ import annotations

from pathlib import Path

from psygnal import Signal

from comic_studio.core.assets import AssetStore
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.commands import Command
from comic_studio.core.model import PageFormat, Project
from comic_studio.core.undo import UndoStack

ALL_CHANGED = Changes(~ChangeKind.NONE)


class Document:
    changed = Signal(object)
    """Emitted with a :class:`Changes` after every command, undo and redo."""
    modified_changed = Signal(bool)
    """Emitted when the document becomes modified or clean (window title marker)."""

    def __init__(self, project: Project, assets: AssetStore | None = None, path: str | Path | None = None):
        self.project = project
        self.assets = assets or AssetStore()
        self.path = Path(path) if path else None
        self._was_modified = False
        self.undo_stack = UndoStack(project, self._after_change)

    # ------------------------------------------------------------------ construction
    @classmethod
    def new(cls, title: str = "Untitled comic", page_format: PageFormat | None = None) -> Document:
        if page_format is None:
            from comic_studio.core.layout import page_format as preset_format

            page_format = preset_format("us-comic")
        from comic_studio.core.styles import style_presets

        styles = style_presets()
        return cls(Project(title=title, page_format=page_format, styles=styles, active_style_id=styles[0].id))

    @classmethod
    def open(cls, path: str | Path) -> Document:
        """Open a ``.comic`` file. The document reads its images from a copy in its session cache,
        so Save, Save As and autosave keep working if the file is moved, renamed, deleted or
        replaced while it is open; leftovers of saves that were killed are removed."""
        from comic_studio.core.atomic import remove_stale_temporaries
        from comic_studio.core.projectfile import load_project

        project, assets = load_project(path, stage=True)
        remove_stale_temporaries(path)
        return cls(project, assets, path)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path | None = None) -> Path:
        from comic_studio.core.projectfile import save_project

        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("the document has no file yet: give a path (Save As)")
        save_project(target, self.project, self.assets)
        self.path = target
        self.undo_stack.set_clean()
        self._emit_modified()
        return target

    # ------------------------------------------------------------------ editing
    def execute(self, command: Command) -> Changes:
        """Apply ``command`` as one undoable step and broadcast what it changed."""
        return self.undo_stack.push(command)

    def undo(self) -> Changes:
        return self.undo_stack.undo()

    def redo(self) -> Changes:
        return self.undo_stack.redo()

    @property
    def is_modified(self) -> bool:
        return not self.undo_stack.is_clean()

    @property
    def display_name(self) -> str:
        return self.path.stem if self.path else self.project.title

    def _after_change(self, changes: Changes) -> None:
        self.changed.emit(changes)
        self._emit_modified()

    def _emit_modified(self) -> None:
        modified = self.is_modified
        if modified != self._was_modified:
            self._was_modified = modified
            self.modified_changed.emit(modified)

"""The undo stack: executes commands, merges consecutive drags/typing, tracks the clean state.

Semantics follow QUndoStack (the Qt UI mirrors this stack 1:1): pushing after an undo drops the
redo tail; the *clean index* is the position that matches the file on disk, and becomes
unreachable when the tail it pointed into is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from comic_studio.core.changes import Changes
from comic_studio.core.commands import Command
from comic_studio.core.model import Project


class UndoStack:
    def __init__(self, project: Project, on_changes: Callable[[Changes], None], limit: int = 500):
        self._project = project
        self._on_changes = on_changes
        self._commands: list[Command] = []
        self._index = 0  # commands[:index] are applied
        self._clean_index: int | None = 0
        self._merge_open = True
        self.limit = limit

    # ------------------------------------------------------------------ state
    @property
    def index(self) -> int:
        return self._index

    def __len__(self) -> int:
        return len(self._commands)

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._commands)

    def undo_text(self) -> str:
        return self._commands[self._index - 1].text if self.can_undo() else ""

    def redo_text(self) -> str:
        return self._commands[self._index].text if self.can_redo() else ""

    def is_clean(self) -> bool:
        return self._clean_index == self._index

    def set_clean(self) -> None:
        self._clean_index = self._index
        self._merge_open = False  # never merge into the saved state

    def break_merge(self) -> None:
        """End the current merge run (mouse released, focus left the text field)."""
        self._merge_open = False

    # ------------------------------------------------------------------ operations
    def push(self, command: Command) -> Changes:
        """Execute ``command`` and record it. A failing command leaves everything unchanged."""
        changes = command.redo(self._project)
        if self._index < len(self._commands):
            del self._commands[self._index :]
            if self._clean_index is not None and self._clean_index > self._index:
                self._clean_index = None
        top = self._commands[-1] if self._commands else None
        if (
            (self._merge_open or command.merges_across_breaks)
            and top is not None
            and command.merge_key is not None
            and top.merge_key == command.merge_key
            and self._clean_index != self._index
            and top.merge(command)
        ):
            pass  # merged into the top command
        else:
            self._commands.append(command)
            self._index += 1
            if len(self._commands) > self.limit:
                drop = len(self._commands) - self.limit
                del self._commands[:drop]
                self._index -= drop
                if self._clean_index is not None:
                    self._clean_index = self._clean_index - drop if self._clean_index >= drop else None
        self._merge_open = True
        self._on_changes(changes)
        return changes

    def undo(self) -> Changes:
        if not self.can_undo():
            return Changes()
        self._index -= 1
        changes = self._commands[self._index].undo(self._project)
        self._merge_open = False
        self._on_changes(changes)
        return changes

    def redo(self) -> Changes:
        if not self.can_redo():
            return Changes()
        changes = self._commands[self._index].redo(self._project)
        self._index += 1
        self._merge_open = False
        self._on_changes(changes)
        return changes

    def clear(self) -> None:
        self._commands.clear()
        self._index = 0
        self._clean_index = 0

"""Calling back when a field loses keyboard focus: the inspectors end a typing step there (typing in
a field merges into one undo step until the author leaves it)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject


class FocusOut(QObject):
    """An event filter that calls ``callback`` when the watched widget loses keyboard focus; the
    event goes on to the widget."""

    def __init__(self, callback: Callable[[], object], parent: QObject):
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.FocusOut:
            self._callback()
        return False

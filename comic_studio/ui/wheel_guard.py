"""The mouse wheel scrolls; it never changes a setting the author is not editing (as in Krita, CSP).

Qt lets the wheel change any combo box, spin box or slider under the pointer, so scrolling down
the inspector or a dialog silently changes the backend, the shot or the seed. One filter on the
QApplication, installed wherever the app or its main window is made, covers every such field,
including those added later, with no per-widget opt-in to forget:

* fields lose ``Qt.WheelFocus`` (the wheel no longer gives them focus; click or Tab does);
* a wheel event on one that has no keyboard focus is ignored there, so it goes on to the parent
  and the scroll area around it scrolls instead. A focused field still takes the wheel.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox, QScrollBar, QWidget

_GUARDED = (QComboBox, QAbstractSpinBox, QAbstractSlider)


def _guarded(obj: QObject) -> bool:
    # A scroll bar is a slider whose job is the wheel.
    return isinstance(obj, _GUARDED) and not isinstance(obj, QScrollBar)


def _drop_wheel_focus(widget: QWidget) -> None:
    if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


class WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        kind = event.type()
        if kind == QEvent.Type.Polish and _guarded(watched):
            _drop_wheel_focus(watched)  # type: ignore[arg-type]
        elif kind == QEvent.Type.Wheel and _guarded(watched) and not watched.hasFocus():  # type: ignore[attr-defined]
            # Ignored and filtered: the field never sees it, QApplication passes it to the parent.
            event.ignore()
            return True
        return False


def install_wheel_guard(app: QApplication | None = None) -> WheelGuard | None:
    """Install the guard on ``app`` (the running one by default) once; fields that exist already
    are fixed too. Returns the guard (None without an application)."""
    app = app or QApplication.instance()  # type: ignore[assignment]
    if app is None:
        return None
    guard = app.findChild(WheelGuard)
    if guard is None:
        guard = WheelGuard(app)
        app.installEventFilter(guard)
        for widget in QApplication.allWidgets():
            if _guarded(widget):
                _drop_wheel_focus(widget)
    return guard


__all__ = ["WheelGuard", "install_wheel_guard"]

"""Dark and light palettes on the Fusion style, following the system colour scheme by default.

Fusion is used on every platform because it honours a QPalette fully (the native styles of some
platforms ignore parts of it), so both themes look the same everywhere.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")

_DARK = {
    QPalette.ColorRole.Window: "#2b2b2e",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1f1f22",
    QPalette.ColorRole.AlternateBase: "#2f2f33",
    QPalette.ColorRole.ToolTipBase: "#3a3a3f",
    QPalette.ColorRole.ToolTipText: "#f0f0f0",
    QPalette.ColorRole.PlaceholderText: "#8a8a8f",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#35353a",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Light: "#45454b",
    QPalette.ColorRole.Midlight: "#3b3b40",
    QPalette.ColorRole.Mid: "#2a2a2e",
    QPalette.ColorRole.Dark: "#18181a",
    QPalette.ColorRole.Shadow: "#000000",
    QPalette.ColorRole.Highlight: "#3d7bd9",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6ea8ff",
    QPalette.ColorRole.LinkVisited: "#b48cff",
}
_DARK_DISABLED = {
    QPalette.ColorRole.WindowText: "#7a7a7f",
    QPalette.ColorRole.Text: "#7a7a7f",
    QPalette.ColorRole.ButtonText: "#7a7a7f",
    QPalette.ColorRole.Highlight: "#4a4a50",
}

_LIGHT = {
    QPalette.ColorRole.Window: "#efeff1",
    QPalette.ColorRole.WindowText: "#1d1d1f",
    QPalette.ColorRole.Base: "#ffffff",
    QPalette.ColorRole.AlternateBase: "#f5f5f7",
    QPalette.ColorRole.ToolTipBase: "#ffffe1",
    QPalette.ColorRole.ToolTipText: "#1d1d1f",
    QPalette.ColorRole.PlaceholderText: "#8a8a8f",
    QPalette.ColorRole.Text: "#1d1d1f",
    QPalette.ColorRole.Button: "#e4e4e8",
    QPalette.ColorRole.ButtonText: "#1d1d1f",
    QPalette.ColorRole.BrightText: "#d00000",
    QPalette.ColorRole.Light: "#ffffff",
    QPalette.ColorRole.Midlight: "#f0f0f2",
    QPalette.ColorRole.Mid: "#b8b8bd",
    QPalette.ColorRole.Dark: "#9a9aa0",
    QPalette.ColorRole.Shadow: "#5a5a60",
    QPalette.ColorRole.Highlight: "#2f6fd6",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#1f5fc4",
    QPalette.ColorRole.LinkVisited: "#7a3fc4",
}
_LIGHT_DISABLED = {
    QPalette.ColorRole.WindowText: "#9a9aa0",
    QPalette.ColorRole.Text: "#9a9aa0",
    QPalette.ColorRole.ButtonText: "#9a9aa0",
    QPalette.ColorRole.Highlight: "#c8c8cc",
}


def palette_for(scheme: str) -> QPalette:
    """The palette of ``"dark"`` or ``"light"``."""
    if scheme not in ("dark", "light"):
        raise ValueError(f"theme {scheme!r}: use 'dark' or 'light'")
    colours, disabled = (_DARK, _DARK_DISABLED) if scheme == "dark" else (_LIGHT, _LIGHT_DISABLED)
    palette = QPalette()
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role, colour in disabled.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return palette


def system_scheme() -> str:
    """``"dark"`` when the platform reports a dark colour scheme, else ``"light"``."""
    hints = QGuiApplication.styleHints()
    return "dark" if hints.colorScheme() == Qt.ColorScheme.Dark else "light"


def resolve(theme: str) -> str:
    """``"system"`` → the platform's scheme; ``"light"``/``"dark"`` unchanged."""
    if theme not in THEMES:
        raise ValueError(f"theme {theme!r}: use one of {', '.join(THEMES)}")
    return system_scheme() if theme == "system" else theme


class ThemeManager:
    """Applies a theme to the application and, in ``system`` mode, re-applies it when the
    platform switches between light and dark while the app runs."""

    def __init__(self, app: QApplication):
        self.app = app
        self.theme = "system"
        self.applied = ""
        app.setStyle("Fusion")
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_system_change)

    def apply(self, theme: str) -> str:
        """Apply ``theme`` (system/light/dark); return the scheme actually shown."""
        self.applied = resolve(theme)
        self.theme = theme
        self.app.setPalette(palette_for(self.applied))
        return self.applied

    def _on_system_change(self, _scheme) -> None:
        if self.theme == "system":
            self.apply("system")


_manager: ThemeManager | None = None


def apply_theme(theme: str, app: QApplication | None = None) -> str:
    """Apply ``theme`` to the running application (one shared manager per process)."""
    global _manager
    app = app or QApplication.instance()
    if app is None:
        raise RuntimeError("apply_theme needs a QApplication")
    if _manager is None or _manager.app is not app:
        _manager = ThemeManager(app)
    return _manager.apply(theme)


def current_scheme() -> str:
    """The scheme last applied (``"light"`` before any theme was applied)."""
    return _manager.applied if _manager and _manager.applied else "light"

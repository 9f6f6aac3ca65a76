"""A form generated from a backend's declared settings schema.

The schema format is documented in :mod:`comic_studio.generation.backend_api`: ``{field: {"type": "int" |
"float" | "bool" | "str" | "choice", "default", "label", "min", "max", "choices", "help"}}``; a setting
marked ``"hidden": True`` (kept only so old projects validate) gets no editor. The form only
*collects* values; checking them stays with the backend's ``validate_settings`` so a plugin's rules
are applied exactly once, in one place. The owner listens to :attr:`SettingsForm.values_edited` and
decides whether to store or reject.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

# Qt spin boxes hold C ints; a schema without bounds gets the widest range Qt allows.
_INT_LIMIT = 2**31 - 1
_FLOAT_LIMIT = 1e12


class SettingsForm(QWidget):
    """One editor per declared setting. ``values_edited(dict)`` fires with *all* current values
    whenever the user changes one (not when :meth:`set_values` fills the form)."""

    values_edited = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # In a narrow dock a long label goes above its editor instead of forcing a scroll bar.
        self._layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self._schema: dict[str, dict[str, Any]] = {}
        self._editors: dict[str, QWidget] = {}
        self._filling = False
        self._error = self._make_error_label()

    # ------------------------------------------------------------------ building
    def set_schema(self, schema: dict[str, dict[str, Any]]) -> None:
        """Rebuild the editors for ``schema`` (filled with the defaults)."""
        while self._layout.rowCount():
            self._layout.removeRow(0)  # deletes the row's widgets too
        self._error = self._make_error_label()
        self._schema = {k: spec for k, spec in schema.items() if not spec.get("hidden")}
        self._editors = {}
        for key, spec in self._schema.items():
            editor = self._make_editor(key, spec)
            self._editors[key] = editor
            label = QLabel(str(spec.get("label") or key.replace("_", " ").capitalize()), self)
            if spec.get("help"):
                label.setToolTip(str(spec["help"]))
                editor.setToolTip(str(spec["help"]))
            self._layout.addRow(label, editor)
        if not self._schema:
            self._layout.addRow(QLabel("This backend has no settings.", self))
        self._layout.addRow(self._error)
        self.set_values({})

    def _make_error_label(self) -> QLabel:
        label = QLabel(self)
        label.setObjectName("settingsError")
        label.setWordWrap(True)
        label.setStyleSheet("color: #c0392b;")
        label.hide()
        return label

    def _make_editor(self, key: str, spec: dict[str, Any]) -> QWidget:
        kind = spec.get("type")
        if kind == "int":
            box = QSpinBox(self)
            box.setRange(_bound(spec.get("min"), -_INT_LIMIT, int), _bound(spec.get("max"), _INT_LIMIT, int))
            box.setKeyboardTracking(False)  # one edit per committed number, not per keystroke
            box.valueChanged.connect(self._user_edited)
            return box
        if kind == "float":
            box = QDoubleSpinBox(self)
            box.setDecimals(int(spec.get("decimals", 2)))
            box.setRange(_bound(spec.get("min"), -_FLOAT_LIMIT, float), _bound(spec.get("max"), _FLOAT_LIMIT, float))
            span = box.maximum() - box.minimum()
            box.setSingleStep(float(spec.get("step", 0.1 if span <= 10 else 1.0)))
            box.setKeyboardTracking(False)
            box.valueChanged.connect(self._user_edited)
            return box
        if kind == "bool":
            check = QCheckBox(self)
            check.toggled.connect(self._user_edited)
            return check
        if kind == "choice":
            combo = QComboBox(self)
            for choice in spec.get("choices", []):
                combo.addItem(str(choice), choice)
            combo.activated.connect(self._user_edited)
            return combo
        # "str" and anything unknown: free text (validate_settings names an unknown type).
        line = QLineEdit(self)
        if "max_length" in spec:
            line.setMaxLength(int(spec["max_length"]))
        line.editingFinished.connect(self._user_edited)
        return line

    # ------------------------------------------------------------------ values
    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (missing keys show their default). Emits nothing."""
        self._filling = True
        try:
            for key, spec in self._schema.items():
                self._put(self._editors[key], spec, values.get(key, spec.get("default")))
        finally:
            self._filling = False

    def values(self) -> dict[str, Any]:
        """The values the editors hold now, typed as the schema declares."""
        out: dict[str, Any] = {}
        for key in self._schema:
            editor = self._editors[key]
            if isinstance(editor, QSpinBox):
                out[key] = editor.value()
            elif isinstance(editor, QDoubleSpinBox):
                out[key] = float(editor.value())
            elif isinstance(editor, QCheckBox):
                out[key] = editor.isChecked()
            elif isinstance(editor, QComboBox):
                out[key] = editor.currentData()
            else:
                out[key] = editor.text()
        return out

    def editor(self, key: str) -> QWidget:
        """The widget editing ``key`` (tests and keyboard focus)."""
        return self._editors[key]

    def set_error(self, text: str) -> None:
        """Show (or with ``""`` hide) a problem under the form."""
        self._error.setText(text)
        self._error.setVisible(bool(text))

    def error_text(self) -> str:
        return "" if self._error.isHidden() else self._error.text()

    def _put(self, editor: QWidget, spec: dict[str, Any], value: Any) -> None:
        # A value from a file may be of the wrong type; show the default rather than crash (the
        # inspector reports the stored value as invalid through validate_settings).
        if isinstance(editor, QSpinBox):
            editor.setValue(int(value) if _is_number(value) else int(spec.get("default", 0) or 0))
        elif isinstance(editor, QDoubleSpinBox):
            editor.setValue(float(value) if _is_number(value) else float(spec.get("default", 0.0) or 0.0))
        elif isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            index = editor.findData(value)
            editor.setCurrentIndex(index if index >= 0 else max(0, editor.findData(spec.get("default"))))
        elif isinstance(editor, QLineEdit):
            editor.setText("" if value is None else str(value))

    def _user_edited(self, *_args: Any) -> None:
        if not self._filling:
            self.values_edited.emit(self.values())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bound(value: Any, fallback: float, cast: type) -> Any:
    if not _is_number(value):
        return cast(fallback)
    return cast(max(-abs(fallback), min(abs(fallback), value)))


__all__ = ["SettingsForm"]

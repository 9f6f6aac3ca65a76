"""SettingsForm builds one editor per declared setting type and hands back typed values that the
backend's own validate_settings accepts."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox
from render_helpers import GateBackend

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.ui.settings_form import SettingsForm


def test_editors_follow_the_schema(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    form.set_schema(GateBackend.settings_schema())
    assert isinstance(form.editor("steps"), QSpinBox)
    assert (form.editor("steps").minimum(), form.editor("steps").maximum()) == (1, 50)
    assert isinstance(form.editor("strength"), QDoubleSpinBox) and form.editor("strength").maximum() == 1.0
    assert isinstance(form.editor("tiled"), QCheckBox)
    assert isinstance(form.editor("sampler"), QComboBox) and form.editor("sampler").count() == 2
    assert isinstance(form.editor("tag"), QLineEdit) and form.editor("tag").maxLength() == 8
    assert form.editor("tag").toolTip() == "Free text"
    assert form.values() == GateBackend.default_settings()


def test_user_edits_emit_typed_values_that_validate(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    form.set_schema(GateBackend.settings_schema())
    form.show()
    qtbot.waitExposed(form)
    seen: list[dict] = []
    form.values_edited.connect(seen.append)
    form.set_values({"steps": 9, "sampler": "ddim"})
    assert seen == []  # filling the form is not an edit
    form.editor("steps").setValue(12)
    tiled = form.editor("tiled")
    qtbot.mouseClick(tiled, Qt.MouseButton.LeftButton, pos=QPoint(8, tiled.height() // 2))  # on the box
    form.editor("tag").setText("ink")
    form.editor("tag").editingFinished.emit()
    values = seen[-1]
    assert values == {"steps": 12, "strength": 0.5, "tiled": True, "sampler": "ddim", "tag": "ink"}
    assert isinstance(values["steps"], int) and isinstance(values["strength"], float)
    assert GateBackend.__new__(GateBackend).validate_settings(values) == values


def test_storyboard_defaults_round_trip(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    form.set_schema(StoryboardBackend.settings_schema())
    form.set_values({"line_weight": 2.25, "paper": "white", "supersample": 3, "name_tags": False})
    values = StoryboardBackend().validate_settings(form.values())
    assert values["line_weight"] == 2.25 and values["paper"] == "white" and values["supersample"] == 3
    assert values["name_tags"] is False and values["pose_matching"] == "auto"


def test_wrong_types_from_a_file_show_defaults_and_empty_schema(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    form.set_schema(GateBackend.settings_schema())
    form.set_values({"steps": "many", "sampler": "unknown", "strength": float("nan")})
    assert form.values()["steps"] == 4 and form.values()["sampler"] == "euler" and form.values()["strength"] == 0.5
    form.set_error("backend 'x', setting 'steps': expected a number")
    form.show()
    assert "steps" in form.error_text()
    form.set_schema({})
    assert form.values() == {} and form.error_text() == ""

"""The mouse wheel over an unfocused combo box or spin box scrolls the form around it and never
changes the field (real, spontaneous wheel events through the window system, as a mouse sends)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from comic_studio.ui.wheel_guard import install_wheel_guard


def _wheel(widget: QWidget, notches: int = -1) -> None:
    window = widget.window().windowHandle()
    centre = widget.mapTo(widget.window(), widget.rect().center())
    QTest.wheelEvent(window, centre, QPoint(0, 120 * notches))


def _form(qtbot):
    area = QScrollArea()
    body = QWidget()
    layout = QVBoxLayout(body)
    combo = QComboBox()
    combo.addItems(["storyboard", "sdxl", "consistent", "racig"])
    spin = QSpinBox()
    spin.setRange(0, 100)
    spin.setValue(50)
    layout.addWidget(combo)
    layout.addWidget(spin)
    layout.addSpacing(3000)  # a form taller than its scroll area, like the inspector
    area.setWidget(body)
    area.setWidgetResizable(True)
    area.resize(300, 300)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    return area, combo, spin


def test_wheel_on_an_unfocused_combo_or_spin_box_scrolls_and_changes_nothing(qtbot):
    install_wheel_guard()
    area, combo, spin = _form(qtbot)
    assert combo.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel gives no focus either
    bar = area.verticalScrollBar()
    for field in (combo, spin):
        area.setFocus()
        bar.setValue(0)
        before = combo.currentIndex(), spin.value()
        _wheel(field)
        assert (combo.currentIndex(), spin.value()) == before
        assert not field.hasFocus()
        assert bar.value() > 0  # the wheel went on to the scroll area


def test_a_focused_field_still_takes_the_wheel(qtbot):
    install_wheel_guard()
    _area, combo, spin = _form(qtbot)
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus)
    _wheel(combo)
    assert combo.currentIndex() == 1
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    _wheel(spin, notches=1)
    assert spin.value() == 51


def test_the_window_guards_the_inspector_fields(qtbot, ctx, tmp_path):
    """The main window installs the guard itself: the inspector's shot and backend combos and its
    seed keep their value under a wheel that passes over them."""
    from render_helpers import small_document

    from comic_studio.core.settings import AppSettings
    from comic_studio.ui.main_window import MainWindow

    window = MainWindow(settings=AppSettings(projects_folder=str(tmp_path)))
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    window._replace_document(small_document())
    inspector = window.inspector
    window.ctx.select_panels([window.ctx.current_page.panels_in_order()[0].id])
    before = window.ctx.document.project.model_dump()
    for field in (inspector.shot, inspector.backend, inspector.seed):
        assert isinstance(field, (QComboBox, QDoubleSpinBox))
        inspector.ensureWidgetVisible(field)
        _wheel(field)
        _wheel(field, notches=1)
    assert window.ctx.document.project.model_dump() == before
    window.ctx.undo_stack.setClean()

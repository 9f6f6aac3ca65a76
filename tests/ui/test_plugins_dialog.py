"""The Plugins dialog lists installed backends with their origin, reports broken plugins with their
reason, and opens the user plugins folder; the main window reaches it (and the Models dialog)."""

from __future__ import annotations

import sys
import textwrap

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QMenu

from comic_studio.generation import registry
from comic_studio.ui.dialogs import plugins_dialog
from comic_studio.ui.dialogs.plugins_dialog import PluginsDialog

GOOD_PLUGIN = """
from PIL import Image
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.request import GenerationResult


class Sepia(GenerationBackend):
    name = "sepia"
    display_name = "Sepia sketch"
    capabilities = frozenset({"txt2img", "preview"})

    def generate(self, request, on_step=None):
        return GenerationResult([Image.new("RGB", (request.width, request.height))], request.seed, self.name)
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setenv(registry.PLUGINS_DIR_ENV, str(folder))
    monkeypatch.setenv("COMIC_STUDIO_PLUGIN_PROBE_CACHE", str(tmp_path / "probes.json"))  # not the user's
    registry.refresh()
    yield folder
    monkeypatch.delenv(registry.PLUGINS_DIR_ENV)
    registry.refresh()
    for name in [m for m in sys.modules if m.startswith("comic_studio_user_plugins.")]:
        del sys.modules[name]


def test_lists_backends_with_origins_and_broken_plugins(qtbot, plugins, shots):
    (plugins / "sepia.py").write_text(textwrap.dedent(GOOD_PLUGIN))
    (plugins / "broken.py").write_text("import a_driver_that_is_not_installed\n")
    dialog = PluginsDialog()
    qtbot.addWidget(dialog)
    names = dialog.backend_names()
    assert {"storyboard", "sdxl", "halftone", "sepia"} <= set(names)
    rows = {dialog.backends_table.item(r, 0).text(): [dialog.backends_table.item(r, c).text() for c in range(4)]
            for r in range(dialog.backends_table.rowCount())}  # fmt: skip
    assert rows["storyboard"][3] == "built-in" and rows["sdxl"][3] == "built-in"
    assert rows["halftone"][3].startswith("package comic-studio-example-backend")
    assert rows["sepia"][1:] == ["Sepia sketch", "preview, txt2img", f"user plugins folder: {plugins / 'sepia.py'}"]
    errors = dialog.error_rows()
    assert list(errors) == ["plugin broken.py"]
    assert (
        "ModuleNotFoundError" in errors["plugin broken.py"]
        and "a_driver_that_is_not_installed" in errors["plugin broken.py"]
    )
    assert str(plugins) in dialog.folder_label.text()
    dialog.show()
    dialog.grab().save(str(shots / "plugins_dialog.png"))


def test_reload_picks_up_a_fixed_plugin(qtbot, plugins):
    broken = plugins / "later.py"
    broken.write_text("raise RuntimeError('not yet')\n")
    dialog = PluginsDialog()
    qtbot.addWidget(dialog)
    assert "RuntimeError: not yet" in dialog.error_rows()["plugin later.py"]
    assert dialog.errors_table.isVisibleTo(dialog) and not dialog.no_errors.isVisibleTo(dialog)
    broken.unlink()
    (plugins / "sepia.py").write_text(textwrap.dedent(GOOD_PLUGIN))
    dialog.reload()
    assert dialog.error_rows() == {} and "sepia" in dialog.backend_names()
    assert dialog.no_errors.isVisibleTo(dialog)


def test_open_folder_creates_and_opens_it(qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "not-yet" / "plugins"
    monkeypatch.setenv(registry.PLUGINS_DIR_ENV, str(folder))
    registry.refresh()
    opened: list[QUrl] = []

    class FakeDesktop:
        @staticmethod
        def openUrl(url):  # noqa: N802
            opened.append(url)
            return True

    monkeypatch.setattr(plugins_dialog, "QDesktopServices", FakeDesktop)
    dialog = PluginsDialog()
    qtbot.addWidget(dialog)
    dialog.open_button.click()
    assert folder.is_dir() and [u.toLocalFile() for u in opened] == [str(folder)]
    registry.refresh()


def test_no_plugins_folder_disables_the_button(qtbot, monkeypatch):
    monkeypatch.setenv(registry.PLUGINS_DIR_ENV, "")
    registry.refresh()
    dialog = PluginsDialog()
    qtbot.addWidget(dialog)
    assert not dialog.open_button.isEnabled() and "off" in dialog.folder_label.text()
    assert dialog.open_plugins_folder() is False
    monkeypatch.delenv(registry.PLUGINS_DIR_ENV)
    registry.refresh()


def test_main_window_menus_open_both_dialogs(qtbot, ctx, tmp_path, monkeypatch):
    from comic_studio.core.settings import AppSettings
    from comic_studio.ui.dialogs.models_dialog import ModelsDialog
    from comic_studio.ui.main_window import MainWindow

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    window = MainWindow(ctx, AppSettings(models_folder=str(tmp_path / "models")))
    qtbot.addWidget(window)
    menus = {m.objectName(): [a.objectName() for a in m.actions()] for m in window.menuBar().findChildren(QMenu)}
    assert "action_models" in menus["menu_edit"] and "action_plugins" in menus["menu_help"]
    shown: list[PluginsDialog] = []
    monkeypatch.setattr(PluginsDialog, "exec", lambda self: shown.append(self) or 0)
    window.action_map["plugins"].trigger()
    assert shown and "storyboard" in shown[0].backend_names()
    window.action_map["models"].trigger()
    dialog = window.findChild(ModelsDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.places.models == tmp_path / "models"
    window.action_map["models"].trigger()  # reopening while idle makes a fresh one (new Preferences)
    assert window.models_dialog is not dialog
    window.models_dialog.close()


def test_the_window_reports_broken_plugins_once_in_the_status_bar(qtbot, tmp_path, monkeypatch):
    from comic_studio.core.settings import AppSettings
    from comic_studio.generation import registry
    from comic_studio.ui.main_window import MainWindow

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken_backend.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.setenv("COMIC_STUDIO_PLUGINS_DIR", str(plugins))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    registry.refresh()
    try:
        win = MainWindow(settings=AppSettings())
        qtbot.addWidget(win)
        messages = []
        win.ctx.message.connect(messages.append)
        win.report_plugin_errors()
        assert len(messages) == 1 and "failed to load" in messages[0] and "Plugins" in messages[0]
    finally:
        monkeypatch.delenv("COMIC_STUDIO_PLUGINS_DIR")
        registry.refresh()


def test_the_window_survives_plugins_that_exit_or_hang_at_import(qtbot, tmp_path, monkeypatch):
    from comic_studio.core.settings import AppSettings
    from comic_studio.generation import registry
    from comic_studio.ui.main_window import MainWindow

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "exits.py").write_text("import sys\nsys.exit(0)\n")
    (plugins / "sepia.py").write_text(textwrap.dedent(GOOD_PLUGIN))
    monkeypatch.setenv("COMIC_STUDIO_PLUGINS_DIR", str(plugins))
    monkeypatch.setenv("COMIC_STUDIO_PLUGIN_PROBE_TIMEOUT", "60")  # only bounds a hang
    monkeypatch.setenv("COMIC_STUDIO_PLUGIN_PROBE_CACHE", str(tmp_path / "probes.json"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    registry.refresh()
    registry.available_backends()  # verdicts cached: the short limit below applies to hangs.py alone
    (plugins / "hangs.py").write_text("import threading\nthreading.Event().wait()\n")
    monkeypatch.setenv("COMIC_STUDIO_PLUGIN_PROBE_TIMEOUT", "2")
    registry.refresh()
    try:
        win = MainWindow(settings=AppSettings())
        qtbot.addWidget(win)
        messages = []
        win.ctx.message.connect(messages.append)
        win.report_plugin_errors()
        assert len(messages) == 1 and "failed to load" in messages[0]
        errors = registry.plugin_errors()
        assert "SystemExit" in errors["plugin exits.py"] and "within 2 s" in errors["plugin hangs.py"]
        assert "sepia" in registry.available_backends()
    finally:
        monkeypatch.delenv("COMIC_STUDIO_PLUGINS_DIR")
        registry.refresh()

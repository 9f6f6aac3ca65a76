"""The user plugins folder: single files, folders with comic_studio_plugin.py, packages; broken
plugins reported once and never blocking; and a folder plugin running in the engine."""

from __future__ import annotations

import logging

from engine_fakes import Recorder
from plugin_files import write

from comic_studio.generation import registry
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent
from comic_studio.generation.registry import (
    PLUGINS_DIR_ENV,
    available_backends,
    backend_origins,
    get_backend,
    plugin_errors,
    user_plugins_dir,
)
from comic_studio.generation.request import GenerationRequest

BACKEND_SOURCE = """
from PIL import Image
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.request import Cancelled, GenerationResult


class {cls}(GenerationBackend):
    name = "{name}"
    capabilities = frozenset({{"txt2img"}})

    @classmethod
    def settings_schema(cls):
        return {{"shade": {{"type": "int", "default": {shade}, "min": 0, "max": 255}}}}

    def generate(self, request, on_step=None):
        s = self.validate_settings(request.backend_settings)
        for i in range(3):
            if on_step is not None and on_step(i, 2, None) is False:
                raise Cancelled("stop")
        return GenerationResult([Image.new("RGB", (request.width, request.height), (s["shade"],) * 3)],
                                request.seed, self.name, settings=s)
"""


def test_default_folder_is_in_the_user_data_dir(monkeypatch):
    monkeypatch.delenv(PLUGINS_DIR_ENV, raising=False)
    path = user_plugins_dir()
    assert path is not None and path.name == "plugins" and path.parent.name == "comic-studio"
    monkeypatch.setenv(PLUGINS_DIR_ENV, "")
    assert user_plugins_dir() is None


def test_file_folder_and_package_plugins_load(plugins):
    write(plugins / "grey_file.py", BACKEND_SOURCE.format(cls="GreyFile", name="grey-file", shade=128))
    # A folder plugin with a helper module imported by its plain name.
    write(plugins / "folder_plugin" / "shades.py", "DEFAULT = 40\n")
    write(plugins / "folder_plugin" / "comic_studio_plugin.py",
          "from . import shades\n" + BACKEND_SOURCE.format(cls="Dark", name="dark-folder", shade="shades.DEFAULT")
          + "\nBACKENDS = [Dark]\n")  # fmt: skip
    # A package with a relative import.
    write(plugins / "pkg_plugin" / "impl.py", BACKEND_SOURCE.format(cls="Light", name="light-pkg", shade=230))
    write(plugins / "pkg_plugin" / "__init__.py", "from .impl import Light\nBACKENDS = {'light-pkg': Light}\n")
    write(plugins / "notes.txt", "not a plugin")
    names = available_backends()
    assert {"grey-file", "dark-folder", "light-pkg", "storyboard"} <= set(names)
    assert plugin_errors() == {}
    assert "grey_file.py" in backend_origins()["grey-file"] and "user plugin" in backend_origins()["light-pkg"]
    request = GenerationRequest(backend="dark-folder", width=16, height=16)
    assert get_backend("dark-folder").generate(request).image.getpixel((0, 0)) == (40, 40, 40)
    # refresh() does not re-run an unchanged plugin module.
    cls = names["grey-file"]
    registry.refresh()
    assert available_backends()["grey-file"] is cls


def test_broken_plugins_are_reported_once_and_the_rest_load(plugins, caplog):
    write(plugins / "good.py", BACKEND_SOURCE.format(cls="Good", name="good", shade=1))
    write(plugins / "syntax_error.py", "def broken(:\n")
    write(plugins / "raises.py", "raise RuntimeError('needs a driver that is missing')\n")
    write(plugins / "empty.py", "X = 1\n")
    write(plugins / "bad_list.py", "BACKENDS = [42]\n")
    (plugins / "empty_folder").mkdir()
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        names = available_backends()
        available_backends()
        errors = plugin_errors()
    assert "good" in names and "storyboard" in names
    assert "SyntaxError" in errors["plugin syntax_error.py"]
    assert "RuntimeError: needs a driver that is missing" in errors["plugin raises.py"]
    assert "defines no backend" in errors["plugin empty.py"]
    assert "not a GenerationBackend" in errors["plugin bad_list.py"]
    assert "comic_studio_plugin.py" in errors["plugin empty_folder"]
    assert sum("raises.py" in r.getMessage() for r in caplog.records) == 1, "reported once"


def test_unreadable_plugins_folder_never_blocks(plugins, monkeypatch):
    file_not_folder = plugins / "a-file"
    file_not_folder.write_text("x")
    monkeypatch.setenv(PLUGINS_DIR_ENV, str(file_not_folder))
    registry.refresh()
    assert "storyboard" in available_backends()  # a path that is not a folder: no user plugins


def test_folder_plugin_runs_in_the_engine(plugins):
    write(plugins / "grey_file.py", BACKEND_SOURCE.format(cls="GreyFile", name="grey-file", shade=99))
    with Engine() as engine:
        rec = Recorder(engine)
        done = rec.wait(engine.submit(GenerationRequest(backend="grey-file", width=16, height=16, seed=3)))
    assert done.event is JobEvent.FINISHED and done.result.image.getpixel((1, 1)) == (99, 99, 99)
    assert done.request.backend_settings == {"shade": 99}

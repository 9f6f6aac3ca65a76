"""Hostile plugins are contained: one that exits, raises a BaseException or loops forever at import
is probed in a child process, reported once and skipped; the CLI and the engine go on. Folder
plugins import under private names and shadow nothing."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_fakes import Recorder
from plugin_files import write

from comic_studio.generation import registry
from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent
from comic_studio.generation.plugin_loading import PROBE_TIMEOUT_ENV
from comic_studio.generation.registry import available_backends, get_backend, plugin_errors
from comic_studio.generation.request import GenerationRequest

ROOT = Path(__file__).resolve().parents[2]

BACKEND = """
from PIL import Image
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.request import GenerationResult


class {cls}(GenerationBackend):
    name = "{name}"
    capabilities = frozenset({{"txt2img"}})

    def generate(self, request, on_step=None):
        return GenerationResult([Image.new("RGB", (request.width, request.height), ({shade},) * 3)],
                                request.seed, self.name)
"""

HOSTILE = {
    "exits.py": "import sys\nsys.exit(3)\n",
    "exits_quietly.py": "import sys\nsys.exit()\n",
    "hard_exit.py": "import os\nos._exit(0)\n",
    "raises.py": "raise RuntimeError('needs a driver that is missing')\n",
    "interrupts.py": "raise KeyboardInterrupt\n",
    "base_exception.py": "class Weird(BaseException):\n    pass\nraise Weird('not an Exception')\n",
}
LOOPS = "while True:\n    pass\n"


def write_hostile(folder: Path) -> None:
    for name, source in HOSTILE.items():
        write(folder / name, source)
    write(folder / "good.py", BACKEND.format(cls="Good", name="good", shade=77))


def add_looping_plugin(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything else is probed first under the generous limit (verdicts cached), so the short limit
    that ends the endless loop applies to the looping plugin alone, never to a slow good import."""
    available_backends()
    write(folder / "loops.py", LOOPS)
    monkeypatch.setenv(PROBE_TIMEOUT_ENV, "2")
    registry.refresh()


def test_hostile_plugins_are_reported_once_and_skipped(plugins, caplog, monkeypatch):
    write_hostile(plugins)
    add_looping_plugin(plugins, monkeypatch)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        names = available_backends()
        available_backends()
        errors = plugin_errors()
    assert "good" in names and "storyboard" in names
    assert "SystemExit: 3" in errors["plugin exits.py"]
    assert "SystemExit" in errors["plugin exits_quietly.py"]
    assert "ended the process (exit status 0)" in errors["plugin hard_exit.py"]
    assert "did not finish importing within 2 s" in errors["plugin loops.py"]
    assert "RuntimeError: needs a driver that is missing" in errors["plugin raises.py"]
    assert "KeyboardInterrupt" in errors["plugin interrupts.py"]
    assert "Weird: not an Exception" in errors["plugin base_exception.py"]
    for name in [*HOSTILE, "loops.py"]:
        assert sum(name in r.getMessage() for r in caplog.records) == 1, f"{name} reported once"
    assert not any(m.startswith("comic_studio_user_plugins.exits") for m in sys.modules)
    assert get_backend("good").generate(GenerationRequest(width=16, height=16)).image.getpixel((0, 0)) == (77,) * 3


def test_probe_verdicts_are_cached_by_file_so_a_restart_probes_nothing(plugins, tmp_path, monkeypatch):
    write_hostile(plugins)
    add_looping_plugin(plugins, monkeypatch)
    first = plugin_errors()
    cache = json.loads((tmp_path / "cache" / "probes.json").read_text())
    keys = {k for k in cache["entries"] if k.startswith("user plugin ")}
    assert {Path(k.removeprefix("user plugin ")).name for k in keys} == set(HOSTILE) | {"good.py", "loops.py"}
    # A new process (the CLI, the next start) reads the verdicts: no child runs, so even python
    # itself being unavailable changes nothing.
    python = sys.executable
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    registry.refresh()
    assert plugin_errors() == first
    # A changed file is probed again: the fixed plugin loads.
    write(plugins / "exits.py", BACKEND.format(cls="Mended", name="mended", shade=5))
    os.utime(plugins / "exits.py", ns=(1, 1))
    monkeypatch.setattr(sys, "executable", python)
    registry.refresh()
    assert "mended" in available_backends() and "plugin exits.py" not in plugin_errors()


def test_a_hostile_plugin_reaching_the_in_process_import_is_still_caught(plugins, monkeypatch):
    """Probing off (a frozen app cannot run ``python -c``): the guarded import still catches SystemExit
    and any other BaseException."""
    monkeypatch.setenv(PROBE_TIMEOUT_ENV, "0")
    write(plugins / "exits.py", HOSTILE["exits.py"])
    write(plugins / "base_exception.py", HOSTILE["base_exception.py"])
    write(plugins / "good.py", BACKEND.format(cls="Good", name="good", shade=1))
    assert "good" in available_backends()
    errors = plugin_errors()
    assert "SystemExit: 3" in errors["plugin exits.py"] and "Weird" in errors["plugin base_exception.py"]


def test_an_installed_entry_point_that_exits_at_import_is_probed_and_skipped(plugins, tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "exiting_comic_plugin-1.0.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: exiting-comic-plugin\nVersion: 1.0\n")
    write(dist / "entry_points.txt", "[comic_studio.backends]\nexits_at_import = exiting_comic_plugin_mod:Backend\n")
    write(site / "exiting_comic_plugin_mod.py", "import sys\nsys.exit('no GPU, bye')\n")
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    names = available_backends()
    assert "storyboard" in names and "exits_at_import" not in names
    assert "SystemExit: no GPU, bye" in plugin_errors()["exits_at_import"]
    assert "exiting_comic_plugin_mod" not in sys.modules
    cache = json.loads((tmp_path / "cache" / "probes.json").read_text())
    assert any("exiting-comic-plugin==1.0" in e["fingerprint"] for e in cache["entries"].values())


def test_folder_plugin_helpers_shadow_nothing(plugins):
    """A helper named requests.py stays the plugin's; two plugins' helpers of one name stay apart."""
    import requests

    for shade, folder in ((10, "first"), (20, "second")):
        write(plugins / folder / "requests.py", "IS_A_PLUGIN_HELPER = True\n")
        write(plugins / folder / "utils.py", f"SHADE = {shade}\n")
        write(plugins / folder / "comic_studio_plugin.py",
              "from . import utils\nfrom .requests import IS_A_PLUGIN_HELPER\n"
              + BACKEND.format(cls="Folder", name=f"folder-{folder}", shade="utils.SHADE"))  # fmt: skip
    sys_path_before = list(sys.path)
    names = available_backends()
    assert plugin_errors() == {} and {"folder-first", "folder-second"} <= set(names)
    assert sys.path == sys_path_before
    assert sys.modules["requests"] is requests and not hasattr(requests, "IS_A_PLUGIN_HELPER")
    assert "utils" not in sys.modules or not hasattr(sys.modules["utils"], "SHADE")
    request = GenerationRequest(width=16, height=16)
    assert get_backend("folder-first").generate(request).image.getpixel((0, 0)) == (10,) * 3
    assert get_backend("folder-second").generate(request).image.getpixel((0, 0)) == (20,) * 3
    # A real consumer of requests in the same process still gets the real library.
    assert callable(__import__("requests").get)


def test_a_plain_name_helper_import_is_explained(plugins):
    write(plugins / "old_style" / "shades.py", "DEFAULT = 1\n")
    write(plugins / "old_style" / "comic_studio_plugin.py",
          "import shades\n" + BACKEND.format(cls="Old", name="old", shade="shades.DEFAULT"))  # fmt: skip
    assert "old" not in available_backends()
    assert "from . import shades" in plugin_errors()["plugin old_style"]


def test_the_engine_serves_jobs_with_hostile_plugins_installed(plugins):
    write_hostile(plugins)
    with Engine() as engine:
        rec = Recorder(engine)
        done = rec.wait(engine.submit(GenerationRequest(backend="good", width=16, height=16)), timeout=60)
        board = rec.wait(engine.submit(GenerationRequest(backend="storyboard", width=64, height=64)), timeout=60)
    assert done.event is JobEvent.FINISHED and done.result.image.getpixel((0, 0)) == (77,) * 3
    assert board.event is JobEvent.FINISHED and engine.is_alive is False


def test_the_cli_renders_with_hostile_plugins_installed(plugins, tmp_path):
    """The real console entry in a child process (the timeout only bounds a hang)."""
    write_hostile(plugins)
    available_backends()  # the other verdicts cached under the generous limit (see add_looping_plugin)
    write(plugins / "loops.py", LOOPS)
    story = write(tmp_path / "story.txt", "Mara walked to the pier.\n\nTheo waved at Mara.\n")
    env = dict(os.environ, **{PROBE_TIMEOUT_ENV: "2", "QT_QPA_PLATFORM": "offscreen"})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    args = [sys.executable, "-m", "comic_studio.app", "render", str(story), "--out", str(tmp_path / "book.pdf"),
            "--quiet"]  # fmt: skip
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "book.pdf").stat().st_size > 1000
    assert "loops.py" in run.stderr and "did not finish importing within 2 s" in run.stderr
    # A second start reads the cached verdicts: same outcome, the looping plugin is not run again.
    cache = tmp_path / "cache" / "probes.json"
    before = cache.read_bytes()
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert cache.read_bytes() == before

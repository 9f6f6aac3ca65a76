"""Start-up: the window appears within 1.5 s without importing torch; the ``comic-studio`` command
opens it (with a project), while its headless subcommands never import Qt."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from comic_studio import app
from comic_studio.core import editing
from comic_studio.core.document import Document

STARTUP_LIMIT_S = 1.5
REPO = Path(__file__).resolve().parents[2]


def smoke(tmp_path, *args) -> dict:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        COMIC_STUDIO_CONFIG_DIR=str(tmp_path / "config"),
        COMIC_STUDIO_STATE_DIR=str(tmp_path / "state"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "comic_studio.ui.app", "--smoke-test", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_window_appears_fast_without_torch(tmp_path):
    # Best of three: the limit is about the app, not about other jobs sharing this machine.
    reports = []
    for _ in range(3):
        reports.append(smoke(tmp_path))
        if reports[-1]["startup_s"] <= STARTUP_LIMIT_S:
            break
    best = min(reports, key=lambda r: r["startup_s"])
    assert best["visible"] and best["torch_imported"] is False
    assert best["title"] == "Untitled comic[*] — Comic Studio"
    assert best["startup_s"] <= STARTUP_LIMIT_S, reports


def test_smoke_test_opens_a_project_and_grabs_a_screenshot(tmp_path):
    doc = Document.new(title="Harbour")
    for _ in range(3):
        editing.add_page(doc)
    project = doc.save(tmp_path / "harbour.comic")
    shot = tmp_path / "window.png"
    report = smoke(tmp_path, project, "--screenshot", shot)
    assert report["pages"] == 3
    assert report["title"] == "harbour[*] — Comic Studio"
    assert shot.stat().st_size > 10_000
    assert report["torch_imported"] is False


def test_command_routes_to_the_window(monkeypatch, tmp_path):
    import comic_studio.ui.app as ui_app

    opened = []
    monkeypatch.setattr(ui_app, "run_app", lambda paths: opened.append(paths) or 0)
    assert app.main([]) == 0
    assert app.main([str(tmp_path / "book.comic")]) == 0
    assert opened == [[], [str(tmp_path / "book.comic")]]
    assert app.main(["story.txt"]) == 2  # not a project, not a command: a usage error


def test_cli_subcommands_still_work(tmp_path, capsys):
    doc = Document.new(title="Info book")
    editing.add_page(doc)
    path = doc.save(tmp_path / "info.comic")
    assert app.main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pages"] == 1
    with pytest.raises(SystemExit):
        app.main(["--version"])


def test_headless_cli_does_not_import_qt(tmp_path):
    doc = Document.new()
    editing.add_page(doc)
    path = doc.save(tmp_path / "q.comic")
    code = (
        "import sys; from comic_studio.app import main; rc = main(['info', sys.argv[1]]); "
        "assert 'PySide6' not in sys.modules, 'Qt imported'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr

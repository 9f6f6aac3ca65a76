"""Readers of outside files refuse a FIFO, /dev/zero or a socket at once, naming the file, instead
of hanging: project files (CLI ``info``, ``load_project`` with and without staging, ``Document.open``,
the asset store), recovery files at start-up, settings, page presets, story files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from comic_fixtures import build_sample_project
from hang_guard import outcome_of

from comic_studio.cli import main
from comic_studio.core.autosave import RECOVERY_SUFFIX, pending_recoveries, write_recovery
from comic_studio.core.document import Document
from comic_studio.core.errors import AssetError, LayoutError, ProjectFileError
from comic_studio.core.layout.presets import load_presets
from comic_studio.core.projectfile import load_project, save_project
from comic_studio.core.settings import CONFIG_DIR_ENV, STATE_DIR_ENV, AppSettings, load_settings

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    return tmp_path / "state"


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.comic"
    os.mkfifo(path)  # opening it for reading would wait for a writer forever
    return path


@pytest.fixture
def unix_socket(tmp_path: Path):
    path = tmp_path / "sock.comic"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    yield path
    server.close()


def _cli(capsys, *argv: str) -> tuple[int, str]:
    outcome = outcome_of(main, list(argv))
    assert "error" not in outcome, f"main() raised {outcome.get('error')!r}"
    return outcome["value"], capsys.readouterr().err


def test_cli_info_refuses_a_fifo_dev_zero_and_a_socket_at_once(capsys, fifo, unix_socket) -> None:
    for special in (fifo, Path("/dev/zero"), unix_socket):
        code, err = _cli(capsys, "info", str(special))
        assert code == 1
        assert f"{special}: " in err and "not a regular file" in err, err
        assert "Traceback" not in err


@pytest.mark.parametrize("stage", [False, True])
def test_load_project_refuses_special_files_staged_or_not(fifo, unix_socket, stage) -> None:
    for special in (fifo, Path("/dev/zero"), unix_socket):
        outcome = outcome_of(load_project, special, stage=stage)
        error = outcome.get("error")
        assert isinstance(error, ProjectFileError), outcome
        assert error.path == special.absolute() and "not a regular file" in error.problem


def test_document_open_and_open_recent_refuse_a_fifo(fifo) -> None:
    # Open and "Open Recent" both go through Document.open.
    outcome = outcome_of(Document.open, fifo)
    assert isinstance(outcome.get("error"), ProjectFileError) and "not a regular file" in str(outcome["error"])


def test_a_project_swapped_for_a_fifo_after_loading_gives_an_asset_error(tmp_path) -> None:
    project, store, _hashes = build_sample_project()
    digest = next(iter(project.asset_refs()))
    path = tmp_path / "a.comic"
    save_project(path, project, store)
    _loaded, assets = load_project(path)  # unstaged: assets are read lazily from the user's file
    path.unlink()
    os.mkfifo(path)
    outcome = outcome_of(assets.get, digest)
    error = outcome.get("error")
    assert isinstance(error, AssetError) and str(path) in str(error) and "not a regular file" in str(error)


def test_a_fifo_among_recovery_files_does_not_hang_the_start(state) -> None:
    project, store, _hashes = build_sample_project()
    project.title = "kept"
    good = write_recovery(project, store, source_path=None)
    os.mkfifo(good.parent / f"stranger{RECOVERY_SUFFIX}")
    outcome = outcome_of(pending_recoveries)
    assert "error" not in outcome, outcome
    assert [r.title for r in outcome["value"]] == ["kept"]


def test_settings_that_are_a_fifo_or_huge_or_deep_give_defaults_and_name_the_file(tmp_path) -> None:
    target = tmp_path / "config" / "settings.json"
    target.parent.mkdir(parents=True)
    os.mkfifo(target)
    outcome = outcome_of(load_settings)
    settings, problem = outcome["value"]
    assert settings == AppSettings() and str(target) in problem and "not a regular file" in problem
    assert target.exists()  # not ours to rename: its content was never read
    target.unlink()

    target.write_bytes(b" " * (5 * 1024 * 1024) + b"{}")
    settings, problem = load_settings()
    assert settings == AppSettings() and str(target) in problem and "limit" in problem

    target.write_text("[" * 100_000 + "]" * 100_000)
    settings, problem = load_settings()
    assert settings == AppSettings() and "nests more than" in problem and "settings.json.bad" in problem


def test_page_presets_from_a_fifo_or_too_deep_name_the_file(tmp_path) -> None:
    pipe = tmp_path / "presets.json"
    os.mkfifo(pipe)
    outcome = outcome_of(load_presets, pipe)
    assert isinstance(outcome.get("error"), LayoutError) and str(pipe) in str(outcome["error"])
    deep = tmp_path / "deep.json"
    deep.write_text('{"presets": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(LayoutError, match=r"deep\.json: the JSON nests more than"):
        load_presets(deep)


def test_cli_parse_refuses_a_fifo_and_dev_zero_as_the_story(capsys, tmp_path) -> None:
    story = tmp_path / "story.txt"
    os.mkfifo(story)
    for special in (story, Path("/dev/zero")):
        code, err = _cli(capsys, "parse", str(special), "--quiet")
        assert code == 1 and f"{special}: " in err and "not a regular file" in err, err

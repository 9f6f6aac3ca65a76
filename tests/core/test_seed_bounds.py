"""A seed outside 0…2⁶⁴−1, in a project file or in a stored request, is refused where it is read
with the field named, never a traceback from inside a render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comic_fixtures import build_sample_project, members_of, replace_member

from comic_studio.cli import main
from comic_studio.core.model import MAX_SEED
from comic_studio.core.projectfile import save_project
from comic_studio.core.settings import STATE_DIR_ENV
from comic_studio.generation.request import GenerationError, GenerationRequest


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))


def _project_with(tmp_path: Path, patch) -> Path:
    project, store, _hashes = build_sample_project()
    path = tmp_path / "seed.comic"
    save_project(path, project, store)
    data = path.read_bytes()
    doc = json.loads(dict(members_of(data))["project.json"])
    patch(doc)
    path.write_bytes(replace_member(data, "project.json", json.dumps(doc).encode()))
    return path


def _panel(doc: dict) -> dict:
    return doc["pages"][0]["panels"][0]


@pytest.mark.parametrize("seed", [-1, 2**64, 2**200])
@pytest.mark.parametrize("command", ["info", "render"])
def test_a_panel_seed_out_of_range_is_a_named_error_in_the_cli(tmp_path, capsys, seed, command) -> None:
    path = _project_with(tmp_path, lambda doc: _panel(doc).update(seed=seed))
    argv = [command, str(path)] + (
        ["--out", str(tmp_path / "out.pdf"), "--all", "--quiet"] if command == "render" else []
    )
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{path}: " in err and "pages.0.panels.0.seed" in err and "Traceback" not in err


def test_a_result_seed_out_of_range_is_named(tmp_path, capsys) -> None:
    def patch(doc: dict) -> None:
        panel = next(p for page in doc["pages"] for p in page["panels"] if p["results"])
        panel["results"][0]["seed"] = -5

    path = _project_with(tmp_path, patch)
    assert main(["info", str(path)]) == 1
    assert ".results.0.seed" in capsys.readouterr().err


def test_the_largest_seed_is_kept_and_rendered(tmp_path, capsys) -> None:
    path = _project_with(
        tmp_path, lambda doc: _panel(doc).update(seed=MAX_SEED, backend="storyboard", backend_settings={})
    )
    assert main(["render", str(path), "--out", str(tmp_path / "out.pdf"), "--all", "--quiet"]) == 0, capsys.readouterr()


def test_a_stored_request_with_a_bad_seed_names_the_field() -> None:
    stored = GenerationRequest(backend="storyboard", width=64, height=64, seed=1).to_dict()
    for seed in (-1, 2**64):
        with pytest.raises(GenerationError, match=r"invalid generation request: seed: "):
            GenerationRequest.from_dict({**stored, "seed": seed})

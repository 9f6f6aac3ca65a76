"""App settings: defaults, round-trip, recent files, damaged files never block start-up."""

import json

import pytest
from pydantic import ValidationError

from comic_studio.core.model import ReadingDirection
from comic_studio.core.settings import (
    MAX_RECENT_FILES,
    AppSettings,
    SettingsError,
    load_settings,
    save_settings,
    settings_path,
)


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(folder))
    return folder


def test_missing_file_gives_defaults(config_dir):
    settings, problem = load_settings()
    assert problem == ""
    assert settings.theme == "system"
    assert settings.default_page_preset == "us-comic"
    assert settings.autosave_minutes == 5
    assert settings.device == "auto"
    assert settings_path() == config_dir / "settings.json"


def test_round_trip(config_dir):
    settings = AppSettings(
        projects_folder="/p",
        models_folder="/m",
        external_models_folder="/comfy/models",
        default_page_preset="manga-b5",
        reading_direction=ReadingDirection.RTL,
        theme="dark",
        autosave_minutes=2,
        device="cpu",
        window_geometry="AAAA",
        window_state="BBBB",
    )
    settings.add_recent(config_dir / "a.comic")
    written = save_settings(settings)
    assert written == config_dir / "settings.json"
    assert json.loads(written.read_text())["theme"] == "dark"
    loaded, problem = load_settings()
    assert problem == ""
    assert loaded == settings
    assert loaded.reading_direction is ReadingDirection.RTL


def test_recent_files_newest_first_unique_capped(tmp_path):
    settings = AppSettings()
    for i in range(MAX_RECENT_FILES + 3):
        settings.add_recent(tmp_path / f"{i}.comic")
    settings.add_recent(tmp_path / "5.comic")
    assert len(settings.recent_files) == MAX_RECENT_FILES
    assert settings.recent_files[0] == str(tmp_path / "5.comic")
    assert len(set(settings.recent_files)) == MAX_RECENT_FILES
    settings.remove_recent(tmp_path / "5.comic")
    assert str(tmp_path / "5.comic") not in settings.recent_files


def test_invalid_values_are_refused():
    with pytest.raises(ValidationError):
        AppSettings(theme="purple")
    with pytest.raises(ValidationError):
        AppSettings(autosave_minutes=-1)
    settings = AppSettings()
    with pytest.raises(ValidationError):
        settings.device = "tpu"


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"theme": "purple"}', b"\xff\xfe"])
def test_damaged_file_gives_defaults_and_is_kept_aside(config_dir, content):
    config_dir.mkdir(parents=True)
    (config_dir / "settings.json").write_bytes(content)
    settings, problem = load_settings()
    assert settings == AppSettings()
    assert "settings.json" in problem and "defaults" in problem
    assert (config_dir / "settings.json.bad").read_bytes() == content
    assert not (config_dir / "settings.json").exists()


def test_unknown_keys_from_newer_versions_are_ignored(config_dir):
    config_dir.mkdir(parents=True)
    (config_dir / "settings.json").write_text(json.dumps({"theme": "light", "future_option": 3}))
    settings, problem = load_settings()
    assert problem == "" and settings.theme == "light"


def test_unwritable_location_raises_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SettingsError, match="cannot save the settings"):
        save_settings(AppSettings(), blocker / "settings.json")

"""`comic-studio desktop install|uninstall`: the launcher, the .comic type and the icon, checked with
the real freedesktop tools (update-mime-database, gio's MIME sniffing, appstreamcli) where installed."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from comic_fixtures import build_sample_project

from comic_studio import __version__
from comic_studio.cli import main
from comic_studio.cli.desktop import MIME_TYPE, _exec_quote, desktop_files
from comic_studio.core.projectfile import save_project
from comic_studio.core.resources import DESKTOP_APP_ID, resource

needs_gio = pytest.mark.skipif(shutil.which("gio") is None, reason="gio (GLib's MIME sniffer) not installed")
needs_mime_db = pytest.mark.skipif(
    shutil.which("update-mime-database") is None, reason="shared-mime-info not installed"
)


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive in desktop entries
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def _content_type(share: Path, file: Path) -> str:
    env = {**os.environ, "XDG_DATA_HOME": str(share), "XDG_DATA_DIRS": f"{share}:/usr/share"}
    out = subprocess.run(
        ["gio", "info", "-a", "standard::content-type", str(file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    match = re.search(r"standard::content-type: (\S+)", out)
    assert match, out
    return match.group(1)


def test_install_writes_every_file_with_a_launcher_that_runs_this_installation(tmp_path, capsys):
    launcher = "/opt/my apps/comic-studio"
    assert main(["desktop", "install", "--prefix", str(tmp_path), "--exec", _exec_quote(launcher)]) == 0
    share = tmp_path / "share"
    for item in desktop_files(share):
        assert item.target.read_bytes() == item.source.read_bytes() or item.target.suffix == ".desktop"
    entry = _entry(share / "applications" / f"{DESKTOP_APP_ID}.desktop")
    assert entry["Exec"] == '"/opt/my apps/comic-studio" %f'
    assert entry["Type"] == "Application"
    assert MIME_TYPE in entry["MimeType"].split(";")
    assert entry["Icon"] == DESKTOP_APP_ID
    for size in (16, 32, 48, 256):
        assert (share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{DESKTOP_APP_ID}.png").is_file()
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / f"{DESKTOP_APP_ID}.svg").is_file()
    assert f"installed {len(desktop_files(share))} files under {share}" in capsys.readouterr().out


def test_default_launcher_is_this_console_script(tmp_path, monkeypatch):
    script = tmp_path / "bin" / "comic-studio"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(script), "desktop", "install"])
    assert main(["desktop", "install", "--prefix", str(tmp_path)]) == 0
    entry = _entry(tmp_path / "share" / "applications" / f"{DESKTOP_APP_ID}.desktop")
    assert entry["Exec"] == f"{script.resolve()} %f"


def test_xdg_data_home_is_the_default_place(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert main(["desktop", "install", "--exec", "comic-studio"]) == 0
    assert (tmp_path / "data" / "applications" / f"{DESKTOP_APP_ID}.desktop").is_file()
    assert main(["desktop", "uninstall"]) == 0
    assert not (tmp_path / "data" / "applications" / f"{DESKTOP_APP_ID}.desktop").exists()


def test_exec_quoting_follows_the_desktop_entry_spec():
    assert _exec_quote("/usr/bin/comic-studio") == "/usr/bin/comic-studio"
    assert _exec_quote("/home/a b/bin/comic-studio") == '"/home/a b/bin/comic-studio"'
    assert _exec_quote('/x/"q"$HOME`c`\\') == '"/x/\\"q\\"\\$HOME\\`c\\`\\\\"'
    assert _exec_quote("/x/100%/cs") == "/x/100%%/cs"


@needs_gio
@needs_mime_db
def test_a_saved_project_is_recognised_by_its_bytes_and_uninstall_removes_the_type(tmp_path):
    project, store, _ = build_sample_project()
    file = tmp_path / "no-extension"
    save_project(file, project, store)
    share = tmp_path / "share"
    assert _content_type(share, file) == "application/zip"  # before: just a zip

    assert main(["desktop", "install", "--prefix", str(tmp_path), "--exec", "comic-studio"]) == 0
    assert _content_type(share, file) == MIME_TYPE  # the magic rule, not the name
    named = tmp_path / "story.comic"
    named.write_bytes(bytes(range(256)))  # not a zip: the glob alone
    assert _content_type(share, named) == MIME_TYPE

    assert main(["desktop", "uninstall", "--prefix", str(tmp_path)]) == 0
    assert _content_type(share, file) == "application/zip"
    leftovers = [p for p in share.rglob("*") if p.is_file() and DESKTOP_APP_ID in p.name]
    assert leftovers == []


def test_the_magic_rule_matches_what_the_project_writer_writes(tmp_path):
    """Without any desktop tools: the MIME file's offset/value describe the saved file's bytes."""
    project, store, _ = build_sample_project()
    file = tmp_path / "p.comic"
    save_project(file, project, store)
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    root = ET.parse(resource("desktop", f"{DESKTOP_APP_ID}.mime.xml")).getroot()
    match = root.find("m:mime-type/m:magic/m:match", ns)
    assert match is not None and root.find("m:mime-type", ns).get("type") == MIME_TYPE
    offset, value = int(match.get("offset")), match.get("value").encode()
    assert file.read_bytes()[offset : offset + len(value)] == value
    assert root.find("m:mime-type/m:glob", ns).get("pattern") == "*.comic"


def test_metainfo_names_this_release_and_validates():
    metainfo = resource("desktop", f"{DESKTOP_APP_ID}.metainfo.xml")
    root = ET.parse(metainfo).getroot()
    assert root.findtext("id") == DESKTOP_APP_ID
    assert root.find("launchable").text == f"{DESKTOP_APP_ID}.desktop"
    assert root.find("releases/release").get("version") == __version__
    if shutil.which("appstreamcli"):
        done = subprocess.run(
            ["appstreamcli", "validate", "--no-net", str(metainfo)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_flatpak_manifest_parses_and_installs_files_that_exist():
    yaml = pytest.importorskip("yaml")  # PyYAML comes with the [ml] extras (huggingface_hub)
    root = Path(__file__).resolve().parents[2]
    manifest = yaml.safe_load((root / "packaging" / "flatpak" / f"{DESKTOP_APP_ID}.yml").read_text())
    assert manifest["app-id"] == DESKTOP_APP_ID
    assert manifest["command"] == "comic-studio"
    (module,) = [m for m in manifest["modules"] if isinstance(m, dict) and m["name"] == "comic-studio"]
    commands = " ".join(module["build-commands"])
    sources = re.findall(r"comic_studio/resources/\S+", commands)
    assert len(sources) >= 5
    sizes = re.search(r"for size in ([\d ]+);", commands).group(1).split()
    for source in sources:
        for size in sizes if "${size}" in source else [None]:
            path = root / (source.replace("${size}", size) if size else source)
            assert path.is_file(), path
    installed = {Path(t.target.name) for t in desktop_files(Path("/x"))}
    assert Path(f"{DESKTOP_APP_ID}.desktop") in installed

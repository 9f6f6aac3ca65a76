"""``comic-studio desktop install|uninstall``: the launcher, the .comic file type and the icon on a
freedesktop (Linux/BSD) desktop.

A pip/pipx install cannot place files outside its environment, so the user asks for them once:
``install`` writes the desktop entry (its ``Exec`` is the absolute path of this very launcher, so it
works where ``~/.local/bin`` is not on the session's PATH), the shared-mime-info type of ``.comic``
files (double-click opens the project), the AppStream metainfo and the icon in every hicolor size
into ``$XDG_DATA_HOME`` (``~/.local/share``) or ``--prefix``/share, then refreshes the desktop's
caches with the freedesktop tools that are installed. ``uninstall`` removes exactly those files.
Every file comes from the package's ``resources/desktop`` and ``resources/icons``, the same files
the Flatpak manifest installs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.resources import DESKTOP_APP_ID, resource

MIME_TYPE = "application/x-comic-studio"
_MIME_ICON = MIME_TYPE.replace("/", "-")
_CACHE_TOOL_SECONDS = 60


def register(subparsers: Any) -> argparse.ArgumentParser:
    desktop = subparsers.add_parser(
        "desktop",
        help="add Comic Studio to the desktop's menu and open .comic files with it (Linux)",
        description="Install or remove the launcher, the .comic file type and the icon (freedesktop).",
    )
    desktop.add_argument("action", choices=("install", "uninstall"))
    desktop.add_argument(
        "--prefix",
        help="install under PREFIX/share (e.g. /usr/local) instead of $XDG_DATA_HOME or ~/.local/share",
    )
    desktop.add_argument(
        "--exec",
        dest="launcher",
        help="the command the launcher runs (default: the absolute path of this comic-studio)",
    )
    desktop.set_defaults(func=_cmd_desktop)
    return desktop


@dataclass(frozen=True)
class DesktopFile:
    source: Path
    target: Path


def data_home(prefix: str | None) -> Path:
    """Where the files go: ``PREFIX/share``, else ``$XDG_DATA_HOME``, else ``~/.local/share``."""
    if prefix:
        return Path(prefix).expanduser() / "share"
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"


def desktop_files(share: Path) -> list[DesktopFile]:
    """Every file ``install`` writes, source → target, in the layout the freedesktop specs read."""
    desktop = resource("desktop")
    icons = resource("icons")
    files = [
        DesktopFile(desktop / f"{DESKTOP_APP_ID}.desktop", share / "applications" / f"{DESKTOP_APP_ID}.desktop"),
        DesktopFile(desktop / f"{DESKTOP_APP_ID}.mime.xml", share / "mime" / "packages" / f"{DESKTOP_APP_ID}.xml"),
        DesktopFile(desktop / f"{DESKTOP_APP_ID}.metainfo.xml", share / "metainfo" / f"{DESKTOP_APP_ID}.metainfo.xml"),
    ]
    hicolor = share / "icons" / "hicolor"
    svg = icons / "comic-studio.svg"
    files.append(DesktopFile(svg, hicolor / "scalable" / "apps" / f"{DESKTOP_APP_ID}.svg"))
    files.append(DesktopFile(svg, hicolor / "scalable" / "mimetypes" / f"{_MIME_ICON}.svg"))
    for png in sorted((icons / "hicolor").glob("*/apps/comic-studio.png")):
        size = png.parent.parent.name
        files.append(DesktopFile(png, hicolor / size / "apps" / f"{DESKTOP_APP_ID}.png"))
        files.append(DesktopFile(png, hicolor / size / "mimetypes" / f"{_MIME_ICON}.png"))
    return files


def default_launcher() -> str:
    """The absolute command that starts this installation's studio.

    The console script when this process is one (pipx/venv ``bin/comic-studio``), else the one on
    PATH, else this interpreter running the package (a checkout, ``python -m comic_studio``).
    """
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "comic-studio" and argv0.exists():
        return _exec_quote(str(argv0.resolve()))
    on_path = shutil.which("comic-studio")
    if on_path:
        return _exec_quote(str(Path(on_path).resolve()))
    return f"{_exec_quote(sys.executable)} -m comic_studio"


def _exec_quote(argument: str) -> str:
    """One argument of a desktop entry's Exec key (Desktop Entry spec, "The Exec key"): quoted when it
    holds a reserved character, with ``"`` `` ` `` ``$`` ``\\`` escaped inside the quotes; a
    literal ``%`` is doubled because field codes start with it."""
    argument = argument.replace("%", "%%")
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if not any(ch in reserved for ch in argument):
        return argument
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in argument)
    return f'"{escaped}"'


def desktop_entry(launcher: str) -> bytes:
    """The bundled desktop entry with its Exec pointing at ``launcher`` (plus the %f file code)."""
    source = resource("desktop", f"{DESKTOP_APP_ID}.desktop").read_text(encoding="utf-8")
    lines = [f"Exec={launcher} %f" if line.startswith("Exec=") else line for line in source.splitlines()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def install(share: Path, launcher: str) -> list[Path]:
    """Write every desktop file under ``share``; returns the files written."""
    written = []
    for item in desktop_files(share):
        data = desktop_entry(launcher) if item.target.suffix == ".desktop" else item.source.read_bytes()
        item.target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(item.target, data, "desktop integration file")
        written.append(item.target)
    return written


def uninstall(share: Path) -> list[Path]:
    """Remove what :func:`install` wrote (and only that); returns the files removed."""
    removed = []
    for item in desktop_files(share):
        if item.target.is_file():
            item.target.unlink()
            removed.append(item.target)
    return removed


def refresh_caches(share: Path) -> list[str]:
    """Rebuild the MIME database, the desktop entry cache and the icon cache with the freedesktop
    tools that are installed; returns a line per tool (ran, failed or absent)."""
    commands = (
        ("update-mime-database", [str(share / "mime")]),
        ("update-desktop-database", ["-q", str(share / "applications")]),
        ("gtk-update-icon-cache", ["-q", "-f", "-t", str(share / "icons" / "hicolor")]),
    )
    report = []
    for tool, arguments in commands:
        path = shutil.which(tool)
        if path is None:
            report.append(f"{tool}: not installed (the desktop refreshes at the next login)")
            continue
        try:
            done = subprocess.run(
                [path, *arguments], capture_output=True, text=True, timeout=_CACHE_TOOL_SECONDS, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            report.append(f"{tool}: failed ({exc})")
            continue
        if done.returncode == 0:
            report.append(f"{tool}: updated")
        else:
            detail = (done.stderr or done.stdout).strip().splitlines()
            report.append(f"{tool}: failed ({detail[-1] if detail else f'exit {done.returncode}'})")
    return report


def _cmd_desktop(args: argparse.Namespace) -> int:
    if sys.platform in ("win32", "darwin"):
        raise ComicStudioError(
            "`comic-studio desktop` is for Linux/BSD desktops (freedesktop); on Windows and macOS start "
            "the studio with `comic-studio`"
        )
    share = data_home(args.prefix)
    if args.action == "install":
        launcher = args.launcher or default_launcher()
        written = install(share, launcher)
        print(f"installed {len(written)} files under {share} (launcher: {launcher})")
    else:
        removed = uninstall(share)
        print(f"removed {len(removed)} files under {share}")
    for line in refresh_caches(share):
        print(line)
    return 0

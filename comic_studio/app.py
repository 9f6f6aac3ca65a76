"""The ``comic-studio`` console script: the composition root that picks the window or a command.

With no command (``comic-studio``, or ``comic-studio FILE.comic`` to open a project) it opens the
desktop window; the window's modules, and PySide6 with them, are imported only then, so the headless
commands never load Qt. Anything else goes to :mod:`comic_studio.cli`. ``ui`` and ``cli`` do not
know each other: this module is the only place both meet.

``comic-studio --smoke-test [--screenshot PNG]`` starts the window, prints its start-up figures as
JSON and quits: how a packager checks that a bundle's window opens (tests/packaging does).
"""

from __future__ import annotations

import sys
from pathlib import Path

from comic_studio import cli


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--smoke-test"]:
        from comic_studio.ui.app import main as window_main

        return window_main(argv)
    commands = cli.command_names()
    # No command (or a project path where a command would be) opens the window.
    if not argv or (argv[0] not in commands and not argv[0].startswith("-")):
        return _open_window(argv, commands)
    return cli.main(argv)


def _open_window(paths: list[str], commands: tuple[str, ...]) -> int:
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() != ".comic":
            print(
                f"comic-studio: error: {raw}: not a .comic project (commands: {', '.join(commands)})", file=sys.stderr
            )
            return 2
    try:
        from comic_studio.ui.app import run_app
    except ImportError as exc:
        print(
            f"comic-studio: error: the desktop window needs PySide6 ({exc}); the commands {', '.join(commands)} work without it",
            file=sys.stderr,
        )
        return 1
    return run_app(paths)


if __name__ == "__main__":
    sys.exit(main())

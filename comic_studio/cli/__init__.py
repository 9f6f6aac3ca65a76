"""The headless ``comic-studio`` commands, one module per subcommand.

``demo``, ``render``, ``eval``, ``parse``, ``models``, ``poses``, ``tryon``, ``anchor``, ``standardize``,
``train``, ``info`` and ``desktop``: each
module's ``register(subparsers)`` adds its command and the function that runs it; nothing heavy (and
never Qt) is imported until a command runs. Progress goes to stderr (:mod:`.progress`), results to
stdout or the files named on the command line; errors print one clear line and exit non-zero (1 for
a problem with the input, 2 for a usage error, 130 when interrupted).

The window is not this package's business: :mod:`comic_studio.app` (the console script) opens it
when no command is given, and asks :func:`command_names` what counts as one.
"""

from __future__ import annotations

import argparse
import sys

from comic_studio import __version__
from comic_studio.cli import (
    anchor,
    demo,
    desktop,
    evaluate,
    info,
    models,
    parse,
    poses,
    render,
    standardize,
    train,
    tryon,
    worker,
)
from comic_studio.cli.native_logs import native_logs_off
from comic_studio.core.errors import ComicStudioError

_SUBCOMMANDS = (demo, render, evaluate, parse, models, poses, tryon, anchor, standardize, train, worker, info, desktop)
"""In the order ``--help`` lists them."""


def _build() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="comic-studio",
        description="Author comics: story → beats → pages → PDF/CBZ/PNG.",
        epilog="Without a COMMAND, opens the desktop window: comic-studio [FILE.comic]",
    )
    parser.add_argument("--version", action="version", version=f"comic-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.register(subparsers)
    return parser, subparsers


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def command_names() -> tuple[str, ...]:
    """The registered subcommands, in ``--help`` order."""
    return tuple(_build()[1].choices)


def main(argv: list[str] | None = None) -> int:
    """Run one command line (``sys.argv[1:]`` by default) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if not args.command:
        parser.print_help()
        return 0
    allow_pickle = bool(getattr(args, "allow_pickle", False))
    if allow_pickle:  # the user's --allow-pickle, for this command only
        from comic_studio.generation.models.pickle_policy import allow_pickles_for_this_process

        allow_pickles_for_this_process(True)
    try:
        with native_logs_off():
            return args.func(args)
    except ComicStudioError as exc:
        print(f"comic-studio: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("comic-studio: interrupted", file=sys.stderr)
        return 130
    finally:
        if allow_pickle:
            allow_pickles_for_this_process(None)

"""Options several subcommands share, so they read and behave the same everywhere."""

from __future__ import annotations

import argparse


def add_project_edit_options(parser: argparse.ArgumentParser) -> None:
    """``--models``, ``--out`` and ``--quiet`` of the commands that run one job on a saved project and
    save it again (``anchor``, ``tryon``)."""
    parser.add_argument(
        "--models", choices=["tiny"], help="tiny: random-weight tiny models built locally (a smoke run, no downloads)"
    )
    parser.add_argument("--out", help="save to this .comic file instead of over the project")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_allow_pickle_option(parser)


def add_allow_pickle_option(parser: argparse.ArgumentParser) -> None:
    """``--allow-pickle``: this run may read pickled model files, the user's choice on the command
    line (a project can never make it; see ``generation.models.pickle_policy``). :func:`main`
    applies it before the command runs."""
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow pickled model files (.bin/.ckpt/.pt, read with weights_only=True) for this run "
        "(default: the app setting 'Allow pickled weights', off unless you turned it on)",
    )

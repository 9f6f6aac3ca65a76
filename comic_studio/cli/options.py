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

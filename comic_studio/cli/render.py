"""``comic-studio render INPUT --out PATH``: a .comic project or a story file to PDF, CBZ or PNG pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from comic_studio.cli.options import add_allow_pickle_option
from comic_studio.cli.progress import StderrProgress


def register(subparsers: Any) -> argparse.ArgumentParser:
    render = subparsers.add_parser("render", help="render a .comic project or a story text file")
    render.add_argument("input", help="a .comic project or a story .txt/.md file")
    render.add_argument("--out", required=True, help="PATH.pdf, PATH.cbz, or a folder for PNG pages")
    render.add_argument("--backend", default=None, help="backend for the panels it renders (default: each panel's own)")
    render.add_argument(
        "--all",
        dest="rerender",
        action="store_true",
        help="render every panel, not only those without an image (earlier images stay in the history)",
    )
    render.add_argument("--characters", help="character library JSON (for a story file)")
    render.add_argument("--parser", default="rules", help="story parser (default: rules)")
    render.add_argument("--preset", default="us-comic", help="page preset for a story file (default: us-comic)")
    render.add_argument("--dpi", type=int, default=None, help="output resolution (default: the project's)")
    render.add_argument("--trim-marks", action="store_true", help="PDF: add crop marks outside the bleed")
    render.add_argument("--save", help="also save the built project to this .comic file")
    render.add_argument(
        "--models",
        choices=["tiny"],
        help="tiny: random-weight tiny SDXL models built locally "
        "(a smoke run of the whole diffusion path, no downloads)",
    )
    render.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="render the panels on a Ray cluster: 'local' or 'local:N' starts one here with N workers "
        "for this run; a Ray address (ray://host:10001, host:6379, auto) uses a running cluster's GPUs",
    )
    render.add_argument("--quiet", action="store_true")
    add_allow_pickle_option(render)
    render.set_defaults(func=_cmd_render)
    return render


def _cmd_render(args: argparse.Namespace) -> int:
    if args.models == "tiny":
        from comic_studio.testing.tiny import use_tiny_models

        use_tiny_models()
    if args.cluster:
        from comic_studio.generation.cluster import ClusterEngine, parse_cluster_address

        address, workers = parse_cluster_address(args.cluster)
        with ClusterEngine(address, workers=workers) as engine:
            written = _render(args, engine)
    else:
        written = _render(args, None)
    print(written)
    return 0


def _render(args: argparse.Namespace, engine: Any) -> Path:
    from comic_studio.workflows.batch import render_input

    return render_input(
        Path(args.input),
        Path(args.out),
        backend=args.backend,
        characters_file=Path(args.characters) if args.characters else None,
        parser=args.parser,
        preset=args.preset,
        dpi=args.dpi,
        trim_marks=args.trim_marks,
        rerender=args.rerender,
        save_project_to=Path(args.save) if args.save else None,
        progress=StderrProgress(args.quiet),
        engine=engine,
        warn=lambda message: print(f"warning: {message}", file=sys.stderr),
    )

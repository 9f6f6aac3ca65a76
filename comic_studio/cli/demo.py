"""``comic-studio demo --out FOLDER``: the bundled sample story as .comic, PDF, CBZ and PNG pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from comic_studio.cli.progress import StderrProgress


def register(subparsers: Any) -> argparse.ArgumentParser:
    demo = subparsers.add_parser("demo", help="render the bundled sample story to .comic, PDF, CBZ and PNGs")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--backend", default="storyboard", help="generation backend (default: storyboard)")
    demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    demo.set_defaults(func=_cmd_demo)
    return demo


def _cmd_demo(args: argparse.Namespace) -> int:
    from comic_studio.workflows.batch import run_demo

    out = Path(args.out)
    report = run_demo(
        out,
        backend=args.backend,
        progress=StderrProgress(args.quiet),
        warn=lambda message: print(f"warning: {message}", file=sys.stderr),
    )
    for label, path in report.items():
        print(f"{label}: {path}")
    return 0

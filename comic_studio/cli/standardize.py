"""``comic-studio standardize PROJECT.comic --character NAME [--seed N] [--discard] [--models tiny]``.

SerialGen's stage 1: draws the character's standard sheet (front A-pose, plain white background,
neutral expression) from its reference and records it as the character's first outfit reference,
then saves the project. Run again to regenerate (a new seed unless ``--seed``); ``--discard`` removes
the sheet. ``render --backend serialgen`` then draws the character from its sheet.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from comic_studio.cli.options import add_project_edit_options
from comic_studio.cli.progress import StderrProgress


def register(subparsers: Any) -> argparse.ArgumentParser:
    command = subparsers.add_parser(
        "standardize", help="draw a character's standard sheet (SerialGen stage 1) and use it as its outfit reference"
    )
    command.add_argument("project", help="the .comic project (saved over itself, or to --out)")
    command.add_argument("--character", required=True, help="the character's name, alias or id")
    command.add_argument(
        "--standardizer",
        default="kit",
        help="kit (default: RaCig's models) or serialgen (the paper's stage 1 on Moore-AnimateAnyone's weights)",
    )
    command.add_argument("--seed", type=int, help="the sheet's seed (default: a new one, so a rerun regenerates)")
    command.add_argument("--discard", action="store_true", help="remove the character's standard sheet instead")
    add_project_edit_options(command)
    command.set_defaults(func=_cmd_standardize)
    return command


def _cmd_standardize(args: argparse.Namespace) -> int:
    from comic_studio.core.document import Document
    from comic_studio.workflows.anchors import character_named
    from comic_studio.workflows.standardize import discard_standard_sheet, standardize_character

    if args.models == "tiny":
        from comic_studio.testing.tiny import use_tiny_models

        kit = use_tiny_models()
        if args.standardizer == "serialgen":
            from comic_studio.testing.tiny_serialgen import use_tiny_serialgen

            use_tiny_serialgen(kit.root / "serialgen", sd15_kit=kit.root / "sd15")
    path = Path(args.project)
    doc = Document.open(path)
    character = character_named(doc.project, args.character)
    if args.discard:
        discard_standard_sheet(doc, character.id)
        saved = doc.save(Path(args.out) if args.out else path)
        print(f"{saved}: {character.name}'s standard sheet discarded")
        return 0
    report = StderrProgress(args.quiet)

    def progress(step: int, total: int, _preview: Any) -> bool:
        report(f"standardize {character.name}: step", step, total)
        return True

    digest, result = standardize_character(doc, character.id, seed=args.seed, standardizer=args.standardizer,
                                           on_step=progress)  # fmt: skip
    saved = doc.save(Path(args.out) if args.out else path)
    print(f"{saved}: {character.name} has a standard sheet ({digest[:12]}…, seed {result.seed}); "
          "it is now the character's first outfit reference")  # fmt: skip
    return 0

"""``comic-studio tryon PROJECT.comic --panel ID --character NAME --outfit IMAGE``.

Adds the outfit image to the character's body references, repaints the character's body in the
panel's current image (``--scope body``, the default) or renders the whole panel again with the
new outfit (``--scope panel``) with the racig backend, records the new image in the panel's history
(the old one stays) and saves the project (over itself, or to ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from comic_studio.cli.options import add_project_edit_options
from comic_studio.cli.progress import StderrProgress


def register(subparsers: Any) -> argparse.ArgumentParser:
    tryon = subparsers.add_parser("tryon", help="give a panel's character another outfit and repaint it (racig)")
    tryon.add_argument("project", help="the .comic project")
    tryon.add_argument("--panel", required=True, help="panel id, or PAGE.PANEL (1-based, reading order), e.g. 1.2")
    tryon.add_argument("--character", required=True, help="the character's name, alias or id")
    tryon.add_argument("--outfit", required=True, help="the outfit reference image")
    tryon.add_argument("--scope", choices=["body", "panel"], default="body",
                       help="body: repaint only the character's body (default); panel: render the whole panel again")  # fmt: skip
    add_project_edit_options(tryon)
    tryon.set_defaults(func=_cmd_tryon)
    return tryon


def _cmd_tryon(args: argparse.Namespace) -> int:
    from comic_studio.core.document import Document
    from comic_studio.core.errors import ComicStudioError
    from comic_studio.core.lookup import find_panel
    from comic_studio.workflows.tryon import find_character, try_on

    outfit = Path(args.outfit)
    if not outfit.is_file():
        raise ComicStudioError(f"{outfit}: no such image file (--outfit)")
    path = Path(args.project)
    doc = Document.open(path)
    panel = find_panel(doc.project, args.panel)
    character = find_character(doc.project, panel, args.character)
    if args.models == "tiny":
        from comic_studio.testing.tiny import use_tiny_models

        use_tiny_models()  # the tiny kit becomes racig's default models for this process

    report = StderrProgress(args.quiet)

    def progress(step: int, total: int, _preview: Any) -> bool:
        report("try-on: step", step, total)
        return True

    result = try_on(doc, panel.id, character.id, outfit, args.scope, on_step=progress)
    saved = doc.save(Path(args.out) if args.out else path)
    history = len(doc.project.find_panel(panel.id)[1].results)
    print(f"{saved}: {character.name} tried on {outfit.name} in panel {panel.id} "
          f"(result {result.id}, {history} in the panel's history)")  # fmt: skip
    return 0

"""``comic-studio anchor PROJECT.comic --character NAME [--from-panel PANEL]``.

Generates (or regenerates, with a new anchor seed) a character's identity anchor for the consistent
backend — or makes one from a panel's current image with ``--from-panel`` — records it on the
character and saves the project. ``render --backend consistent`` then uses the anchors.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

from comic_studio.cli.options import add_project_edit_options
from comic_studio.cli.progress import StderrProgress


def register(subparsers: Any) -> argparse.ArgumentParser:
    anchor = subparsers.add_parser("anchor", help="generate a character's identity anchor for the consistent backend")
    anchor.add_argument("project", help="the .comic project (saved over itself, or to --out)")
    anchor.add_argument("--character", required=True, help="the character's name, alias or id")
    anchor.add_argument(
        "--from-panel", help="use this panel's current image as the anchor: a panel id or PAGE.PANEL such as 1.2"
    )
    anchor.add_argument(
        "--seed", type=int, help="anchor seed (default: the project's for a first anchor, a new one to regenerate)"
    )
    anchor.add_argument("--size", type=int, help="anchor image side in pixels (default: the backend setting)")
    add_project_edit_options(anchor)
    anchor.set_defaults(func=_cmd_anchor)
    return anchor


def _cmd_anchor(args: argparse.Namespace) -> int:
    from comic_studio.core.document import Document
    from comic_studio.core.errors import ComicStudioError
    from comic_studio.core.lookup import find_panel
    from comic_studio.workflows.anchors import character_named, generate_anchor

    settings: dict[str, Any] = {}
    if args.models == "tiny":
        from comic_studio.testing.tiny import TINY_MAX_SIDE, use_tiny_models

        use_tiny_models()
        settings["anchor_size"] = TINY_MAX_SIDE
    if args.size is not None:
        settings["anchor_size"] = args.size
    path = Path(args.project)
    doc = Document.open(path)
    character = character_named(doc.project, args.character)
    picture = None
    if args.from_panel:
        panel = find_panel(doc.project, args.from_panel)
        if panel.result() is None:
            raise ComicStudioError(f"panel {args.from_panel!r} has no image yet to make an anchor from")
        picture = panel.result().asset
    if args.seed is not None:
        settings["anchor_seed"] = args.seed
    elif character.anchor is not None and picture is None:
        settings["anchor_seed"] = random.randrange(2**31)  # regenerate: another look, not the same bank again

    report = StderrProgress(args.quiet)

    def progress(step: int, total: int, _preview: Any) -> bool:
        report(f"anchor {character.name}: step", step, total)
        return True

    anchor = generate_anchor(doc, character.id, picture, settings, on_step=progress)
    saved = doc.save(Path(args.out) if args.out else path)
    where = "stored in the project" if anchor.stored_in_project else "too big for the project: kept in the bank folder"
    print(f"{saved}: {character.name} has a new {anchor.source} anchor (bank {anchor.bank[:12]}…, "
          f"{anchor.bank_bytes:,} bytes, {where})")  # fmt: skip
    return 0

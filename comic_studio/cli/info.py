"""``comic-studio info FILE.comic [--json]``: a project's title, size and cast."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    info = subparsers.add_parser("info", help="summarise a .comic project")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_cmd_info)
    return info


def _cmd_info(args: argparse.Namespace) -> int:
    from comic_studio.core.projectfile import load_project

    project, _assets = load_project(Path(args.file))
    panels = sum(len(p.panels) for p in project.pages)
    info = {
        "file": str(args.file),
        "title": project.title,
        "schema_version": project.schema_version,
        "pages": len(project.pages),
        "panels": panels,
        "characters": [c.name for c in project.characters],
        "beats": len(project.story.beats()),
        "page_format": project.page_format.preset,
        "reading_direction": project.reading_direction.value,
    }
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        for key, value in info.items():
            if isinstance(value, list):
                value = ", ".join(value) or "-"
            print(f"{key:>18}: {value}")
    return 0

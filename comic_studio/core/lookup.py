"""Finding a panel or a character from what a person types (the CLI's ``--panel`` / ``--character``):
an id, ``PAGE.PANEL``, a name or an alias. Errors say what exists instead."""

from __future__ import annotations

from collections.abc import Iterable

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character, Panel, Project


def find_panel(project: Project, spec: str) -> Panel:
    """A panel by id, or by ``PAGE.PANEL`` (1-based page number, panel number in reading order)."""
    found = project.find_panel(spec)
    if found is not None:
        return found[1]
    page_no, dot, panel_no = spec.partition(".")
    if dot and page_no.isdigit() and panel_no.isdigit():
        p, n = int(page_no), int(panel_no)
        if not 1 <= p <= len(project.pages):
            raise ComicStudioError(f"panel {spec!r}: there is no page {p} (the project has {len(project.pages)})")
        panels = project.pages[p - 1].panels_in_order()
        if not 1 <= n <= len(panels):
            raise ComicStudioError(f"panel {spec!r}: page {p} has {len(panels)} panels")
        return panels[n - 1]
    raise ComicStudioError(f"no panel {spec!r}: give a panel id or PAGE.PANEL such as 1.2")


def find_character(characters: Iterable[Character], name: str, where: str) -> Character:
    """The character among ``characters`` called ``name`` (its id, name or an alias;
    case-insensitive); otherwise an error "no character … in ``where``"."""
    wanted = name.strip().casefold()
    for character in characters:
        if character.id == name or wanted in (n.casefold() for n in character.all_names()):
            return character
    raise ComicStudioError(f"no character {name!r} in {where}")


def panel_label(project: Project, panel_id: str | None) -> str:
    """How messages name a panel: ``page 2, panel 3`` (the numbers ``find_panel`` accepts as ``2.3``)."""
    found = project.find_panel(panel_id) if panel_id else None
    if found is None:
        return f"panel {panel_id!r}"
    page, panel = found
    return f"page {project.pages.index(page) + 1}, panel {page.panels_in_order().index(panel) + 1}"

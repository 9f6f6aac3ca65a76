"""Import and export of character libraries from the dock's menu.

A library is a folder holding ``characters.json`` and ``images/`` (written by
:func:`comic_studio.core.character_file.save_characters`); import also accepts any character JSON
file whose image paths are relative to it (the CLI's ``--characters`` format). Import is one undo
step; export never changes the document.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from comic_studio.core import character_edits
from comic_studio.core.character_file import load_characters, save_characters
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character
from comic_studio.ui.context import StudioContext

LIBRARY_FILE = "characters.json"


def library_json(path: str | Path) -> Path:
    """The JSON file of a library given as its folder or as the file itself."""
    path = Path(path)
    return path / LIBRARY_FILE if path.is_dir() else path


def import_library(ctx: StudioContext, path: str | Path) -> list[Character]:
    """Add every character of the library at ``path`` (one undo step); images join the assets.
    Errors (missing file, bad JSON, broken image) become a status message and add nothing."""
    source = library_json(path)
    try:
        characters = load_characters(source, ctx.document.assets)
    except ComicStudioError as exc:
        ctx.message.emit(str(exc))
        return []
    if not characters:
        ctx.message.emit(f"{source}: the library holds no characters")
        return []
    added = ctx.edit(character_edits.import_characters, characters) or []
    if added:
        ctx.message.emit(f"Imported {len(added)} character(s) from {source}")
    return added


def export_library(ctx: StudioContext, folder: str | Path, character_ids: list[str] | None = None) -> Path | None:
    """Write the characters (all, or those named) with their reference images into ``folder``.
    Returns the JSON file written, or None after reporting the problem."""
    project = ctx.document.project
    wanted = project.characters if not character_ids else [c for c in project.characters if c.id in character_ids]
    if not wanted:
        ctx.message.emit("There are no characters to export")
        return None
    folder = Path(folder)
    try:
        save_characters(folder, wanted, ctx.document.assets)
    except OSError as exc:
        ctx.message.emit(f"{folder}: cannot write the character library ({exc.strerror or exc})")
        return None
    except ComicStudioError as exc:
        ctx.message.emit(str(exc))
        return None
    ctx.message.emit(f"Exported {len(wanted)} character(s) to {folder}")
    return folder / LIBRARY_FILE


# Dialogs are module-level functions so tests (and scripted sessions) can replace them.
def ask_import_path(parent: QWidget) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, "Import characters", "", f"Character library ({LIBRARY_FILE} *.json)")
    return path


def ask_export_folder(parent: QWidget) -> str:
    return QFileDialog.getExistingDirectory(parent, "Export characters to folder")


def build_library_menu(ctx: StudioContext, parent: QWidget, selected_ids=lambda: []) -> QMenu:
    """The dock's "Library" menu: import, export all, export selected."""
    menu = QMenu("Library", parent)
    import_action = QAction("Import characters…", menu)
    import_action.triggered.connect(lambda: (path := ask_import_path(parent)) and import_library(ctx, path))
    export_all = QAction("Export all characters…", menu)
    export_all.triggered.connect(lambda: (folder := ask_export_folder(parent)) and export_library(ctx, folder))
    export_selected = QAction("Export selected characters…", menu)
    export_selected.triggered.connect(
        lambda: (ids := selected_ids()) and (folder := ask_export_folder(parent)) and export_library(ctx, folder, ids)
    )
    menu.aboutToShow.connect(lambda: export_selected.setEnabled(bool(selected_ids())))
    for action in (import_action, export_all, export_selected):
        menu.addAction(action)
    return menu

"""The main window's commands declared as data: id, label, shortcut, handler name, and where
they appear. :func:`build_actions` turns the table into QActions; :func:`build_menus` and
:func:`build_toolbar` lay them out. Keeping the table in one place means a shortcut or a label is
changed once, and tests can check every action is reachable and has a working handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QToolBar, QWidget

StdKey = QKeySequence.StandardKey


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    handler: str = ""
    """Name of the window method called on trigger (``toggled(bool)`` for checkable actions)."""
    shortcut: StdKey | str | None = None
    tip: str = ""
    checkable: bool = False
    checked: bool = False
    group: str = ""
    """Checkable actions sharing a group are mutually exclusive (tools, themes)."""
    data: object = None
    """Passed to the handler as its argument for grouped actions (tool name, theme name)."""


TOOLS = ("select", "speech", "thought", "shout", "whisper", "caption", "sfx")
_TOOL_KEYS = {"select": "V", "speech": "S", "thought": "T", "shout": "H", "whisper": "W", "caption": "C", "sfx": "X"}
"""Mnemonic single keys (S speech, T thought, H shout, W whisper, C caption, X for SFX; V select, as
in Krita and Photoshop). Plain keys clash with nothing else: every other shortcut has a modifier,
and a text field with focus takes its own keystrokes first."""
_TOOL_LABELS = {
    "select": "Se&lect",
    "speech": "&Speech",
    "thought": "&Thought",
    "shout": "S&hout",
    "whisper": "&Whisper",
    "caption": "&Caption",
    "sfx": "SF&X",
}
"""Menu texts whose underlined letter is the tool's key (Select has no V: its mnemonic is L)."""

ACTIONS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("new", "&New", "new_project", StdKey.New, "Start a new project"),
    ActionSpec("open", "&Open…", "open_project", StdKey.Open, "Open a .comic project"),
    ActionSpec(
        "sample",
        "Open Sa&mple Project",
        "open_sample_project",
        None,
        "The Lighthouse Key: a short story laid out with its cast, ready to render",
    ),  # fmt: skip
    ActionSpec("save", "&Save", "save", StdKey.Save, "Save the project"),
    ActionSpec("save_as", "Save &As…", "save_as", StdKey.SaveAs, "Save the project under a new name"),
    ActionSpec("book", "&Book…", "show_book", None, "Title, authors, series, language, reading direction, page format"),
    ActionSpec("export_pdf", "Export &PDF…", "export_pdf", "Ctrl+E", "Export a print PDF"),
    ActionSpec("export_png", "Export P&NG Pages…", "export_png", None, "Export every page as a PNG"),
    ActionSpec("export_cbz", "Export &CBZ…", "export_cbz", None, "Export a comic book archive"),
    ActionSpec("quit", "&Quit", "close", StdKey.Quit, "Quit Comic Studio"),
    # Edit (undo/redo come from the QUndoStack and are added by the window)
    ActionSpec("delete", "&Delete", "delete_selected", StdKey.Delete, "Delete the selection"),
    ActionSpec("preferences", "&Preferences…", "show_preferences", StdKey.Preferences, "Folders, defaults, theme"),
    ActionSpec("models", "&Models…", "show_models", None, "Installed and missing model weights, downloads"),
    ActionSpec(
        "train_anime",
        "Train &AnimeAdapter…",
        "show_anime_training",
        None,
        "Train AnimeAdapter weights (anime characters from one reference) in the Queue",
    ),  # fmt: skip
    # View
    ActionSpec("zoom_in", "Zoom &In", "zoom_in", StdKey.ZoomIn),
    ActionSpec("zoom_out", "Zoom &Out", "zoom_out", StdKey.ZoomOut),
    ActionSpec("fit_page", "&Fit Page", "fit_page", "Ctrl+0"),
    ActionSpec("actual_size", "&Actual Size", "actual_size", "Ctrl+1"),
    ActionSpec(
        "reading_order",
        "&Reading Order",
        "set_show_reading_order",
        "Ctrl+Shift+R",
        "Show the reading order numbers",
        checkable=True,
    ),
    ActionSpec(
        "guides",
        "&Guides",
        "set_show_guides",
        "Ctrl+;",
        "Show bleed, trim and safe-area guides",
        checkable=True,
        checked=True,
    ),
    ActionSpec(
        "pose_overlay",
        "Show &Poses and Masks",
        "set_show_pose_overlay",
        "Ctrl+Shift+P",
        "Show each panel's figures (drag to move, corner to scale), head/body masks and names",
        checkable=True,
    ),
    *(
        ActionSpec(f"theme_{t}", t.capitalize(), "set_theme", None, checkable=True, group="theme", data=t)
        for t in ("system", "light", "dark")
    ),
    # Page
    ActionSpec("add_page", "&Add Page", "add_page", "Ctrl+Shift+N", "Add a page after the current one"),
    ActionSpec("duplicate_page", "D&uplicate Page", "duplicate_page", "Ctrl+Shift+D"),
    ActionSpec("delete_page", "&Delete Page", "delete_page", "Ctrl+Shift+Del"),
    # Panel
    ActionSpec(
        "split_h", "Split &Horizontal", "split_horizontal", "Ctrl+Shift+H", "Split the panel into a top and a bottom"
    ),
    ActionSpec(
        "split_v", "Split &Vertical", "split_vertical", "Ctrl+Shift+V", "Split the panel into a left and a right"
    ),
    ActionSpec("split_d", "Split &Diagonal", "split_diagonal", None, "Split the panel along a slanted gutter"),
    ActionSpec("merge", "&Merge Panels", "merge_selected", "Ctrl+M", "Merge two neighbouring panels"),
    ActionSpec("render_panel", "Render &Panel", "render_panel", "Ctrl+R", "Render the selected panels"),
    ActionSpec("render_page", "Render Pa&ge", "render_page", "Ctrl+Shift+G", "Render every panel of the page"),
    ActionSpec("render_all", "Render &All", "render_all", "Ctrl+Shift+A", "Render every panel of the book"),
    # Help
    ActionSpec("about", "&About Comic Studio", "show_about"),
    ActionSpec("plugins", "&Plugins…", "show_plugins", None, "Installed generation backends and plugin errors"),
    # Tools
    *(
        ActionSpec(
            f"tool_{t}",
            _TOOL_LABELS[t],
            "set_tool",
            _TOOL_KEYS[t],
            f"{_TOOL_LABELS[t].replace('&', '')} tool ({_TOOL_KEYS[t]})",
            checkable=True,
            checked=t == "select",
            group="tool",
            data=t,
        )
        for t in TOOLS
    ),
)

MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "&File",
        (
            "new",
            "open",
            "@recent",
            "-",
            "save",
            "save_as",
            "-",
            "book",
            "-",
            "export_pdf",
            "export_png",
            "export_cbz",
            "-",
            "quit",
        ),
    ),
    ("&Edit", ("@undo", "@redo", "-", "delete", "-", "preferences", "models")),
    (
        "&View",
        (
            "zoom_in",
            "zoom_out",
            "fit_page",
            "actual_size",
            "-",
            "reading_order",
            "guides",
            "pose_overlay",
            "-",
            "@theme",
            "@docks",
        ),
    ),
    ("&Tools", (*(f"tool_{t}" for t in TOOLS), "-", "train_anime")),
    ("&Page", ("add_page", "duplicate_page", "delete_page", "-", "@templates")),
    ("P&anel", ("split_h", "split_v", "split_d", "merge", "-", "render_panel", "render_page", "render_all")),
    ("&Help", ("plugins", "-", "about")),
)
"""Menu titles and their entries: an action id, ``-`` for a separator, or ``@name`` for a slot
the window fills (undo/redo from the undo stack, recent files, theme, dock toggles, templates)."""

TOOLBAR: tuple[str, ...] = (
    "new",
    "open",
    "save",
    "-",
    "@undo",
    "@redo",
    "-",
    *(f"tool_{t}" for t in TOOLS),
    "-",
    "zoom_out",
    "zoom_in",
    "fit_page",
    "-",
    "render_panel",
    "render_page",
    "render_all",
)


def build_actions(owner: QWidget, resolve: Callable[[str], Callable]) -> dict[str, QAction]:
    """Create one QAction per spec, parented to ``owner`` and wired to ``resolve(handler)``."""
    actions: dict[str, QAction] = {}
    groups: dict[str, QActionGroup] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, owner)
        action.setObjectName(f"action_{spec.id}")
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        if spec.tip:
            action.setStatusTip(spec.tip)
            action.setToolTip(spec.tip)
        if spec.checkable:
            action.setCheckable(True)
            action.setChecked(spec.checked)
        if spec.group:
            group = groups.get(spec.group)
            if group is None:
                group = groups[spec.group] = QActionGroup(owner)
                group.setExclusive(True)
            group.addAction(action)
        if spec.handler:
            handler = resolve(spec.handler)
            if spec.group:
                value = spec.data
                action.triggered.connect(lambda _checked=False, h=handler, v=value: h(v))
            elif spec.checkable:
                action.toggled.connect(handler)
            else:
                action.triggered.connect(lambda _checked=False, h=handler: h())
        actions[spec.id] = action
    return actions


def build_menus(
    menubar: QMenuBar, actions: dict[str, QAction], slots: dict[str, QAction | QMenu | list]
) -> dict[str, QMenu]:
    """Fill ``menubar`` from :data:`MENUS`. ``slots`` maps ``@name`` to an action, a submenu, or
    a list of actions; an unknown name is a programming error and raises."""
    menus: dict[str, QMenu] = {}
    for title, entries in MENUS:
        menu = menubar.addMenu(title)
        menu.setObjectName("menu_" + title.replace("&", "").lower())
        for entry in entries:
            _add_entry(menu, entry, actions, slots)
        menus[title.replace("&", "")] = menu
    return menus


def build_toolbar(toolbar: QToolBar, actions: dict[str, QAction], slots: dict[str, QAction | QMenu | list]) -> None:
    for entry in TOOLBAR:
        _add_entry(toolbar, entry, actions, slots)


def _add_entry(container: QMenu | QToolBar, entry: str, actions: dict[str, QAction], slots: dict) -> None:
    if entry == "-":
        container.addSeparator()
    elif entry.startswith("@"):
        item = slots[entry[1:]]
        if isinstance(item, QMenu):
            container.addMenu(item) if isinstance(container, QMenu) else container.addAction(item.menuAction())
        elif isinstance(item, list):
            container.addActions(item)
        else:
            container.addAction(item)
    else:
        container.addAction(actions[entry])

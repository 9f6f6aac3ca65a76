"""The Plugins dialog: which generation backends are installed, where each came from, and the
plugins that failed to load with their one-line reasons (the traceback went to the log, once).

Origins are put in the user's words: "built-in" for comic_studio's own backends, the package name
and version for a pip-installed plugin, the file path for one in the user plugins folder.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from comic_studio.generation import registry

BACKEND_COLUMNS = ("Name", "Display name", "Capabilities", "Origin")
ORIGIN = 3
ERROR_COLUMNS = ("Plugin", "Problem")


def describe_origin(cls: type, origin: str) -> str:
    """The registry's origin string → what a user recognises."""
    top = cls.__module__.split(".")[0]
    if origin.startswith("entry point"):
        if top == "comic_studio":
            return "built-in"
        dists = metadata.packages_distributions().get(top, [])
        if dists:
            try:
                return f"package {dists[0]} {metadata.version(dists[0])}"
            except metadata.PackageNotFoundError:
                return f"package {dists[0]}"
        return f"package providing {top}"
    if origin.startswith("user plugin"):
        path = origin.removeprefix("user plugin").strip().strip("'\"")
        return f"user plugins folder: {path}"
    return origin


class PluginsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.setObjectName("plugins_dialog")
        self.resize(960, 460)

        self.backends_table = _table(BACKEND_COLUMNS, "plugins_backends")
        self.errors_table = _table(ERROR_COLUMNS, "plugins_errors")
        self.errors_table.setWordWrap(True)  # a reason is worth reading in full
        self.backends_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long plugin paths keep both ends
        # Origins (paths) need the room more than capability lists, which have tooltips.
        self.backends_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        self.backends_table.setColumnWidth(2, 220)
        self.errors_box = QGroupBox("Plugins that failed to load")
        box = QVBoxLayout(self.errors_box)
        box.addWidget(self.errors_table)
        self.no_errors = QLabel("Every plugin loaded.")
        box.addWidget(self.no_errors)

        folder = registry.user_plugins_dir()
        self.folder = folder
        self.folder_label = QLabel()
        self.folder_label.setObjectName("plugins_folder")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setWordWrap(True)
        if folder is None:
            self.folder_label.setText(f"User plugins are off (${registry.PLUGINS_DIR_ENV} is empty).")
        else:
            self.folder_label.setText(f"User plugins folder: {folder}")
        self.open_button = QPushButton("Open Plugins Folder")
        self.open_button.setEnabled(folder is not None)
        self.open_button.setToolTip("Put a plugin .py file or folder here, then press Reload")
        self.open_button.clicked.connect(self.open_plugins_folder)
        reload_button = QPushButton("Reload")
        reload_button.setToolTip("Scan the installed and user plugins again")
        reload_button.clicked.connect(self.reload)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.open_button)
        folder_row.addWidget(reload_button)
        folder_row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Installed generation backends:"))
        layout.addWidget(self.backends_table, 2)
        layout.addWidget(self.errors_box, 1)
        layout.addLayout(folder_row)
        self.populate()

    def populate(self) -> None:
        backends = registry.available_backends()
        origins = registry.backend_origins()
        self.backends_table.setRowCount(len(backends))
        for row, (name, cls) in enumerate(backends.items()):
            origin = describe_origin(cls, origins.get(name, ""))
            values = (name, cls.display_name or name, ", ".join(sorted(cls.capabilities)) or "—", origin)
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(origins.get(name, "") if col == ORIGIN else value)
                self.backends_table.setItem(row, col, item)
        errors = registry.plugin_errors()
        self.errors_table.setRowCount(len(errors))
        for row, (name, message) in enumerate(sorted(errors.items())):
            # The user-plugin prefix repeats the path the plugin column and folder line already show.
            short = re.sub(r"^user plugin '[^']*': ", "", message)
            for col, value in enumerate((name, short)):
                item = QTableWidgetItem(value)
                item.setToolTip(message)
                self.errors_table.setItem(row, col, item)
        self.errors_table.resizeRowsToContents()
        self.errors_table.setVisible(bool(errors))
        self.no_errors.setVisible(not errors)
        self.errors_box.setTitle(
            f"Plugins that failed to load ({len(errors)})" if errors else "Plugins that failed to load"
        )

    def reload(self) -> None:
        registry.refresh()
        self.populate()

    def backend_names(self) -> list[str]:
        return [self.backends_table.item(r, 0).text() for r in range(self.backends_table.rowCount())]

    def error_rows(self) -> dict[str, str]:
        return {
            self.errors_table.item(r, 0).text(): self.errors_table.item(r, 1).text()
            for r in range(self.errors_table.rowCount())
        }

    def open_plugins_folder(self) -> bool:
        """Create the folder if needed (so there is somewhere to drop a plugin) and show it."""
        if self.folder is None:
            return False
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder))))


def _table(columns: tuple[str, ...], name: str) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(columns)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().hide()
    header = table.horizontalHeader()
    for col in range(len(columns) - 1):
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(len(columns) - 1, QHeaderView.ResizeMode.Stretch)
    table.setWordWrap(False)
    return table

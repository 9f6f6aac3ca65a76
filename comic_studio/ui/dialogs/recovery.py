"""The start-up question "restore unsaved work?" and the restore itself.

:func:`restore_document` builds a document from a recovery file that belongs to the user's own
file (``Save`` goes there, not into the recovery folder) and reads its images from a copy in its
session cache, because the recovery file it was read from is replaced by the next autosave and
deleted by the next save.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from comic_studio.core.autosave import Recovery, holds_newer_work
from comic_studio.core.document import Document
from comic_studio.core.projectfile import load_project

RESTORE, DISCARD, LATER = "restore", "discard", "later"


def describe(recovery: Recovery) -> str:
    when = recovery.saved_at.astimezone().strftime("%Y-%m-%d %H:%M")
    where = str(recovery.source_path) if recovery.source_path else "a project that was never saved"
    return (
        f"Comic Studio found unsaved work from {when}:\n\n“{recovery.title or 'Untitled'}” — {where}\n\n"
        "Restore it, discard it, or decide later (it is offered again at the next start)."
    )


class RecoveryDialog(QDialog):
    """Restore / Discard / Later for one recovery file; :attr:`choice` holds the answer."""

    def __init__(self, recovery: Recovery, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Recover Unsaved Work")
        self.setObjectName("recovery_dialog")
        self.choice = LATER
        layout = QVBoxLayout(self)
        text = QLabel(describe(recovery))
        text.setWordWrap(True)
        layout.addWidget(text)
        buttons = QDialogButtonBox(self)
        restore = buttons.addButton("Restore", QDialogButtonBox.ButtonRole.AcceptRole)
        discard = buttons.addButton("Discard", QDialogButtonBox.ButtonRole.DestructiveRole)
        later = buttons.addButton("Later", QDialogButtonBox.ButtonRole.RejectRole)
        restore.setDefault(True)
        restore.clicked.connect(lambda: self._finish(RESTORE))
        discard.clicked.connect(lambda: self._finish(DISCARD))
        later.clicked.connect(lambda: self._finish(LATER))
        layout.addWidget(buttons)

    def _finish(self, choice: str) -> None:
        self.choice = choice
        self.accept() if choice != LATER else self.reject()


def ask_recovery(recovery: Recovery, parent: QWidget | None = None) -> str:
    dialog = RecoveryDialog(recovery, parent)
    dialog.exec()
    return dialog.choice


def restore_document(recovery: Recovery, saves_to: Path | None = None) -> Document:
    """The recovered document, pointing at ``saves_to`` or else the user's original file (or none)."""
    project, assets = load_project(recovery.path, stage=True)
    return Document(project, assets, saves_to or recovery.source_path)


def worth_offering(recovery: Recovery) -> bool:
    """Whether the recovery holds work newer than the user's file (always for unsaved projects)."""
    return holds_newer_work(recovery)

"""File ▸ Book…: the book's title, authors, series, number, language, summary, reading direction
and page format in one dialog. OK applies what changed as one undo step
(:func:`comic_studio.core.book.set_book`); a new page format re-lays every page proportionally.

Exports read these fields: ComicInfo.xml (Title, Series, Number, Writer, LanguageISO, Manga) and the
PDF's document information (Title, Author, Subject, Keywords)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core.book import set_book
from comic_studio.core.layout import load_presets
from comic_studio.core.layout.presets import to_mm
from comic_studio.core.model import PageFormat, ReadingDirection
from comic_studio.ui.context import StudioContext

LANGUAGES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Chinese",
}
"""The common choices; any other ISO 639 code can be typed into the (editable) box."""

_KEEP = "__current__"


def _size(fmt: PageFormat) -> str:
    return f"{to_mm(fmt.width):.0f} × {to_mm(fmt.height):.0f} mm"


class BookDialog(QDialog):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Book")
        self.setObjectName("bookDialog")
        project = ctx.document.project
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)

        self.title = QLineEdit(project.title, self)
        self.author = QLineEdit(project.author, self)
        self.author.setPlaceholderText("Names separated by commas")
        self.series = QLineEdit(project.series, self)
        self.number = QLineEdit(project.number, self)
        self.number.setPlaceholderText("Issue or volume number")
        self.language = QComboBox(self)
        self.language.setEditable(True)
        for code, name in LANGUAGES.items():
            self.language.addItem(f"{name} ({code})", code)
        index = self.language.findData(project.language)
        if index < 0:
            self.language.addItem(project.language, project.language)
            index = self.language.count() - 1
        self.language.setCurrentIndex(index)
        self.direction = QComboBox(self)
        self.direction.addItem("Left to right (western comics)", ReadingDirection.LTR.value)
        self.direction.addItem("Right to left (manga)", ReadingDirection.RTL.value)
        self.direction.setCurrentIndex(self.direction.findData(ReadingDirection(project.reading_direction).value))
        self.page_format = QComboBox(self)
        current = project.page_format
        self.page_format.addItem(f"Current: {current.preset} · {_size(current)}", _KEEP)
        self.presets = {pid: p for pid, p in load_presets().items() if pid != "custom"}
        for pid, preset in self.presets.items():
            self.page_format.addItem(preset.name, pid)  # the name states the size
        self.page_format.setToolTip(
            "A new format re-lays every page in proportion: gutters keep their width, balloons their size "
            "(undo brings the old layout back)"
        )
        self.summary = QPlainTextEdit(project.summary, self)
        self.summary.setFixedHeight(70)

        form.addRow("Title:", self.title)
        form.addRow("Author(s):", self.author)
        form.addRow("Series:", self.series)
        form.addRow("Number:", self.number)
        form.addRow("Language:", self.language)
        form.addRow("Reading direction:", self.direction)
        form.addRow("Page format:", self.page_format)
        form.addRow("Summary:", self.summary)
        note = QLabel("Exports use these: ComicInfo.xml in a CBZ, the document information of a PDF.", self)
        note.setWordWrap(True)
        note.setEnabled(False)
        layout.addWidget(note)
        self.problem = QLabel(self)
        self.problem.setObjectName("bookProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b;")
        self.problem.hide()
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.apply)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def values(self) -> dict[str, Any]:
        typed = self.language.currentText().strip()
        code = self.language.currentData() if self.language.itemText(self.language.currentIndex()) == typed else typed
        return {
            "title": self.title.text().strip() or "Untitled comic",
            "author": self.author.text().strip(),
            "series": self.series.text().strip(),
            "number": self.number.text().strip(),
            "language": (code or "en")[:16],
            "summary": self.summary.toPlainText().strip(),
        }

    def chosen_format(self) -> PageFormat | None:
        pid = self.page_format.currentData()
        return None if pid == _KEEP else self.presets[pid].format.model_copy()

    def apply(self) -> None:
        """Apply (one undo step) and close; a refused change keeps the dialog open and says why."""
        messages: list[str] = []
        self.ctx.message.connect(messages.append)
        try:
            before = self.ctx.document.undo_stack.index
            self.ctx.edit(
                set_book,
                info=self.values(),
                reading_direction=ReadingDirection(self.direction.currentData()),
                page_format=self.chosen_format(),
            )
        finally:
            self.ctx.message.disconnect(messages.append)
        if messages and self.ctx.document.undo_stack.index == before:
            self.problem.setText(messages[-1])
            self.problem.show()
            return
        self.accept()


__all__ = ["BookDialog"]

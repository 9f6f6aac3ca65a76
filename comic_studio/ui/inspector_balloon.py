"""The Inspector's balloon section: the selected balloon's speaker, kind, type size, tail and text.

Shown above the panel's sections whenever a balloon is selected on the canvas. Every change is one
undoable edit through ``ctx.edit``; typing in the text and stepping the type size merge into one
step until the field loses focus (as typing in the canvas's own editor does). Editing the text,
the kind or the size grows the balloon (the type size never shrinks to fit, see
:mod:`comic_studio.core.lettering.grow`); when the text cannot fit the panel, the note under the
text says why and what to do.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QWidget,
)

from comic_studio.core import editing
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.lettering.grow import fit_problem
from comic_studio.core.model import Balloon, BalloonKind, Panel
from comic_studio.ui.canvas import tools
from comic_studio.ui.context import StudioContext
from comic_studio.ui.focus_out import FocusOut

TAILED = (BalloonKind.SPEECH, BalloonKind.THOUGHT, BalloonKind.SHOUT, BalloonKind.WHISPER)
"""Kinds that have a speaker and a tail (captions and SFX have neither)."""
NO_SPEAKER = ""


class BalloonInspector(QGroupBox):
    """Properties of ``ctx.selected_balloon_id``; hidden while no balloon is selected."""

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None):
        super().__init__("Balloon", parent)
        self.ctx = ctx
        self.setObjectName("balloonInspector")
        self.balloon_id: str | None = None
        self._updating = False
        form = QFormLayout(self)
        self.speaker = QComboBox(self)
        self.speaker.setObjectName("balloonSpeaker")
        self.speaker.setToolTip("Who says it: the tail points at this character's head")
        self.speaker.activated.connect(self._speaker_chosen)
        self.kind = QComboBox(self)
        self.kind.setObjectName("balloonKind")
        for kind in BalloonKind:
            self.kind.addItem(kind.value.upper() if kind is BalloonKind.SFX else kind.value.capitalize(), kind.value)
        self.kind.activated.connect(self._kind_chosen)
        self.size = QDoubleSpinBox(self)
        self.size.setObjectName("balloonTypeSize")
        self.size.setRange(4.0, 72.0)
        self.size.setSingleStep(0.5)
        self.size.setDecimals(1)
        self.size.setSuffix(" pt")
        self.size.setKeyboardTracking(False)
        self.size.setToolTip(
            "The lettering's type size. Text is never shrunk to fit: the balloon grows instead, so "
            "every balloon of the book reads at the same size. New balloons take the book's size."
        )
        self.size.valueChanged.connect(self._size_edited)
        self.size.installEventFilter(FocusOut(self._end_typing, self))
        self.tail = QCheckBox("Tail", self)
        self.tail.setObjectName("balloonTail")
        self.tail.setToolTip("On: the tail points at the speaker (the nearest character when none is chosen)")
        self.tail.toggled.connect(self._tail_toggled)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("balloonText")
        self.text.setFixedHeight(70)
        self.text.setPlaceholderText("Type the balloon's text")
        self.text.textChanged.connect(self._text_edited)
        self.text.installEventFilter(FocusOut(self._end_typing, self))
        self.note = QLabel(self)
        self.note.setObjectName("balloonFitNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #c0392b;")
        form.addRow("Speaker", self.speaker)
        form.addRow("Kind", self.kind)
        form.addRow("Type size", self.size)
        form.addRow("", self.tail)
        form.addRow("Text", self.text)
        form.addRow(self.note)
        ctx.selection_changed.connect(self._follow_selection)
        ctx.document_changed.connect(self._on_document_changed)
        ctx.document_replaced.connect(lambda _doc: self._follow_selection())
        self._follow_selection()

    # ------------------------------------------------------------------ following
    def found(self) -> tuple[Balloon, Panel] | None:
        if self.balloon_id is None:
            return None
        for page in self.ctx.document.project.pages:
            for panel in page.panels:
                for balloon in panel.balloons:
                    if balloon.id == self.balloon_id:
                        return balloon, panel
        return None

    def _follow_selection(self) -> None:
        wanted = self.ctx.selected_balloon_id
        if wanted != self.balloon_id:
            self._end_typing()  # leaving a balloon ends its typing step
            self.balloon_id = wanted
        self.refresh()

    def _on_document_changed(self, changes: Changes) -> None:
        if self.balloon_id is not None and changes.touches(
            ChangeKind.BALLOONS | ChangeKind.PANELS | ChangeKind.CHARACTERS | ChangeKind.PAGES
        ):
            self.refresh()

    def refresh(self) -> None:
        """Show the balloon's current state (never emits edits)."""
        found = self.found()
        self.setVisible(found is not None)
        if found is None:
            return
        balloon, panel = found
        project = self.ctx.document.project
        self._updating = True
        try:
            self.speaker.clear()
            self.speaker.addItem("(no speaker)", NO_SPEAKER)
            in_panel = [p.character_id for p in panel.characters]
            others = [c.id for c in project.characters if c.id not in in_panel]
            for cid in [*in_panel, *others]:
                character = project.character(cid)
                if character is not None:
                    suffix = "" if cid in in_panel else " (not in this panel)"
                    self.speaker.addItem(character.name + suffix, cid)
            target = balloon.tail.character_id if balloon.tail and balloon.tail.character_id else NO_SPEAKER
            index = self.speaker.findData(target)
            self.speaker.setCurrentIndex(max(index, 0))
            tailed = balloon.kind in TAILED
            self.speaker.setEnabled(tailed)
            self.tail.setEnabled(tailed)
            self.tail.setChecked(tailed and balloon.tail is not None)
            self.kind.setCurrentIndex(self.kind.findData(BalloonKind(balloon.kind).value))
            self.size.setValue(balloon.style.font_size)
            self.size.setEnabled(balloon.kind is not BalloonKind.SFX)  # SFX: the box sets the size
            if self.text.toPlainText() != balloon.text:
                self.text.setPlainText(balloon.text)
            problem = fit_problem(balloon, panel)
            self.note.setText(problem)
            self.note.setVisible(bool(problem))
        finally:
            self._updating = False

    # ------------------------------------------------------------------ edits
    def _end_typing(self) -> None:
        self.ctx.document.undo_stack.break_merge()

    def _text_edited(self) -> None:
        if not self._updating and self.balloon_id is not None:
            self.ctx.edit(editing.edit_balloon_text, self.balloon_id, self.text.toPlainText())

    def _size_edited(self, value: float) -> None:
        found = self.found()
        if self._updating or found is None or abs(found[0].style.font_size - value) < 1e-9:
            return
        self.ctx.edit(editing.set_balloon_type_size, found[0].id, value)

    def _kind_chosen(self, index: int) -> None:
        found = self.found()
        kind = BalloonKind(self.kind.itemData(index))
        if found is not None and kind != found[0].kind:
            self.ctx.edit(editing.set_balloon_kind, found[0].id, kind)

    def _speaker_chosen(self, index: int) -> None:
        found = self.found()
        if found is None:
            return
        speaker = self.speaker.itemData(index) or None
        current = found[0].tail.character_id if found[0].tail else None
        if speaker != current:
            # A speaker aims the tail at them; "(no speaker)" takes the tail away.
            self.ctx.edit(editing.retarget_tail, found[0].id, character_id=speaker)

    def _tail_toggled(self, on: bool) -> None:
        found = self.found()
        if self._updating or found is None or on == (found[0].tail is not None):
            return
        balloon, panel = found
        if not on:
            self.ctx.edit(editing.retarget_tail, balloon.id)
            return
        speaker = tools.nearest_speaker(panel, (balloon.box.cx, balloon.box.cy))
        if speaker is not None:
            self.ctx.edit(editing.retarget_tail, balloon.id, character_id=speaker)
        else:
            # Nobody in the panel: a short tail pointing down from the balloon, to be dragged.
            below = (balloon.box.cx, balloon.box.y + balloon.box.h + max(12.0, 0.5 * balloon.box.h))
            self.ctx.edit(editing.retarget_tail, balloon.id, point=tools.aim_for_tip(balloon, below))


__all__ = ["BalloonInspector"]

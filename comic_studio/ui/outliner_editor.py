"""The beat editor under the outliner's tree: every field of the selected beat.

Each change is one undoable :func:`~comic_studio.core.story_edits.edit_beat` (typing in a field
merges into one step per field), which marks the beat as the author's. The editor reloads from
change reports — after undo, or edits made elsewhere — without disturbing the field being typed in.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStackedLayout,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import story_edits
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.model import Beat, DialogueKind, DialogueLine, ShotType
from comic_studio.ui.context import StudioContext

_NONE = "(none)"


def _sfx(text: str) -> list[str]:
    """ "KRAK / hsss " → ["KRAK", "hsss"]: the SFX field's items (at most a beat's 16, 200 characters each)."""
    return [part.strip()[:200] for part in text.split("/") if part.strip()][:16]


_OFF_PANEL = "(unattributed)"


class BeatEditor(QWidget):
    beat_edited = Signal(str)
    """A beat was changed through this editor (its id)."""

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.beat_id: str | None = None
        self._loading = False
        self._provisional: dict[str, str] = {}

        self._stack = QStackedLayout(self)
        empty = QLabel("Select a beat in the outline to edit it.")
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setEnabled(False)
        self._stack.addWidget(empty)
        form_host = QWidget()
        self._stack.addWidget(form_host)
        form = QFormLayout(form_host)
        form.setContentsMargins(4, 4, 4, 4)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.action_edit = QPlainTextEdit()
        self.action_edit.setPlaceholderText("What the panel shows: one visible action")
        self.action_edit.setFixedHeight(58)
        self.action_edit.textChanged.connect(self._action_typed)
        form.addRow("Action", self.action_edit)

        self.characters_list = QListWidget()
        self.characters_list.setFlow(QListWidget.Flow.LeftToRight)
        self.characters_list.setWrapping(True)
        self.characters_list.setFixedHeight(52)
        self.characters_list.itemChanged.connect(self._characters_toggled)
        form.addRow("Characters", self.characters_list)

        roles = QHBoxLayout()
        self.actor_combo, self.target_combo = QComboBox(), QComboBox()
        self.actor_combo.activated.connect(lambda _i: self._role_chosen("actor_id", self.actor_combo))
        self.target_combo.activated.connect(lambda _i: self._role_chosen("target_id", self.target_combo))
        roles.addWidget(self.actor_combo, 1)
        roles.addWidget(QLabel("→"))
        roles.addWidget(self.target_combo, 1)
        form.addRow("Actor → target", roles)

        self.shot_combo = QComboBox()
        for shot in ShotType:
            self.shot_combo.addItem(shot.value, shot)
        self.shot_combo.activated.connect(lambda _i: self._commit("Beat shot", shot=self.shot_combo.currentData()))
        form.addRow("Shot", self.shot_combo)

        self.setting_edit, self.time_edit, self.mood_edit = QLineEdit(), QLineEdit(), QLineEdit()
        for name, label, edit in (
            ("setting", "Setting", self.setting_edit),
            ("time_of_day", "Time of day", self.time_edit),
            ("mood", "Mood", self.mood_edit),
        ):
            edit.textEdited.connect(
                lambda text, n=name, lab=label: self._commit(
                    f"Beat {lab.lower()}", ("beat-" + n, self.beat_id), **{n: text}
                )
            )
            edit.editingFinished.connect(self._end_typing)
            form.addRow(label, edit)

        self.dialogue_table = QTableWidget(0, 3)
        self.dialogue_table.setHorizontalHeaderLabels(["Speaker", "Kind", "Text"])
        header = self.dialogue_table.horizontalHeader()
        # Cell widgets (combos) do not count for ResizeToContents: fixed widths that fit them.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        self.dialogue_table.setColumnWidth(0, 130)
        self.dialogue_table.setColumnWidth(1, 96)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.dialogue_table.verticalHeader().setVisible(False)
        self.dialogue_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.dialogue_table.setMinimumHeight(84)
        self.dialogue_table.itemChanged.connect(self._dialogue_text_changed)
        lines_box = QVBoxLayout()
        lines_box.addWidget(self.dialogue_table)
        buttons = QHBoxLayout()
        self.add_line_button = QPushButton("Add line")
        self.remove_line_button = QPushButton("Remove line")
        self.add_line_button.clicked.connect(self.add_dialogue_line)
        self.remove_line_button.clicked.connect(self.remove_dialogue_line)
        buttons.addWidget(self.add_line_button)
        buttons.addWidget(self.remove_line_button)
        buttons.addStretch(1)
        lines_box.addLayout(buttons)
        form.addRow("Dialogue", lines_box)

        self.caption_edit = QLineEdit()
        self.caption_edit.setPlaceholderText("Narration box text")
        self.caption_edit.textEdited.connect(
            lambda text: self._commit("Beat caption", ("beat-caption", self.beat_id), caption=text)
        )
        self.caption_edit.editingFinished.connect(self._end_typing)
        form.addRow("Caption", self.caption_edit)

        # What a comic script writes for a panel besides its balloons: sound effects (lettered)
        # and notes to the artist (never lettered), and the script page it belongs to.
        self.sfx_edit = QLineEdit()
        self.sfx_edit.setPlaceholderText("Sound effects, separated by /  (KRAKOOM / hsss)")
        self.sfx_edit.textEdited.connect(
            lambda text: self._commit("Beat SFX", ("beat-sfx", self.beat_id), sfx=_sfx(text))
        )
        self.sfx_edit.editingFinished.connect(self._end_typing)
        form.addRow("SFX", self.sfx_edit)
        self.notes_edit = QLineEdit()
        self.notes_edit.setPlaceholderText("Notes to the artist (not lettered)")
        self.notes_edit.textEdited.connect(
            lambda text: self._commit("Beat notes", ("beat-notes", self.beat_id), notes=text)
        )
        self.notes_edit.editingFinished.connect(self._end_typing)
        form.addRow("Notes", self.notes_edit)
        self.page_spin = QSpinBox()
        self.page_spin.setRange(0, 100_000)
        self.page_spin.setSpecialValueText("free")
        self.page_spin.setToolTip(
            "The script page of this panel: Lay out keeps beats of one page together (free: it chooses)"
        )
        self.page_spin.valueChanged.connect(lambda value: self._commit("Beat page", page=value))
        form.addRow("Page", self.page_spin)

        self.set_beat(None)

    # ------------------------------------------------------------------ public
    @property
    def beat(self) -> Beat | None:
        return self.ctx.document.project.story.beat(self.beat_id) if self.beat_id else None

    def set_provisional_names(self, names: dict[str, str]) -> None:
        self._provisional = dict(names)
        self._load()

    def set_beat(self, beat_id: str | None) -> None:
        if beat_id != self.beat_id:
            self._end_typing()
        self.beat_id = beat_id
        self._load()

    def refresh(self, changes: Changes | None = None) -> None:
        if changes is None or changes.touches(ChangeKind.STORY | ChangeKind.CHARACTERS):
            if self.beat_id and self.beat is None:
                self.beat_id = None
            self._load()

    # ------------------------------------------------------------------ loading
    def _name(self, character_id: str) -> str:
        character = self.ctx.document.project.character(character_id)
        if character:
            return character.name
        return self._provisional.get(character_id, character_id.removeprefix("new:")) + " (new)"

    def _load(self) -> None:
        beat = self.beat
        self._stack.setCurrentIndex(1 if beat else 0)
        if beat is None:
            return
        self._loading = True
        try:
            if self.action_edit.toPlainText() != beat.action:
                self.action_edit.setPlainText(beat.action)
            self._load_characters(beat)
            self._load_roles(beat)
            self.shot_combo.setCurrentIndex(self.shot_combo.findData(beat.shot))
            for edit, value in (
                (self.setting_edit, beat.setting),
                (self.time_edit, beat.time_of_day),
                (self.mood_edit, beat.mood),
                (self.caption_edit, beat.caption),
                (self.notes_edit, beat.notes),
            ):
                if edit.text() != value:
                    edit.setText(value)
            if _sfx(self.sfx_edit.text()) != beat.sfx:
                self.sfx_edit.setText(" / ".join(beat.sfx))
            self.page_spin.setValue(beat.page)
            self._load_dialogue(beat)
        finally:
            self._loading = False

    def _all_character_ids(self, beat: Beat) -> list[str]:
        library = [c.id for c in self.ctx.document.project.characters]
        extra = [c for c in beat.characters if c not in library]
        return library + extra

    def _load_characters(self, beat: Beat) -> None:
        self.characters_list.clear()
        for cid in self._all_character_ids(beat):
            item = QListWidgetItem(self._name(cid))
            item.setData(Qt.ItemDataRole.UserRole, cid)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if cid in beat.characters else Qt.CheckState.Unchecked)
            self.characters_list.addItem(item)

    def _load_roles(self, beat: Beat) -> None:
        for combo, value in ((self.actor_combo, beat.actor_id), (self.target_combo, beat.target_id)):
            combo.clear()
            combo.addItem(_NONE, None)
            for cid in beat.characters:
                combo.addItem(self._name(cid), cid)
            combo.setCurrentIndex(max(0, combo.findData(value)))

    def _load_dialogue(self, beat: Beat) -> None:
        table = self.dialogue_table
        table.setRowCount(len(beat.dialogue))
        speakers = [*beat.characters, *(c for c in self._all_character_ids(beat) if c not in beat.characters)]
        for row, line in enumerate(beat.dialogue):
            speaker = QComboBox()
            speaker.addItem(_OFF_PANEL, None)
            for cid in speakers:
                speaker.addItem(self._name(cid), cid)
            if line.speaker_id and speaker.findData(line.speaker_id) < 0:
                speaker.addItem(self._name(line.speaker_id), line.speaker_id)
            speaker.setCurrentIndex(max(0, speaker.findData(line.speaker_id)))
            speaker.activated.connect(self._dialogue_combo_changed)
            table.setCellWidget(row, 0, speaker)
            kind = QComboBox()
            for k in DialogueKind:
                kind.addItem(k.value, k)
            kind.setCurrentIndex(kind.findData(line.kind))
            kind.activated.connect(self._dialogue_combo_changed)
            table.setCellWidget(row, 1, kind)
            item = table.item(row, 2)
            if item is None:
                table.setItem(row, 2, QTableWidgetItem(line.text))
            elif item.text() != line.text:
                item.setText(line.text)

    # ------------------------------------------------------------------ commits
    def _commit(self, label: str, merge_key=None, **fields) -> None:
        if self._loading or not self.beat_id:
            return
        # Through partial: ctx.edit's own first parameter is called "action", like the beat field.
        self.ctx.edit(partial(story_edits.edit_beat, beat_id=self.beat_id, label=label, merge_key=merge_key, **fields))
        self.beat_edited.emit(self.beat_id)
        if self.beat is not None and any(f in fields for f in ("dialogue",)):
            self._load()  # a refused line (empty text) snaps back to what the document holds

    def _end_typing(self) -> None:
        """A typing burst ended: the next keystroke starts a new undo step."""
        self.ctx.document.undo_stack.break_merge()

    def _action_typed(self) -> None:
        self._commit("Beat action", ("beat-action", self.beat_id), action=self.action_edit.toPlainText())

    def _characters_toggled(self, _item: QListWidgetItem) -> None:
        if self._loading:
            return
        checked = [
            self.characters_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.characters_list.count())
            if self.characters_list.item(i).checkState() == Qt.CheckState.Checked
        ]
        self._commit("Beat characters", characters=checked)

    def _role_chosen(self, role: str, combo: QComboBox) -> None:
        beat = self.beat
        if beat is None:
            return
        value = combo.currentData()
        other = "target_id" if role == "actor_id" else "actor_id"
        fields = {role: value}
        if value is not None and getattr(beat, other) == value:
            fields[other] = None  # swapping roles: the other role lets go
        self._commit("Beat actor" if role == "actor_id" else "Beat target", **fields)

    def _lines_from_table(self) -> list[DialogueLine] | None:
        lines = []
        for row in range(self.dialogue_table.rowCount()):
            item = self.dialogue_table.item(row, 2)
            text = item.text().strip() if item else ""
            if not text:
                self.ctx.message.emit("A dialogue line needs text; use Remove line to delete it.")
                return None
            speaker, kind = self.dialogue_table.cellWidget(row, 0), self.dialogue_table.cellWidget(row, 1)
            lines.append(
                DialogueLine(
                    speaker_id=speaker.currentData() if speaker else None,
                    text=text,
                    kind=kind.currentData() if kind else DialogueKind.SPEECH,
                )
            )
        return lines

    def _commit_dialogue(self, label: str) -> None:
        lines = self._lines_from_table()
        if lines is None:
            self._load()
            return
        self._commit(label, dialogue=lines)

    def _dialogue_text_changed(self, item: QTableWidgetItem) -> None:
        if not self._loading and item.column() == 2:
            self._commit_dialogue("Dialogue text")

    def _dialogue_combo_changed(self, _index: int) -> None:
        if not self._loading:
            self._commit_dialogue("Dialogue speaker")

    def add_dialogue_line(self) -> None:
        beat = self.beat
        if beat is None:
            return
        speaker = beat.actor_id or (beat.characters[0] if beat.characters else None)
        self._commit("Add dialogue line", dialogue=[*beat.dialogue, DialogueLine(speaker_id=speaker, text="…")])
        row = len(beat.dialogue)
        if self.dialogue_table.rowCount() > row:
            self.dialogue_table.setCurrentCell(row, 2)

    def remove_dialogue_line(self) -> None:
        beat = self.beat
        row = self.dialogue_table.currentRow()
        if beat is None or not beat.dialogue:
            return
        row = row if 0 <= row < len(beat.dialogue) else len(beat.dialogue) - 1
        self._commit("Remove dialogue line", dialogue=[d for i, d in enumerate(beat.dialogue) if i != row])

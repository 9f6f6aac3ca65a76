"""The story outliner dock: story text → Parse (on a worker thread) → scenes/beats tree → Lay out.

The story editor saves into the document's story text (one undo step per typing burst); "Parse"
runs the chosen parser through :class:`~comic_studio.ui.parse_worker.ParseWorker`, so the GUI never
waits for it; the result lands as one undoable step. Re-parsing over beats the author edited asks
first (Merge keeps them — the rule is :func:`comic_studio.core.story_edits.merge_scenes`). "Lay out"
runs the auto-layout (asking before it replaces pages with images or balloons) and then offers the
characters the parser suggested. Questions to the user are single methods (``ask_reparse_mode``,
``confirm_replace_pages``, ``offer_suggestions``) so tests and scripts can answer them.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import story_edits
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.model import MAX_TEXT
from comic_studio.parsing import CharacterSuggestion, ParsedStory, available_parsers, promote_suggestions
from comic_studio.parsing.forms import FORM_LABELS, StoryForm, detect_form
from comic_studio.ui.context import StudioContext
from comic_studio.ui.outliner_editor import BeatEditor
from comic_studio.ui.outliner_tree import ID_ROLE, KIND_ROLE, BeatTreeModel
from comic_studio.ui.parse_worker import ParseWorker

STORY_COMMIT_MS = 300
"""Typing in the story editor is written to the document this long after the last keystroke."""
TYPING_BURST_MS = 1500
"""A pause this long ends a typing burst: the next keystroke starts a new undo step."""


def _name_from_id(provisional_id: str) -> str:
    return provisional_id.removeprefix("new:").replace("-", " ").title()


class StoryOutliner(QWidget):
    def __init__(self, ctx: StudioContext, render_service=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("StoryOutliner")
        self.ctx = ctx
        self.render_service = render_service
        self._suggestions: dict[str, CharacterSuggestion] = {}
        self._parsed_text = ""
        self._setting_text = False

        self.worker = ParseWorker(self)
        self.worker.progress.connect(self._on_progress)
        self.worker.progress_text.connect(self._on_progress_text)
        self.worker.finished.connect(self._on_parsed)
        self.worker.failed.connect(self._on_parse_failed)
        self.worker.cancelled.connect(lambda: self.ctx.message.emit("Parsing cancelled; the outline is unchanged."))
        self.worker.running_changed.connect(self._on_running)

        self._build()
        self._commit_timer = QTimer(self, singleShot=True, interval=STORY_COMMIT_MS, timeout=self.flush_story_text)
        self._burst_timer = QTimer(self, singleShot=True, interval=TYPING_BURST_MS, timeout=self._end_burst)

        ctx.document_changed.connect(self._on_document_changed)
        ctx.document_replaced.connect(self._on_document_replaced)
        self._on_document_replaced(ctx.document)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        top = QHBoxLayout()
        top.addWidget(QLabel("Parser"))
        self.parser_combo = QComboBox()
        self.parser_combo.addItems(available_parsers())
        self.parser_combo.setCurrentText("rules")
        self.parser_combo.setToolTip("Which parser splits the story into beats")
        top.addWidget(self.parser_combo)
        self.form_combo = QComboBox()
        for form, label in FORM_LABELS.items():
            self.form_combo.addItem(label, form.value)
        self.form_combo.setToolTip(
            "How the story is written: prose, a comic full script (PAGE/PANEL headings, CAPTION:, NAME: lines, "
            "SFX:) or a screenplay (Fountain). Auto-detect tells them apart; a script keeps its pages and panels."
        )
        top.addWidget(self.form_combo)
        self.form_label = QLabel("")
        self.form_label.setToolTip("The form the last parse read the story as")
        top.addWidget(self.form_label)
        self.parse_button = QPushButton("Parse")
        self.parse_button.setToolTip("Split the story into scenes and beats (runs in the background)")
        self.parse_button.clicked.connect(self.parse)
        top.addWidget(self.parse_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.worker.cancel)
        self.cancel_button.setVisible(False)
        top.addWidget(self.cancel_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setVisible(False)
        top.addWidget(self.progress_bar, 1)
        top.addStretch(0)
        layout.addLayout(top)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.story_edit = QPlainTextEdit()
        self.story_edit.setPlaceholderText(
            'Write or paste your story here, then press Parse.\n\nINT. KITCHEN - NIGHT\n\n"Run!" Mara yelled.'
        )
        self.story_edit.textChanged.connect(self._story_typed)
        splitter.addWidget(self.story_edit)

        tree_host = QWidget()
        tree_box = QVBoxLayout(tree_host)
        tree_box.setContentsMargins(0, 0, 0, 0)
        beat_buttons = QHBoxLayout()
        self.add_button = QPushButton("Add beat")
        self.merge_button = QPushButton("Merge")
        self.split_button = QPushButton("Split")
        self.delete_button = QPushButton("Delete")
        self.add_button.clicked.connect(self.add_beat)
        self.merge_button.clicked.connect(self.merge_selected)
        self.split_button.clicked.connect(self.split_current)
        self.delete_button.clicked.connect(self.delete_selected)
        self.merge_button.setToolTip("Merge the two selected beats (or the current beat with the next)")
        self.split_button.setToolTip(
            "Split the current beat at the text cursor in Action, else at the sentence nearest its middle"
        )
        self.split_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keep the Action cursor as the cut point
        for button in (self.add_button, self.merge_button, self.split_button, self.delete_button):
            beat_buttons.addWidget(button)
        beat_buttons.addStretch(1)
        tree_box.addLayout(beat_buttons)

        self.model = BeatTreeModel(self.ctx, self)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setDragEnabled(True)
        self.tree.setAcceptDrops(True)
        self.tree.setDropIndicatorShown(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.tree.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.doubleClicked.connect(self._show_panel_of)
        header = self.tree.header()
        # Fixed starting widths, not ResizeToContents: that measures rows on every change, which a
        # story of thousands of beats cannot afford.
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # Narrow enough that the Beat column keeps most of a default-width dock (~340 px).
        for column, width in ((1, 96), (2, 76), (3, 40)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        self.tree.selectionModel().currentChanged.connect(self._current_changed)
        self.tree.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.model.modelAboutToBeReset.connect(self._remember_selection)
        self.model.modelReset.connect(self._restore_selection)
        delete = QAction(
            "Delete beats", self.tree, shortcut=QKeySequence.StandardKey.Delete, triggered=self.delete_selected
        )
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.tree.addAction(delete)
        tree_box.addWidget(self.tree)
        splitter.addWidget(tree_host)

        self.editor = BeatEditor(self.ctx)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.editor)
        splitter.addWidget(scroll)
        splitter.setSizes([160, 260, 300])
        layout.addWidget(splitter, 1)

        bottom = QHBoxLayout()
        self.layout_button = QPushButton("Lay out")
        self.layout_button.setToolTip("Put every beat on pages with the auto-layout (one panel per beat)")
        self.layout_button.clicked.connect(self.lay_out)
        self.assign_button = QPushButton("Assign to selected panels")
        self.assign_button.setToolTip("Give the selected beats, in order, to the panels selected on the page")
        self.assign_button.clicked.connect(self.assign_to_selected_panels)
        bottom.addWidget(self.layout_button)
        bottom.addWidget(self.assign_button)
        bottom.addStretch(1)
        layout.addLayout(bottom)
        self._update_buttons()

    # ------------------------------------------------------------------ questions (monkeypatchable)
    def ask_reparse_mode(self, edited_count: int) -> str | None:
        """Re-parsing over edited beats: "merge", "replace" or None (cancel)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Re-parse story")
        box.setText(f"You edited {edited_count} beat{'s' if edited_count != 1 else ''} of the current outline.")
        box.setInformativeText(
            "Merge keeps your edited beats and replaces the others with the new parse. Replace all discards your edits."
        )
        merge = box.addButton("Merge (keep my edits)", QMessageBox.ButtonRole.AcceptRole)
        replace = box.addButton("Replace all", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(merge)
        box.exec()
        return {merge: "merge", replace: "replace"}.get(box.clickedButton())

    def confirm_replace_pages(self) -> bool:
        answer = QMessageBox.question(
            self,
            "Lay out story",
            "Laying out the story replaces every page, including panels with images or balloons.\n"
            "You can undo it. Replace the pages?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def offer_suggestions(self, suggestions: list[CharacterSuggestion]) -> list[str] | None:
        """The parser found these names: which become characters? Ids to add, or None (ask later)."""
        dialog = QDialog(self)
        dialog.setWindowTitle("New characters")
        box = QVBoxLayout(dialog)
        box.addWidget(QLabel("The story names characters that are not in the library yet.\nAdd the checked ones?"))
        names = QListWidget()
        for s in suggestions:
            item = QListWidgetItem(f"{s.name}  ({s.mentions} mentions)" if s.mentions else s.name)
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            names.addItem(item)
        box.addWidget(names)
        buttons = QDialogButtonBox()
        buttons.addButton("Add checked", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton("Not now", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        box.addWidget(buttons)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return [
            names.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(names.count())
            if names.item(i).checkState() == Qt.CheckState.Checked
        ]

    # ------------------------------------------------------------------ story text
    def _story_typed(self) -> None:
        if self._setting_text:
            return
        self._commit_timer.start()
        self._burst_timer.start()

    def flush_story_text(self) -> None:
        """Write the editor's text to the document now (before a parse, a save, a test assert)."""
        self._commit_timer.stop()
        text = self.story_edit.toPlainText()
        if text != self.ctx.document.project.story.text and len(text) <= MAX_TEXT:
            self.ctx.edit(story_edits.set_story_text, text)
        elif len(text) > MAX_TEXT:
            self.ctx.message.emit(
                f"The story is {len(text):,} characters: it can be parsed, but a project keeps at most {MAX_TEXT:,}."
            )

    def _end_burst(self) -> None:
        self.flush_story_text()
        self.ctx.document.undo_stack.break_merge()

    def _show_story_text(self) -> None:
        text = self.ctx.document.project.story.text
        if self._commit_timer.isActive() or self.story_edit.toPlainText() == text:
            return  # the author is typing: their text wins and is committed shortly
        cursor = self.story_edit.textCursor().position()
        self._setting_text = True
        try:
            self.story_edit.setPlainText(text)
        finally:
            self._setting_text = False
        c = self.story_edit.textCursor()
        c.setPosition(min(cursor, len(text)))
        self.story_edit.setTextCursor(c)

    # ------------------------------------------------------------------ parsing
    def parse(self) -> None:
        self.flush_story_text()
        text = self.story_edit.toPlainText()
        if not text.strip():
            self.ctx.message.emit("Write or paste a story first, then parse it.")
            return
        self._parsed_text = text
        form = self.form_combo.currentData()
        if form == StoryForm.AUTO.value:
            self.form_label.setText(f"({FORM_LABELS[detect_form(text)].lower()})")  # shown while it parses
        self.worker.start(text, self.ctx.document.project.characters, self.parser_combo.currentText(), form)

    def cancel_parse(self) -> None:
        self.worker.cancel()

    def _on_running(self, running: bool) -> None:
        self.parse_button.setEnabled(not running)
        self.cancel_button.setVisible(running)
        self.progress_bar.setVisible(running)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(False)

    def _on_progress_text(self, text: str) -> None:
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat(text)

    def _on_progress(self, fraction: float) -> None:
        self.progress_bar.setValue(round(fraction * 1000))

    def _on_parse_failed(self, message: str) -> None:
        self.ctx.message.emit(f"Parsing failed: {message}")

    def _on_parsed(self, parsed: ParsedStory) -> None:
        story = self.ctx.document.project.story
        edited = [b for b in story.beats() if b.edited]
        mode = "replace"
        if edited:
            mode = self.ask_reparse_mode(len(edited))
            if mode is None:
                self.ctx.message.emit("Parse discarded; the outline is unchanged.")
                return
        self._suggestions.update({s.id: s for s in parsed.suggestions})
        if parsed.form:
            self.form_label.setText(f"read as {FORM_LABELS[StoryForm(parsed.form)].lower()}")
        text = self._parsed_text if len(self._parsed_text) <= MAX_TEXT else None
        title = parsed.title.title() if parsed.title else None
        self.ctx.edit(story_edits.apply_parse, parsed.scenes, mode, text=text, title=title)
        self._sync_provisional_names()
        beats = self.ctx.document.project.story.beats()
        note = f"; {len(parsed.warnings)} warning(s)" if parsed.warnings else ""
        kept = f", kept {len(edited)} edited" if mode == "merge" else ""
        self.ctx.message.emit(
            f"Parsed {len(self.ctx.document.project.story.scenes)} scenes, {len(beats)} beats{kept}{note}."
        )

    def _sync_provisional_names(self) -> None:
        names = {i: s.name for i, s in self._suggestions.items()}
        self.model.set_provisional_names(names)
        self.editor.set_provisional_names(names)

    # ------------------------------------------------------------------ tree selection
    def selected_beat_ids(self) -> list[str]:
        """Selected beats in story order."""
        rows = [i for i in self.tree.selectionModel().selectedRows(0) if i.data(KIND_ROLE) == "beat"]
        return sorted((i.data(ID_ROLE) for i in rows), key=self.model.position)

    def current_beat_id(self) -> str | None:
        index = self.tree.currentIndex()
        return index.data(ID_ROLE) if index.isValid() and index.data(KIND_ROLE) == "beat" else None

    def select_beat(self, beat_id: str) -> None:
        index = self.model.index_of_beat(beat_id)
        if index.isValid():
            self.tree.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            )
            self.tree.scrollTo(index)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        beat_id = current.data(ID_ROLE) if current.isValid() and current.data(KIND_ROLE) == "beat" else None
        self.editor.set_beat(beat_id)
        self._update_buttons()

    def _remember_selection(self) -> None:
        self._kept_selection = self.selected_beat_ids()
        self._kept_current = self.current_beat_id()

    def _restore_selection(self) -> None:
        for row in range(self.model.rowCount()):
            self.tree.setFirstColumnSpanned(row, QModelIndex(), True)  # scene titles use the full width
        self.tree.expandAll()
        selection = self.tree.selectionModel()
        for beat_id in getattr(self, "_kept_selection", []):
            index = self.model.index_of_beat(beat_id)
            if index.isValid():
                selection.select(
                    index, QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
                )
        current = getattr(self, "_kept_current", None)
        index = self.model.index_of_beat(current) if current else QModelIndex()
        if index.isValid():
            selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
        self.editor.set_beat(current if index.isValid() else None)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_beats = bool(self.ctx.document.project.story.scenes)
        selected = len(self.selected_beat_ids())
        current = self.current_beat_id() is not None
        self.merge_button.setEnabled(selected == 2 or (current and selected <= 1))
        self.split_button.setEnabled(current)
        self.delete_button.setEnabled(selected > 0)
        self.layout_button.setEnabled(has_beats)
        self.assign_button.setEnabled(selected > 0)

    # ------------------------------------------------------------------ beat operations
    def add_beat(self) -> None:
        current = self.current_beat_id()
        project = self.ctx.document.project
        if current:
            scene = story_edits.scene_of(project, current)
            index = next(i for i, b in enumerate(scene.beats) if b.id == current) + 1
            beat = self.ctx.edit(story_edits.add_beat, scene.id, index)
        else:
            scene_index = self.tree.currentIndex()
            scene = self.model.scene_at(scene_index)
            beat = self.ctx.edit(story_edits.add_beat, scene.id if scene else None)
        if beat is not None:
            self.select_beat(beat.id)
            self.editor.action_edit.setFocus()
            self.editor.action_edit.selectAll()

    def merge_selected(self) -> None:
        selected = self.selected_beat_ids()
        if len(selected) == 2:
            first, second = selected
        else:
            first = self.current_beat_id()
            beats = [b.id for b in self.ctx.document.project.story.beats()]
            if first is None or beats.index(first) + 1 >= len(beats):
                self.ctx.message.emit("Select two beats, or a beat that has a next one, to merge.")
                return
            second = beats[beats.index(first) + 1]
        if self.ctx.edit(story_edits.merge_beats, first, second) is not None:
            self.select_beat(first)

    def split_current(self) -> None:
        current = self.current_beat_id()
        if current is None:
            self.ctx.message.emit("Select the beat to split.")
            return
        cursor = self.editor.action_edit.textCursor()
        at = (
            cursor.position()
            if self.editor.action_edit.hasFocus() and 0 < cursor.position() < len(cursor.document().toPlainText())
            else None
        )
        new = (
            self.ctx.edit(story_edits.split_beat, current, at)
            if at is not None
            else self.ctx.edit(story_edits.split_beat, current)
        )
        if new is not None:
            self.select_beat(new.id)

    def delete_selected(self) -> None:
        selected = self.selected_beat_ids()
        if selected:
            self.ctx.edit(story_edits.delete_beats, selected)

    def _panels_of(self, beat_ids: list[str]) -> list[str]:
        wanted = set(beat_ids)
        return [p.id for page in self.ctx.document.project.pages for p in page.panels_in_order() if p.beat_id in wanted]

    def _show_panel_of(self, index: QModelIndex) -> None:
        """Double-click on a beat: select the panel(s) showing it on the canvas."""
        if index.data(KIND_ROLE) != "beat":
            return
        panels = self._panels_of([index.data(ID_ROLE)])
        if panels:
            self.ctx.select_panels(panels)
        else:
            self.ctx.message.emit("No panel shows this beat yet: Lay out, or Assign to selected panels.")

    def _context_menu(self, pos) -> None:
        menu = QMenu(self)
        menu.addAction("Add beat", self.add_beat)
        merge = menu.addAction("Merge beats", self.merge_selected)
        split = menu.addAction("Split beat", self.split_current)
        delete = menu.addAction("Delete", self.delete_selected)
        merge.setEnabled(self.merge_button.isEnabled())
        split.setEnabled(self.split_button.isEnabled())
        delete.setEnabled(self.delete_button.isEnabled())
        selected = self.selected_beat_ids()
        if self.render_service is not None and selected:
            menu.addSeparator()
            panels = self._panels_of(selected)
            render = menu.addAction("Render their panels", lambda: self.render_service.render_panels(panels))
            render.setEnabled(bool(panels))
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------ lay-out
    def lay_out(self) -> None:
        project = self.ctx.document.project
        if not project.story.beats():
            self.ctx.message.emit("The story has no beats yet: parse it first.")
            return
        if story_edits.pages_have_artwork(project) and not self.confirm_replace_pages():
            return
        pages = self.ctx.edit(story_edits.lay_out_story)
        if pages is None:
            return
        self.ctx.message.emit(f"Laid out {len(project.story.beats())} beats on {len(pages)} pages.")
        self.offer_suggested_characters()

    def offer_suggested_characters(self) -> None:
        """Ask which suggested characters (still provisional ``new:`` ids in the beats) to create."""
        project = self.ctx.document.project
        pending = story_edits.provisional_ids(project)
        if not pending:
            return
        suggestions = [
            self._suggestions.get(i) or CharacterSuggestion(id=i, name=_name_from_id(i), mentions=0) for i in pending
        ]
        chosen = self.offer_suggestions(suggestions)
        if chosen is None:
            return
        picked = [s.model_copy(update={"first_beat_id": None}) for s in suggestions if s.id in chosen]
        _story, created = promote_suggestions(ParsedStory(suggestions=picked), project.characters)
        mapping = {s.id: c.id for s, c in zip(picked, created, strict=True)}
        dropped = [i for i in pending if i not in mapping]
        self.ctx.edit(story_edits.adopt_characters, created, mapping, dropped)
        if created:
            self.ctx.message.emit(f"Added {len(created)} character(s): {', '.join(c.name for c in created)}.")

    def assign_to_selected_panels(self) -> None:
        self.ctx.edit(story_edits.assign_beats, self.selected_beat_ids(), list(self.ctx.selected_panel_ids))

    # ------------------------------------------------------------------ document events
    def _on_document_changed(self, changes: Changes) -> None:
        if changes.touches(ChangeKind.STORY):
            self._show_story_text()
        self.model.refresh(changes)
        self.editor.refresh(changes)
        self._update_buttons()

    def _on_document_replaced(self, _document) -> None:
        self.worker.cancel()  # a result for the previous document must not land in this one
        self._commit_timer.stop()
        self._suggestions = {}
        self._setting_text = True
        try:
            self.story_edit.setPlainText(self.ctx.document.project.story.text)
        finally:
            self._setting_text = False
        self.model.refresh(None)
        self.editor.set_beat(None)
        self._sync_provisional_names()
        self._update_buttons()

    def shutdown(self) -> None:
        """Stop a running parse and wait for its thread (the main window calls this on close)."""
        self.flush_story_text()
        self.worker.shutdown()

"""The character library dock: a grid of character cards with add/edit/delete and import/export,
and each character's identity anchor (badge on the card; generate / regenerate / clear) and
"Train LoRA…" (context menu, or the editor's LoRA box); the newest sample of a character's LoRA
training shows as a badge on its card, live while the run goes on (``lora_samples``).

Cards are rebuilt from the document when a change report touches CHARACTERS (a library holds tens
of characters, a full refill is cheap and thumbnails are cached by asset hash), and when an anchor
job starts or ends. Reordering by drag becomes one undoable ``move_character``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import character_edits
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character
from comic_studio.ui.characters.card import ANCHOR_STATES, CARD_SIZE, ThumbnailCache, card_pixmap
from comic_studio.ui.characters.editor import CharacterEditor
from comic_studio.ui.characters.io_actions import build_library_menu
from comic_studio.ui.characters.lora_samples import SampleImages, SampleWatch, character_samples
from comic_studio.ui.characters.train_dialog import TrainLoraDialog
from comic_studio.ui.context import StudioContext
from comic_studio.workflows.anchors import clear_anchor
from comic_studio.workflows.standardize import discard_standard_sheet


class _CardGrid(QListWidget):
    """Icon-mode list whose internal drag reports (character id, new index) instead of moving
    items itself: the document is the only source of order."""

    reordered = Signal(str, int)

    def dropEvent(self, event) -> None:
        if event.source() is not self:
            event.ignore()
            return
        dragged = self.currentItem()
        target = self.itemAt(event.position().toPoint())
        event.setDropAction(Qt.DropAction.IgnoreAction)  # the refill after the edit moves the card
        event.accept()
        if dragged is None:
            return
        new_index = self.row(target) if target is not None else self.count() - 1
        if new_index != self.row(dragged):
            self.reordered.emit(dragged.data(Qt.ItemDataRole.UserRole), new_index)


class CharacterLibrary(QWidget):
    """Dock content listing the project's characters as cards."""

    character_activated = Signal(str)
    """A card was double-clicked (the editor opens too); lets other views react."""

    ANCHOR_ROLE = Qt.ItemDataRole.UserRole + 1
    """Item data: the card's anchor state ("none", "ready", "generating", "rebuilding")."""

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None, *, render_service: Any = None):
        super().__init__(parent)
        self.ctx = ctx
        self.render_service = render_service
        """Runs anchor jobs; ``None``: anchors can be cleared and shown, not generated."""
        self.thumbnails = ThumbnailCache()
        self.editor: CharacterEditor | None = None
        self.train_dialog: TrainLoraDialog | None = None
        self.identity_dialog: Any = None
        """The open Train identity dialog (``identity_dialog.TrainIdentityDialog``, imported on use)."""
        self._anchor_states: dict[str, str] = {}
        self.sample_images = SampleImages()
        self.sample_watch = SampleWatch(self)
        self.sample_watch.changed.connect(self.refresh)
        self.sample_steps: dict[str, int] = {}
        """The training step of the sample each card shows (tests and the tooltip read it)."""

        self.grid = _CardGrid()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(CARD_SIZE, CARD_SIZE))
        self.grid.setGridSize(QSize(CARD_SIZE + 12, CARD_SIZE + 36))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Snap)
        self.grid.setWordWrap(True)
        self.grid.setUniformItemSizes(True)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.grid.setSpacing(4)
        self.grid.itemDoubleClicked.connect(lambda item: self.edit_character(item.data(Qt.ItemDataRole.UserRole)))
        self.grid.itemSelectionChanged.connect(self._update_buttons)
        self.grid.reordered.connect(lambda cid, index: self.ctx.edit(character_edits.move_character, cid, index))
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._context_menu)

        self.add_button = self._tool_button("Add", "list-add", "Add a character", self.add_character)
        self.edit_button = self._tool_button(
            "Edit", "document-edit", "Edit the selected character", self._edit_selected
        )
        self.delete_button = self._tool_button(
            "Delete", "edit-delete", "Delete the selected characters", self.delete_selected
        )
        self.menu_button = QToolButton()
        self.menu_button.setText("Library")
        self.menu_button.setToolTip("Import or export characters as a folder (characters.json + images)")
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu_button.setMenu(build_library_menu(ctx, self, self.selected_ids))
        self.anchor_menu = self._build_anchor_menu()
        self.train_action = QAction("Train LoRA…", self)
        self.train_action.setToolTip("Train a LoRA on the character's face and outfit references (StoryBooth)")
        self.train_action.triggered.connect(self._train_selected)
        self.identity_action = QAction("Train identity…", self)
        self.identity_action.setToolTip("Learn identity tokens from the character's face photos (StableIdentity)")
        self.identity_action.triggered.connect(self._train_identity_selected)
        self.standardize_action = QAction("Standardize (character sheet)", self)
        self.standardize_action.setToolTip(
            "SerialGen's first stage: draw the character front-on in an A-pose on white from its reference; "
            "the sheet becomes its first outfit reference (run again for another; Undo or Discard removes it)"
        )
        self.standardize_action.triggered.connect(lambda: self.standardize())
        self.serialgen_sheet_action = QAction("Standardize with SerialGen's model", self)
        self.serialgen_sheet_action.setToolTip(
            "The paper's own stage 1 (ReferenceNet + PoseGuider + FBDM/RPIM) on Moore-AnimateAnyone's weights "
            "over SD 1.5: one person with some background around them; the Models window has the weights"
        )
        self.serialgen_sheet_action.triggered.connect(lambda: self.standardize(standardizer="serialgen"))
        self.compare_action = QAction("Compare methods on the character's panels…", self)
        self.compare_action.setToolTip(
            "Render every panel the character appears in with several methods side by side, with "
            "AP-CLIP-I per method, and keep a pick per panel (one undo step)"
        )
        self.compare_action.triggered.connect(self._compare_selected)
        self.compare_dialog: Any = None
        """The open "Compare methods on a page or character" dialog this library started."""
        self.discard_sheet_action = QAction("Discard standard sheet", self)
        self.discard_sheet_action.triggered.connect(lambda: self.discard_sheets())
        self.anchor_button = QToolButton()
        self.anchor_button.setText("Anchor")
        self.anchor_button.setToolTip("The selected characters' identity anchors for the consistent backend")
        self.anchor_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.anchor_button.setMenu(self.anchor_menu)

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for button in (self.add_button, self.edit_button, self.delete_button):
            bar.addWidget(button)
        bar.addStretch(1)
        bar.addWidget(self.anchor_button)
        bar.addWidget(self.menu_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.grid)

        delete = QShortcut(QKeySequence.StandardKey.Delete, self.grid)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.delete_selected)

        ctx.document_changed.connect(self._on_changes)
        ctx.document_replaced.connect(self._on_replaced)
        if render_service is not None:
            render_service.jobs_changed.connect(self._on_jobs_changed)
        self.refresh()

    def _tool_button(self, text: str, icon: str, tip: str, slot) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setIcon(QIcon.fromTheme(icon))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # ------------------------------------------------------------------ view
    def refresh(self) -> None:
        """Rebuild the cards from the document, keeping the selection."""
        keep = set(self.selected_ids())
        assets = self.ctx.document.assets
        self.grid.blockSignals(True)
        self.grid.clear()
        self._anchor_states = self._current_anchor_states()
        project = self.ctx.document.project
        self.sample_watch.watch(project.id, [c.id for c in project.characters])
        self.sample_steps = {}
        for character in project.characters:
            face = self.thumbnails.get(assets, character.face_refs[0], CARD_SIZE) if character.face_refs else None
            state = self._anchor_states[character.id]
            anchor = self.thumbnails.get(assets, character.anchor.image, CARD_SIZE) if character.anchor else None
            sample = self._newest_sample(project.id, character.id)
            item = QListWidgetItem(
                QIcon(card_pixmap(character, face, anchor=anchor, anchor_state=state, sample=sample)), character.name
            )
            item.setData(Qt.ItemDataRole.UserRole, character.id)
            item.setData(self.ANCHOR_ROLE, state)
            tip = self._tooltip(character) + "\n" + self._anchor_line(character, state)
            if character.id in self.sample_steps:
                tip += f"\nLoRA training sample (upper right): step {self.sample_steps[character.id]}"
            item.setToolTip(tip)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.grid.addItem(item)
            item.setSelected(character.id in keep)
        self.grid.blockSignals(False)
        self._update_buttons()

    def _newest_sample(self, project_id: str, character_id: str) -> QImage | None:
        """The first picture of the newest sampled step of the character's latest run."""
        for step, images in reversed(self.sample_images.steps(character_samples(project_id, character_id)[-2:])):
            self.sample_steps[character_id] = step
            return images[0]
        return None

    @staticmethod
    def _tooltip(character: Character) -> str:
        parts = [character.name]
        if character.aliases:
            parts.append("also: " + ", ".join(character.aliases))
        parts.append(
            f"{character.pronouns.value} · {len(character.face_refs)} face / {len(character.body_refs)} body refs"
        )
        if character.lora_asset is not None:
            state = f"strength {character.lora_scale:.2f}" if character.lora_enabled else "off"
            kept = "" if character.lora_in_project else f", {character.lora_bytes / 2**20:.0f} MB in the LoRA library"
            parts.append(f"trained LoRA: {state}{kept}")
        if character.identity_asset is not None:
            state = f"strength {character.identity_scale:.2f}" if character.identity_enabled else "off"
            parts.append(f"identity tokens: {state}")
        if character.description:
            parts.append(character.description[:200])
        return "\n".join(parts)

    @staticmethod
    def _anchor_line(character: Character, state: str) -> str:
        anchor = character.anchor
        if state != "ready" or anchor is None:
            return ANCHOR_STATES[state]
        kept = "in the project" if anchor.stored_in_project else "in the bank folder only"
        return f"{ANCHOR_STATES[state]} ({anchor.source}; bank {anchor.bank_bytes / 2**20:.1f} MB, {kept})"

    def anchor_state(self, character_id: str) -> str:
        """ "none", "ready", "generating" or "rebuilding" (what the card's badge shows)."""
        if self.render_service is not None:
            return self.render_service.anchors.state(character_id)
        character = self.ctx.document.project.character(character_id)
        return "ready" if character is not None and character.anchor is not None else "none"

    def _current_anchor_states(self) -> dict[str, str]:
        return {c.id: self.anchor_state(c.id) for c in self.ctx.document.project.characters}

    def _on_jobs_changed(self) -> None:
        # Panel jobs come and go all the time during "Render all": refill only when a badge changes.
        if self._current_anchor_states() != self._anchor_states:
            self.refresh()

    def _on_changes(self, changes: Changes) -> None:
        if changes.touches(ChangeKind.CHARACTERS):
            self.refresh()

    def _on_replaced(self, _document) -> None:
        self.thumbnails.clear()
        self.refresh()

    def _update_buttons(self) -> None:
        count = len(self.grid.selectedItems())
        self.edit_button.setEnabled(count == 1)
        self.delete_button.setEnabled(count > 0)
        self._update_anchor_actions()

    # ------------------------------------------------------------------ identity anchors
    def _build_anchor_menu(self) -> QMenu:
        menu = QMenu("Identity anchor", self)
        self.generate_anchor_action = menu.addAction("Generate anchor", lambda: self.generate_anchors(regenerate=False))
        self.generate_anchor_action.setToolTip("Render the character solo once; its identity bank keeps it the same "
                                               "across panels of the consistent backend")  # fmt: skip
        self.regenerate_anchor_action = menu.addAction(
            "Regenerate anchor", lambda: self.generate_anchors(regenerate=True)
        )
        self.regenerate_anchor_action.setToolTip(
            "Another look (a new anchor seed): panels rendered afterwards use the new bank"
        )
        self.clear_anchor_action = menu.addAction("Clear anchor", self.clear_anchors)
        menu.aboutToShow.connect(self._update_anchor_actions)
        return menu

    def _update_anchor_actions(self) -> None:
        project = self.ctx.document.project
        chosen = [c for c in (project.character(cid) for cid in self.selected_ids()) if c is not None]
        idle = [c for c in chosen if self.anchor_state(c.id) in ("none", "ready")]
        can_run = self.render_service is not None
        self.generate_anchor_action.setEnabled(can_run and any(c.anchor is None for c in idle))
        self.regenerate_anchor_action.setEnabled(can_run and any(c.anchor is not None for c in idle))
        self.clear_anchor_action.setEnabled(any(c.anchor is not None for c in idle))

    def _context_menu(self, pos: QPoint) -> None:
        item = self.grid.itemAt(pos)
        if item is None:
            return
        if not item.isSelected():
            self.select(item.data(Qt.ItemDataRole.UserRole))
        self.context_menu().exec(self.grid.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        """The selected cards' context menu (built fresh: its entries follow the selection)."""
        self._update_anchor_actions()
        menu = QMenu(self)
        menu.addActions(self.anchor_menu.actions())
        menu.addSeparator()
        self.train_action.setEnabled(len(self.selected_ids()) == 1)
        menu.addAction(self.train_action)
        self.identity_action.setEnabled(len(self.selected_ids()) == 1)
        menu.addAction(self.identity_action)
        menu.addSeparator()
        chosen = [c for c in (self.ctx.document.project.character(i) for i in self.selected_ids()) if c is not None]
        self.standardize_action.setEnabled(self.render_service is not None and bool(chosen))
        menu.addAction(self.standardize_action)
        self.serialgen_sheet_action.setEnabled(self.standardize_action.isEnabled())
        menu.addAction(self.serialgen_sheet_action)
        self.discard_sheet_action.setEnabled(any(c.standard_sheet is not None for c in chosen))
        menu.addAction(self.discard_sheet_action)
        menu.addSeparator()
        self._update_compare_action(chosen)
        menu.addAction(self.compare_action)
        return menu

    def _update_compare_action(self, chosen: list[Character]) -> None:
        """ "Compare methods on NAME's panels…": one character, a render service, and at least one
        panel the character appears in (else the entry says why it is off)."""
        from comic_studio.ui.dialogs.compare_scope import character_scope, scopes

        name = chosen[0].name if len(chosen) == 1 else "the character"
        self.compare_action.setText(f"Compare methods on {name}'s panels…")
        offered = {title for title, _ids in scopes(self.ctx.document.project)}
        has_panels = len(chosen) == 1 and character_scope(chosen[0].name) in offered
        self.compare_action.setEnabled(self.render_service is not None and has_panels)
        off = len(chosen) == 1 and not has_panels
        self.compare_action.setStatusTip(f"{name} appears in no panel yet: place them in a panel first" if off else "")

    def _compare_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.compare_on_character(ids[0])

    def compare_on_character(self, character_id: str) -> Any:
        """Open "Compare methods on a page or character" preset to the character's panels; returns
        the dialog (None without a render service, or when the character is in no panel)."""
        from comic_studio.ui.dialogs.compare_scope import CompareScopeDialog, character_scope, scopes

        project = self.ctx.document.project
        character = project.character(character_id)
        if self.render_service is None or character is None:
            return None
        scope = character_scope(character.name)
        if scope not in {title for title, _ids in scopes(project)}:
            self.ctx.message.emit(f"{character.name} appears in no panel yet: nothing to compare")
            return None
        # Preset in the constructor: the methods offered first are those the scope's panels use.
        dialog = CompareScopeDialog(self.ctx, self.render_service, scope, self.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: setattr(self, "compare_dialog", None))
        self.compare_dialog = dialog
        dialog.show()
        return dialog

    def generate_anchors(self, regenerate: bool = False, character_ids: list[str] | None = None) -> list[str]:
        """Queue anchor jobs for the selected characters that have no anchor (``regenerate``: for
        those that have one, each with a new anchor seed). Returns the job ids."""
        if self.render_service is None:
            return []
        project = self.ctx.document.project
        jobs = []
        for character_id in character_ids if character_ids is not None else self.selected_ids():
            character = project.character(character_id)
            if character is not None and (character.anchor is not None) == regenerate:
                job_id = self.render_service.render_anchor(character_id)
                if job_id is not None:
                    jobs.append(job_id)
        return jobs

    def clear_anchors(self, character_ids: list[str] | None = None) -> None:
        """Remove the selected characters' anchors (one undo step each)."""
        project = self.ctx.document.project
        for character_id in character_ids if character_ids is not None else self.selected_ids():
            character = project.character(character_id)
            if character is not None and character.anchor is not None:
                self.ctx.edit(clear_anchor, character_id)

    def standardize(self, character_ids: list[str] | None = None, standardizer: str = "kit") -> list[str]:
        """Queue standard-sheet jobs for the selected characters (a new seed each: regenerating) with
        ``standardizer`` ("kit" or "serialgen"). Returns the job ids."""
        if self.render_service is None:
            return []
        jobs = []
        for character_id in character_ids if character_ids is not None else self.selected_ids():
            job_id = self.render_service.standardize(character_id, standardizer=standardizer)
            if job_id is not None:
                jobs.append(job_id)
        return jobs

    def discard_sheets(self, character_ids: list[str] | None = None) -> None:
        """Remove the selected characters' standard sheets (one undo step each)."""
        project = self.ctx.document.project
        for character_id in character_ids if character_ids is not None else self.selected_ids():
            character = project.character(character_id)
            if character is not None and character.standard_sheet is not None:
                self.ctx.edit(discard_standard_sheet, character_id)

    def selected_ids(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.grid.selectedItems()]

    def card_names(self) -> list[str]:
        return [self.grid.item(i).text() for i in range(self.grid.count())]

    # ------------------------------------------------------------------ actions
    def add_character(self) -> CharacterEditor:
        return self._open_editor(None)

    def edit_character(self, character_id: str) -> CharacterEditor:
        self.character_activated.emit(character_id)
        return self._open_editor(character_id)

    def _edit_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.edit_character(ids[0])

    def _open_editor(self, character_id: str | None) -> CharacterEditor:
        """Open the editor non-modally (returns it, so tests and callers can drive it)."""
        if self.editor is not None:
            self.editor.close()
        editor = CharacterEditor(self.ctx, character_id, self.window(), thumbnails=self.thumbnails)
        editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        editor.destroyed.connect(lambda *_: setattr(self, "editor", None) if self.editor is editor else None)
        editor.accepted.connect(lambda: self.select(editor.character_id))
        if editor.lora_box is not None:
            editor.lora_box.train_requested.connect(self.train_lora)
        if editor.identity_box is not None:
            editor.identity_box.train_requested.connect(self.train_identity)
        self.editor = editor
        editor.show()
        return editor

    def _train_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.train_lora(ids[0])

    def train_lora(self, character_id: str) -> TrainLoraDialog | None:
        """Open the Train LoRA dialog on the character; returns it, so tests and callers can drive it."""
        return self._open_training_dialog("train_dialog", TrainLoraDialog, character_id)

    def _train_identity_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.train_identity(ids[0])

    def train_identity(self, character_id: str) -> Any:
        """Open the Train identity dialog on the character (imported on use: its module pulls the
        identity trainer in)."""
        from comic_studio.ui.characters.identity_dialog import TrainIdentityDialog

        return self._open_training_dialog("identity_dialog", TrainIdentityDialog, character_id)

    def _open_training_dialog(self, attr: str, dialog_class: Any, character_id: str) -> Any:
        """One training dialog of each kind at a time, kept in ``self.<attr>``: a running one is shown
        again rather than a second run started; an idle one is replaced. The dialog deletes itself
        on close (its run, if any, goes on in the Queue). None when the character is gone."""
        current = getattr(self, attr)
        if current is not None and current.is_running():
            current.raise_()
            current.activateWindow()
            return current
        if current is not None:
            current.close()
        try:
            dialog = dialog_class(
                self.ctx, character_id, self.window(), render_service=self.render_service, thumbnails=self.thumbnails
            )
        except ComicStudioError as exc:
            self.ctx.message.emit(str(exc))
            return None
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: setattr(self, attr, None) if getattr(self, attr) is dialog else None)
        setattr(self, attr, dialog)
        dialog.show()
        return dialog

    def select(self, character_id: str | None) -> None:
        for i in range(self.grid.count()):
            item = self.grid.item(i)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == character_id)

    def delete_selected(self) -> None:
        """Delete the selected characters as one undo step."""
        ids = self.selected_ids()
        if ids:
            self.ctx.edit(character_edits.delete_characters, ids)

"""The add/edit character dialog: fields, two reference slots (face, body/outfit), the crop tool.

The dialog edits a *draft*: reference images go into the asset store as soon as they are dropped
(the store is content-addressed and unreferenced assets are not saved), and the document changes
only on OK — as one undo step (``add_character`` or ``update_character``). Cancel leaves the
document untouched.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import character_edits
from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Box, Character, Pronouns
from comic_studio.parsing.names import free_colour
from comic_studio.ui.characters.card import ThumbnailCache, thumbnail_pixmap
from comic_studio.ui.characters.crop import CropDialog
from comic_studio.ui.characters.lora_box import LoraBox
from comic_studio.ui.context import StudioContext

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp)"
THUMB = 72
SLOT_TITLES = {"face": "Face", "body": "Body / outfit"}
STRENGTH_TITLES = {"face": "Face reference strength", "body": "Outfit reference strength"}
STRENGTH_MAX, STRENGTH_STEP = 2.0, 0.05
"""The model's range for ``face_scale`` / ``body_scale`` (an IP-Adapter scale)."""


def ask_image_files(parent: QWidget) -> list[str]:
    """The file picker (module-level so tests can replace it)."""
    paths, _ = QFileDialog.getOpenFileNames(parent, "Add reference images", "", IMAGE_FILTER)
    return paths


def ask_colour(parent: QWidget, current: str) -> str | None:
    colour = QColorDialog.getColor(QColor(current), parent, "Character colour")
    return colour.name() if colour.isValid() else None


class ReferenceSlot(QGroupBox):
    """One slot of reference images: thumbnails, drop files here, add/crop/remove buttons."""

    changed = Signal()
    error = Signal(str)
    crop_requested = Signal(str)  # asset hash, or "" to pick a file first

    def __init__(
        self, slot: str, assets: AssetStore, thumbnails: ThumbnailCache, refs: list[str], parent: QWidget | None = None
    ):
        super().__init__(f"{SLOT_TITLES[slot]} — drop images here", parent)
        self.slot = slot
        self.assets = assets
        self._thumbnails = thumbnails
        self.refs: list[str] = list(refs)
        self.setAcceptDrops(True)

        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setFixedHeight(THUMB + 28)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setAcceptDrops(False)  # file drops go to the slot (the parent) instead
        self.list.itemDoubleClicked.connect(lambda item: self.crop_requested.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())

        self.add_button = QPushButton("Add image…")
        self.crop_button = QPushButton("Crop…")
        self.remove_button = QPushButton("Remove")
        self.add_button.clicked.connect(self._pick_files)
        self.crop_button.clicked.connect(self._crop_current)
        self.remove_button.clicked.connect(self.remove_current)
        self.crop_button.setToolTip("Cut a face or body region from the selected image (or from a file)")

        buttons = QHBoxLayout()
        for button in (self.add_button, self.crop_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._refill()

    # ------------------------------------------------------------------ content
    def _refill(self) -> None:
        self.list.clear()
        for index, digest in enumerate(self.refs):
            icon = QIcon(thumbnail_pixmap(self._thumbnails.get(self.assets, digest, THUMB), THUMB))
            item = QListWidgetItem(icon, "main" if index == 0 else "")
            item.setData(Qt.ItemDataRole.UserRole, digest)
            item.setToolTip(f"{digest[:12]}… (double-click to crop)")
            self.list.addItem(item)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self.list.currentRow() >= 0)

    def add_digest(self, digest: str) -> None:
        if digest not in self.refs:
            if len(self.refs) >= character_edits.MAX_REFS_PER_SLOT:
                self.error.emit(f"{SLOT_TITLES[self.slot]} already holds {character_edits.MAX_REFS_PER_SLOT} images")
                return
            self.refs.append(digest)
            self._refill()
            self.changed.emit()

    def replace_digest(self, old: str, new: str) -> None:
        """Put ``new`` where ``old`` is (a crop taking the place of the picture it was cut from)."""
        self.refs[self.refs.index(old)] = new
        self._refill()
        self.changed.emit()

    def add_files(self, paths: list[str | Path]) -> list[str]:
        """Store each image and append it; a broken file is reported and skipped."""
        added, problems = [], []
        for path in paths:
            try:
                digest = character_edits.store_reference_image(self.assets, Path(path))
            except ComicStudioError as exc:
                # The message starts with the full path; the file name is enough in the dialog.
                problems.append(str(exc).replace(str(path), Path(path).name, 1))
                continue
            self.add_digest(digest)
            added.append(digest)
        if problems:
            self.error.emit("Not added:\n" + "\n".join(f"• {p}" for p in problems))
        return added

    def remove_current(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.refs):
            del self.refs[row]
            self._refill()
            self.changed.emit()

    def _pick_files(self) -> None:
        self.add_files(ask_image_files(self))

    def _crop_current(self) -> None:
        item = self.list.currentItem()
        self.crop_requested.emit(item.data(Qt.ItemDataRole.UserRole) if item else "")

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_files(paths)


class StrengthRow(QWidget):
    """A reference strength: "use default" (``None``: the backend's, e.g. racig's face scale) or a
    value in 0..2. The spin box keeps the last value while the default is used, so toggling back
    does not lose it."""

    def __init__(self, value: float | None, default_hint: float = 1.0, parent: QWidget | None = None):
        # ``default_hint``: where the spin box starts when the default is in use (1.0 is an
        # IP-Adapter's nominal scale; each backend has its own default, so none is shown here).
        super().__init__(parent)
        self.use_default = QCheckBox("use default")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, STRENGTH_MAX)
        self.spin.setSingleStep(STRENGTH_STEP)
        self.spin.setDecimals(2)
        self.spin.setValue(default_hint if value is None else value)
        self.use_default.setChecked(value is None)
        self.spin.setEnabled(value is not None)
        self.use_default.toggled.connect(lambda on: self.spin.setEnabled(not on))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.spin)
        row.addWidget(self.use_default)
        row.addStretch(1)

    def value(self) -> float | None:
        # Rounded to the step: a spin box double like 0.7500000001 would read as a change.
        return None if self.use_default.isChecked() else round(self.spin.value(), 2)

    def set_value(self, value: float | None) -> None:
        self.use_default.setChecked(value is None)
        if value is not None:
            self.spin.setValue(value)


class CharacterEditor(QDialog):
    """Add (``character_id=None``) or edit a character. On OK the document changes in one undo
    step; :attr:`character_id` then names the character."""

    def __init__(
        self,
        ctx: StudioContext,
        character_id: str | None = None,
        parent: QWidget | None = None,
        thumbnails: ThumbnailCache | None = None,
    ):
        super().__init__(parent)
        self.ctx = ctx
        self.character_id = character_id
        existing = ctx.document.project.character(character_id) if character_id else None
        if character_id and existing is None:
            raise ComicStudioError(f"character {character_id!r} does not exist")
        # A new character gets a colour no other has (all were the same blue before).
        self._original = existing or Character(
            name="New character", colour=free_colour([c.colour for c in ctx.document.project.characters])
        )
        self._thumbnails = thumbnails or ThumbnailCache()
        self.setWindowTitle(f"Edit {existing.name}" if existing else "New character")
        c = self._original

        self.name_edit = QLineEdit(c.name if existing else "")
        self.name_edit.setPlaceholderText("Mara Vance")
        self.aliases_edit = QLineEdit(", ".join(c.aliases))
        self.aliases_edit.setPlaceholderText("Mara, Captain Vance (comma separated)")
        self.pronouns_combo = QComboBox()
        for p in Pronouns:
            self.pronouns_combo.addItem(p.value, p)
        self.pronouns_combo.setCurrentIndex(list(Pronouns).index(c.pronouns))
        self.colour_button = QPushButton()
        self.colour_button.clicked.connect(self._pick_colour)
        self.set_colour(c.colour)
        self.description_edit = QPlainTextEdit(c.description)
        self.description_edit.setPlaceholderText("Prompt: tall woman, curly auburn hair, green raincoat…")
        self.description_edit.setMinimumHeight(60)
        self.description_edit.setMaximumHeight(76)
        self.style_edit = QPlainTextEdit(c.style_notes)
        self.style_edit.setPlaceholderText("Style notes: always drawn with a scar over the left eye…")
        self.style_edit.setMinimumHeight(44)
        self.style_edit.setMaximumHeight(56)

        assets = ctx.document.assets
        self.slots = {
            "face": ReferenceSlot("face", assets, self._thumbnails, c.face_refs, self),
            "body": ReferenceSlot("body", assets, self._thumbnails, c.body_refs, self),
        }
        # How strongly each slot conditions a reference-driven backend (racig's IP-Adapters).
        self.strengths = {
            "face": StrengthRow(c.face_scale, parent=self),
            "body": StrengthRow(c.body_scale, parent=self),
        }
        for slot, row in self.strengths.items():
            row.spin.setToolTip(
                f"{STRENGTH_TITLES[slot]} for this character (0 = ignore its {SLOT_TITLES[slot].lower()} references)"
            )
        for slot in self.slots.values():
            slot.error.connect(self.show_error)
            slot.crop_requested.connect(self.open_crop)
        self.crop_dialog: CropDialog | None = None
        # The trained LoRA (existing characters only: a new one has nothing to train on yet).
        self.lora_box = LoraBox(ctx, character_id, self) if existing is not None and character_id else None
        # Imported here: identity training pulls its trainer in, which the window's start need not pay.
        from comic_studio.ui.characters.identity_dialog import IdentityBox

        self.identity_box = IdentityBox(ctx, character_id, self) if existing is not None and character_id else None

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c62828;")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Aliases", self.aliases_edit)
        form.addRow("Pronouns", self.pronouns_combo)
        form.addRow("Colour", self.colour_button)
        form.addRow("Description", self.description_edit)
        form.addRow("Style notes", self.style_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for slot in ("face", "body"):
            layout.addWidget(self.slots[slot])
            strength = QFormLayout()
            strength.addRow(STRENGTH_TITLES[slot], self.strengths[slot])
            layout.addLayout(strength)
        if self.lora_box is not None:
            layout.addWidget(self.lora_box)
        if self.identity_box is not None:
            layout.addWidget(self.identity_box)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.resize(520, 700)

    # ------------------------------------------------------------------ fields
    @property
    def colour(self) -> str:
        return self._colour

    def set_colour(self, colour: str) -> None:
        self._colour = QColor(colour).name()
        self.colour_button.setText(self._colour)
        text = "#000000" if QColor(self._colour).lightness() > 140 else "#ffffff"
        self.colour_button.setStyleSheet(f"background: {self._colour}; color: {text}; padding: 4px 12px;")

    def _pick_colour(self) -> None:
        colour = ask_colour(self, self._colour)
        if colour:
            self.set_colour(colour)

    def fields(self) -> dict:
        """The form's values as Character fields."""
        aliases = [a.strip() for a in self.aliases_edit.text().split(",") if a.strip()]
        return {
            "name": self.name_edit.text().strip(),
            "aliases": aliases,
            "pronouns": self.pronouns_combo.currentData(),
            "colour": self._colour,
            "description": self.description_edit.toPlainText().strip(),
            "style_notes": self.style_edit.toPlainText().strip(),
            "face_refs": list(self.slots["face"].refs),
            "body_refs": list(self.slots["body"].refs),
            "face_scale": self.strengths["face"].value(),
            "body_scale": self.strengths["body"].value(),
        }

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))
        needed = self.layout().totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)  # grow rather than squeeze the form
        if text:
            self.ctx.message.emit(text)

    # ------------------------------------------------------------------ crop tool
    def open_crop(self, digest: str = "") -> CropDialog | None:
        """Open the crop tool on a reference (or on a picked file); crops join the draft."""
        try:
            if digest:
                image = self.ctx.document.assets.open_image(digest)
            else:
                paths = ask_image_files(self)
                if not paths:
                    return None
                digest = character_edits.store_reference_image(self.ctx.document.assets, Path(paths[0]))
                image = self.ctx.document.assets.open_image(digest)
        except ComicStudioError as exc:
            self.show_error(str(exc))
            return None
        dialog = CropDialog(image, self, title=f"Crop — {self.name_edit.text() or 'new character'}")
        source = digest
        dialog.crop_chosen.connect(
            lambda slot, box: self.add_crop(image, slot, box, None if dialog.keep_source.isChecked() else source)
        )
        self.crop_dialog = dialog
        dialog.show()
        return dialog

    def add_crop(self, image, slot: str, box: Box, replaces: str | None = None) -> str | None:
        """Add the crop to ``slot``. ``replaces``: the reference it was cut from, which it takes the
        place of (in its own slot, at its position; from another slot it is removed)."""
        try:
            digest = character_edits.store_reference_image(self.ctx.document.assets, image, crop=box)
        except ComicStudioError as exc:
            self.show_error(str(exc))
            return None
        target = self.slots[slot]
        if replaces and replaces in target.refs and digest not in target.refs:
            target.replace_digest(replaces, digest)
            return digest
        target.add_digest(digest)
        for other in self.slots.values():
            if replaces and other is not target and replaces in other.refs and digest in target.refs:
                other.refs.remove(replaces)
                other._refill()
                other.changed.emit()
        return digest

    # ------------------------------------------------------------------ OK
    def accept(self) -> None:
        fields = self.fields()
        try:
            Character.model_validate({**self._original.model_dump(), **fields})
        except ValidationError as exc:
            err = exc.errors()[0]
            self.show_error(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
            return
        if not fields["name"]:
            self.show_error("A character needs a name.")
            return
        if self.character_id is None:
            created = self.ctx.edit(character_edits.add_character, None, **fields)
            if created is None:
                self.show_error("The character could not be added (see the status bar).")
                return
            self.character_id = created.id
        else:
            self.ctx.edit(character_edits.update_character, self.character_id, label=f"Edit {fields['name']}", **fields)
            if self.ctx.document.project.character(self.character_id) is None:
                self.show_error("The character was deleted meanwhile.")
                return
        if self.crop_dialog is not None:
            self.crop_dialog.close()
        super().accept()

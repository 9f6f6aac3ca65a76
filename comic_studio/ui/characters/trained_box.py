"""What the editor's boxes for a character's trained assets share (the LoRA's :mod:`.lora_box`, the
identity tokens' in :mod:`.identity_dialog`): a card line, a strength, "apply in renders", Clear and
"Train …".

Unlike the rest of the editor (a draft saved on OK), these controls change the character at once,
each one undoable step (``ctx.edit(character_edits.update_character, ...)``): training lands on the
character the moment it finishes, so a box shows and edits the live character, not a draft that
the editor's Cancel would throw away. The editor's OK leaves these fields alone.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QGroupBox, QLabel, QPushButton, QWidget

from comic_studio.core import character_edits
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.errors import AssetError
from comic_studio.core.model import Character
from comic_studio.ui.context import StudioContext

SCALE_MAX, SCALE_STEP = 2.0, 0.05
"""The model's range for ``lora_scale`` and ``identity_scale``, and the spin step."""


class TrainedAssetBox(QGroupBox):
    """The base: subclasses set :attr:`ASSET` / :attr:`ENABLED` / :attr:`SCALE` (the character's
    fields) and :attr:`NOUN`, lay the widgets out, implement :meth:`summary` and call
    :meth:`connect_live`."""

    ASSET = ""
    ENABLED = ""
    SCALE = ""
    """The strength field (0..:data:`SCALE_MAX`, 1 = as trained), shown in :attr:`scale_spin`."""
    NOUN = ""

    train_requested = Signal(str)
    """"Train …" was clicked: the character id (the owner opens the dialog)."""

    def __init__(self, ctx: StudioContext, character_id: str, title: str, train_text: str, parent: QWidget | None):
        super().__init__(title, parent)
        self.ctx = ctx
        self.character_id = character_id
        self.card_label = QLabel()
        self.card_label.setWordWrap(True)
        self.scale_spin = QDoubleSpinBox()  # the app's wheel guard keeps scrolling from changing it
        self.scale_spin.setRange(0.0, SCALE_MAX)
        self.scale_spin.setSingleStep(SCALE_STEP)
        self.scale_spin.setDecimals(2)
        self.enabled_box = QCheckBox("apply in renders")
        self.enabled_box.setToolTip(f"Off: the {self.NOUN} stays on the character, renders leave it out")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip(f"Remove the {self.NOUN} from the character (undoable)")
        self.train_button = QPushButton(train_text)

    def connect_live(self) -> None:
        """Fill the controls from the character, then follow edits (filling is not an edit)."""
        self.refresh()
        self.enabled_box.toggled.connect(self._set_enabled)
        self.scale_spin.valueChanged.connect(self._set_scale)
        self.clear_button.clicked.connect(self.clear)
        self.train_button.clicked.connect(lambda: self.train_requested.emit(self.character_id))
        self.ctx.document_changed.connect(self._on_changes)

    # ------------------------------------------------------------------ for subclasses
    def summary(self, character: Character, data: bytes | None) -> str:
        raise NotImplementedError

    def asset_data(self, character: Character) -> bytes | None:
        """The asset's bytes for the card (None when it cannot be read: the card says so)."""
        try:
            return self.ctx.document.assets.get(getattr(character, self.ASSET))
        except (AssetError, KeyError, OSError):
            return None

    def asset_controls(self) -> list[QWidget]:
        """The controls that need an asset on the character to be enabled."""
        return [self.scale_spin, self.enabled_box, self.clear_button]

    # ------------------------------------------------------------------ the live character
    def character(self) -> Character | None:
        return self.ctx.document.project.character(self.character_id)

    def refresh(self) -> None:
        character = self.character()
        if character is None:
            self.setEnabled(False)
            return
        asset = getattr(character, self.ASSET)
        data = self.asset_data(character) if asset is not None else None
        self.card_label.setText(self.summary(character, data))
        self.enabled_box.blockSignals(True)
        self.enabled_box.setChecked(getattr(character, self.ENABLED))
        self.enabled_box.blockSignals(False)
        self.scale_spin.blockSignals(True)
        self.scale_spin.setValue(getattr(character, self.SCALE))
        self.scale_spin.blockSignals(False)
        for control in self.asset_controls():
            control.setEnabled(asset is not None)

    def _on_changes(self, changes: Changes) -> None:
        if changes.touches(ChangeKind.CHARACTERS):
            self.refresh()

    def _set_enabled(self, on: bool) -> None:
        label = f"{'Enable' if on else 'Disable'} {self.NOUN}"
        self.ctx.edit(character_edits.update_character, self.character_id, label=label, **{self.ENABLED: on})

    def _set_scale(self, value: float) -> None:
        # Spinning through values is one undo step (merged), like dragging a slider; rounded, as a
        # spin box double like 0.7500000001 would read as a change.
        self.ctx.edit(character_edits.update_character, self.character_id, label=f"{self.NOUN} strength",
                      merge_key=(self.SCALE, self.character_id), **{self.SCALE: round(value, 2)})  # fmt: skip

    def clear(self) -> None:
        self.ctx.edit(character_edits.update_character, self.character_id, label=f"Clear {self.NOUN}",
                      **{self.ASSET: None})  # fmt: skip

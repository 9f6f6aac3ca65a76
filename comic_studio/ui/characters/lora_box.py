"""The character's trained LoRA in the editor: its card (trigger, steps, base model, date), a
strength, an enabled box and Clear — and "Train LoRA…", which opens the training dialog — and the
newest training samples (:mod:`comic_studio.ui.characters.lora_samples`), live while a run goes on.
Live controls, each change one undoable step (:mod:`.trained_box`, shared with the identity box).
"""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from comic_studio.core import character_edits
from comic_studio.core.errors import AssetError, ComicStudioError
from comic_studio.core.lora_library import character_lora_header
from comic_studio.core.model import Character
from comic_studio.ui.characters.lora_samples import SampleImages, SampleWatch, character_samples
from comic_studio.ui.characters.train_dialog import SampleStrip
from comic_studio.ui.characters.trained_box import TrainedAssetBox
from comic_studio.ui.context import StudioContext
from comic_studio.workflows.training import export_character_lora, lora_card

STRIP_STEPS = 4
"""How many sampled steps the box shows (the newest)."""


def card_summary(character: Character, data: bytes | None, problem: str = "") -> str:
    """One or two lines about the character's LoRA for the box (and tests); ``problem``: why ``data``
    could not be read (e.g. a big LoRA not in this machine's LoRA library)."""
    if character.lora_asset is None:
        return "No trained LoRA yet."
    if data is None:
        return f"LoRA {character.lora_asset[:12]}… ({problem or 'the file is missing from the project'})"
    card = lora_card(data)
    if not card:
        return f"LoRA {character.lora_asset[:12]}… (from elsewhere: no training card)"
    when = str(card.get("trained_at") or "")[:16].replace("T", " ")
    base = str(card.get("base_model") or "?")
    loss = card.get("final_loss")
    loss_text = f", final loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    text = (
        f"Trigger “{card.get('trigger', '?')}” · {card.get('steps', '?')} steps{loss_text}\n"
        f"Base model {base} · trained {when or '?'}"
    )
    recipe = card.get("recipe")
    if isinstance(recipe, dict):  # the settings it was trained with (the card of a run made here)
        shown = [f"rank {recipe.get('rank', '?')}", f"lr {recipe.get('learning_rate', '?')}",
                 f"{recipe.get('resolution', '?')} px", f"{recipe.get('timestep_law', '?')} timesteps",
                 f"memory {recipe.get('memory', '?')}"]  # fmt: skip
        if recipe.get("train_text_encoder"):
            shown.append("text encoders too")
        if recipe.get("prior_preservation"):
            shown.append(f"prior ×{recipe.get('prior_loss_weight', '?')}")
        text += "\n" + " · ".join(shown)
    return text


class LoraBox(TrainedAssetBox):
    """The live LoRA controls of one existing character (the shared parts: :class:`TrainedAssetBox`)."""

    ASSET, ENABLED, SCALE, NOUN = "lora_asset", "lora_enabled", "lora_scale", "LoRA"

    def __init__(self, ctx: StudioContext, character_id: str, parent: QWidget | None = None):
        super().__init__(ctx, character_id, "Trained LoRA (StoryBooth)", "Train LoRA…", parent)
        self.scale_spin.setToolTip("How strongly the LoRA shapes the character (1 = as trained)")
        self.train_button.setToolTip("Train a LoRA on the character's face and outfit references")
        self.export_button = QPushButton("Export for ComfyUI/A1111…")
        self.export_button.setToolTip(
            "Write the LoRA in kohya's layout (ComfyUI, A1111) and diffusers', with its card, to a folder"
        )

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.scale_spin)
        row.addWidget(self.enabled_box)
        row.addStretch(1)
        row.addWidget(self.clear_button)
        row.addWidget(self.train_button)
        form = QFormLayout(self)
        form.addRow(self.card_label)
        form.addRow("Strength", row)
        form.addRow("", self.export_button)
        self.samples_label = QLabel()
        self.sample_strip = SampleStrip()
        form.addRow(self.samples_label)
        form.addRow(self.sample_strip)
        self._sample_images = SampleImages()
        self._sample_watch = SampleWatch(self)
        self._sample_watch.changed.connect(self.refresh_samples)
        self._sample_watch.watch(ctx.document.project.id, [character_id])

        self._problem = ""
        self.connect_live()
        self.refresh_samples()
        self.export_button.clicked.connect(lambda: self.export_to(self.choose_export_folder()))

    def summary(self, character: Character, data: bytes | None) -> str:
        return card_summary(character, data, self._problem)

    def asset_data(self, character: Character) -> bytes | None:
        # The project's file, or only the header of a big one in the LoRA library (the card is there).
        try:
            data, self._problem = character_lora_header(self.ctx.document.assets, character)
        except (AssetError, KeyError, OSError):
            data, self._problem = None, ""
        return data

    def clear(self) -> None:
        self.ctx.edit(
            character_edits.update_character, self.character_id, label="Clear LoRA", lora_asset=None, lora_bytes=0
        )

    def refresh_samples(self) -> None:
        """Show the newest samples of the character's latest run (files beside its checkpoint)."""
        kept = character_samples(self.ctx.document.project.id, self.character_id)
        shown = self._sample_images.steps(kept[-STRIP_STEPS:])
        self.sample_strip.clear()
        for step, images in shown:
            self.sample_strip.add(step, images)
        self.sample_strip.setVisible(bool(shown))
        self.samples_label.setVisible(bool(shown))
        if shown:
            self.samples_label.setText(f"Training samples of the latest run (newest: step {shown[-1][0]})")

    def asset_controls(self) -> list[QWidget]:
        return [*super().asset_controls(), self.export_button]

    def choose_export_folder(self) -> str:
        """Ask where to export (a test seam: tests replace it)."""
        return QFileDialog.getExistingDirectory(self, "Export the LoRA for ComfyUI/A1111 to")

    def export_to(self, folder: str) -> None:
        """Write the LoRA files into ``folder`` ("" = the user cancelled); the outcome goes to the
        status bar."""
        if not folder:
            return
        try:
            files = export_character_lora(self.ctx.document, self.character_id, folder)
        except ComicStudioError as exc:
            self.ctx.message.emit(str(exc))
            return
        self.ctx.message.emit(
            f"LoRA exported: {files.kohya.name} (ComfyUI/A1111) and {files.diffusers.name} in {folder}"
        )

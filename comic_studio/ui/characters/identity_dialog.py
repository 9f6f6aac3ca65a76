""" "Train identity…" on a character (StableIdentity's learned tokens from its face photos) and the
character's identity box in the editor (card, enabled, Clear, Train identity…).

The dialog is the shared training dialog (:mod:`.training_dialog`) with the identity's settings
(phase split α, face encoder) and its face photos: the run is a job of the render queue
(:mod:`comic_studio.workflows.identity_jobs`) with progress, a loss plot, samples rendered with the
tokens so far and Cancel (→ checkpoint → resume); not modal, it does not refuse while renders are
queued, and closing it leaves the run going in the Queue. The tokens land on the character on the
GUI thread as one undoable step (:func:`~comic_studio.workflows.identity.store_trained_identity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QWidget,
)

from comic_studio.core.model import Character
from comic_studio.training.identity import IdentityRecipe
from comic_studio.training.samples import SampleSettings
from comic_studio.ui.characters.card import ThumbnailCache, thumbnail_pixmap
from comic_studio.ui.characters.trained_box import TrainedAssetBox
from comic_studio.ui.characters.training_dialog import TrainingDialog
from comic_studio.ui.context import StudioContext
from comic_studio.workflows.identity import MAX_PHOTOS, identity_card, identity_checkpoint_path, plan_identity
from comic_studio.workflows.identity_jobs import TRAIN_IDENTITY, IdentityTrainingRequest, identity_training_request

THUMB = 48


class TrainIdentityDialog(TrainingDialog):
    """Learn the character's identity tokens (the shared parts: :class:`TrainingDialog`)."""

    KIND = TRAIN_IDENTITY
    ACTION = "Train identity…"

    def __init__(
        self,
        ctx: StudioContext,
        character_id: str,
        parent: QWidget | None = None,
        *,
        render_service: Any = None,
        thumbnails: ThumbnailCache | None = None,
    ):
        defaults = IdentityRecipe()
        super().__init__(ctx, character_id, parent, render_service=render_service, steps=defaults.steps,
                         learning_rate=defaults.learning_rate, resolution=defaults.resolution)  # fmt: skip
        character = ctx.document.project.character(character_id)
        assert character is not None  # the base checked
        self.alpha_spin = QDoubleSpinBox()
        self.alpha_spin.setRange(0.05, 0.95)
        self.alpha_spin.setSingleStep(0.05)
        self.alpha_spin.setValue(defaults.alpha)
        self.alpha_spin.setToolTip("Timesteps above α·T train the noise, below it the denoised face (0.5 on SDXL, "
                                   "0.6 in the original paper)")  # fmt: skip
        self.encoder_edit = QLineEdit()
        self.encoder_edit.setPlaceholderText("the face-recognition ViT, else the generic ViT (Hugging Face cache)")
        self.photos = QListWidget()
        self.photos.setIconSize(QSize(THUMB, THUMB))
        self.photos.setFlow(QListWidget.Flow.LeftToRight)
        self.photos.setMaximumHeight(THUMB + 16)
        thumbs = thumbnails or ThumbnailCache()
        for digest in list(dict.fromkeys(character.face_refs))[:MAX_PHOTOS]:
            icon = QIcon(thumbnail_pixmap(thumbs.get(ctx.document.assets, digest, THUMB), THUMB))
            self.photos.addItem(QListWidgetItem(icon, ""))

        form = self.form
        form.addRow("Steps", self.steps_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Phase split α", self.alpha_spin)
        form.addRow("Resolution", self.resolution_spin)
        form.addRow("Samples every", self.samples_spin)
        form.addRow("Base model", self.model_edit)
        form.addRow("Face encoder", self.encoder_edit)
        form.addRow("", self.resume_box)
        self.finish_layout(
            QLabel(f"Face photos ({self.photos.count()}, one face each; at most {MAX_PHOTOS})"), self.photos
        )
        self.resize(500, 600)

    def recipe(self) -> IdentityRecipe:
        return IdentityRecipe(steps=self.steps_spin.value(), learning_rate=self.lr_spin.value(),
                              alpha=round(self.alpha_spin.value(), 2), resolution=self.resolution_spin.value())  # fmt: skip

    # ------------------------------------------------------------------ the base's hooks
    def checkpoint(self) -> Path:
        return identity_checkpoint_path(self.ctx.document.project.id, self.character_id)

    def settings_widgets(self) -> list[QWidget]:
        return [*super().settings_widgets(), self.alpha_spin, self.encoder_edit]

    def build_request(self, resume: bool) -> IdentityTrainingRequest:
        recipe = self.recipe()
        plan = plan_identity(self.ctx.document, self.character_id, resume=resume)
        return identity_training_request(plan, recipe, model=self.model_edit.text().strip(),
                                         face_encoder=self.encoder_edit.text().strip(), resume=resume,
                                         samples=SampleSettings(every=self.samples_spin.value()))  # fmt: skip

    def fill_from(self, request: Any) -> None:
        super().fill_from(request)
        self.lr_spin.setValue(request.recipe.learning_rate)
        self.alpha_spin.setValue(request.recipe.alpha)
        self.encoder_edit.setText(request.face_encoder)


def identity_summary(character: Character, data: bytes | None) -> str:
    """One or two lines about the character's identity tokens for the box (and tests)."""
    if character.identity_asset is None:
        return "No identity tokens yet."
    if data is None:
        return f"Identity {character.identity_asset[:12]}… (the file is missing from the project)"
    card = identity_card(data)
    if not card:
        return f"Identity {character.identity_asset[:12]}… (from elsewhere: no training card)"
    when = str(card.get("trained_at") or "")[:16].replace("T", " ")
    loss = card.get("final_loss")
    loss_text = f", final loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    return (f"{card.get('steps', '?')} steps{loss_text} · {len(card.get('photos') or [])} photo(s)\n"
            f"Base model {card.get('base_model') or '?'} · trained {when or '?'}")  # fmt: skip


class IdentityBox(TrainedAssetBox):
    """The live identity controls of one existing character (the shared parts: :class:`TrainedAssetBox`)."""

    ASSET, ENABLED, SCALE, NOUN = "identity_asset", "identity_enabled", "identity_scale", "identity"

    def __init__(self, ctx: StudioContext, character_id: str, parent: QWidget | None = None):
        super().__init__(ctx, character_id, "Identity tokens (StableIdentity)", "Train identity…", parent)
        self.train_button.setToolTip("Learn identity tokens from the character's face photos")
        self.scale_spin.setToolTip(
            "How strongly the identity tokens shape the face: 1 = as trained, 0 = the celebrity-name "
            "mean (a generic face), above 1 exaggerates"
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
        self.connect_live()

    def summary(self, character: Character, data: bytes | None) -> str:
        return identity_summary(character, data)

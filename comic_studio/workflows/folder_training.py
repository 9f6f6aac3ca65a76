"""What the trainers that write into an output folder share (SerialGen's standardizer:
:mod:`~comic_studio.workflows.serialgen_training`, AnimeAdapter:
:mod:`~comic_studio.workflows.anime_training`): the checkpoint's place inside that folder, the
``--resume`` that continues it, and the figures a finished run reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comic_studio.training.lora import TrainingError

CHECKPOINT = "training-checkpoint.safetensors"
"""The run's checkpoint, inside the output folder (``--resume`` continues it bit for bit)."""


@dataclass(frozen=True)
class TrainedFolder:
    """A finished run: the folder it wrote, its steps, the last step's loss and the loss on the
    fixed evaluation batch."""

    folder: Path
    steps: int
    final_loss: float
    evaluation_loss: float


def checkpoint_in(out: Path, trainer: Any, *, resume: bool) -> Path:
    """``out``'s checkpoint (the folder made if need be), ``trainer`` resumed from it when
    ``resume``; :class:`TrainingError` when there is nothing to resume."""
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINT
    if resume:
        if not checkpoint.is_file():
            raise TrainingError(f"{checkpoint}: nothing to resume (run without --resume to start)")
        trainer.resume(checkpoint)
    return checkpoint


def final_loss(trainer: Any) -> float:
    """The last optimizer step's loss (NaN when the run made none)."""
    return trainer.losses[-1] if trainer.losses else float("nan")

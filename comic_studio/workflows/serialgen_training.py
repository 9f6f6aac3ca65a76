"""Fine-tune SerialGen's standardization model on a user's pairs (``comic-studio train serialgen``):
find Moore-AnimateAnyone's stage-1 weights, the SD 1.5 base and the image encoder, run
:class:`~comic_studio.training.serialgen.SerialgenTrainer` with a checkpoint inside the output folder
(``--resume`` continues it bit for bit), and write what the ``serialgen`` standardizer loads: the
FBDM/RPIM weights (its ``standardizer_modules`` setting) and, when the UNets trained, the three
stage-1 files in Moore's names (its ``standardizer_weights`` setting)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comic_studio.generation.models.loading import ModelLoadError, torch_dtype
from comic_studio.generation.models.pickle_policy import pickles_allowed
from comic_studio.generation.models.sd15 import load_sd15_components, resolve_sd15
from comic_studio.training.lora import TrainingError, TrainingProgress
from comic_studio.training.serialgen import SerialgenRecipe, SerialgenTrainer, read_pairs

# CHECKPOINT re-exported: the output folder's checkpoint name, as before the shared module.
from comic_studio.workflows.folder_training import CHECKPOINT as CHECKPOINT, TrainedFolder, checkpoint_in, final_loss


@dataclass(frozen=True)
class TrainedStandardizer(TrainedFolder):
    first_evaluation_loss: float
    unets: bool


def train_serialgen(data: Path, out: Path, recipe: SerialgenRecipe, *, weights: str = "", base: str = "",
                    encoder: str = "", resume: bool = False, device: str = "cpu", dtype: str = "float32",
                    cancel: Callable[[], bool] = lambda: False,
                    on_progress: Callable[[TrainingProgress], None] | None = None) -> TrainedStandardizer:  # fmt: skip
    """Train on ``data`` (a pairs.jsonl file) from the baseline and write the result to ``out``."""
    from safetensors.torch import save as safetensors_bytes

    from comic_studio.core.atomic import atomic_write_bytes
    from comic_studio.generation.models.serialgen_stage1 import (
        build_pipeline,
        encoder_folder,
        save_modules,
        stage1_folder,
    )

    pairs = read_pairs(data, recipe.width / recipe.height)
    try:
        folder = stage1_folder(weights)
        encoder_path = encoder_folder(encoder)
        parts = load_sd15_components(resolve_sd15(base), dtype=dtype, device=device)
        pipeline = build_pipeline(parts["unet"], parts["vae"], folder, encoder_path, dtype=torch_dtype(dtype),
                                  device=device, allow_pickle=pickles_allowed())  # fmt: skip
    except ModelLoadError as exc:
        raise TrainingError(str(exc)) from exc
    trainer = SerialgenTrainer(pipeline, pairs, recipe)
    checkpoint = checkpoint_in(out, trainer, resume=resume)
    first = trainer.evaluation_loss()
    trainer.train(checkpoint, cancel=cancel, on_progress=on_progress)
    assert pipeline.modules is not None  # build_pipeline always gives FBDM/RPIM
    save_modules(pipeline.modules, out)
    if recipe.train_unets:
        for name in ("reference_unet", "denoising_unet", "pose_guider"):
            module = getattr(pipeline.weights, name)
            tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            atomic_write_bytes(out / f"{name}.safetensors", safetensors_bytes(tensors), f"the trained {name}")
    return TrainedStandardizer(out, trainer.step, final_loss(trainer), trainer.evaluation_loss(), first,
                               recipe.train_unets)  # fmt: skip

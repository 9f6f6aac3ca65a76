"""The tiny OpenCLIP model of the evaluation smoke preset (``comic-studio eval --models tiny``).

The model is :func:`comic_studio.testing.tiny.write_tiny_openclip`'s (the real laion layout, loaded
by the real loader), written once under the tiny-models cache folder and reused while its files are there."""

from __future__ import annotations

from pathlib import Path

TINY_CLIP_FOLDER = "openclip-eval"


def tiny_clip_weights(folder: str | Path | None = None) -> Path:
    """The tiny OpenCLIP weights file under ``folder`` (default: the user cache's tiny-models), written if missing."""
    from comic_studio.poses.openclip_embedder import CONFIG_NAME, WEIGHT_NAMES
    from comic_studio.testing.tiny import write_tiny_openclip

    if folder is None:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("comic-studio")) / "tiny-models"
    target = Path(folder) / TINY_CLIP_FOLDER
    weights = target / WEIGHT_NAMES[0]
    if not (weights.is_file() and (target / CONFIG_NAME).is_file()):
        weights, _model, _preprocess = write_tiny_openclip(target)
    return weights

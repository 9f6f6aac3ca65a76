"""A tiny random-weight ViT face encoder in the transformers folder format, for the StableIdentity
tests and the ``--models tiny`` smoke preset of ``train identity`` (the real one is a 768-wide
ViT-B/16 at 224 px; this one is 32 wide at 32 px, same architecture and loader)."""

from __future__ import annotations

import os
from pathlib import Path

TINY_VIT_HIDDEN = 32
TINY_VIT_IMAGE = 32


def write_tiny_face_encoder(folder: str | Path, seed: int = 0) -> Path:
    """Write (once) a seeded tiny ``ViTModel`` under ``folder``; returns the folder."""
    import torch
    from transformers import ViTConfig, ViTModel

    target = Path(folder)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    config = ViTConfig(hidden_size=TINY_VIT_HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, image_size=TINY_VIT_IMAGE, patch_size=8)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ViTModel(config, add_pooling_layer=False)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    return target


def use_tiny_face_encoder(folder: str | Path | None = None) -> Path:
    """Build the tiny face encoder (default: beside the tiny kit in the user cache) and make it the
    face encoder of this process (``$COMIC_STUDIO_FACE_ENCODER``)."""
    from comic_studio.training.identity import FACE_ENCODER_ENV

    if folder is None:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("comic-studio")) / "tiny-models" / "face-encoder"
    path = write_tiny_face_encoder(folder)
    os.environ[FACE_ENCODER_ENV] = str(path)
    return path

"""The fp16-fix VAE replaces SDXL's own VAE when running in float16 (and only then)."""

import shutil

import torch

from comic_studio.generation.models.loading import FP16_FIX_VAE_ID, fp16_fix_vae
from comic_studio.generation.resources import ModelCache
from comic_studio.weights.locate import Places


def _install_fix(tiny_kit, models):
    """Put a VAE in the models folder where the catalogue entry expects the fp16-fix files."""
    target = models / FP16_FIX_VAE_ID
    shutil.copytree(tiny_kit.sdxl / "vae", target)
    return target


def test_swaps_in_float16_only_and_is_cached(tiny_kit, tmp_path):
    models = tmp_path / "models"
    places = Places(models=models, hf_cache=tmp_path / "empty-hf-cache")
    assert fp16_fix_vae("float16", "cpu", places=places) is None  # not installed: keep the stock VAE
    _install_fix(tiny_kit, models)
    cache = ModelCache()
    vae = fp16_fix_vae("float16", "cpu", cache, places=places)
    assert vae is not None and vae.dtype == torch.float16
    assert fp16_fix_vae("float16", "cpu", cache, places=places) is vae  # one load, shared
    assert fp16_fix_vae("float32", "cpu", cache, places=places) is None
    assert fp16_fix_vae("bfloat16", "cpu", cache, places=places) is None

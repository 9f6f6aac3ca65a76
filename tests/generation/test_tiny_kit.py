"""The tiny-model kit: every part is written in its real on-disk format and loads back through the
real loaders (diffusers folders, single-file checkpoint, ControlNet, IP-Adapter Plus/Plus-Face)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from comic_studio.generation.models.loading import load_sdxl_components, sdxl_source  # noqa: E402
from comic_studio.generation.resources import ModelCache  # noqa: E402
from comic_studio.testing.tiny import IP_ADAPTER_WEIGHTS, KIT_VERSION, build_tiny_kit  # noqa: E402


def test_kit_files_are_real_formats(tiny_kit):
    index = json.loads((tiny_kit.sdxl / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert list((tiny_kit.sdxl / part).glob("*.safetensors")), part
    assert (tiny_kit.sdxl / "tokenizer" / "tokenizer.json").is_file() or (
        tiny_kit.sdxl / "tokenizer" / "vocab.json"
    ).is_file()
    assert tiny_kit.single_file.stat().st_size > 1_000_000
    from safetensors import safe_open

    with safe_open(str(tiny_kit.single_file), "pt") as f:
        keys = set(f.keys())
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "first_stage_model.decoder.up.3.block.0.conv1.weight" in keys
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert not any(k.startswith(("unet.", "down_blocks.")) for k in keys)
    total = sum(p.stat().st_size for p in tiny_kit.root.rglob("*") if p.is_file())
    assert total < 40_000_000


def test_ldm_vae_with_mid_attention_round_trips_through_diffusers_converter():
    """The kit's VAE has no mid-block attention (speed); real SDXL VAEs do. Check that part of the
    writer against diffusers' own reader."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from comic_studio.generation.models.ldm_format import VAE_PREFIX, _vae_key

    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8, latent_channels=4)  # fmt: skip
    ldm = {}
    for key, value in vae.state_dict().items():
        new_key, new_value = _vae_key(key, value, 2)
        ldm[VAE_PREFIX + new_key] = new_value
    assert ldm[VAE_PREFIX + "decoder.mid.attn_1.q.weight"].ndim == 4
    back = convert_ldm_vae_checkpoint(ldm, dict(vae.config))
    assert back.keys() == vae.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in vae.state_dict().items())


def test_kit_is_reused_when_present(tiny_kit):
    before = tiny_kit.single_file.stat().st_mtime_ns
    again = build_tiny_kit(tiny_kit.root)
    assert again == tiny_kit and tiny_kit.single_file.stat().st_mtime_ns == before


def test_kit_is_rebuilt_after_an_interrupted_build(tmp_path):
    (tmp_path / "sdxl").mkdir()  # a half-written kit: no marker
    kit = build_tiny_kit(tmp_path, seed=3)
    assert json.loads((tmp_path / "tiny-kit.json").read_text()) == {"version": KIT_VERSION, "seed": 3}
    assert (kit.sdxl / "model_index.json").is_file()


def test_single_file_and_folder_load_identical_weights(tiny_kit):
    folder = load_sdxl_components(sdxl_source(tiny_kit.sdxl))
    single = load_sdxl_components(sdxl_source(tiny_kit.single_file, tiny_kit.sdxl))
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        a, b = folder[part].state_dict(), single[part].state_dict()
        assert a.keys() == b.keys(), part
        assert all(torch.equal(a[k], b[k]) for k in a), part


def test_cache_loads_each_component_once(tiny_kit):
    cache = ModelCache()
    for _ in range(3):
        load_sdxl_components(sdxl_source(tiny_kit.single_file, tiny_kit.sdxl), cache=cache)
    assert cache.loads(component="unet") == 1 and cache.loads() == 5  # 4 models + tokenizers/scheduler


def test_controlnet_loads_and_conditions_generation(tiny_kit):
    from diffusers import ControlNetModel, StableDiffusionXLControlNetPipeline

    parts = load_sdxl_components(sdxl_source(tiny_kit.sdxl))
    net = ControlNetModel.from_pretrained(tiny_kit.controlnet, local_files_only=True)
    pipe = StableDiffusionXLControlNetPipeline(**parts, controlnet=net)
    pipe.set_progress_bar_config(disable=True)

    def run(pose: Image.Image) -> np.ndarray:
        out = pipe("a hero", image=pose, num_inference_steps=2, height=64, width=64,
                   generator=torch.Generator().manual_seed(0), output_type="np")  # fmt: skip
        return out.images[0]

    blank = Image.new("RGB", (64, 64), "black")
    stick = Image.new("RGB", (64, 64), "black")
    stick.paste((255, 0, 0), (28, 8, 36, 56))
    assert not np.allclose(run(blank), run(stick))


def test_ip_adapter_plus_and_face_load_through_diffusers(tiny_kit):
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_kit.sdxl, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.image_encoder = CLIPVisionModelWithProjection.from_pretrained(tiny_kit.image_encoder, local_files_only=True)
    pipe.feature_extractor = CLIPImageProcessor.from_pretrained(tiny_kit.image_encoder, local_files_only=True)
    pipe.load_ip_adapter(str(tiny_kit.ip_adapter), subfolder="sdxl_models", weight_name=list(IP_ADAPTER_WEIGHTS),
                         image_encoder_folder=None, local_files_only=True)  # fmt: skip
    pipe.set_ip_adapter_scale([1.0, 1.0])
    red, blue = Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")

    def run(ref: Image.Image) -> np.ndarray:
        out = pipe("a hero", ip_adapter_image=[ref, ref], num_inference_steps=2, height=64, width=64,
                   generator=torch.Generator().manual_seed(0), output_type="np")  # fmt: skip
        return out.images[0]

    assert not np.allclose(run(red), run(blue))  # the reference image reaches the UNet

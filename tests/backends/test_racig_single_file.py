"""Single-file models from a ComfyUI/A1111 folder load with diffusers' own single-file loaders around
a config and render exactly what the diffusers folders render (tiny kit, CPU)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import REFS, as_array, build_kit, kit_settings, panel_request  # noqa: E402

from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.backends.racig.adapters import reference_images_setting  # noqa: E402
from comic_studio.generation.models.loading import ModelLoadError, fp16_fix_vae, load_single_file_model  # noqa: E402
from comic_studio.generation.request import GenerationError  # noqa: E402
from comic_studio.weights.locate import Places  # noqa: E402


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def comfy(kit, tmp_path_factory):
    """The tiny kit's ControlNet and encoder as ComfyUI keeps them: one renamed file each, no config."""
    tiny, _ = kit
    models = tmp_path_factory.mktemp("ComfyUI") / "models"
    (models / "controlnet").mkdir(parents=True)
    (models / "clip_vision").mkdir()
    controlnet = models / "controlnet" / "openpose-sdxl.safetensors"
    encoder = models / "clip_vision" / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
    shutil.copy(tiny.controlnet / "diffusion_pytorch_model.safetensors", controlnet)
    shutil.copy(tiny.image_encoder / "model.safetensors", encoder)
    return controlnet, encoder


def test_racig_renders_through_single_files_exactly_as_through_folders(kit, comfy):
    tiny, strong = kit
    controlnet, encoder = comfy
    refs = {"reference_images": reference_images_setting(REFS)}
    folders = RacigBackend().generate(panel_request(kit_settings(tiny, strong, **refs)))
    files = RacigBackend().generate(
        panel_request(
            kit_settings(
                tiny,
                strong,
                **refs,
                controlnet=str(controlnet),
                controlnet_config=str(tiny.controlnet),
                image_encoder=str(encoder),
                image_encoder_config=str(tiny.image_encoder),
            )  # fmt: skip
        )
    )
    assert np.array_equal(as_array(folders.image), as_array(files.image))


def test_a_single_file_that_does_not_fit_the_config_is_named(kit, comfy):
    tiny, strong = kit
    controlnet, encoder = comfy
    # No config setting: the bundled xinsir (full-size) config, which the tiny file does not fit.
    with pytest.raises(GenerationError, match=r"openpose-sdxl\.safetensors.*not usable as this controlnet"):
        RacigBackend().generate(panel_request(kit_settings(tiny, strong, controlnet=str(controlnet)), refs=False))
    with pytest.raises(GenerationError, match="not a ViT image encoder"):
        RacigBackend()._image_encoder(str(encoder))
    with pytest.raises(GenerationError, match="has no config.json"):
        RacigBackend()._controlnet(str(controlnet), str(controlnet.parent))


def test_an_original_layout_vae_file_loads_like_its_folder(kit, tmp_path):
    """A1111/ComfyUI ``vae/`` files use the original (LDM) key names; diffusers converts them."""
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    from comic_studio.generation.models.ldm_format import _vae_key

    tiny, _ = kit
    folder_vae = AutoencoderKL.from_pretrained(tiny.sdxl, subfolder="vae")
    levels = len(folder_vae.config.block_out_channels)
    ldm = dict(_vae_key(k, v, levels) for k, v in folder_vae.state_dict().items())
    target = tmp_path / "vae" / "sdxl_vae.safetensors"
    target.parent.mkdir()
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(target))
    loaded = load_single_file_model("vae", target, tiny.sdxl / "vae", "float32")
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.decode(latent).sample, folder_vae.decode(latent).sample)
    with pytest.raises(ModelLoadError, match="not usable as this controlnet"):
        load_single_file_model("controlnet", target, tiny.controlnet, "float32")


def test_the_fp16_fix_vae_loads_from_a_comfyui_vae_file(tmp_path):
    """Full size, the real diffusers layout (zeros, sparse): located, built around the bundled
    config (``force_upcast`` off), in float16 — where it used to fail the whole job."""
    from comic_studio.testing.sparse_weights import VAE, real_shapes, write_sparse_safetensors

    external = tmp_path / "ComfyUI"
    write_sparse_safetensors(
        external / "models" / "vae" / "diffusion_pytorch_model.safetensors", real_shapes(VAE), "F32"
    )
    places = Places(models=tmp_path / "app-models", external=external, hf_cache=tmp_path / "empty-hf-cache")
    vae = fp16_fix_vae("float16", "cpu", places=places)
    assert vae is not None and vae.dtype == torch.float16
    assert vae.config.force_upcast is False and list(vae.config.block_out_channels) == [128, 256, 512, 512]

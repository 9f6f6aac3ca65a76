"""ComfyUI/A1111 folders: single-file ControlNet, ViT-H encoder and fp16-fix VAE count as installed
only when usable ("installed" means loadable: the header fits the architecture they are built with).

The files are written in the real single-file layouts at full size — the real tensor names, shapes
and dtypes of xinsir's ControlNet (float16), h94's encoder (float32) and the fp16-fix VAE — as
sparse files (the data is zeros the file system never stores), so the header check meets what a
user's download holds, and a renamed file can carry the catalogue's exact size.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.testing.sparse_weights import CONTROLNET, ENCODER, VAE, real_shapes, write_sparse_safetensors  # noqa: E402
from comic_studio.weights.architecture import bundled_config, file_mismatch, read_config  # noqa: E402
from comic_studio.weights.catalogue import ModelFile, load_catalogue  # noqa: E402
from comic_studio.weights.locate import Places, in_external, locate, locate_all, usable_file  # noqa: E402
from comic_studio.weights.needs import ModelNeed, check_need  # noqa: E402


@pytest.fixture(scope="module")
def shapes():
    # h94's encoder file also stores the position ids buffer older transformers saved.
    encoder = {**real_shapes(ENCODER), "vision_model.embeddings.position_ids": (1, 257)}
    return {CONTROLNET: real_shapes(CONTROLNET), ENCODER: encoder, VAE: real_shapes(VAE)}


@pytest.fixture
def comfy(tmp_path, shapes):
    """A ComfyUI ``models/`` tree as users have it: file names from the download pages."""
    root = tmp_path / "ComfyUI"
    models = root / "models"
    write_sparse_safetensors(models / "controlnet" / "diffusion_pytorch_model.safetensors", shapes[CONTROLNET], "F16")
    write_sparse_safetensors(
        models / "clip_vision" / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors", shapes[ENCODER], "F32"
    )
    write_sparse_safetensors(models / "vae" / "diffusion_pytorch_model.safetensors", shapes[VAE], "F32")
    return root


def places(tmp_path, external):
    return Places(models=tmp_path / "app-models", external=external, hf_cache=tmp_path / "empty-hf-cache")


def test_real_layout_single_files_are_installed_and_racig_needs_are_met(tmp_path, comfy):
    catalogue = load_catalogue()
    found = locate_all(places(tmp_path, comfy), catalogue)
    assert found[CONTROLNET].path.name == "diffusion_pytorch_model.safetensors"
    assert found[CONTROLNET].path.parent.name == "controlnet" and found[CONTROLNET].source == "external"
    assert found[ENCODER].path.name == "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
    assert found[VAE].path.parent.name == "vae"
    status = check_need(ModelNeed("controlnet", "the OpenPose ControlNet", CONTROLNET), catalogue, found)
    assert status.ready and status.where == "ComfyUI/A1111 folder"


def test_a_canny_controlnet_of_another_shape_is_not_installed(tmp_path):
    # A smaller canny ControlNet (fewer transformer layers in the deepest block) under the generic name.
    small = real_shapes(CONTROLNET, transformer_layers_per_block=[1, 2, 4])
    root = tmp_path / "ComfyUI"
    bad = write_sparse_safetensors(root / "models" / "controlnet" / "diffusion_pytorch_model.safetensors", small, "F16")
    entry = load_catalogue().get(CONTROLNET)
    assert in_external(entry, root) is None
    assert "transformer_blocks.9" in usable_file(entry, bad)
    catalogue = load_catalogue()
    need = ModelNeed("controlnet", "the OpenPose ControlNet", CONTROLNET, setting="controlnet")
    assert not check_need(need, catalogue, locate_all(places(tmp_path, root), catalogue)).ready
    # Named directly in the backend setting: still not "installed", and the reason is given.
    configured = check_need(need, catalogue, {}, preferred=str(bad))
    assert not configured.ready and "is missing" in configured.problem and configured.suggestion.id == CONTROLNET


@pytest.mark.parametrize(
    "wrong",
    [
        "sd15",  # an SD 1.5 ControlNet: 768-wide cross-attention
        "vae-as-controlnet",  # a VAE dropped into controlnet/
        "truncated",  # an interrupted download
        "pickle",  # a .pth of the right name pattern
    ],
)
def test_unusable_files_are_not_installed(tmp_path, shapes, wrong):
    root = tmp_path / "ComfyUI"
    folder = root / "models" / "controlnet"
    target = folder / "diffusion_pytorch_model.safetensors"
    if wrong == "sd15":
        write_sparse_safetensors(target, real_shapes(CONTROLNET, cross_attention_dim=768), "F16")
    elif wrong == "vae-as-controlnet":
        write_sparse_safetensors(target, shapes[VAE], "F32")
    elif wrong == "truncated":
        write_sparse_safetensors(target, shapes[CONTROLNET], "F16")
        with open(target, "r+b") as fh:
            fh.truncate(target.stat().st_size // 2)
    else:
        folder.mkdir(parents=True)
        (folder / "diffusion_pytorch_model.pth").write_bytes(b"\x80\x04K\x01.")
    assert in_external(load_catalogue().get(CONTROLNET), root) is None


def test_a_controlnet_named_for_another_control_type_is_not_taken_for_openpose(tmp_path, shapes):
    """xinsir's canny ControlNet has OpenPose's shapes and size: only its name tells; ComfyUI users
    keep the repo's name on the file or on the folder around ``diffusion_pytorch_model.safetensors``."""
    entry = load_catalogue().get(CONTROLNET)
    root = tmp_path / "ComfyUI"
    folder = root / "models" / "controlnet"
    write_sparse_safetensors(folder / "controlnet-canny-sdxl-1.0" / "diffusion_pytorch_model.safetensors",
                             shapes[CONTROLNET], "F16")  # fmt: skip
    write_sparse_safetensors(
        folder / "xinsir-depth-sdxl.safetensors", shapes[CONTROLNET], "F16", size=entry.weight_file.size
    )
    assert in_external(entry, root) is None
    wanted = write_sparse_safetensors(folder / "controlnet-openpose-sdxl-1.0" / "diffusion_pytorch_model.safetensors",
                                      shapes[CONTROLNET], "F16")  # fmt: skip
    assert in_external(entry, root).path == wanted


def test_a_renamed_download_is_found_by_its_exact_size(tmp_path, shapes):
    entry = load_catalogue().get(CONTROLNET)
    root = tmp_path / "A1111"
    folder = root / "models" / "ControlNet"
    write_sparse_safetensors(folder / "some-other-size.safetensors", shapes[CONTROLNET], "F16",
                             size=entry.weight_file.size + 8)  # fmt: skip
    assert in_external(entry, root) is None  # neither the name nor the size: not guessed
    renamed = write_sparse_safetensors(folder / "xinsir_openpose_sdxl.safetensors", shapes[CONTROLNET], "F16",
                                       size=entry.weight_file.size)  # fmt: skip
    assert in_external(entry, root).path == renamed


def test_a_pinned_size_tells_two_files_of_one_architecture_apart(tmp_path, shapes):
    """The stock SDXL VAE and the fp16 fix share every shape; a pinned entry's exact size (the
    downloader's guarantee) separates files the header cannot."""
    root = tmp_path / "ComfyUI"
    fix = write_sparse_safetensors(root / "models" / "vae" / "diffusion_pytorch_model.safetensors", shapes[VAE], "F32")
    entry = load_catalogue().get(VAE)

    def pinned(size: int):
        weight = ModelFile(path=entry.weight_file.path, sha256="0" * 64, size=size)
        return entry.model_copy(update={"files": [entry.files[0], weight]})

    assert in_external(pinned(fix.stat().st_size), root).path == fix
    other = pinned(fix.stat().st_size + 2104)
    assert in_external(other, root) is None
    assert "bytes, not the" in usable_file(other, fix)


def test_an_original_layout_fp16_fix_vae_is_installed(tmp_path):
    """A1111/ComfyUI ``vae/`` files often keep the original (LDM) key names: accepted as well."""
    from diffusers import AutoencoderKL

    from comic_studio.generation.models.ldm_format import _vae_key

    with torch.device("meta"):
        vae = AutoencoderKL.from_config(read_config(bundled_config(VAE)))
    levels = len(vae.config.block_out_channels)
    ldm = {key: tuple(value.shape) for key, value in (_vae_key(k, v, levels) for k, v in vae.state_dict().items())}
    assert "decoder.up.0.block.2.conv2.weight" in ldm and "encoder.mid.attn_1.q.weight" in ldm
    root = tmp_path / "webui"
    path = write_sparse_safetensors(root / "models" / "VAE" / "diffusion_pytorch_model.safetensors", ldm, "F32")
    assert in_external(load_catalogue().get(VAE), root).path == path


def test_the_app_models_folder_still_wins_and_keeps_its_folder_layout(tmp_path, comfy):
    entry = load_catalogue().get(CONTROLNET)
    app = tmp_path / "app-models" / CONTROLNET
    app.mkdir(parents=True)
    for f in entry.files:
        (app / f.path).write_bytes(b"{}")
    found = locate(entry, places(tmp_path, comfy))
    assert found.source == "models-folder" and found.path == app


def test_bundled_configs_are_the_architectures_the_catalogue_names():
    """The ControlNet config is diffusers' SDXL ControlNet built from the bundled SDXL UNet (the
    architecture of xinsir's OpenPose model); the encoder's is h94's ViT-H; the VAE's is SDXL's
    with the fix's ``force_upcast: false``."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    from comic_studio.core.resources import resource

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(read_config(resource("sdxl", "base-1.0", "unet")))
        derived = dict(ControlNetModel.from_unet(unet).config)
    bundled = read_config(bundled_config(CONTROLNET))
    for key, value in bundled.items():
        if not key.startswith("_"):
            assert (list(derived[key]) if isinstance(derived[key], tuple) else derived[key]) == value, key
    vit = read_config(bundled_config(ENCODER))
    assert (vit["hidden_size"], vit["num_hidden_layers"], vit["num_attention_heads"]) == (1280, 32, 16)
    assert (vit["intermediate_size"], vit["patch_size"], vit["image_size"], vit["projection_dim"]) == (
        5120,
        14,
        224,
        1024,
    )
    sdxl_vae = read_config(resource("sdxl", "base-1.0", "vae"))
    assert read_config(bundled_config(VAE)) == {**sdxl_vae, "force_upcast": False}
    # The ViT-H encoder's float32 weights are exactly the catalogue's size (header aside).
    params = sum(int(torch.Size(s).numel()) for s in real_shapes(ENCODER).values())
    assert 0 < load_catalogue().get(ENCODER).weight_file.size - 4 * params < 100_000


def test_the_written_layouts_match_the_real_downloads_sizes(tmp_path, shapes):
    """Evidence that the bundled configs are the real architectures: written from them in
    safetensors' own layout (sorted compact header, 8-byte padded), xinsir's ControlNet has exactly
    the catalogue's byte size of the real download; h94's encoder and the fp16-fix VAE are within a
    few header bytes (their headers carry metadata we do not reproduce) — one tensor more or less
    would be kilobytes to megabytes."""
    catalogue = load_catalogue()
    for entry_id, dtype, margin in ((CONTROLNET, "F16", 0), (ENCODER, "F32", 64), (VAE, "F32", 64)):
        path = write_sparse_safetensors(tmp_path / f"{entry_id}.safetensors", shapes[entry_id], dtype)
        assert abs(path.stat().st_size - catalogue.get(entry_id).weight_file.size) <= margin, entry_id


def test_the_header_check_reads_no_tensor_data(tmp_path, shapes):
    """A 2.5 GB ControlNet is checked from its header alone (the data region here is a hole)."""
    path = write_sparse_safetensors(tmp_path / "cn.safetensors", shapes[CONTROLNET], "F16")
    assert path.stat().st_blocks * 512 < 10_000_000  # sparse: nothing but the header on disk
    assert file_mismatch(path, "controlnet", bundled_config(CONTROLNET)) is None

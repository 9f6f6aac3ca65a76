"""RaCig's fine-tuned ControlNet (issue 15, item 7): a catalogue entry, and its file layout — every
ControlNet key under ``controlnet.`` beside other training state — loads onto the xinsir
architecture through the real single-file loader and renders exactly what the same weights render
from a diffusers folder (tiny kit, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from safetensors.torch import load_file, save_file  # noqa: E402
from test_racig_support import as_array, build_kit, kit_settings, panel_request  # noqa: E402

from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.generation.request import GenerationError  # noqa: E402
from comic_studio.weights.architecture import bundled_config, file_mismatch  # noqa: E402
from comic_studio.weights.catalogue import load_catalogue  # noqa: E402


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())


def racig_file(tiny, folder, drop: str = ""):
    """The tiny ControlNet as RaCig's training checkpoint keeps it: keys prefixed, other state beside."""
    weights = load_file(str(tiny.controlnet / "diffusion_pytorch_model.safetensors"))
    state = {f"controlnet.{k}": v for k, v in weights.items() if k != drop}
    state["image_proj_model.proj.weight"] = torch.zeros(4, 4)  # not the ControlNet's: ignored
    path = folder / "model.safetensors"
    save_file(state, str(path))
    return path


def test_the_catalogue_offers_racigs_controlnet_on_the_xinsir_architecture():
    entry = load_catalogue().get("controlnet-openpose-sdxl-racig")
    assert entry.kind == "controlnet" and entry.repo == "ZuluVision/RaCig"
    assert bundled_config(entry.id) == bundled_config("controlnet-openpose-sdxl")


def test_a_prefixed_controlnet_renders_like_its_folder(kit, tmp_path):
    tiny, strong = kit
    path = racig_file(tiny, tmp_path)
    assert file_mismatch(path, "controlnet", tiny.controlnet) is None  # the header check strips it too
    base = kit_settings(tiny, strong)
    folder = RacigBackend().generate(panel_request(base, refs=False))
    single = RacigBackend().generate(
        panel_request({**base, "controlnet": str(path), "controlnet_config": str(tiny.controlnet)}, refs=False)
    )
    assert np.array_equal(as_array(folder.image), as_array(single.image))


def test_a_prefixed_file_missing_a_key_is_named(kit, tmp_path):
    tiny, strong = kit
    path = racig_file(tiny, tmp_path, drop="conv_in.bias")
    settings = {**kit_settings(tiny, strong), "controlnet": str(path), "controlnet_config": str(tiny.controlnet)}
    with pytest.raises(GenerationError, match=r"model\.safetensors.*controlnet"):
        RacigBackend().generate(panel_request(settings, refs=False))


def test_only_racigs_layout_counts_as_its_file_in_a_comfyui_folder(kit, tmp_path):
    """RaCig's file is a generic ``model.safetensors``: a stock ControlNet of that name is not it."""
    from comic_studio.weights.locate import usable_file

    tiny, _ = kit
    entry = load_catalogue().get("controlnet-openpose-sdxl-racig")
    prefixed = racig_file(tiny, tmp_path)
    # The bundled config is full-size xinsir's: the tiny file differs in shapes, named as such ...
    assert "does not fit" in (usable_file(entry, prefixed) or "")
    # ... and a stock (unprefixed) file is refused for its layout before any shape is compared.
    stock = tmp_path / "stock" / "model.safetensors"
    stock.parent.mkdir()
    stock.write_bytes((tiny.controlnet / "diffusion_pytorch_model.safetensors").read_bytes())
    assert "not 'controlnet.'" in (usable_file(entry, stock) or "")

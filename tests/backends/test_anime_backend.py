"""The anime backend (AnimeAdapter on SD 1.5) on the tiny SD 1.5 kit: refusal without weights, one
reference per character composed with the pose ControlNet and a LoRA in one call, λ, the shared UNet
left clean, and `comic-studio render --backend anime --models tiny` end to end."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from comic_studio.backends.anime import AnimeBackend  # noqa: E402
from comic_studio.generation.request import (  # noqa: E402
    GenerationError,
    GenerationRequest,
    RequestCharacter,
    png_data_uri,
)
from comic_studio.testing.tiny import character_picture, write_tiny_lora  # noqa: E402
from comic_studio.testing.tiny_sd15 import tiny_sd15_components  # noqa: E402
from comic_studio.vision.detect import plain_background_mask  # noqa: E402


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


REFS = [_png(character_picture(seed, 48, 64)) for seed in range(4)]
HASHES = [hashlib.sha256(b).hexdigest() for b in REFS]


@pytest.fixture(scope="module")
def lora(sd15_kit, tmp_path_factory):
    return write_tiny_lora(tmp_path_factory.getbasetemp() / "sd15-lora.safetensors", 3, tiny_sd15_components(0)["unet"])


@pytest.fixture(scope="module")
def backend():
    return AnimeBackend()


def settings(sd15_kit, **extra):
    values = dict(model=str(sd15_kit.sd15), image_encoder=str(sd15_kit.clip_vision), adapter=str(sd15_kit.adapter),
                  controlnet=str(sd15_kit.controlnet), ip_adapter=str(sd15_kit.ip_adapter),
                  ip_image_encoder=str(sd15_kit.ip_image_encoder), steps=3, max_side=96, pose_matching="overlap",
                  preview_every=0, reference_images=json.dumps({h: png_data_uri(b) for h, b in zip(HASHES, REFS)}))  # fmt: skip
    values.update(extra)
    return values, HASHES


def request(sd15_kit, refs: bool = True, **extra) -> GenerationRequest:
    values, hashes = settings(sd15_kit, **extra)
    chars = [
        RequestCharacter(id="ana", name="Ana", colour="#d0563b", body_refs=[hashes[0]] if refs else []),
        RequestCharacter(id="ben", name="Ben", colour="#3b6fd0", body_refs=[hashes[1]] if refs else []),
    ]
    return GenerationRequest(backend="anime", width=128, height=96, seed=4, prompt="two anime girls on a pier",
                             action="Ana hands Ben a brass key", characters=chars, actor_id="ana", target_id="ben",
                             backend_settings=values)  # fmt: skip


def pixels(result) -> np.ndarray:
    return np.asarray(result.image.convert("RGB"), dtype=np.float64)


def test_without_adapter_weights_it_refuses_and_names_the_stand_in(sd15_kit, backend):
    with pytest.raises(
        GenerationError, match=r"setting 'adapter'.*train anime-adapter.*'method' to stand-in.*not AnimeAdapter"
    ):
        backend.generate(request(sd15_kit, adapter=""))


def test_references_compose_with_controlnet_and_lora_in_one_call_and_the_unet_is_left_clean(sd15_kit, lora, backend):
    plain = backend.generate(request(sd15_kit, refs=False, loras=f"{lora}:1.0"))
    with_refs = backend.generate(request(sd15_kit, loras=f"{lora}:1.0"))
    assert with_refs.image.size == (128, 96)
    assert not np.array_equal(pixels(plain), pixels(with_refs))
    no_lora = backend.generate(request(sd15_kit))
    assert not np.array_equal(pixels(no_lora), pixels(with_refs))  # the LoRA took part in the same call
    unet = next(v for k, v in backend.resources.models._items.items() if k.component == "unet")
    assert all(type(p).__name__ == "AttnProcessor2_0" for p in unet.attn_processors.values())
    assert not getattr(unet, "peft_config", None)  # the LoRA came off too
    again = backend.generate(request(sd15_kit, refs=False, loras=f"{lora}:1.0"))
    assert np.array_equal(pixels(plain), pixels(again))
    assert with_refs.pose_id is not None and len(with_refs.heads) == 2


def test_strength_zero_for_every_character_is_the_render_without_references(sd15_kit, backend):
    plain = backend.generate(request(sd15_kit, refs=False))
    silent = backend.generate(request(sd15_kit, character_scales='{"ana": 0, "ben": 0}'))
    assert np.array_equal(pixels(plain), pixels(silent))
    one = backend.generate(request(sd15_kit, character_scales='{"ana": 0}'))
    assert not np.array_equal(pixels(plain), pixels(one))


def test_plain_background_rule_finds_the_character_box():
    mask = plain_background_mask(character_picture(2, 64, 64))
    assert mask is not None
    assert mask[16:48, 16:48].all() and not mask[:16].any() and not mask[:, :16].any()


def test_cli_render_with_the_anime_backend_and_tiny_models(tmp_path, tiny_kit, restore_default_settings, monkeypatch):
    from comic_studio.cli import main
    from comic_studio.core import editing
    from comic_studio.core.document import Document
    from comic_studio.core.layout import page_format
    from comic_studio.core.model import Character
    from comic_studio.core.projectfile import load_project
    from comic_studio.generation.registry import register_backend, unregister_backend
    from comic_studio.workflows.story import story_to_document

    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    doc = Document.new("Anime", page_format("us-comic").model_copy(update={"dpi": 40}))
    for data in REFS[:2]:
        doc.assets.add(data)
    cast = [Character(name="Ana", colour="#d0563b", body_refs=[HASHES[0]]),
            Character(name="Ben", colour="#3b6fd0", body_refs=[HASHES[1]])]  # fmt: skip
    story_to_document("Ana hands Ben a brass key on the pier.", cast, document=doc)
    panel = doc.project.pages[0].panels_in_order()[0]
    editing.set_panel_fields(doc, panel.id, "Backend", backend="anime", backend_settings={})
    project = doc.save(tmp_path / "book.comic")
    register_backend("anime", AnimeBackend)  # the entry point, until the package is reinstalled
    try:
        out = tmp_path / "book.pdf"
        saved = tmp_path / "again.comic"
        args = ["render", str(project), "--backend", "anime", "--models", "tiny", "--out", str(out), "--all"]
        assert main([*args, "--save", str(saved), "--quiet"]) == 0
    finally:
        unregister_backend("anime")
    assert out.stat().st_size > 0
    rendered, _ = load_project(saved)
    result = rendered.pages[0].panels_in_order()[0].results[-1]
    assert result.request["backend"] == "anime"
    assert result.request["backend_settings"]["adapter"].endswith("anime-adapter")


def test_stand_in_is_ip_adapter_plus_on_the_masked_reference_and_says_it_is_not_animeadapter(sd15_kit, backend):
    from comic_studio.backends.anime.backend import STAND_IN_LABEL

    plain = backend.generate(request(sd15_kit, refs=False, method="stand-in", adapter=""))
    stand_in = backend.generate(request(sd15_kit, method="stand-in", adapter=""))  # no AnimeAdapter weights needed
    assert stand_in.settings["label"] == STAND_IN_LABEL and "not AnimeAdapter" in STAND_IN_LABEL
    assert not np.array_equal(pixels(plain), pixels(stand_in))
    unet = next(v for k, v in backend.resources.models._items.items() if k.component == "unet")
    assert unet.encoder_hid_proj is None
    assert all(type(p).__name__ == "AttnProcessor2_0" for p in unet.attn_processors.values())
    silent = backend.generate(request(sd15_kit, method="stand-in", adapter="", character_scales='{"ana": 0, "ben": 0}'))
    assert np.array_equal(pixels(plain), pixels(silent))


def test_a_single_file_sd15_checkpoint_renders_as_its_diffusers_folder(sd15_kit, backend, tmp_path):
    from safetensors.torch import save_file

    from comic_studio.generation.models.ldm_format import sd15_to_ldm_state_dict

    single = tmp_path / "tiny-sd15.safetensors"
    save_file(sd15_to_ldm_state_dict(tiny_sd15_components(0)), str(single))
    folder = backend.generate(request(sd15_kit))
    from_file = backend.generate(request(sd15_kit, model=str(single), model_config=str(sd15_kit.sd15)))
    assert np.array_equal(pixels(folder), pixels(from_file))


def test_checkpoints_of_other_families_are_refused_by_name(sd15_kit, backend, tmp_path):
    from safetensors.torch import save_file

    sdxl = tmp_path / "sdxl.safetensors"
    save_file({"conditioner.embedders.1.model.token_embedding.weight": torch.zeros(4, 4)}, str(sdxl))
    with pytest.raises(GenerationError, match="SDXL checkpoint"):
        backend.generate(request(sd15_kit, model=str(sdxl)))


# ---------------------------------------------------------------- the pose through the T2I-Adapter
# (seed 003 §3.4, Tab. 5): the kit's random T2I-Adapter, in diffusers' format, through diffusers' loader.


def _unet(backend):
    return next(v for k, v in backend.resources.models._items.items() if k.component == "unet")


def test_the_pose_goes_through_the_t2i_adapter_and_strength_zero_is_no_pose(sd15_kit, backend):
    off = backend.generate(request(sd15_kit, pose_control="off"))
    posed = backend.generate(request(sd15_kit, pose_control="t2i-adapter", t2i_adapter=str(sd15_kit.t2i_adapter)))
    assert not np.array_equal(pixels(off), pixels(posed))
    controlnet = backend.generate(request(sd15_kit, pose_control="controlnet"))
    assert not np.array_equal(pixels(controlnet), pixels(posed))
    # The features are added, scaled: at strength 0 they add exact zeros.
    zero = backend.generate(request(sd15_kit, pose_control="t2i-adapter", t2i_adapter=str(sd15_kit.t2i_adapter),
                                    controlnet_scale=0.0))  # fmt: skip
    assert np.array_equal(pixels(off), pixels(zero))
    assert not _unet(backend)._forward_pre_hooks  # the hook came off with the call
    assert np.array_equal(pixels(off), pixels(backend.generate(request(sd15_kit, pose_control="off"))))


def test_without_a_pose_the_t2i_adapter_leaves_the_render_unchanged(sd15_kit, backend):
    values, _ = settings(sd15_kit)

    def alone(**extra):
        return GenerationRequest(backend="anime", width=128, height=96, seed=4, prompt="an anime pier at dusk",
                                 backend_settings={**values, **extra})  # fmt: skip

    plain = backend.generate(alone(pose_control="off"))
    t2i = backend.generate(alone(pose_control="t2i-adapter", t2i_adapter=str(sd15_kit.t2i_adapter)))
    assert np.array_equal(pixels(plain), pixels(t2i))


def test_auto_uses_the_t2i_adapter_when_installed_and_the_controlnet_otherwise(sd15_kit, backend):
    assert backend.pose_control(backend.validate_settings({"t2i_adapter": str(sd15_kit.t2i_adapter)})) == "t2i-adapter"
    auto = backend.generate(request(sd15_kit, t2i_adapter=str(sd15_kit.t2i_adapter)))
    explicit = backend.generate(request(sd15_kit, pose_control="t2i-adapter", t2i_adapter=str(sd15_kit.t2i_adapter)))
    assert np.array_equal(pixels(auto), pixels(explicit))
    # No t2i_adapter setting and the catalogue's OpenPose T2I-Adapter is not installed here.
    assert backend.pose_control(backend.validate_settings({})) == "controlnet"
    fallback = backend.generate(request(sd15_kit))
    assert np.array_equal(pixels(fallback), pixels(backend.generate(request(sd15_kit, pose_control="controlnet"))))
    with pytest.raises(GenerationError, match=r"t2i-adapter-openpose-sd14.*not installed.*models download"):
        backend.generate(request(sd15_kit, pose_control="t2i-adapter"))


def test_the_stand_in_takes_the_pose_through_the_t2i_adapter_too(sd15_kit, backend):
    off = backend.generate(request(sd15_kit, method="stand-in", adapter="", pose_control="off"))
    posed = backend.generate(request(sd15_kit, method="stand-in", adapter="", pose_control="t2i-adapter",
                                     t2i_adapter=str(sd15_kit.t2i_adapter)))  # fmt: skip
    assert not np.array_equal(pixels(off), pixels(posed))


def test_a_t2i_adapter_of_another_family_is_refused_by_name(sd15_kit, backend, tmp_path):
    from diffusers import T2IAdapter

    other = tmp_path / "t2i-other"
    T2IAdapter(in_channels=3, channels=[16, 48], num_res_blocks=1, downscale_factor=8,
               adapter_type="full_adapter").save_pretrained(other, safe_serialization=True)  # fmt: skip
    with pytest.raises(GenerationError, match=r"setting 't2i_adapter'.*\[16, 48\].*\[32, 64\]"):
        backend.generate(request(sd15_kit, pose_control="t2i-adapter", t2i_adapter=str(other)))


# ---------------------------------------------------------------- the SDXL variant (issue 18: "with an SDXL variant")


def test_sdxl_family_weights_render_on_an_sdxl_base(sd15_kit, tiny_kit, backend, tmp_path):
    from diffusers import UNet2DConditionModel

    from comic_studio.generation.models.anime_adapter import save_adapter
    from comic_studio.testing.tiny_sd15 import tiny_anime_adapter

    unet = UNet2DConditionModel.from_pretrained(tiny_kit.sdxl, subfolder="unet")
    adapter = tiny_anime_adapter(unet, family="sdxl")
    # Built from the SDXL UNet's own cross-attention: its width (both text encoders) and layers.
    assert adapter.config.context_dim == unet.config.cross_attention_dim != kit_unet_context(sd15_kit)
    save_adapter(adapter, tmp_path / "xl-adapter")
    xl = dict(model=str(tiny_kit.sdxl), adapter=str(tmp_path / "xl-adapter"), controlnet=str(tiny_kit.controlnet),
              pose_control="auto")  # fmt: skip
    # No SDXL T2I-Adapter in the catalogue: auto means the ControlNet.
    assert backend.pose_control(backend.validate_settings({}), "sdxl") == "controlnet"
    plain = backend.generate(request(sd15_kit, refs=False, **xl))
    with_refs = backend.generate(request(sd15_kit, **xl))
    assert with_refs.image.size == (128, 96) and not np.array_equal(pixels(plain), pixels(with_refs))
    silent = backend.generate(request(sd15_kit, character_scales='{"ana": 0, "ben": 0}', **xl))
    assert np.array_equal(pixels(plain), pixels(silent))
    xl_unet = next(v for k, v in backend.resources.models._items.items()
                   if k.component == "unet" and v.config.cross_attention_dim == unet.config.cross_attention_dim)  # fmt: skip
    assert all(type(p).__name__ == "AttnProcessor2_0" for p in xl_unet.attn_processors.values())
    with pytest.raises(GenerationError, match="no OpenPose T2I-Adapter for sdxl"):
        backend.generate(request(sd15_kit, **{**xl, "pose_control": "t2i-adapter"}))
    # SD 1.5 weights on the SDXL base: refused by name, not a shape error inside the UNet.
    with pytest.raises(GenerationError, match="an SDXL model folder, not an SD 1.5"):
        backend.generate(request(sd15_kit, model=str(tiny_kit.sdxl)))


def kit_unet_context(sd15_kit) -> int:
    import json as _json

    return _json.loads((sd15_kit.sd15 / "unet" / "config.json").read_text())["cross_attention_dim"]

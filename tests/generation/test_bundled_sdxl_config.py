"""The SDXL configuration bundled in comic_studio/resources/sdxl/base-1.0: full-size configs checked on the meta
device (no 10 GB allocation) against SDXL's published numbers and diffusers' own conversion of the
original checkpoint layout; the CLIP tokenizers against real CLIP ids; and which config a
single-file checkpoint is loaded with."""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.generation.models.ldm_format import sdxl_to_ldm_state_dict  # noqa: E402
from comic_studio.generation.models.loading import (  # noqa: E402
    ModelLoadError,
    load_sdxl_components,
    load_tokenizers_and_scheduler,
    sdxl_source,
)
from comic_studio.generation.models.sdxl import CONFIG_ID, resolve_sdxl  # noqa: E402
from comic_studio.generation.models.sdxl_config import (  # noqa: E402
    bundled_sdxl_configs,
    config_mismatch,
    random_sdxl_models,
    read_safetensors_shapes,
)
from comic_studio.weights.catalogue import load_catalogue  # noqa: E402
from comic_studio.weights.locate import Places  # noqa: E402

BUNDLED = bundled_sdxl_configs()[0]

# Published parameter counts of SDXL base 1.0's four models.
SDXL_PARAMETERS = {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840}

# CLIP token ids, checked against CLIP's own SimpleTokenizer (open_clip_torch 3.3.0) on the same text.
CLIP_IDS = {
    "a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407],
    "A photo of a dog.": [49406, 320, 1125, 539, 320, 1929, 269, 49407],
    "Mara Vance, curly auburn hair, green raincoat, standing in the rain at night":
        [49406, 15655, 31447, 267, 20795, 14534, 2225, 267, 1901, 3128, 7356, 267, 2862, 530, 518, 2443, 536, 930, 49407],
    "don't stop-believing 1984 café": [49406, 847, 713, 1691, 268, 19551, 272, 280, 279, 275, 15304, 49407],
}  # fmt: skip


@pytest.fixture(scope="module")
def full_size():
    """The four SDXL models built from the bundled configs on the meta device (shapes, no memory)."""
    return random_sdxl_models("meta")


@pytest.fixture(scope="module")
def ldm_shapes(full_size):
    """Tensor name → shape of an original-layout (A1111/ComfyUI) SDXL base checkpoint."""
    return {k: tuple(v.shape) for k, v in sdxl_to_ldm_state_dict(full_size).items()}


def write_header_only_checkpoint(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A valid float16 .safetensors file with these tensors, all zero, written sparse: a full-size
    SDXL checkpoint is 6.9 GB long but takes no disk blocks for its data."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2 * math.prod(shape)
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


# ------------------------------------------------------------------------------------ full-size configs


def test_bundled_configs_are_sdxl_base_with_its_published_sizes(full_size):
    counts = {name: sum(p.numel() for p in model.parameters()) for name, model in full_size.items()}
    assert counts == SDXL_PARAMETERS
    assert all(p.device.type == "meta" for p in full_size["unet"].parameters())
    # float16 weights + a ~0.4 MB header = the published sd_xl_base_1.0.safetensors.
    published = load_catalogue().get("sdxl-base-1.0").weight_file.size
    assert 0 < published - 2 * sum(counts.values()) < 1_000_000
    unet = full_size["unet"].config
    assert (unet.addition_embed_type, unet.addition_time_embed_dim, unet.projection_class_embeddings_input_dim,
            unet.cross_attention_dim, unet.sample_size) == ("text_time", 256, 2816, 2048, 128)  # fmt: skip
    vae = full_size["vae"].config
    assert vae.scaling_factor == 0.13025 and vae.force_upcast is True
    clip_l, clip_g = full_size["text_encoder"].config, full_size["text_encoder_2"].config
    assert (clip_l.hidden_size, clip_l.num_hidden_layers, clip_l.hidden_act) == (768, 12, "quick_gelu")
    assert (clip_g.hidden_size, clip_g.num_hidden_layers, clip_g.num_attention_heads, clip_g.projection_dim,
            clip_g.hidden_act) == (1280, 32, 20, 1280, "gelu")  # fmt: skip


def test_scheduler_and_pipeline_configs_parse():
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    scheduler = EulerDiscreteScheduler.from_pretrained(BUNDLED, subfolder="scheduler", local_files_only=True)
    cfg = scheduler.config
    assert (cfg.beta_start, cfg.beta_end, cfg.beta_schedule, cfg.steps_offset, cfg.timestep_spacing,
            cfg.prediction_type) == (0.00085, 0.012, "scaled_linear", 1, "leading", "epsilon")  # fmt: skip
    index = StableDiffusionXLPipeline.load_config(BUNDLED)
    assert index["force_zeros_for_empty_prompt"] is True
    assert index["text_encoder_2"] == ["transformers", "CLIPTextModelWithProjection"]


def test_original_checkpoint_layout_converts_exactly_onto_the_bundled_models(full_size, ldm_shapes):
    """diffusers' from_single_file converts an A1111/ComfyUI SDXL checkpoint with these configs: every
    tensor must land on a parameter of the same shape, none missing, none left over."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
        infer_diffusers_model_type,
    )

    ldm = sdxl_to_ldm_state_dict(full_size)
    assert infer_diffusers_model_type(ldm) == "xl_base"
    converted = {
        "unet": convert_ldm_unet_checkpoint(ldm, dict(full_size["unet"].config)),
        "vae": convert_ldm_vae_checkpoint(ldm, dict(full_size["vae"].config)),
        # transformers ≥ 5.6 flattened CLIPTextModel; the converter keeps the ``text_model.`` level.
        "text_encoder": {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(ldm).items()},
        "text_encoder_2": convert_open_clip_checkpoint(full_size["text_encoder_2"], ldm, prefix="conditioner.embedders.1.model."),
    }  # fmt: skip
    for name, model in full_size.items():
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in converted[name].items()} == expected, name
    assert len(full_size["unet"].state_dict()) == 1680
    assert config_mismatch(ldm_shapes, BUNDLED) is None


# ------------------------------------------------------------------------------------ tokenizers


def test_bundled_tokenizers_give_clip_ids():
    light = load_tokenizers_and_scheduler(BUNDLED)  # the loader's own path (tokenizer_2 shares tokenizer/'s vocabulary)
    one, two = light["tokenizer"], light["tokenizer_2"]
    assert len(one) == len(two) == 49408 and one.model_max_length == two.model_max_length == 77
    for text, ids in CLIP_IDS.items():
        assert one(text).input_ids == ids, text
        assert two(text).input_ids == ids, text
    # The only difference: SDXL's second tokenizer pads with "!" (id 0), the first with <|endoftext|>.
    assert one("a cat", padding="max_length", max_length=8).input_ids == [49406, 320, 2368] + [49407] * 5
    assert two("a cat", padding="max_length", max_length=8).input_ids == [49406, 320, 2368, 49407] + [0] * 4
    stored = [p.name for p in (BUNDLED / "tokenizer_2").iterdir()]
    assert "vocab.json" not in stored and "merges.txt" not in stored  # one copy of the vocabulary


def test_tokenizer_files_are_what_the_packaging_script_writes(tmp_path):
    """Regenerating from CLIP's merge list needs the open_clip wheel; without it, check the files
    against the BPE construction rule the script implements."""
    vocab = json.loads((BUNDLED / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    merges = (BUNDLED / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0] == "#version: 0.2" and len(merges) - 1 == 49152 - 256 - 2
    assert list(vocab.values()) == list(range(49408))
    for index, merge in enumerate(merges[1:]):  # each merge adds its joined token, in order
        assert vocab["".join(merge.split())] == 512 + index
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407


# ------------------------------------------------------------------------------------ choosing a config


def test_sdxl_shaped_checkpoint_picks_the_bundled_config(tmp_path, ldm_shapes):
    ckpt = write_header_only_checkpoint(tmp_path / "my_sdxl_finetune.safetensors", ldm_shapes)
    from safetensors import safe_open

    with safe_open(str(ckpt), "pt") as f:  # a valid safetensors file, not just a header
        assert len(list(f.keys())) == len(ldm_shapes)
    assert read_safetensors_shapes(ckpt) == ldm_shapes
    source = sdxl_source(ckpt)
    assert source.single_file and source.config == BUNDLED
    empty = Places(models=tmp_path / "models", hf_cache=tmp_path / "hf")
    assert resolve_sdxl(str(ckpt), places=empty).config == BUNDLED  # the path the backends take


def test_other_architectures_are_refused_with_the_difference_named(tmp_path, ldm_shapes, tiny_kit):
    with pytest.raises(
        ModelLoadError, match=r"tiny-sdxl.safetensors is not an SDXL base-architecture checkpoint \(UNet"
    ):
        sdxl_source(tiny_kit.single_file)
    sd15_like = {
        **ldm_shapes,
        "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 768),
    }
    ckpt = write_header_only_checkpoint(tmp_path / "sd15.safetensors", sd15_like)
    with pytest.raises(ModelLoadError, match=r"cross-attention .*has \[1280, 768\], the config expects \[1280, 2048\]"):
        sdxl_source(ckpt)
    unet_only = {k: v for k, v in ldm_shapes.items() if k.startswith("model.diffusion_model.")}
    ckpt = write_header_only_checkpoint(tmp_path / "unet_only.safetensors", unet_only)
    with pytest.raises(ModelLoadError, match="no VAE weights"):
        sdxl_source(ckpt)
    with pytest.raises(ModelLoadError, match=r"does not fit the configuration folder .*sdxl"):
        sdxl_source(write_header_only_checkpoint(tmp_path / "full.safetensors", ldm_shapes), tiny_kit.sdxl)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelLoadError, match="junk.safetensors: not a readable .safetensors checkpoint"):
        sdxl_source(junk)


def test_first_fitting_candidate_loads_through_the_real_single_file_path(tiny_kit):
    """The same selection with a tiny config among the candidates: the tiny checkpoint skips the
    full-size bundled config, loads with the tiny one, and equals the diffusers-folder weights."""
    source = sdxl_source(tiny_kit.single_file, candidates=[BUNDLED, tiny_kit.sdxl])
    assert source.config == tiny_kit.sdxl
    single, folder = load_sdxl_components(source), load_sdxl_components(sdxl_source(tiny_kit.sdxl))
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        a, b = single[part].state_dict(), folder[part].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part


def test_a_downloaded_config_entry_still_serves_as_a_fallback(tmp_path, tiny_kit):
    """Setups that downloaded `sdxl-base-1.0-config` keep it: it is tried after the bundled configs."""
    entry = load_catalogue().get(CONFIG_ID)
    installed = tmp_path / "models" / CONFIG_ID
    shutil.copytree(tiny_kit.sdxl, installed, ignore=shutil.ignore_patterns("*.safetensors"))
    for name in ("tokenizer", "tokenizer_2"):  # the catalogue lists the classic tokenizer files
        tokenizer = load_tokenizers_and_scheduler(tiny_kit.sdxl)[name]
        (installed / name / "vocab.json").write_text(json.dumps(tokenizer.get_vocab()))
        (installed / name / "merges.txt").write_text("#version: 0.2\n")
        (installed / name / "special_tokens_map.json").write_text("{}")
    assert all((installed / f.path).is_file() for f in entry.files)
    places = Places(models=tmp_path / "models", hf_cache=tmp_path / "hf")
    source = resolve_sdxl(str(tiny_kit.single_file), places=places)
    assert source.config == installed
    tiny_width = json.loads((tiny_kit.sdxl / "unet" / "config.json").read_text())["cross_attention_dim"]
    assert load_sdxl_components(source)["unet"].config.cross_attention_dim == tiny_width != 2048

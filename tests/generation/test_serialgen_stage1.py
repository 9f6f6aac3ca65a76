"""SerialGen's stage 1 on tiny SD 1.5 UNets: reference concatenation doubles self-attention K/V,
FBDM follows Eq. 3 (v_b exactly where the background mask is 1), RPIM's shapes per block, zero
FBDM/RPIM are exactly the baseline, and Moore-AnimateAnyone's stage-1 key layout loads (strict)
through the real loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from comic_studio.generation.models import pickle_policy  # noqa: E402
from comic_studio.generation.models.loading import ModelLoadError  # noqa: E402
from comic_studio.generation.models.serialgen_stage1 import (  # noqa: E402
    PoseGuider,
    ReferenceReader,
    ReferenceState,
    SerialGenModules,
    Stage1Pipeline,
    attached,
    layer_grid,
    load_modules,
    load_moore_stage1,
    reference_context,
    save_modules,
    self_attention_layers,
)
from comic_studio.testing.tiny_serialgen import build_tiny_serialgen  # noqa: E402

W, H = 64, 96  # a 2:3 canvas (the paper's 512 × 768 at toy size): latent 8 × 12


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_tiny_serialgen(tmp_path_factory.mktemp("serialgen"))


@pytest.fixture(scope="module")
def pipeline(kit):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPVisionModelWithProjection

    base = UNet2DConditionModel.from_pretrained(str(kit.sd15), subfolder="unet")
    weights = load_moore_stage1(kit.moore, base)
    vae = AutoencoderKL.from_pretrained(str(kit.sd15), subfolder="vae").eval()
    encoder = CLIPVisionModelWithProjection.from_pretrained(str(kit.image_encoder)).eval()
    return Stage1Pipeline(weights, SerialGenModules.for_unet(weights.reference_unet), vae, encoder)


def _inputs():
    rng = np.random.default_rng(3)
    reference = Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), "RGB")
    background = np.ones((H, W), dtype=bool)
    background[20:80, 16:48] = False  # the person
    pose = Image.new("RGB", (W, H))
    pose.paste((255, 0, 0), (28, 20, 36, 80))
    target = Image.new("RGB", (W, H))
    target.paste((0, 255, 0), (20, 10, 44, 90))
    return reference, background, pose, target


def _run(pipe, modules, **kw):
    reference, background, pose, target = _inputs()
    pipe = Stage1Pipeline(pipe.weights, modules, pipe.vae, pipe.image_encoder)
    return np.asarray(pipe.generate(reference, background, pose, target, width=W, height=H, seed=5, steps=2, **kw))


def test_zero_fbdm_and_rpim_are_exactly_the_baseline(pipeline):
    baseline = _run(pipeline, None)
    zero = _run(pipeline, SerialGenModules.for_unet(pipeline.weights.reference_unet))
    assert np.array_equal(zero, baseline)
    trained = SerialGenModules.for_unet(pipeline.weights.reference_unet)
    with torch.no_grad():
        for p in trained.background:
            p.fill_(2.0)
    assert not np.array_equal(_run(pipeline, trained), baseline)  # the comparison can fail


def test_zero_modules_keep_the_baseline_with_guidance_too(pipeline):
    baseline = _run(pipeline, None, guidance=3.5)
    assert np.array_equal(_run(pipeline, SerialGenModules.for_unet(pipeline.weights.reference_unet), guidance=3.5),
                          baseline)  # fmt: skip


def test_fbdm_adds_the_background_vector_exactly_where_the_mask_is_one(pipeline):
    modules = SerialGenModules.for_unet(pipeline.weights.reference_unet)
    name = modules.config.layers[0]
    with torch.no_grad():
        modules.foreground[0].fill_(3.0)
        modules.background[0].fill_(7.0)
    features = torch.zeros(1, 6, modules.config.widths[0])
    mask = torch.tensor([1, 0, 1, 1, 0, 0], dtype=torch.float32).view(1, 6, 1)
    out = modules.fbdm(name, features, mask)
    assert torch.equal(out[0, mask[0, :, 0] == 1], torch.full((3, modules.config.widths[0]), 7.0))
    assert torch.equal(out[0, mask[0, :, 0] == 0], torch.full((3, modules.config.widths[0]), 3.0))


def test_fbdm_in_the_reference_net_follows_the_resized_background_mask(pipeline):
    """Through the real writer: the first self-attention (full latent grid) records f + v_b where the
    background mask is 1 and f + v_f elsewhere."""
    ref_unet, den_unet = pipeline.weights.reference_unet, pipeline.weights.denoising_unet
    latent = (H // 8, W // 8)
    latents = torch.randn(1, 4, *latent, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 1, ref_unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    background = torch.zeros(1, 1, *latent)
    background[..., :4, :] = 1.0  # the top third is background
    banks = []
    for fill in (0.0, 1.0):
        modules = SerialGenModules.for_unet(ref_unet)
        with torch.no_grad():
            modules.background[0].fill_(5.0 * fill)
            modules.foreground[0].fill_(-2.0 * fill)
        state = ReferenceState(latent, modules, background=background)
        with torch.no_grad(), attached(ref_unet, den_unet, state):
            ref_unet(latents, torch.zeros(1, dtype=torch.long), encoder_hidden_states=context)
        banks.append(state.bank[modules.config.layers[0]])
    delta = (banks[1] - banks[0]).view(1, *latent, -1)
    assert torch.allclose(delta[0, :4], torch.full_like(delta[0, :4], 5.0))
    assert torch.allclose(delta[0, 4:], torch.full_like(delta[0, 4:], -2.0))


def test_rpim_shapes_per_block(pipeline):
    ref_unet = pipeline.weights.reference_unet
    modules = SerialGenModules.for_unet(ref_unet)
    latent = (H // 8, W // 8)
    pose = torch.rand(2, 3, H, W)
    features = modules.encode_pose(pose)
    assert features.shape == (2, modules.config.rpim_channels[-1], *latent)
    layers = self_attention_layers(ref_unet)
    assert [w for _, w in layers] == [32, 32, 32, 64]  # the tiny UNet's blocks
    state = ReferenceState(latent, modules, pose_features=features)
    context = torch.zeros(2, 1, ref_unet.config.cross_attention_dim)
    with torch.no_grad(), attached(ref_unet, pipeline.weights.denoising_unet, state):
        ref_unet(torch.zeros(2, 4, *latent), torch.zeros(2, dtype=torch.long), encoder_hidden_states=context)
    grids = {}
    for name, width in layers:
        recorded = state.bank[name]
        grid = layer_grid(recorded.shape[1], latent)
        grids[name.split(".")[0]] = grid
        assert modules.rpim(name, features, grid).shape == (2, grid[0] * grid[1], width) == recorded.shape
    assert grids == {"down_blocks": (12, 8), "up_blocks": (12, 8), "mid_block": (6, 4)}


def test_reference_concatenation_doubles_the_self_attention_keys_and_values(pipeline):
    unet = pipeline.weights.denoising_unet
    name = self_attention_layers(unet)[0][0]
    attn = unet.get_submodule(name.removesuffix(".processor"))
    gen = torch.Generator().manual_seed(2)
    hidden = torch.randn(1, 96, attn.to_q.in_features, generator=gen)
    reference = torch.randn(1, 96, attn.to_q.in_features, generator=gen)
    context = reference_context(hidden, reference)
    assert context.shape == (1, 192, attn.to_q.in_features)
    state = ReferenceState((12, 8), bank={name: reference})
    with torch.no_grad():
        out = ReferenceReader(name, state)(attn, hidden)
        q, k, v = attn.to_q(hidden), attn.to_k(context), attn.to_v(context)
        assert k.shape[1] == v.shape[1] == 2 * hidden.shape[1]
        split = lambda x: x.view(1, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)  # noqa: E731
        mixed = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
        expected = attn.to_out[0](mixed.transpose(1, 2).reshape(1, -1, q.shape[-1]))
    assert torch.allclose(out, expected, atol=1e-5)


def _moore_pose_guider_state(widths: tuple[int, ...], out: int, seed: int) -> dict:
    """PoseGuider keys written by hand from Moore's src/models/pose_guider.py: conv_in, then per
    step a same-width conv and a stride-2 one (blocks.0 … blocks.5), conv_out."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"conv_in.weight": (widths[0], 3, 3, 3), "conv_in.bias": (widths[0],)}
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        shapes |= {f"blocks.{2 * i}.weight": (a, a, 3, 3), f"blocks.{2 * i}.bias": (a,),
                   f"blocks.{2 * i + 1}.weight": (b, a, 3, 3), f"blocks.{2 * i + 1}.bias": (b,)}  # fmt: skip
    shapes |= {"conv_out.weight": (out, widths[-1], 3, 3), "conv_out.bias": (out,)}
    return {k: torch.randn(s, generator=gen) for k, s in shapes.items()}


def _moore_unet_state(base, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen) for k, v in base.state_dict().items()}


def test_a_tiny_state_dict_in_moore_layout_loads_strictly(tmp_path, kit):
    from diffusers import UNet2DConditionModel

    base = UNet2DConditionModel.from_pretrained(str(kit.sd15), subfolder="unet")
    states = {"reference_unet": _moore_unet_state(base, 1), "denoising_unet": _moore_unet_state(base, 2),
              "pose_guider": _moore_pose_guider_state((4, 8, 12, 16), base.config.block_out_channels[0], 3)}  # fmt: skip
    for name, state in states.items():
        torch.save(state, tmp_path / f"{name}.pth")  # Moore's files are torch.save'd state dicts
    with pytest.raises(ModelLoadError, match="pickles"):
        load_moore_stage1(tmp_path, base)
    pickle_policy.allow_pickles_for_this_process(True)
    try:
        weights = load_moore_stage1(tmp_path, base, allow_pickle=pickle_policy.pickles_allowed())
    finally:
        pickle_policy.allow_pickles_for_this_process(None)
    assert weights.pose_guider.channels == (4, 8, 12, 16)
    for name, module in (("reference_unet", weights.reference_unet), ("denoising_unet", weights.denoising_unet),
                         ("pose_guider", weights.pose_guider)):  # fmt: skip
        loaded = module.state_dict()
        assert loaded.keys() == states[name].keys()
        assert all(torch.equal(loaded[k], states[name][k]) for k in loaded)
    assert weights.reference_unet is not base and weights.denoising_unet is not weights.reference_unet


def test_the_loader_names_a_missing_or_foreign_file(tmp_path, kit):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    base = UNet2DConditionModel.from_pretrained(str(kit.sd15), subfolder="unet")
    with pytest.raises(ModelLoadError, match="missing denoising_unet.pth, reference_unet.pth, pose_guider.pth"):
        load_moore_stage1(tmp_path, base)
    state = _moore_unet_state(base, 1)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "reference_unet.safetensors"))
    del state["conv_in.weight"]
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "denoising_unet.safetensors"))
    save_file(_moore_pose_guider_state((4, 8, 8, 16), 32, 3), str(tmp_path / "pose_guider.safetensors"))
    with pytest.raises(ModelLoadError, match=r"denoising_unet.safetensors: .*missing conv_in.weight"):
        load_moore_stage1(tmp_path, base)


def test_pose_guider_starts_at_zero_and_reaches_latent_size():
    guider = PoseGuider(32)
    out = guider(torch.rand(1, 3, H, W))
    assert out.shape == (1, 32, H // 8, W // 8) and not out.any()


def test_trained_modules_round_trip_and_refuse_another_layout(tmp_path, pipeline):
    modules = SerialGenModules.for_unet(pipeline.weights.reference_unet)
    with torch.no_grad():
        for p in modules.parameters():
            p.normal_()
    save_modules(modules, tmp_path)
    back = load_modules(tmp_path, pipeline.weights.reference_unet)
    assert all(torch.equal(a, b) for a, b in zip(modules.state_dict().values(), back.state_dict().values()))
    from diffusers import UNet2DConditionModel

    other = UNet2DConditionModel(block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                 layers_per_block=1, attention_head_dim=4, norm_num_groups=32)  # fmt: skip
    with pytest.raises(ModelLoadError, match="another base model"):
        load_modules(tmp_path, other)


def test_tiny_kit_is_reused(kit):
    assert build_tiny_serialgen(Path(kit.root)) == kit

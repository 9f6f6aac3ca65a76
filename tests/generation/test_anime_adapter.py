"""AnimeAdapter (seed 003): parameter count, token fusion, masked decoupled attention in training and
inference, placement, save/reload — on the tiny SD1.5 UNet and tiny CLIP vision encoder, K = 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from comic_studio.generation.models.anime_adapter import (
    AdapterFormatError,
    AdapterState,
    AnimeAdapter,
    Reference,
    attached,
    encode_hidden,
    load_adapter,
    masked_image_attention,
    save_adapter,
    square,
    token_mask,
    trainable_parameters,
)
from comic_studio.generation.models.sd15 import random_sd15_unet
from comic_studio.testing.tiny import character_picture
from comic_studio.testing.tiny_sd15 import TINY_K, tiny_anime_adapter, tiny_clip_vision, tiny_sd15_components


@pytest.fixture(scope="module")
def parts():
    comps = tiny_sd15_components(0)
    encoder, processor = tiny_clip_vision(0)
    adapter = tiny_anime_adapter(comps["unet"], 0)
    return comps["unet"], encoder, processor, adapter


def test_paper_parameter_count_on_sd15_with_vit_l14_and_k7():
    """§5.1's 24.7 M trainable weights: SD1.5's 16 cross-attention layers' to_k_ip/to_v_ip plus seven
    1024→768 projections with bias = 24,679,680, plus the seven layer scales of Eq. 2 (which the
    issue's formula leaves out)."""
    unet = random_sd15_unet("meta")
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964  # the bundled config is SD 1.5's UNet
    with torch.device("meta"):
        adapter = AnimeAdapter.for_unet(unet, clip_hidden=1024, encoder_layers=24, tokens=257)
    assert len(adapter.config.layer_names) == 16
    linear = sum(p.numel() for n, p in adapter.named_parameters() if n != "layer_scale")
    assert linear == 2 * 768 * (5 * 320 + 5 * 640 + 6 * 1280) + 7 * (1024 * 768 + 768) == 24_679_680
    assert trainable_parameters(adapter) == 24_679_680 + 7
    assert adapter.config.layer_indices == [18, 19, 20, 21, 22, 23, 24]  # the last 7 of ViT-L/14's 24 layers


def test_fused_tokens_shape_and_layer_scales_get_gradients(parts):
    unet, encoder, processor, adapter = parts
    image, _ = square(character_picture(1, 48, 40), None, encoder.config.image_size)
    hidden = encode_hidden(encoder, processor, image, adapter)
    assert len(hidden) == TINY_K
    adapter.zero_grad()
    fused = adapter.fuse(hidden)
    assert fused.shape == (1, adapter.config.tokens, unet.config.cross_attention_dim) == (1, 17, 32)
    fused.square().sum().backward()
    assert adapter.layer_scale.grad is not None and (adapter.layer_scale.grad != 0).all()
    adapter.zero_grad()


def test_token_mask_pools_the_foreground_to_the_patch_grid(parts):
    adapter = parts[3]
    fg = np.zeros((32, 32), bool)
    fg[:16, :] = True  # the top half: the first two rows of the 4×4 grid
    fg[16:19, :8] = True  # 3/8 of one patch: below the 0.5 threshold
    fg[24:28, 24:32] = True  # half of the last patch: foreground
    mask = token_mask(fg, adapter.config)
    assert mask.tolist() == [1.0] + [1.0] * 8 + [0.0] * 7 + [1.0]  # CLS kept ("keep", the default: paper silent)


def _qkv(seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, 2, n, 4, generator=gen) for n in (6, 5, 5))


def test_inference_masked_tokens_values_never_reach_the_output():
    """Eq. 6: full softmax, binary mask multiplied after it. Background values cannot matter."""
    q, k, v = _qkv(0)
    mask = torch.tensor([[1.0, 1, 0, 1, 0]] * 2)
    out = masked_image_attention(q, k, v, mask, training=False)
    v2 = v.clone()
    v2[:, :, mask[0] == 0] = 100.0
    assert torch.equal(out, masked_image_attention(q, k, v2, mask, training=False))
    # No renormalisation (the paper's rule): the weights kept are the full softmax's, so they sum below 1.
    weights = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1) * mask[:, None, None, :]
    torch.testing.assert_close(out, weights @ v)
    # ... which means background *keys* still take attention mass (they change the strength).
    k2 = k.clone()
    k2[:, :, mask[0] == 0] += 5.0
    assert not torch.allclose(out, masked_image_attention(q, k2, v, mask, training=False))


def test_training_masked_tokens_have_no_influence_at_all():
    """Eq. 5: the large negative bias before the softmax; keys *and* values of masked tokens are out."""
    q, k, v = _qkv(1)
    mask = torch.tensor([[0.0, 1, 1, 0, 1]] * 2)
    out = masked_image_attention(q, k, v, mask, training=True)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, mask[0] == 0] = 30.0
    v2[:, :, mask[0] == 0] = -7.0
    assert torch.equal(out, masked_image_attention(q, k2, v2, mask, training=True))
    keep = mask[0] == 1
    expected = torch.softmax(q @ k[:, :, keep].transpose(-1, -2) / 2.0, -1) @ v[:, :, keep]
    torch.testing.assert_close(out, expected)


def _unet_inputs(unet, batch: int = 1):
    gen = torch.Generator().manual_seed(5)
    latents = torch.randn(batch, 4, 8, 8, generator=gen)
    context = torch.randn(batch, 7, unet.config.cross_attention_dim, generator=gen)
    return latents, context


def test_training_masked_tokens_get_zero_gradient_into_the_ip_projections(parts):
    unet, _, _, adapter = parts
    latents, context = _unet_inputs(unet)
    tokens_n = adapter.config.tokens
    mask = torch.ones(tokens_n)
    mask[5:12] = 0.0
    gen = torch.Generator().manual_seed(9)
    base = torch.randn(1, tokens_n, unet.config.cross_attention_dim, generator=gen)

    def grads(features: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        adapter.zero_grad()
        tokens = features.clone().requires_grad_(True)
        state = AdapterState([Reference(tokens, mask, 0.8)], training=True)
        with attached(unet, adapter, state):
            out = unet(latents, 10, encoder_hidden_states=context).sample
        out.square().mean().backward()
        ip_grads = [p.grad.clone() for ip in adapter.ip for p in (ip.to_k_ip.weight, ip.to_v_ip.weight)]
        return tokens.grad, ip_grads

    token_grad, ip_grads = grads(base)
    assert torch.count_nonzero(token_grad[0, mask == 0]) == 0
    assert torch.count_nonzero(token_grad[0, mask == 1]) > 0
    changed = base.clone()
    changed[0, mask == 0] = torch.randn(int((mask == 0).sum()), base.shape[-1], generator=gen) * 10
    _, ip_grads_changed = grads(changed)
    for a, b in zip(ip_grads, ip_grads_changed):
        assert torch.equal(a, b)  # masked tokens contribute exactly nothing to to_k_ip/to_v_ip's gradient
    assert any(torch.count_nonzero(g) for g in ip_grads)
    adapter.zero_grad()


def test_no_reference_is_the_stock_unet_and_placement_restricts_the_image_branch(parts):
    unet, _, _, adapter = parts
    latents, context = _unet_inputs(unet)
    with torch.no_grad():
        stock = unet(latents, 10, encoder_hidden_states=context).sample
        tokens = torch.randn(1, adapter.config.tokens, unet.config.cross_attention_dim)
        with attached(unet, adapter, AdapterState()):
            assert torch.equal(unet(latents, 10, encoder_hidden_states=context).sample, stock)
        nowhere = Reference(tokens, torch.ones(adapter.config.tokens), 1.0, region=torch.zeros(1, 64, 64))
        with attached(unet, adapter, AdapterState([nowhere])):
            assert torch.equal(unet(latents, 10, encoder_hidden_states=context).sample, stock)
        everywhere = Reference(tokens, torch.ones(adapter.config.tokens), 1.0)
        with attached(unet, adapter, AdapterState([everywhere])):
            assert not torch.allclose(unet(latents, 10, encoder_hidden_states=context).sample, stock)
    assert all(type(p).__name__ != "AnimeAttnProcessor" for p in unet.attn_processors.values())


def test_save_and_reload_give_the_same_adapter(parts, tmp_path):
    unet, _, _, adapter = parts
    save_adapter(adapter, tmp_path / "w")
    again = load_adapter(tmp_path / "w")
    assert again.config == adapter.config
    for (name, a), (_, b) in zip(adapter.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    latents, context = _unet_inputs(unet)
    ref = torch.randn(1, adapter.config.tokens, unet.config.cross_attention_dim)
    outs = []
    with torch.no_grad():
        for a in (adapter, again):
            with attached(unet, a, AdapterState([Reference(ref, torch.ones(adapter.config.tokens), 0.7)])):
                outs.append(unet(latents, 10, encoder_hidden_states=context).sample)
    assert torch.equal(*outs)


def test_weights_of_another_unet_are_refused_by_name(parts, tmp_path):
    unet, _, _, adapter = parts
    other = tiny_anime_adapter(unet, 1)
    save_adapter(other, tmp_path / "w")
    (tmp_path / "w" / "config.json").write_text('{"family": "sd15"}', encoding="utf-8")
    with pytest.raises(AdapterFormatError, match="config.json"):
        load_adapter(tmp_path / "w")
    with pytest.raises(AdapterFormatError, match="config.json"):
        load_adapter(tmp_path / "missing")


def test_the_sdxl_family_variant_builds_and_injects_on_an_sdxl_unet():
    """SDXL is the extension (the paper's numbers are SD 1.5's): every one of its cross-attention
    layers gets the image branch, 2048-wide context here 80-wide on the tiny SDXL UNet."""
    from comic_studio.testing.tiny import tiny_sdxl_components

    unet = tiny_sdxl_components(0)["unet"]
    adapter = AnimeAdapter.for_unet(unet, clip_hidden=32, encoder_layers=6, tokens=17, family="sdxl", k_layers=3)
    assert len(adapter.ip) == len([n for n in unet.attn_processors if n.endswith("attn2.processor")]) == 8
    gen = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4, 8, 8, generator=gen)
    context = torch.randn(1, 7, unet.config.cross_attention_dim, generator=gen)
    added = {"text_embeds": torch.randn(1, 48, generator=gen), "time_ids": torch.zeros(1, 6)}
    tokens = torch.randn(1, 17, unet.config.cross_attention_dim, generator=gen)
    with torch.no_grad():
        stock = unet(latents, 10, encoder_hidden_states=context, added_cond_kwargs=added).sample
        with attached(unet, adapter, AdapterState([Reference(tokens, torch.ones(17), 1.0)])):
            injected = unet(latents, 10, encoder_hidden_states=context, added_cond_kwargs=added).sample
    assert not torch.allclose(stock, injected)


def test_sdxl_variant_takes_its_dimensions_from_the_sdxl_unet():
    """The SDXL family (issue 18's variant): 70 cross-attention layers (10 at 640, 60 at 1280 wide)
    and a 2048-wide context (both text encoders), so 355 M parameters with ViT-L/14 and K = 7
    (the research notes' 340.8 M image K/V plus the seven projections)."""
    from comic_studio.generation.models.sdxl_config import random_sdxl_models

    unet = random_sdxl_models("meta")["unet"]
    with torch.device("meta"):
        adapter = AnimeAdapter.for_unet(unet, clip_hidden=1024, encoder_layers=24, tokens=257, family="sdxl")
    assert adapter.config.family == "sdxl" and adapter.config.context_dim == 2048
    widths = adapter.config.layer_widths
    assert len(widths) == 70 and sorted(set(widths)) == [640, 1280] and widths.count(640) == 10
    linear = sum(p.numel() for n, p in adapter.named_parameters() if n != "layer_scale")
    assert linear == 2 * 2048 * (10 * 640 + 60 * 1280) + 7 * (1024 * 2048 + 2048) == 355_481_600

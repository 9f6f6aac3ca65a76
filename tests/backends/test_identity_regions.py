"""Learned identity tokens in RaCig's regional prompts: with two characters with identities in one
panel, each character's region reads a prompt carrying its own token pair and no one else's, and the
cross-attention mask lets each region's latent positions see only its own tokens (never the other
character's); the background sees none. A character without tokens keeps the neutral tag."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from comic_studio.backends._diffusers.identities import optional_identities  # noqa: E402
from comic_studio.backends._diffusers.long_prompt import token_ids  # noqa: E402
from comic_studio.backends._diffusers.regional_prompts import (  # noqa: E402
    BACKGROUND_TAG,
    NEUTRAL_TAG,
    apply_regional_prompts,
    identity_region_tags,
    region_prompts,
)
from comic_studio.generation.identity import identity_phrase, identity_tokens  # noqa: E402
from comic_studio.generation.request import GenerationRequest, RequestCharacter  # noqa: E402
from comic_studio.testing.tiny import tiny_sdxl_components  # noqa: E402
from comic_studio.training.identity import save_identity  # noqa: E402


def _request(*names: str, prompt: str) -> GenerationRequest:
    characters = [RequestCharacter(id=f"c{i}", name=n) for i, n in enumerate(names)]
    return GenerationRequest(prompt=prompt, width=64, height=64, seed=1, backend="racig", characters=characters)


def _identity(path, seed: int) -> str:
    g = torch.Generator().manual_seed(seed)
    rows = {"clip_l": torch.randn(2, 32, generator=g), "clip_g": torch.randn(2, 48, generator=g)}
    return str(save_identity(path, rows, {"method": "test"}))


def test_each_region_prompt_carries_only_its_own_identity():
    request = _request("Ada", "Bo", "Cy", prompt="Ada waves at Bo while Cy reads")
    phrases = {"c0": identity_phrase(0), "c1": identity_phrase(1)}  # Cy has no identity
    tags = identity_region_tags(request, phrases)
    assert tags == [f"{identity_phrase(0)} person", f"{identity_phrase(1)} person", NEUTRAL_TAG]
    ada, bo, cy, background = region_prompts(request, tags)
    assert ada == f"{tags[0]} waves at {tags[0]} while {tags[0]} reads"  # RaCig: every name → the region's tag
    assert identity_phrase(1) not in ada and identity_phrase(0) not in bo
    assert cy == f"{NEUTRAL_TAG} waves at {NEUTRAL_TAG} while {NEUTRAL_TAG} reads"
    assert "identity" not in background and BACKGROUND_TAG in background
    assert region_prompts(request) == region_prompts(request, [NEUTRAL_TAG] * 3)  # the default is unchanged
    unnamed = _request("Ada", "Bo", prompt="a pier at dusk")  # nobody named: the pair goes in front
    assert region_prompts(unnamed, tags[:2])[:2] == [f"{tags[0]}, a pier at dusk", f"{tags[1]}, a pier at dusk"]
    assert region_prompts(unnamed)[0] == "a pier at dusk"  # RaCig's neutral tag only replaces names


def test_two_identities_in_one_panel_each_region_sees_only_its_own_tokens(tmp_path):
    from diffusers import StableDiffusionXLPipeline

    request = _request("Ada", "Bo", prompt="Ada waves at Bo in the rain")
    setting = json.dumps(
        {"c0": _identity(tmp_path / "ada.safetensors", 1), "c1": _identity(tmp_path / "bo.safetensors", 2)}
    )
    identities, phrases = optional_identities(request, setting)
    assert phrases == {"c0": identity_phrase(0), "c1": identity_phrase(1)}
    pipe = StableDiffusionXLPipeline(**tiny_sdxl_components(0), add_watermarker=False)
    identities.apply(pipe)
    try:
        # Ada on the left half, Bo on the right, the background nowhere (two regions fill the panel).
        left = np.zeros((64, 64), dtype=bool)
        left[:, :32] = True
        masks = [left, ~left]
        call = {"prompt": "Ada waves at Bo in the rain", "negative_prompt": None}
        tags = identity_region_tags(request, phrases)
        regions = apply_regional_prompts(pipe, call, request, masks, tags)
        prompts = region_prompts(request, tags)
        per_region = regions.tokens_per_region
        assert call["prompt_embeds"].shape[1] == len(prompts) * per_region

        for tokenizer in (pipe.tokenizer, pipe.tokenizer_2):
            # The key axis as regional_embeddings lays it out: each region's window, side by side.
            keys = np.full(len(prompts) * per_region, -1, dtype=np.int64)
            for r, text in enumerate(prompts):
                ids = token_ids(tokenizer, text)
                keys[r * per_region + 1 : r * per_region + 1 + len(ids)] = ids
            own = [{tokenizer.convert_tokens_to_ids(t) for t in identity_tokens(k)} for k in (0, 1)]
            assert len(own[0] | own[1]) == 4
            queries = 8 * 8  # the tiny UNet's first cross-attention grid at 64 px
            mask = regions.mask(queries, len(keys), 1, "cpu")[0].numpy()
            grid = np.asarray(masks[0])[::8, ::8].reshape(-1)  # True: Ada's latent positions
            for character, positions in ((0, grid), (1, ~grid)):
                seen = set(keys[mask[positions].any(axis=0)].tolist())
                assert own[character] <= seen  # its own pair is there…
                assert not (own[1 - character] & seen)  # …and the other identity's never is
    finally:
        identities.remove()
    assert identity_tokens(0)[0] not in pipe.tokenizer.get_vocab()  # tokens only for the job


def test_racig_renders_each_identity_in_its_own_region(tmp_path):
    """Through the real racig backend on the tiny kit: changing Ana's identity tokens changes the
    picture mostly inside Ana's region (her tokens reach only her region's prompt), and the tokens
    are gone from the shared tokenizers after the job."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_racig_support import as_array, build_kit, characters, kit_settings, panel_request

    from comic_studio.backends.racig import RacigBackend

    kit, _strong = build_kit(tmp_path)
    backend = RacigBackend()
    ana_a, ana_b, ben = (_identity(tmp_path / f"{n}.safetensors", s) for n, s in (("a1", 1), ("a2", 7), ("b", 2)))
    base = kit_settings(kit, steps=4, mask_dilation=0.0)

    def render(ana_file: str, **extra):
        settings = {**base, **extra, "character_identities": json.dumps({"ana": ana_file, "ben": ben})}
        request = panel_request(settings, width=256, height=160, characters=characters(2, refs=False))
        return request, as_array(backend.generate(request).image)

    request, first = render(ana_a)
    _request, second = render(ana_b)
    diff = np.abs(first - second).mean(-1)
    cond = backend.conditioning(request, backend.validate_settings(base))
    ana = cond.head_masks[0] | cond.body_masks[0]
    inside, outside = diff[ana].mean(), diff[~ana].mean()
    # Measured 2.7× (mean pixel change 1.19 inside Ana's region, 0.43 outside): the tiny UNet's
    # self-attention and convolutions spread any change somewhat beyond its region.
    assert inside > 2.0 * outside, (inside, outside)
    # Regional prompts off: the one global prompt carries every pair, and the picture follows it.
    _r, plain_a = render(ana_a, regional_prompts=False)
    _r, plain_b = render(ana_b, regional_prompts=False)
    assert np.abs(plain_a - plain_b).mean() > 0
    parts = backend.sdxl_components(backend.validate_settings(base), request.seed, fp16_vae_fix=False)
    assert identity_tokens(0)[0] not in parts["tokenizer"].get_vocab()  # only for the job

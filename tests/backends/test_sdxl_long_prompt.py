"""Prompts past CLIP's 77 tokens on the tiny kit: nothing after token 75 is dropped any more, a
windowed encoding of a one-window prompt equals diffusers' own encoding, and prompts that fit keep
the stock call (bit-identical images)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.backends._diffusers.long_prompt import apply_long_prompt, encode_windows, token_ids, windows_needed  # noqa: E402
from comic_studio.backends.sdxl import SdxlBackend  # noqa: E402
from comic_studio.generation.request import GenerationRequest  # noqa: E402

# The tiny kit's tokenizer has about one token per character: this is well over one window.
LONG = (
    "ana hands ben a brass key on the windy pier at dusk, ana: tall woman with a red scarf and a "
    "green raincoat, ben: short man in a grey wool cap, lighthouse behind them, ink and flat colour"
)


@pytest.fixture(scope="module")
def backend():
    return SdxlBackend()


def render(tiny_kit, backend, prompt: str, negative: str = "") -> np.ndarray:
    request = GenerationRequest(backend="sdxl", backend_settings={"model": str(tiny_kit.sdxl), "steps": 2},
                                prompt=prompt, negative_prompt=negative, seed=3, width=64, height=64)  # fmt: skip
    return np.asarray(backend.generate(request).image.convert("RGB"), dtype=np.int16)


def test_the_end_of_a_long_prompt_changes_the_image(tiny_kit, backend):
    base = render(tiny_kit, backend, LONG)
    changed_tail = render(tiny_kit, backend, LONG[:-12] + "pencil sketch")
    assert np.abs(base - changed_tail).mean() > 0.5  # stock diffusers truncates: identical images


def test_one_window_through_the_window_path_equals_diffusers_encoding(tiny_kit, backend):
    pipe, _call = backend.prepare_call(
        GenerationRequest(backend="sdxl", backend_settings={"model": str(tiny_kit.sdxl)}, prompt="a red lighthouse",
                          width=64, height=64), backend.validate_settings({"model": str(tiny_kit.sdxl)}))  # fmt: skip
    with torch.no_grad():
        embeds, pooled = encode_windows(pipe, "a red lighthouse", 1)
        stock, _neg, stock_pooled, _negp = pipe.encode_prompt("a red lighthouse", do_classifier_free_guidance=False)
    assert torch.equal(embeds, stock) and torch.equal(pooled, stock_pooled)


def test_windows_and_negative_padding(tiny_kit, backend):
    settings = backend.validate_settings({"model": str(tiny_kit.sdxl)})
    pipe, call = backend.prepare_call(
        GenerationRequest(backend="sdxl", backend_settings={"model": str(tiny_kit.sdxl)}, prompt=LONG,
                          negative_prompt="blurry", width=64, height=64), settings)  # fmt: skip
    windows = windows_needed(pipe, LONG, "blurry")
    assert windows == -(-len(token_ids(pipe.tokenizer, LONG)) // 75) >= 2
    assert apply_long_prompt(pipe, call)
    assert "prompt" not in call and "negative_prompt" not in call
    assert (
        call["prompt_embeds"].shape
        == call["negative_prompt_embeds"].shape
        == (1, 77 * windows, call["prompt_embeds"].shape[-1])
    )
    assert call["pooled_prompt_embeds"].shape == call["negative_pooled_prompt_embeds"].shape


def test_prompts_that_fit_keep_the_stock_call(tiny_kit, backend):
    settings = backend.validate_settings({"model": str(tiny_kit.sdxl)})
    pipe, call = backend.prepare_call(
        GenerationRequest(backend="sdxl", backend_settings={"model": str(tiny_kit.sdxl)}, prompt="short prompt",
                          width=64, height=64), settings)  # fmt: skip
    before = dict(call)
    assert not apply_long_prompt(pipe, call)
    assert call == before

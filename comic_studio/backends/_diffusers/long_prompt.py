"""Prompts longer than CLIP's 77 tokens, for every SDXL-based backend.

A panel prompt is the beat's action plus each character's description plus the style suffix, which
often runs past the 75 usable tokens of a CLIP window; diffusers would silently drop the rest (the
style, the last character's clothes). Here a long prompt is cut into windows of 75 tokens, each
window encoded on its own with its start/end tokens exactly as diffusers encodes one prompt, and
the windows' hidden states are concatenated along the sequence axis (the UNet's cross-attention
accepts any length). The pooled embedding comes from the first window, like a prompt that fits.
The negative prompt gets as many windows (empty ones as padding) so both halves of classifier-free
guidance have the same length.

Prompts that fit are left to diffusers untouched, so short prompts stay bit-identical to a stock
pipeline call (the parity tests rely on it).
"""

from __future__ import annotations

from typing import Any


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """The prompt's tokens without the start/end tokens (no truncation)."""
    ids = tokenizer(text, truncation=False, add_special_tokens=True, verbose=False).input_ids
    return list(ids[1:-1])


def windows_needed(pipe: Any, prompt: str, negative: str | None) -> int:
    """How many 77-token windows the longer of the two prompts needs (1: diffusers handles it)."""
    usable = pipe.tokenizer.model_max_length - 2
    longest = max(len(token_ids(t, p)) for t in (pipe.tokenizer, pipe.tokenizer_2) for p in (prompt, negative or ""))
    return max(1, -(-longest // usable))


def encode_windows(pipe: Any, text: str, windows: int) -> tuple[Any, Any]:
    """``text`` in ``windows`` windows → (hidden states [1, 77·windows, 2048], pooled [1, 1280])."""
    import torch

    per_encoder, pooled = [], None
    for tokenizer, encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids = token_ids(tokenizer, text)
        size = tokenizer.model_max_length
        usable = size - 2
        chunks = []
        for w in range(windows):
            part = ids[w * usable : (w + 1) * usable]
            row = [tokenizer.bos_token_id, *part, tokenizer.eos_token_id]
            row += [tokenizer.pad_token_id] * (size - len(row))
            out = encoder(torch.tensor([row], device=_device(encoder)), output_hidden_states=True)
            if w == 0 and out[0].ndim == 2:
                pooled = out[0]  # the projection encoder's text embeds, as diffusers takes them
            chunks.append(out.hidden_states[-2])  # SDXL reads the penultimate layer
        per_encoder.append(torch.cat(chunks, dim=1))
    return torch.cat(per_encoder, dim=-1), pooled


def _device(module: Any) -> Any:
    from diffusers.utils.torch_utils import get_module_execution_device

    return get_module_execution_device(module)


def apply_long_prompt(pipe: Any, call: dict[str, Any]) -> bool:
    """If ``call``'s prompt or negative prompt is longer than one CLIP window, replace both by
    windowed embeddings (in place) and return True; otherwise leave ``call`` as it is."""
    import torch

    prompt, negative = call.get("prompt") or "", call.get("negative_prompt")
    windows = windows_needed(pipe, prompt, negative)
    if windows == 1:
        return False
    with torch.no_grad():
        embeds, pooled = encode_windows(pipe, prompt, windows)
        if negative is None and pipe.config.force_zeros_for_empty_prompt:
            negative_embeds, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        else:
            negative_embeds, negative_pooled = encode_windows(pipe, negative or "", windows)
    call.pop("prompt", None)
    call.pop("negative_prompt", None)
    call.update(prompt_embeds=embeds, pooled_prompt_embeds=pooled,
                negative_prompt_embeds=negative_embeds, negative_pooled_prompt_embeds=negative_pooled)  # fmt: skip
    return True

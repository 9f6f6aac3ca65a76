"""The names of StableIdentity's learned tokens, shared by the trainer and the ``identity`` backend.

One function gives the token pair of the k-th identity of a job, and both sides take it from here:
the token that is trained is the token that is substituted. (The public SDXL port trained its
signal word as ``v1*`` and prompted ``*v1``, so its prompts never reached the learned rows.)
"""

from __future__ import annotations

from typing import Any


def identity_tokens(index: int) -> tuple[str, str]:
    """The two placeholder tokens of the ``index``-th identity of a job."""
    return (f"<identity-{index}-a>", f"<identity-{index}-b>")


def identity_phrase(index: int) -> str:
    """The prompt text that stands for identity ``index``: its two tokens, side by side."""
    return " ".join(identity_tokens(index))


def pool_at_end_token(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Make each CLIP text encoder of ``pairs`` ((tokenizer, encoder), …) take its pooled output at
    the end-of-text token; returns what :func:`restore_pooling` needs to undo it.

    SDXL's encoder configs carry the legacy ``eos_token_id = 2``, with which transformers pools at
    the *largest token id* — the end token for an ordinary prompt (identical output), but an added
    identity token once there is one, so SDXL's pooled conditioning would be that token's state
    instead of the prompt's. Training and rendering both switch it for the job."""
    saved = []
    for tokenizer, encoder in pairs:
        model = getattr(encoder, "text_model", encoder)
        end = getattr(tokenizer, "eos_token_id", None)
        if hasattr(model, "eos_token_id") and end is not None and model.eos_token_id != end:
            saved.append((model, model.eos_token_id))
            model.eos_token_id = end
    return saved


def restore_pooling(saved: list[tuple[Any, Any]]) -> None:
    for model, value in saved:
        model.eos_token_id = value

"""The names of StableIdentity's learned tokens, shared by the trainer and the ``identity`` backend.

One function gives the token pair of the k-th identity of a job, and both sides take it from here:
the token that is trained is the token that is substituted. (The public SDXL port trained its
signal word as ``v1*`` and prompted ``*v1``, so its prompts never reached the learned rows.)

The celebrity-name statistics (the AdaIN target of seed 002 §3.1.2) live here too: the trainer maps
its rows onto them, and the backends scale a character's rows about their mean (its identity
strength, :func:`scaled_identity_rows`), from the same cached computation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from comic_studio.generation.request import GenerationError

CELEBRITY_NAMES = Path(__file__).with_name("celebrity_names.json")
"""The shipped celebrity names whose token statistics are StableIdentity's editability prior."""


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


def celebrity_names() -> list[str]:
    from comic_studio.core.safe_read import read_json

    names = read_json(CELEBRITY_NAMES, what="the celebrity names")["names"]
    return [str(n) for n in names]


def celebrity_stats(tokenizer: Any, embedding: Any) -> tuple[Any, Any]:
    """Per-position (token 1, token 2) mean and standard deviation [2, D] of the celebrity names'
    first two token embeddings in ``embedding`` (the encoder's token table, [V, D]). Computed once
    per tokenizer and table and cached in the app's state folder (keyed by their content)."""
    import torch
    from safetensors.torch import load_file, save_file

    from comic_studio.core.atomic import atomic_path
    from comic_studio.core.settings import state_dir

    names = celebrity_names()
    ids = []
    for name in names:
        tokens = tokenizer(name, add_special_tokens=False).input_ids
        if len(tokens) >= 2:  # a one-token name has no second position
            ids.append(tokens[:2])
    if len(ids) < 2:
        raise GenerationError("the celebrity names give fewer than two two-token names with this tokenizer")
    index = torch.tensor(ids, dtype=torch.long)
    # The statistics are a function of the names' rows alone: key the cache by them (≈ 1 MB), not by the
    # table (hashing SDXL's two tables cost ≈ 1.2 s per job with an identity strength other than 1).
    rows = embedding.detach()[index.to(embedding.device)].float().cpu()  # [names, 2, D]
    digest = hashlib.sha256(json.dumps(ids).encode())
    digest.update(rows.numpy().tobytes())
    cache = state_dir() / "identity" / f"celebrity-stats-{digest.hexdigest()[:32]}.safetensors"
    if cache.is_file():
        try:
            stored = load_file(str(cache))
            return stored["mean"], stored["std"]
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache is recomputed below
    mean, std = rows.mean(dim=0), rows.std(dim=0)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache, "the celebrity statistics") as tmp:
            save_file({"mean": mean.contiguous(), "std": std.contiguous()}, str(tmp))
    except OSError:
        pass  # a cache only: computing again next time is fine
    return mean, std


def scaled_identity_rows(rows: Any, mean: Any, scale: float) -> Any:
    """A character's identity strength applied to its trained token rows ``rows`` [2, D]:
    ``mean + scale · (rows − mean)`` with ``mean`` [2, D] the celebrity names' per-position mean of
    :func:`celebrity_stats` for the same tokenizer and table.

    Seed 002's AdaIN (§3.1.2) places each row at ``mean + r · std`` of the celebrity statistics, so
    ``rows − mean`` is exactly what the identity learned on top of "some celebrity name". The paper
    gives no strength at inference (the app's own setting): scaling that learned part keeps the
    tokens where the editability prior put them — 0 is the celebrity mean (a generic face), 1 the
    trained file unchanged (the very tensor is returned, bit for bit), above 1 exaggerates."""
    if scale == 1.0:
        return rows
    centre = mean.to(rows.device).float()
    return (centre + scale * (rows.float() - centre)).to(rows.dtype)

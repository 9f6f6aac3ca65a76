"""Learned identity tokens (StableIdentity, seed 002) in an SDXL job, shared by the backends that place
them: the ``identity`` backend (every character must have tokens) and RaCig's regional prompts (the
characters that have tokens get them in their own region).

For one job, the k-th character with an identity gets the token pair
:func:`~comic_studio.generation.identity.identity_tokens` ``(k)`` — the very tokens its file was
trained for — loaded into **both** tokenizers and text encoders from its textual-inversion file
(diffusers' ``load_textual_inversion``, ``clip_l`` into CLIP-L, ``clip_g`` into bigG) and taken out
again after the job (the encoders pool at the end token meanwhile, as in training:
:func:`~comic_studio.generation.identity.pool_at_end_token`), so several identities share one
prompt with their own signal words (§3.1.2). A character's identity strength other than 1 moves its
rows about the celebrity-name mean of each encoder before they are loaded
(:func:`~comic_studio.generation.identity.scaled_identity_rows`; the paper has no such strength).
"""

from __future__ import annotations

import json
import re
from typing import Any

from comic_studio.generation.identity import (
    celebrity_stats,
    identity_phrase,
    identity_tokens,
    pool_at_end_token,
    restore_pooling,
    scaled_identity_rows,
)
from comic_studio.generation.request import GenerationError, GenerationRequest


def identity_prompt(prompt: str, names: list[str]) -> str:
    """``prompt`` with the ``k``-th name replaced by identity ``k``'s token pair wherever it appears
    (whole words, any case); a name that does not appear gets "<pair> person, " in front."""
    front = []
    for k, name in enumerate(names):
        pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
        prompt, count = pattern.subn(identity_phrase(k), prompt)
        if not count:
            front.append(f"{identity_phrase(k)} person")
    return ", ".join([*front, prompt]) if front else prompt


def parse_character_identities(text: str) -> dict[str, str]:
    """The ``character_identities`` setting (JSON ``{character id: file}``, filled by the workflows)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise GenerationError(f"setting 'character_identities' is not JSON ({exc})") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise GenerationError("setting 'character_identities' is not a {character id: file} mapping")
    return value


class JobIdentities:
    """The identity tokens of one job: :meth:`apply` adds each character's pair to both tokenizers
    and text encoders, :meth:`remove` takes them out again (call it in a ``finally``). ``scales``:
    each file's identity strength (default 1: the rows as trained)."""

    def __init__(self, files: list[str], scales: list[float] | None = None):
        self.files = files
        self.scales = scales if scales is not None else [1.0] * len(files)
        if len(self.scales) != len(files):
            raise GenerationError(f"{len(files)} identity files but {len(self.scales)} strengths")
        self.tokens: list[str] = []
        self._pipe: Any = None
        self._pooling: list[tuple[Any, Any]] = []

    def apply(self, pipe: Any) -> None:
        from safetensors.torch import load_file

        self._pipe = pipe
        pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
        self._pooling = pool_at_end_token(pairs)
        # The celebrity means of the tables as they are before this job's rows exist (only when a
        # strength needs them: computing them hashes the table, and 1 needs nothing).
        means: list[Any] = [None, None]
        if any(scale != 1.0 for scale in self.scales):
            means = [celebrity_stats(tok, enc.get_input_embeddings().weight)[0] for tok, enc in pairs]
        for k, (file, scale) in enumerate(zip(self.files, self.scales, strict=True)):
            try:
                state = load_file(file)
            except (OSError, ValueError) as exc:
                raise GenerationError(f"cannot read the identity tokens {file} ({exc})") from exc
            if "clip_l" not in state or "clip_g" not in state:
                raise GenerationError(f"{file} is not an SDXL textual inversion (clip_l and clip_g)")
            tokens = list(identity_tokens(k))
            for key, (tokenizer, encoder), mean in zip(("clip_l", "clip_g"), pairs, means, strict=True):
                if state[key].shape[0] != len(tokens):
                    raise GenerationError(f"{file}: {key} holds {state[key].shape[0]} tokens, not {len(tokens)}")
                rows = state[key] if mean is None else scaled_identity_rows(state[key], mean, scale)
                pipe.load_textual_inversion(rows, token=tokens, text_encoder=encoder, tokenizer=tokenizer)
            self.tokens += tokens

    def remove(self) -> None:
        restore_pooling(self._pooling)
        self._pooling = []
        if self.tokens:
            pipe, tokens, self.tokens = self._pipe, self.tokens, []
            pipe.unload_textual_inversion(tokens, tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder)
            pipe.unload_textual_inversion(tokens, tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2)


def optional_identities(request: GenerationRequest, setting: str) -> tuple[JobIdentities, dict[str, str]]:
    """For a backend where tokens are optional (RaCig): the panel's characters whose identity file
    the ``character_identities`` ``setting`` hands over, each once in request order, the k-th with
    pair k. Returns the job's :class:`JobIdentities` and ``{character id: its token phrase}``."""
    files = parse_character_identities(setting)
    characters = [c for c in {c.id: c for c in request.characters}.values() if c.id in files]
    return JobIdentities([files[c.id] for c in characters], [c.identity_scale for c in characters]), {
        c.id: identity_phrase(k) for k, c in enumerate(characters)
    }

"""Regional text prompts for SDXL backends (RaCig's regional prompting; issue 15, item 8).

One global prompt carrying every character's name and description lets attributes bleed between
characters (Ana's raincoat on Ben). RaCig instead gives every character region its own prompt — the
common prompt with *every* name replaced by that character's tag (``racig/pipeline.py``:
``pattern.sub(character.gender, common_prompt)``) — and the background its own, and its attention
processor (``IPAttnProcessor2_0_RP*``) attends to each instance's text separately and composes the
results under the region masks (the background under the complement).

Here the same composition is **one** attention call: the region prompts are encoded and laid side
by side along the token axis (``[character 1 | … | character n | background]``, CLIP windows each),
and every cross-attention (attn2) layer gets a boolean mask letting each latent position attend only
to the tokens of its own region. For disjoint hard masks — which the staged head/body masks are
(:func:`comic_studio.poses.staging.conditioning.disjoint_masks`) — a softmax over one region's keys
is exactly RaCig's per-instance attention multiplied by that region's mask. Masks are resampled to
each layer's grid by nearest neighbour, as RaCig does. The mask goes in as the processor's
``attention_mask``, which diffusers' attention processors — IP-Adapter's included — apply to the
text attention only, so per-character IP-Adapter images under their own masks compose unchanged.

Where the app differs, and why:

* **Tag.** RaCig's characters carry a gender tag ("1female", "1male"); the app's characters have no
  gender, so the tag is :data:`NEUTRAL_TAG` and the character's description follows the converted
  prompt (what RaCig's per-character lines carry).
* **Background prompt.** RaCig passes the user's background prompt or an empty one; the app derives
  it from the common prompt with the names replaced by :data:`BACKGROUND_TAG`, so the setting and
  style the common prompt names still reach the background.
* **Pooled embedding** (SDXL's ``text_embeds``) and the descriptions-free common prompt: the pooled
  embedding is the global prompt's, as without regions (RaCig's pipeline hands its common prompt on
  beside the instances).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from comic_studio.backends._diffusers.long_prompt import encode_windows, token_ids
from comic_studio.generation.request import GenerationRequest

NEUTRAL_TAG = "one person"
"""What each character's region prompt says in place of every name (RaCig: the character's gender
tag; the app's characters have no gender)."""
BACKGROUND_TAG = "people"
"""What the background prompt says in place of the names (the scene without anyone's identity)."""


def common_prompt(request: GenerationRequest) -> str:
    """The request's prompt without the characters' ``Name: description`` parts that
    :func:`comic_studio.workflows.requests.build_prompt` adds (each region gets only its own)."""
    text = request.prompt
    for c in request.characters:
        if c.description.strip():
            text = text.replace(f"{c.name}: {c.description}", "")
    parts = [p.strip() for p in text.split(",")]
    return ", ".join(p for p in parts if p)


def region_prompts(request: GenerationRequest, tags: Sequence[str] | None = None) -> list[str]:
    """One prompt per character (request order), then the background's. ``tags``: per character,
    what its region says in place of every name (default :data:`NEUTRAL_TAG`); a character with
    learned identity tokens gets "<its token pair> person" (:func:`identity_region_tags`), so each
    region carries its own identity's tokens and no one else's."""
    common = common_prompt(request)
    names = sorted({c.name for c in request.characters if c.name.strip()}, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b") if names else None

    def named(tag: str) -> str:
        return pattern.sub(tag, common) if pattern else common

    own = list(tags) if tags is not None else [NEUTRAL_TAG] * len(request.characters)
    if len(own) != len(request.characters):
        raise ValueError(f"regional prompts: {len(own)} tags for {len(request.characters)} characters")
    prompts = []
    for tag, c in zip(own, request.characters, strict=True):
        text = named(tag)
        if tag != NEUTRAL_TAG and tag not in text:
            # An identity must reach its region even where the prompt does not name anyone (the
            # identity backend likewise puts "<pair> person" in front).
            text = ", ".join(p for p in (tag, text) if p)
        prompts.append(", ".join(p for p in (text, c.description.strip()) if p))
    return [*prompts, named(BACKGROUND_TAG)]


def identity_region_tags(request: GenerationRequest, phrases: dict[str, str]) -> list[str]:
    """The region tags of ``request``'s characters: "<phrase> person" for a character id in
    ``phrases`` (its identity token pair), :data:`NEUTRAL_TAG` for the others (RaCig's tag stands
    where the identity would)."""
    return [f"{phrases[c.id]} person" if c.id in phrases else NEUTRAL_TAG for c in request.characters]


def region_labels(masks: Sequence[Any]) -> Any:
    """Per pixel, the index of the character whose mask covers it, else ``len(masks)`` (background).
    Masks are boolean ``(H, W)`` arrays; where two overlap the earlier character wins."""
    import numpy as np

    labels = np.full(np.asarray(masks[0]).shape, len(masks), dtype=np.int64)
    for index in reversed(range(len(masks))):
        labels[np.asarray(masks[index], dtype=bool)] = index
    return labels


@dataclass
class RegionalText:
    """One job's regions: the label map at generation size and the token count of each region."""

    labels: Any  # int64 (H, W) numpy array, values 0..regions−1
    regions: int
    tokens_per_region: int = 77
    _masks: dict[tuple[int, int, int, str], Any] = field(default_factory=dict)

    def mask(self, queries: int, keys: int, batch: int, device: Any) -> Any | None:
        """``[batch, queries, keys]`` boolean: query position q may attend to key k when k is a token
        of q's region. ``None`` when the keys are not this job's regional text (another model's)."""
        if keys != self.regions * self.tokens_per_region:
            return None
        key = (queries, keys, batch, str(device))
        found = self._masks.get(key)
        if found is None:
            import torch
            import torch.nn.functional as F

            height, width = self.grid(queries)
            labels = torch.from_numpy(self.labels).float()[None, None]
            small = F.interpolate(labels, size=(height, width), mode="nearest").long().reshape(-1)
            region_of_key = torch.arange(keys) // self.tokens_per_region
            allowed = small[:, None] == region_of_key[None, :]
            found = allowed[None].expand(batch, -1, -1).to(device)
            self._masks[key] = found
        return found

    def grid(self, queries: int) -> tuple[int, int]:
        """The (height, width) of a layer's token grid: the generation size halved (rounding up, as
        SDXL's strided convolutions do) until it holds ``queries`` positions."""
        height, width = self.labels.shape
        h, w = math.ceil(height / 8), math.ceil(width / 8)  # the VAE's latent grid
        while h * w > queries:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        if h * w != queries:
            raise ValueError(f"regional prompts: no latent grid of {queries} positions for {width}×{height}")
        return h, w


class RegionalTextProcessor:
    """Wraps a cross-attention layer's processor: passes it the region mask as ``attention_mask``.

    diffusers' ``Attention.forward`` hands a processor only the keyword arguments its ``__call__``
    names, so this one names IP-Adapter's ``ip_adapter_masks`` and passes it on when the wrapped
    processor takes it (the per-character image masks then act exactly as without regions)."""

    def __init__(self, inner: Any, regions: RegionalText):
        self.inner = inner
        self.regions = regions
        self._takes_masks = "ip_adapter_masks" in inspect.signature(inner.__call__).parameters

    def __getattr__(self, name: str) -> Any:
        # The wrapped processor's own attributes read through (an IP-Adapter processor's ``scale``
        # and ``to_k_ip``, for code that inspects the UNet's processors during a job).
        if name in ("inner", "regions", "_takes_masks"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any = None,
        attention_mask: Any = None,
        temb: Any = None,
        ip_adapter_masks: Any = None,
    ) -> Any:
        text = encoder_hidden_states[0] if isinstance(encoder_hidden_states, tuple) else encoder_hidden_states
        if text is not None and attention_mask is None and hidden_states.ndim == 3:
            attention_mask = self.regions.mask(
                hidden_states.shape[1], text.shape[1], hidden_states.shape[0], hidden_states.device
            )
        extra = {"ip_adapter_masks": ip_adapter_masks} if self._takes_masks and ip_adapter_masks is not None else {}
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **extra)


def cross_attention_layers(model: Any) -> list[str]:
    """The processor names of a UNet's (or ControlNet's) cross-attention layers."""
    return [name for name in model.attn_processors if name.endswith("attn2.processor")]


@contextmanager
def regional_text(models: Sequence[Any], regions: RegionalText) -> Iterator[None]:
    """Wrap the cross-attention processors of ``models`` (the UNet, and the ControlNet, which reads the
    same text) for the job; the processors found are put back afterwards, on error and cancel too.
    Processors attached meanwhile elsewhere are left as they are. Enter it after attaching
    IP-Adapters (diffusers rebuilds processors when it loads them) and leave it before removing them."""
    saved = []
    for model in models:
        original = dict(model.attn_processors)
        wrapped = {name: RegionalTextProcessor(original[name], regions) for name in cross_attention_layers(model)}
        model.set_attn_processor({**original, **wrapped})
        saved.append((model, original, wrapped))
    try:
        yield
    finally:
        for model, original, wrapped in saved:
            current = dict(model.attn_processors)
            ours = {name: original[name] for name, proc in wrapped.items() if current.get(name) is proc}
            model.set_attn_processor({**current, **ours})


def regional_embeddings(pipe: Any, prompts: Sequence[str], global_prompt: str, negative: str | None) -> dict[str, Any]:
    """The pipeline's text keyword arguments for regional prompts: each prompt in ``prompts`` encoded
    in the same number of CLIP windows and laid side by side; the negative prompt (or SDXL's zeros)
    repeated once per region, so each region's unconditional half is the plain negative; pooled
    embeddings from ``global_prompt`` and ``negative``."""
    import torch

    usable = pipe.tokenizer.model_max_length - 2
    texts = [*prompts, global_prompt, negative or ""]
    longest = max(len(token_ids(t, text)) for t in (pipe.tokenizer, pipe.tokenizer_2) for text in texts)
    windows = max(1, -(-longest // usable))
    with torch.no_grad():
        embeds = torch.cat([encode_windows(pipe, text, windows)[0] for text in prompts], dim=1)
        _, pooled = encode_windows(pipe, global_prompt, windows)
        if negative is None and pipe.config.force_zeros_for_empty_prompt:
            negative_embeds, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        else:
            one, negative_pooled = encode_windows(pipe, negative or "", windows)
            negative_embeds = one.repeat(1, len(prompts), 1)
    return {
        "prompt_embeds": embeds,
        "pooled_prompt_embeds": pooled,
        "negative_prompt_embeds": negative_embeds,
        "negative_pooled_prompt_embeds": negative_pooled,
        "tokens_per_region": windows * pipe.tokenizer.model_max_length,
    }


def apply_regional_prompts(
    pipe: Any, call: dict[str, Any], request: GenerationRequest, masks: Sequence[Any], tags: Sequence[str] | None = None
) -> RegionalText:
    """Replace ``call``'s prompt by the regional embeddings of ``request`` (one region per mask, in
    request order, plus the background; ``tags`` as :func:`region_prompts`) and return the regions
    for :func:`regional_text`."""
    prompts = region_prompts(request, tags)
    encoded = regional_embeddings(pipe, prompts, call.pop("prompt", "") or "", call.pop("negative_prompt", None))
    tokens = encoded.pop("tokens_per_region")
    call.update(encoded)
    return RegionalText(region_labels(masks), len(prompts), tokens)

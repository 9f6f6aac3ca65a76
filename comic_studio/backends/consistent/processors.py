"""Attention processors for consistent self-attention, one class per role, with explicit state.

* :class:`BankWriteProcessor` (anchor images): at every banked step stores a random sample of the
  layer's input tokens in the :class:`IdentityBank`. A character's anchors render as one batch in
  which, at the steps (and layers) the schedule marks consistent, every anchor also attends to the
  other anchors' sampled tokens (StoryBooth §3.2.3: "identity images attend only to themselves and
  other identity images"; StoryDiffusion's write phase renders its identity images as one batch
  the same way), so several anchors bank one look, not independent ones. A lone anchor attends to
  itself only: plain self-attention, exactly as before.
* :class:`BankReadProcessor` (panels): at steps the schedule marks consistent, keys and values are the
  panel's own tokens plus the banked tokens of the characters present; queries stay the panel's own.
  Everywhere else it calls the layer's original processor, so a panel without banked characters is
  computed by exactly the code plain SDXL runs.

Everything a processor needs is on a :class:`RunState` passed in at construction (step, phase, bank,
characters, schedule, RNG): no module globals, so queued jobs, cancel mid-step and two projects in one
process cannot see each other's state. :func:`installed` patches only the decoder's attn1 layers (every
other processor — IP-Adapter's attn2 ones included — is kept as the same object) and always restores
the originals of the layers it patched. Keys/values go through ``attn.to_k``/``attn.to_v``, so
LoRA-patched projections apply. IP-Adapters stack when attached outside the ``installed`` block
(diffusers' load/unload rebuild every processor without arguments, which ours refuse clearly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from comic_studio.backends.consistent.bank import IdentityBank, sampled_tokens
from comic_studio.backends.consistent.schedule import step_of

GROUP_32 = "32"
GROUP_16 = "16"
"""Resolution groups: SDXL's lowest-resolution decoder block (1/32 of the image side) and the next
(1/16); each has its own strength."""


@dataclass
class RunState:
    """One job's consistent-attention state.

    Tokens are banked and read by **noise level** (the UNet's timestep), never by the position in
    the pipeline's loop: img2img/inpaint start mid-schedule, and second-order samplers (Heun, DPM++
    SDE) call the UNet 2N−1 times for N steps, so a loop index names a different noise level in
    every one of those runs. :func:`installed` reads each UNet call's timestep (a forward pre-hook)
    and :meth:`at_timestep` derives from it the schedule step (``step``: which interval of the job's
    N-step schedule ``levels`` the call falls in, so the coin of step k covers its corrector call
    too) and, for reading, the nearest recorded level of each character."""

    phase: str  # "write" (anchor) or "read" (panel)
    bank: IdentityBank
    characters: tuple[str, ...]
    """write: the one character being banked; read: the characters present in the panel."""
    generators: tuple[Any, ...] = ()
    """write: one torch CPU generator per anchor of the batch (seeded per anchor), choosing which of
    that anchor's tokens are kept (and shown to the other anchors)."""
    banked_steps: frozenset[int] = frozenset()
    plan: tuple[bool, ...] = ()
    """One schedule decision per step of the N-step schedule (read; write: when anchors attend to
    each other). Used when ``layer_plan`` is empty."""
    layer_plan: tuple[tuple[bool, ...], ...] = ()
    """Decisions ``[step][layer index]`` (:meth:`ConsistencySchedule.layer_plan`): one coin per layer
    call, StoryDiffusion's granularity. Overrides ``plan`` when given."""
    levels: tuple[float, ...] = ()
    """The first-order timesteps of the job's N-step schedule, highest first (:func:`schedule_levels`)."""
    step: int = 0
    timestep: float | None = None
    """The level of the UNet call running now (None before the first call)."""
    fresh: bool = True
    """write: whether this is the run's first UNet call at ``timestep`` (Heun repeats a level: the
    repeat must not append its tokens as if it were another anchor)."""
    calls: dict[str, int] = field(default_factory=lambda: {"plain": 0, "write": 0, "read": 0, "mutual": 0})
    lookups: dict[float, dict[str, float]] = field(default_factory=dict)
    """read: for every level the UNet ran at, the recorded level each character was read from."""
    _seen: set[float] = field(default_factory=set)
    _recorded: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.phase not in ("write", "read"):
            raise ValueError(f"unknown phase {self.phase!r}")
        if self.phase == "write" and len(self.characters) != 1:
            raise ValueError("a write phase banks exactly one character")
        if list(self.levels) != sorted(self.levels, reverse=True):
            raise ValueError("schedule levels must run from the highest noise level down")
        if self.phase == "read":
            self._recorded = {c: self.bank.levels(c) for c in self.characters}

    def at_timestep(self, timestep: Any) -> None:
        """The UNet is about to run at ``timestep`` (set by :func:`installed`'s hook)."""
        level = canonical_level(timestep)
        self.timestep = level
        self.step = step_of(self.levels, level)
        self.fresh = level not in self._seen
        self._seen.add(level)

    def consistent_now(self, layer: int = 0) -> bool:
        """Whether the patched layer number ``layer`` (processor order) uses consistency now."""
        if self.timestep is None:
            return False
        if self.layer_plan:
            return self.step < len(self.layer_plan) and self.layer_plan[self.step][layer]
        return self.step < len(self.plan) and self.plan[self.step]

    def reading(self) -> dict[str, float]:
        """The recorded level to read for each banked character present, nearest to the current one."""
        assert self.timestep is not None
        found = self.lookups.get(self.timestep)
        if found is None:
            found = {c: nearest(levels, self.timestep) for c, levels in self._recorded.items() if levels}
            self.lookups[self.timestep] = found
        return found


def canonical_level(timestep: Any) -> float:
    """A UNet timestep (a number or a tensor holding one value per batch row) as the bank's key:
    rounded so that the same level computed twice is the same float."""
    value = timestep.reshape(-1)[0].item() if hasattr(timestep, "reshape") else timestep
    return round(float(value), 3)


def nearest(levels: list[float], level: float) -> float:
    """The recorded level closest to ``level`` (ties: the noisier one)."""
    return min(levels, key=lambda recorded: (abs(recorded - level), -recorded))


def schedule_levels(scheduler: Any, steps: int) -> tuple[float, ...]:
    """The first-order timesteps of ``scheduler``'s schedule for ``steps`` steps, highest first, from a
    fresh copy (the job's own scheduler keeps its state). Second-order schedulers list each step's
    level followed by its corrector's; every ``order``-th entry is a step's own level."""
    return tuple(canonical_level(t) for t in unet_timesteps(scheduler, steps)[:: int(getattr(scheduler, "order", 1))])


def unet_timesteps(scheduler: Any, steps: int) -> list[Any]:
    """Every timestep the UNet is called at in a full ``steps``-step run of ``scheduler`` (2N−1 for
    second-order samplers), computed on a fresh copy."""
    fresh = type(scheduler).from_config(scheduler.config)
    fresh.set_timesteps(steps, device="cpu")
    return list(fresh.timesteps)


class _ConsistentProcessor:
    def __init__(
        self, original: Any = None, layer: str = "", rate: float = 0.0, state: RunState | None = None, index: int = 0
    ):
        if state is None:
            # diffusers' load_ip_adapter / unload_ip_adapter rebuild every processor that is not theirs
            # as ``type(processor)()``: a consistent processor cannot exist without its job's state, so
            # say which order works instead of failing on missing arguments deep inside diffusers.
            raise TypeError(
                f"{type(self).__name__} needs its job's RunState; attach or remove IP-Adapters "
                "(load_ip_adapter / unload_ip_adapter) before entering processors.installed() or "
                "after leaving it, not inside it"
            )
        self.original = original
        self.layer = layer
        self.rate = rate
        self.state = state
        self.index = index
        """This layer's place among the patched layers (its column in ``RunState.layer_plan``)."""

    def _plain(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any,
        attention_mask: Any,
        temb: Any,
        args: tuple,
        kwargs: dict,
    ) -> Any:
        self.state.calls["plain"] += 1
        return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


class BankWriteProcessor(_ConsistentProcessor):
    def __call__(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any = None,
        attention_mask: Any = None,
        temb: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        state = self.state
        generators = state.generators or (None,)
        anchors = len(generators)
        shaped = hidden_states.ndim == 3 and encoder_hidden_states is None
        recording = shaped and state.timestep is not None and state.fresh and state.step in state.banked_steps
        mutual = (shaped and anchors > 1 and attention_mask is None and attn.group_norm is None
                  and attn.spatial_norm is None and state.consistent_now(self.index))  # fmt: skip
        count = sampled_tokens(hidden_states.shape[1], self.rate) if shaped else 0
        if not count or not (recording or mutual):
            return self._plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb, args, kwargs)
        import torch

        rows = hidden_states.shape[0]
        if rows % anchors:
            raise ValueError(f"consistent write: a batch of {rows} rows is not {anchors} anchors per CFG half")
        # Rows are [CFG half 0: anchor 0..M−1, half 1: anchor 0..M−1] (diffusers repeats each prompt's
        # embeddings per image, then stacks the halves), so anchor a's rows are a, a+M, …
        device = hidden_states.device
        keep = [torch.randperm(hidden_states.shape[1], generator=g)[:count].to(device) for g in generators]
        samples = [hidden_states[a::anchors][:, keep[a]] for a in range(anchors)]
        if recording:
            for sample in samples:  # in anchor order: the bank appends each anchor's tokens along n
                state.bank.put(state.characters[0], state.timestep, self.layer, sample)
            state.calls["write"] += 1
        if not mutual:
            return self._plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb, args, kwargs)
        # Each anchor's queries see all of its own tokens plus the other anchors' sampled tokens — the
        # very samples the bank keeps (StoryDiffusion's write mask: own image whole, others sampled).
        others = torch.stack(
            [torch.cat([samples[b][r // anchors] for b in range(anchors) if b != r % anchors]) for r in range(rows)]
        )
        state.calls["mutual"] += 1
        return consistent_attention(attn, hidden_states, others)


class BankReadProcessor(_ConsistentProcessor):
    def __call__(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any = None,
        attention_mask: Any = None,
        temb: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        state = self.state
        usable = (state.consistent_now(self.index) and self.rate > 0 and hidden_states.ndim == 3
                  and encoder_hidden_states is None and attention_mask is None
                  and attn.group_norm is None and attn.spatial_norm is None)  # fmt: skip
        banked = None
        if usable:
            banked = state.bank.read_levels(state.reading(), self.layer, hidden_states.device, hidden_states.dtype)
        if banked is None:
            return self._plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb, args, kwargs)
        state.calls["read"] += 1
        if banked.shape[0] != hidden_states.shape[0]:  # e.g. banked with CFG, read without: the cond half
            banked = banked[-1:].expand(hidden_states.shape[0], -1, -1)
        return consistent_attention(attn, hidden_states, banked)


def consistent_attention(attn: Any, hidden_states: Any, banked: Any) -> Any:
    """Self-attention whose keys/values also see ``banked`` tokens (same layout as SDPA's processor)."""
    import torch
    import torch.nn.functional as F

    batch = hidden_states.shape[0]
    context = torch.cat([hidden_states, banked], dim=1)
    query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
    heads = attn.heads
    head_dim = key.shape[-1] // heads

    def split(x: Any) -> Any:
        return x.view(batch, -1, heads, head_dim).transpose(1, 2)

    query, key, value = split(query), split(key), split(value)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
    out = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)
    out = attn.to_out[1](attn.to_out[0](out))
    if attn.residual_connection:
        out = out + hidden_states
    return out / attn.rescale_output_factor


# ------------------------------------------------------------------ which layers, and installing


def _timestep_hook(state: RunState) -> Callable[..., None]:
    """A UNet forward pre-hook telling ``state`` the level of every call (the pipelines and
    ``bank_from_image`` pass the timestep as the second argument; by keyword is accepted too)."""

    def hook(_module: Any, args: tuple, kwargs: dict) -> None:
        timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        if timestep is None:
            raise TypeError("consistent attention: a UNet call without a timestep")
        state.at_timestep(timestep)

    return hook


def decoder_self_attention_layers(unet: Any) -> dict[str, str]:
    """``{processor name: resolution group}`` for the decoder's attn1 layers. The first up block with
    attention is the lowest resolution (SDXL: 1/32, 30 layers), the next one 1/16 (6 layers)."""
    names = [n for n in unet.attn_processors if n.startswith("up_blocks.") and n.endswith(".attn1.processor")]
    blocks = sorted({int(n.split(".")[1]) for n in names})
    group = {b: GROUP_32 if i == 0 else GROUP_16 for i, b in enumerate(blocks)}
    return {n: group[int(n.split(".")[1])] for n in names}


@contextmanager
def installed(unet: Any, state: RunState, strengths: dict[str, float]) -> Iterator[dict[str, Any]]:
    """Patch the decoder attn1 layers with the role's processor for the job; put the UNet's original
    processors back on success, error and cancel alike. Yields the patched processors by name.

    Only the layers patched here are restored, and only where our processor is still in place: a
    processor another method set on any layer meanwhile (e.g. its own attn2 processors) is left as
    it is, so methods can stack without undoing each other's work."""
    role: Callable[..., Any] = BankWriteProcessor if state.phase == "write" else BankReadProcessor
    original = dict(unet.attn_processors)
    layers = decoder_self_attention_layers(unet)
    order = [name for name in original if name in layers]  # the columns of ``state.layer_plan``
    if state.layer_plan and any(len(row) != len(order) for row in state.layer_plan):
        raise ValueError(f"the layer plan has no column for each of the {len(order)} patched layers")
    patched = {
        name: role(original[name], name.removesuffix(".processor"), strengths[layers[name]], state, index)
        for index, name in enumerate(order)
    }
    unet.set_attn_processor({**original, **patched})  # set_attn_processor consumes its dict: give copies
    hook = unet.register_forward_pre_hook(_timestep_hook(state), with_kwargs=True)
    try:
        yield patched
    finally:
        hook.remove()
        current = dict(unet.attn_processors)
        ours = {name for name, proc in patched.items() if current.get(name) is proc}
        unet.set_attn_processor({**current, **{name: original[name] for name in ours}})

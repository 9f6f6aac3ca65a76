"""Anchor images: a character rendered solo, once, with its hidden-state tokens banked (write phase).

A character's bank is a pure function of (model, LoRAs, sampler, steps, guidance, anchor size,
strengths, schedule start, precision, the character's name and description, the anchor seed): the
anchor seeds are derived from the character id, so a whole-story run and a later single panel build
(or load) the very same bank.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from PIL import Image

from comic_studio.backends.consistent.bank import IdentityBank
from comic_studio.backends.consistent.processors import RunState, canonical_level, schedule_levels, unet_timesteps
from comic_studio.backends.consistent.schedule import ConsistencySchedule, step_of
from comic_studio.generation.request import RequestCharacter

ANCHOR_SUFFIX = "solo, one person, full body, standing, facing the viewer, plain light background"
BANK_RELEVANT = (
    "model",
    "model_config",
    "loras",
    "steps",
    "guidance",
    "scheduler",
    "anchors",
    "anchor_size",
    "anchor_seed",
    "strength_32",
    "strength_16",
    "start_step",
    "prob_early",
    "prob_late",
    "switch_step",
    "coin",
    "bank_precision",
)
"""Settings that change a bank's tokens (and so belong in its cache key and metadata). The schedule's
probabilities and coin count since anchors attend to each other at the steps it marks consistent."""

AnchorRun = Callable[[str, list[int], RunState], list[Image.Image]]
"""``run(prompt, seeds, state)``: render one anchor image per seed, as one batch, with the write
processors installed (the state's layer plan must be made for the pipeline's patched layers)."""


def anchor_prompt(character: RequestCharacter) -> str:
    parts = [character.name.strip(), character.description.strip(), ANCHOR_SUFFIX]
    return ", ".join(p for p in parts if p)


def anchor_seed(base: int, character_id: str, index: int) -> int:
    """A stable per-character, per-anchor seed (not Python's salted ``hash``)."""
    digest = hashlib.sha256(f"{base}:{character_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def bank_key(character: RequestCharacter, settings: dict[str, Any], device: str, dtype: str) -> str:
    """Identity of the bank these settings would build (the backend's in-memory cache key)."""
    fields = {k: settings[k] for k in BANK_RELEVANT}
    fields.update(id=character.id, prompt=anchor_prompt(character), device=device, dtype=dtype)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def build_character_bank(
    run: AnchorRun,
    character: RequestCharacter,
    settings: dict[str, Any],
    schedule: ConsistencySchedule,
    *,
    location: str = "cpu",
) -> tuple[IdentityBank, list[Image.Image]]:
    """Render ``settings["anchors"]`` anchor images of ``character`` as one batch and bank their
    tokens. In the batch the anchors attend to each other's sampled tokens at the steps the schedule
    marks consistent (StoryBooth §3.2.3), with the coins drawn from the first anchor's seed; a single
    anchor is a plain render (the same tokens as ever)."""
    import torch

    prompt = anchor_prompt(character)
    seeds = [anchor_seed(settings["anchor_seed"], character.id, k) for k in range(settings["anchors"])]
    meta = {k: settings[k] for k in BANK_RELEVANT}
    meta.update(character=character.id, name=character.name, prompt=prompt, seeds=seeds)
    bank = IdentityBank(settings["bank_precision"], location, meta)
    state = RunState(
        "write",
        bank,
        (character.id,),
        generators=tuple(torch.Generator("cpu").manual_seed(seed) for seed in seeds),
        banked_steps=frozenset(schedule.banked_steps(settings["steps"])),
    )
    return bank, run(prompt, seeds, state)


def bank_from_image(
    pipe: Any,
    image: Image.Image,
    character: RequestCharacter,
    settings: dict[str, Any],
    schedule: ConsistencySchedule,
    install: Callable[[RunState], Any],
    seed: int,
    *,
    location: str = "cpu",
) -> IdentityBank:
    """Bank an existing picture (e.g. a panel result the user picked as the anchor) by re-noising it.

    For every level a sampling run would bank (the UNet timesteps of the banked steps) the picture's
    latent is noised to that level (one fresh noise draw per level, seeded) and the UNet runs once on it with the write processors installed —
    no sampling chain, no VAE decode, so this costs about the banked steps' UNet passes. The tokens
    are what the model "sees" of that picture at each noise level, which is what a rendered anchor's
    trajectory would have given had it ended in this picture."""
    import torch

    # The execution device, not ``pipe.unet.device``: under accelerate's sequential offload the
    # UNet's parameters live on the "meta" device between calls, and only the hooks know the GPU.
    device, dtype = pipe._execution_device, pipe.unet.dtype
    size = max(8, settings["anchor_size"] // 8 * 8)
    pixels = pipe.image_processor.preprocess(image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))
    vae = pipe.vae
    with torch.no_grad():
        latent = vae.encode(pixels.to(device, vae.dtype)).latent_dist.mean * vae.config.scaling_factor
    latent = latent.to(device, dtype)
    cfg = settings["guidance"] > 1.0
    prompt = anchor_prompt(character)
    pos, neg, pooled, neg_pooled = pipe.encode_prompt(prompt, device=device, num_images_per_prompt=1,
                                                      do_classifier_free_guidance=cfg)  # fmt: skip
    scheduler = pipe.scheduler
    time_ids = torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=pos.dtype)
    context, text_embeds = (torch.cat([neg, pos]), torch.cat([neg_pooled, pooled])) if cfg else (pos, pooled)
    meta = {k: settings[k] for k in BANK_RELEVANT}
    meta.update(character=character.id, name=character.name, prompt=prompt, seeds=[seed], source="image")
    bank = IdentityBank(settings["bank_precision"], location, meta)
    generator = torch.Generator("cpu").manual_seed(seed)
    state = RunState(
        "write",
        bank,
        (character.id,),
        generators=(torch.Generator("cpu").manual_seed(seed),),
        banked_steps=frozenset(schedule.banked_steps(settings["steps"])),
        levels=schedule_levels(scheduler, settings["steps"]),
    )
    # Every level a sampling run of this scheduler would bank — second-order correctors included
    # (DPM++ SDE's midpoints) — so a panel with this sampler reads tokens of its own noise levels.
    wanted = []
    for timestep in unet_timesteps(scheduler, settings["steps"]):
        level = canonical_level(timestep)
        if step_of(state.levels, level) in state.banked_steps and level not in wanted:
            wanted.append(level)
    sigmas = _training_sigmas(scheduler) if getattr(scheduler, "sigmas", None) is not None else None
    with install(state), torch.no_grad():
        for level in sorted(wanted, reverse=True):
            noise = torch.randn(latent.shape, generator=generator).to(device, dtype)
            if sigmas is not None:  # sigma-parameterised samplers (Euler, DPM++, Heun ...)
                sigma = _sigma_at(sigmas, level)
                noisy = (latent + sigma * noise) / (sigma**2 + 1) ** 0.5
            else:  # variance-preserving samplers (DDIM ...): model input is the noised latent itself
                noisy = scheduler.add_noise(latent, noise, torch.tensor([int(round(level))]))
            batch = torch.cat([noisy] * 2) if cfg else noisy
            pipe.unet(
                batch,
                torch.tensor(level, device=device),
                encoder_hidden_states=context,
                added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids.repeat(batch.shape[0], 1)},
            )
    return bank


def _training_sigmas(scheduler: Any) -> Any:
    """σ of every training timestep: sqrt((1 − ᾱ) / ᾱ), from the scheduler's own ᾱ table."""
    alphas = scheduler.alphas_cumprod.double()
    return ((1 - alphas) / alphas) ** 0.5


def _sigma_at(sigmas: Any, level: float) -> float:
    """σ at a (possibly fractional) timestep, interpolated in log σ — the inverse of the map the
    Karras-sigma schedulers use to turn their σ into timesteps, and exact at integer timesteps."""
    low = min(int(level), len(sigmas) - 1)
    high = min(low + 1, len(sigmas) - 1)
    w = level - low
    return float((sigmas[low].log() * (1 - w) + sigmas[high].log() * w).exp())

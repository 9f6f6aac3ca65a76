"""The ``consistent`` backend: SDXL plus consistent self-attention over an identity bank.

A panel job: every character present gets a bank — loaded from ``bank_folder`` when ``banks`` names
one (a project asset the app materialised there), else built in the job from anchor images
(deterministic, cached per backend instance) — then the panel renders with the read processors. An
anchor job (``anchor_for``) renders a character's anchors, writes the bank to ``bank_folder`` and
returns the first anchor image with ``banks`` naming the new bank in the result's settings.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from comic_studio.backends._diffusers.backend import IMAGE_SETTING_MAX, SdxlPipelineBackend, resized_to_panel
from comic_studio.backends._diffusers.inputs import read_image_setting
from comic_studio.backends._diffusers.long_prompt import apply_long_prompt
from comic_studio.backends._diffusers.loras import JobLoras
from comic_studio.backends._diffusers.progress import StepReporter
from comic_studio.backends._diffusers.schedulers import make_scheduler
from comic_studio.backends.consistent.anchors import (
    BANK_RELEVANT,
    anchor_prompt,
    anchor_seed,
    bank_from_image,
    bank_key,
    build_character_bank,
)
from comic_studio.backends.consistent.bank import (
    PRECISIONS,
    BankError,
    IdentityBank,
    bank_file,
    open_bank_file,
    read_bank_file,
    write_bank_file,
)
from comic_studio.backends.consistent.memory import MAX_ANCHORS, VRAM_GB
from comic_studio.backends.consistent.processors import (
    GROUP_16,
    GROUP_32,
    RunState,
    canonical_level,
    decoder_self_attention_layers,
    installed,
    schedule_levels,
    unet_timesteps,
)
from comic_studio.backends.consistent.schedule import COINS, ConsistencySchedule, unmatched_levels
from comic_studio.core.model import CharacterPlacement
from comic_studio.generation.backend_api import CONSISTENT_CHARACTERS
from comic_studio.generation.request import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    RequestCharacter,
    StepCallback,
)

BANK_CACHE_GB = 4.0
"""Default cap of the banks a backend keeps in its own memory between jobs (setting
``bank_cache_gb``). A real SDXL bank is ≈2.6 GB per anchor at 1024²; saved banks are memory-mapped
and count nothing here (their pages are the OS's to drop), so four characters' saved banks fit a
16 GB desktop beside SDXL's ≈7 GB of offloaded weights; the cap bounds only banks built in a job
without a bank folder to keep them in."""

CONSISTENT_SCHEMA: dict[str, dict[str, Any]] = {
    "strength_32": {"type": "float", "default": 0.5, "min": 0.0, "max": 1.0, "label": "Consistency at 1/32",
                    "help": "Share of the lowest-resolution decoder tokens banked and attended to (0 = off)."},
    "strength_16": {"type": "float", "default": 0.5, "min": 0.0, "max": 1.0, "label": "Consistency at 1/16",
                    "help": "Share of the 1/16-resolution decoder tokens banked and attended to (0 = off)."},
    "start_step": {"type": "int", "default": 5, "min": 0, "max": 10_000, "label": "Plain steps first",
                   "help": "Steps of plain self-attention before consistency starts (layout stays free)."},
    "prob_early": {"type": "float", "default": 0.7, "min": 0.0, "max": 1.0, "label": "Probability until switch"},
    "prob_late": {"type": "float", "default": 0.9, "min": 0.0, "max": 1.0, "label": "Probability after switch"},
    "switch_step": {"type": "int", "default": 20, "min": 0, "max": 10_000, "label": "Switch step"},
    # StoryDiffusion's code draws a coin in every processor call (one per layer per step); StoryBooth
    # §3.2.4 is silent on it, so the code's granularity is the default (see schedule.py).
    "coin": {"type": "choice", "default": "layer", "choices": list(COINS), "label": "Schedule coin per",
             "help": "layer: each decoder layer decides on its own at every step (StoryDiffusion); "
                     "step: one decision for all layers of a step."},
    "anchors": {"type": "int", "default": 1, "min": 1, "max": MAX_ANCHORS, "label": "Anchor images per character",
                "help": "Rendered as one batch in which the anchors attend to each other (one look); each "
                        "anchor beyond the first needs about 1 GiB more GPU memory at 1024² (see memory.py)."},
    "anchor_size": {"type": "int", "default": 1024, "min": 64, "max": 2048, "label": "Anchor image size",
                    "help": "Square side of anchor images (a multiple of 8 is used)."},
    "anchor_seed": {"type": "int", "default": 0, "min": 0, "max": 2**31 - 1, "label": "Anchor seed"},
    "bank_precision": {"type": "choice", "default": "fp16", "choices": list(PRECISIONS), "label": "Bank precision"},
    "bank_location": {"type": "choice", "default": "cpu", "choices": ["cpu", "device"], "label": "Bank location",
                      "help": "cpu: host memory, one layer moved to the GPU while read (bounded GPU use)."},
    "bank_cache_gb": {"type": "float", "default": BANK_CACHE_GB, "min": 0.0, "max": 1024.0,
                      "label": "Bank cache (GB)",
                      "help": "Host memory for identity banks kept between jobs (saved banks are memory-mapped "
                              "and do not count)."},
    "banks": {"type": "str", "default": "", "max_length": 20_000, "label": "Saved banks",
              "help": "Comma-separated 'character-id=sha256' of bank files in the bank folder."},
    "bank_folder": {"type": "str", "default": "", "max_length": 4096, "label": "Bank folder",
                    "help": "Where bank files '<sha256>.safetensors' are read from and written to."},
    "auto_anchors": {"type": "bool", "default": True, "label": "Build missing anchors",
                     "help": "Characters without a saved bank get anchors rendered in the job."},
    "anchor_for": {"type": "str", "default": "", "max_length": 64, "label": "Anchor job for character",
                   "help": "Render this character's anchors and save its bank instead of a panel."},
    "anchor_image": {"type": "str", "default": "", "max_length": IMAGE_SETTING_MAX, "label": "Anchor from image",
                     "image": True,
                     "help": "Anchor job: bank this picture (a project image, e.g. a chosen panel result) "
                             "by re-noising it, instead of rendering anchors."},
}  # fmt: skip


@contextmanager
def one_image_decodes(vae: Any) -> Iterator[None]:
    """The VAE decodes a batch one image at a time inside the block (diffusers' slicing: the same
    pixels), then is put back as it was: it is shared with the other backends' jobs."""
    before = getattr(vae, "use_slicing", False)
    vae.enable_slicing()
    try:
        yield
    finally:
        vae.use_slicing = before


class ConsistentBackend(SdxlPipelineBackend):
    name = "consistent"
    display_name = "Consistent characters (SDXL)"
    capabilities = SdxlPipelineBackend.capabilities | frozenset({CONSISTENT_CHARACTERS})
    # The largest job's figure: a batch of MAX_ANCHORS anchors at 1024² (memory.py has the arithmetic);
    # the engine runs every job of the backend in the one memory mode this figure picks.
    vram_gb = VRAM_GB

    def __init__(self) -> None:
        super().__init__()
        self._banks: OrderedDict[str, IdentityBank] = OrderedDict()

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        return {**SdxlPipelineBackend.settings_schema(), **CONSISTENT_SCHEMA}

    # ------------------------------------------------------------------ identity-bank hooks (see GenerationBackend)

    @classmethod
    def parse_banks(cls, text: str) -> dict[str, str]:
        return parse_banks(text)

    @classmethod
    def format_banks(cls, banks: Mapping[str, str]) -> str:
        return ",".join(f"{character_id}={digest}" for character_id, digest in banks.items())

    @classmethod
    def bank_file(cls, folder: str | Path, digest: str) -> Path:
        return bank_file(folder, digest)

    @classmethod
    def write_bank_file(cls, data: bytes, folder: str | Path) -> str:
        return write_bank_file(data, folder)

    @classmethod
    def read_bank_file(cls, folder: str | Path, digest: str) -> bytes:
        return read_bank_file(folder, digest)  # BankError is a ValueError, as the hook promises

    @classmethod
    def bank_relevant_settings(cls) -> tuple[str, ...]:
        return BANK_RELEVANT

    @classmethod
    def anchor_prompt(cls, character: RequestCharacter) -> str:
        return anchor_prompt(character)

    # ------------------------------------------------------------------ the job

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        effective = self.job_settings(request)
        schedule = _schedule(effective)
        saved = parse_banks(effective["banks"])
        anchor_for = effective["anchor_for"]
        if anchor_for and request.character(anchor_for) is None:
            raise GenerationError(f"consistent: anchor_for {anchor_for!r} is not one of the request's characters")
        if anchor_for and not effective["bank_folder"]:
            raise GenerationError("consistent: an anchor job needs 'bank_folder' to save the bank in")
        wanted = [request.character(anchor_for)] if anchor_for else request.characters
        # A fresh copy of the job's sampler, for its noise levels (saved banks are checked against
        # them) and its UNet calls per run (2N−1 for second-order samplers: the progress total).
        scheduler = self.job_scheduler(effective, request.seed)
        banks: dict[str, IdentityBank] = {}
        to_build = []
        for character in wanted:
            assert character is not None
            if character.id in saved and not anchor_for:
                banks[character.id] = self.load_bank(
                    effective["bank_folder"], saved[character.id], effective, character.name, scheduler=scheduler
                )
            elif anchor_for or effective["auto_anchors"]:
                cached = None if anchor_for else self._banks.get(self._key(character, effective))
                if cached is not None:
                    banks[character.id] = cached
                else:
                    to_build.append(character)
        picture = read_image_setting(effective["anchor_image"], "anchor_image") if anchor_for else None
        if picture is not None:
            to_build = []  # banked from the picture below, no anchor renders
        calls = len(unet_timesteps(scheduler, effective["steps"]))
        reporter = StepReporter(
            on_step,
            effective["preview_every"],
            calls * (len(to_build) + (0 if anchor_for else 1)),  # a character's anchors are one batched run
        )
        loras = JobLoras(effective["loras"], effective["allow_pickle"], effective["character_loras"])
        anchors: list[Image.Image] = []
        try:
            for character in to_build:
                run = self._anchor_runner(request, effective, reporter, loras)
                bank, images = build_character_bank(
                    run, character, effective, schedule, location=self._location(effective)
                )
                anchors += images
                if effective["bank_folder"]:
                    # Saved and mapped back: the job then holds one built bank in memory at a time,
                    # not one per character (≈2.6 GB each at real size).
                    digest = bank.save(effective["bank_folder"])
                    bank = IdentityBank.open(bank_file(effective["bank_folder"], digest),
                                             location=self._location(effective))  # fmt: skip
                banks[character.id] = bank
                if not anchor_for:
                    self._remember(self._key(character, effective), bank, effective)
            if picture is not None:
                banks[anchor_for] = self._bank_from_picture(request, effective, schedule, picture, loras)
                anchors.append(picture)
            if anchor_for:
                bank = banks[anchor_for]
                digest = bank.save(effective["bank_folder"])  # streamed, never joined in memory
                mapped = IdentityBank.open(
                    bank_file(effective["bank_folder"], digest), location=self._location(effective)
                )
                self._remember(digest, mapped, effective)
                return GenerationResult(images=[resized_to_panel(anchors[0], request)], seed=request.seed, backend=self.name,
                                        settings={**effective, "banks": f"{anchor_for}={digest}"},
                                        heads=estimated_heads(request))  # fmt: skip
            image = self._render_panel(request, effective, schedule, banks, reporter, loras)
        finally:
            loras.remove()
        # The effective settings (default model, request steps/guidance filled in), as sdxl records them.
        return GenerationResult(
            images=[resized_to_panel(image, request)],
            seed=request.seed,
            backend=self.name,
            settings=effective,
            heads=estimated_heads(request),
        )

    def _render_panel(
        self,
        request: GenerationRequest,
        settings: dict[str, Any],
        schedule: ConsistencySchedule,
        banks: dict[str, IdentityBank],
        reporter: StepReporter,
        loras: JobLoras,
    ) -> Image.Image:
        pipe, call = self.prepare_call(request, settings)
        loras.apply(pipe)
        if "strength" in call:  # img2img/inpaint run only the tail of the schedule (as diffusers cuts it)
            full = len(unet_timesteps(pipe.scheduler, settings["steps"]))
            assert reporter.total is not None
            reporter.total -= full - tail_calls(pipe.scheduler, settings["steps"], call["strength"])
        merged = IdentityBank(settings["bank_precision"], self._location(settings))
        for bank in banks.values():
            merged.merge(bank)
        state = RunState("read", merged, tuple(banks))
        return self._run(pipe, call, state, settings, reporter, request.seed)[0]

    def _bank_from_picture(
        self,
        request: GenerationRequest,
        settings: dict[str, Any],
        schedule: ConsistencySchedule,
        picture: Image.Image,
        loras: JobLoras,
    ) -> IdentityBank:
        character = request.character(settings["anchor_for"])
        assert character is not None
        size = max(8, settings["anchor_size"] // 8 * 8)
        solo = {**settings, "mode": "txt2img", "max_side": 0, "init_image": "", "mask_image": "", "mask_region": ""}
        pipe, _call = self.prepare_call(request.model_copy(update={"width": size, "height": size}), solo)
        loras.apply(pipe)
        strengths = {GROUP_32: settings["strength_32"], GROUP_16: settings["strength_16"]}
        return bank_from_image(
            pipe,
            picture,
            character,
            settings,
            schedule,
            lambda state: installed(pipe.unet, state, strengths),
            anchor_seed(settings["anchor_seed"], character.id, 0),
            location=self._location(settings),
        )

    def _anchor_runner(
        self, request: GenerationRequest, settings: dict[str, Any], reporter: StepReporter, loras: JobLoras
    ) -> Callable[..., list[Image.Image]]:
        import torch

        size = max(8, settings["anchor_size"] // 8 * 8)
        solo = {**settings, "mode": "txt2img", "max_side": 0, "init_image": "", "mask_image": "", "mask_region": ""}

        def run(prompt: str, seeds: list[int], state: RunState) -> list[Image.Image]:
            anchor = request.model_copy(update={"prompt": prompt, "seed": seeds[0], "width": size, "height": size})
            pipe, call = self.prepare_call(anchor, solo)
            loras.apply(pipe)  # once per job: every pipe of the job shares the UNet and text encoders
            if len(seeds) > 1:  # one batch: each anchor's noise from its own seed, as if rendered alone
                call.update(num_images_per_prompt=len(seeds),
                            generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds])  # fmt: skip
            with one_image_decodes(pipe.vae):  # the batch's decode peak stays one image's (memory.py)
                return self._run(pipe, call, state, solo, reporter, seeds[0])

        return run

    def _run(
        self,
        pipe: Any,
        call: dict[str, Any],
        state: RunState,
        settings: dict[str, Any],
        reporter: StepReporter,
        plan_seed: int,
    ) -> list[Image.Image]:
        strengths = {GROUP_32: settings["strength_32"], GROUP_16: settings["strength_16"]}
        state.levels = schedule_levels(pipe.scheduler, settings["steps"])  # the steps the plan's coins are for
        layers = len(decoder_self_attention_layers(pipe.unet))
        state.layer_plan = _schedule(settings).layer_plan(settings["steps"], plan_seed, layers, settings["coin"])
        apply_long_prompt(pipe, call)  # after the job's LoRAs went in (they may patch the text encoders)
        with installed(pipe.unet, state, strengths):  # the UNet's own timesteps drive the state
            return list(pipe(**call, callback_on_step_end=reporter.callback()).images)

    # ------------------------------------------------------------------ banks

    def load_bank(
        self, folder: str, digest: str, settings: dict[str, Any], name: str = "", *, scheduler: Any
    ) -> IdentityBank:
        """A saved bank by hash (cached), checked against the job: the same step count (the schedule's
        coins and start step count steps) and the noise levels of the job's ``scheduler``
        (:meth:`job_scheduler`) — every UNet call that may read the bank must find tokens recorded
        near its own timestep. A bank from version 1 (keyed by loop index) is converted first."""
        label = name or digest[:12]
        bank = self._banks.get(digest)
        if bank is None:
            if not folder:
                raise GenerationError(f"consistent: bank for {label} is named but 'bank_folder' is empty")
            try:  # checked against its hash, then memory-mapped: never loaded whole
                bank = open_bank_file(folder, digest, location=self._location(settings))
            except BankError as exc:
                raise GenerationError(f"consistent: {exc}") from exc
        if bank.indexed_by == "step":
            bank = _by_level(bank, scheduler, label)
        self._remember(digest, bank, settings)
        steps = settings["steps"]
        made = bank.meta.get("steps")
        if made is not None and made != steps:  # the schedule's coins and start step count steps
            raise GenerationError(
                f"consistent: the bank of {label} was made with {made} steps and this "
                f"job uses {steps}; regenerate the anchor or use {made} steps"
            )
        levels = schedule_levels(scheduler, steps)
        calls = [canonical_level(t) for t in unet_timesteps(scheduler, steps)]
        banked = _schedule(settings).banked_steps(steps)
        for character in bank.characters:
            missing = unmatched_levels(bank.levels(character), calls, levels, banked)
            if missing:
                made_sampler = bank.meta.get("scheduler", "?")
                shown = ", ".join(f"{level:g}" for level in missing[:3]) + (" …" if len(missing) > 3 else "")
                raise GenerationError(
                    f"consistent: the bank of {label} was made with the sampler {made_sampler!r} and this job "
                    f"uses {settings['scheduler']!r}, whose noise levels (timesteps {shown}) have no banked "
                    f"tokens near them. Use {made_sampler!r} (or a sampler with the same noise schedule), "
                    "or regenerate the anchor with this job's sampler"
                )
        return bank

    def job_scheduler(self, settings: dict[str, Any], seed: int) -> Any:
        """A fresh scheduler of the job's sampler on the job's model (its configuration decides the
        noise levels; loading is shared with the job's pipeline through the model cache)."""
        return self.sdxl_components(settings, seed, allow_pickle=settings["allow_pickle"])["scheduler"]

    def _remember(self, key: str, bank: IdentityBank, settings: Mapping[str, Any]) -> None:
        """Keep ``bank`` (most recent last); the least recently used go while the banks' own memory
        (:meth:`IdentityBank.resident_bytes`: mapped files count nothing) is over ``bank_cache_gb`` —
        a bank alone over the cap is not kept at all."""
        self._banks[key] = bank
        self._banks.move_to_end(key)
        cap = float(settings.get("bank_cache_gb", BANK_CACHE_GB)) * 1e9
        while self._banks and sum(b.resident_bytes() for b in self._banks.values()) > cap:
            self._banks.popitem(last=False)

    def _key(self, character: Any, settings: dict[str, Any]) -> str:
        return bank_key(character, settings, self.resources.device, self.resources.dtype)

    def _location(self, settings: dict[str, Any]) -> str:
        return self.resources.device if settings["bank_location"] == "device" else "cpu"


# ---------------------------------------------------------------------------------- helpers


def parse_banks(text: str) -> dict[str, str]:
    """``"ana=<sha>, ben=<sha>"`` → ``{"ana": sha, "ben": sha}``."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        character, sep, digest = item.rpartition("=")
        if not sep or not character.strip():
            raise GenerationError(f"consistent setting 'banks': {item!r} is not 'character-id=sha256'")
        out[character.strip()] = digest.strip().lower()
    return out


def tail_calls(scheduler: Any, steps: int, strength: float) -> int:
    """UNet calls of an img2img/inpaint run: diffusers keeps ``int(steps × strength)`` steps of the
    schedule (``get_timesteps``), i.e. the calls from step ``steps − kept`` on."""
    kept = min(int(steps * strength), steps)
    start = max(steps - kept, 0) * int(getattr(scheduler, "order", 1))
    return max(len(unet_timesteps(scheduler, steps)) - start, 0)


def _by_level(bank: IdentityBank, scheduler: Any, label: str) -> IdentityBank:
    """A version-1 bank keyed by level: its loop indices were the UNet calls of its own sampler and
    step count (its metadata) on this model's noise schedule (the model is part of the bank's key)."""
    try:
        recorded_with = make_scheduler(str(bank.meta.get("scheduler")), scheduler.config)
        calls = [canonical_level(t) for t in unet_timesteps(recorded_with, int(bank.meta["steps"]))]
        return bank.by_level(calls)
    except (KeyError, TypeError, ValueError) as exc:  # UnknownScheduler and BankError are ValueErrors
        raise GenerationError(
            f"consistent: the bank of {label} is from an older version and its sampler cannot be rebuilt "
            f"({exc}); regenerate the anchor"
        ) from exc


def _schedule(settings: dict[str, Any]) -> ConsistencySchedule:
    return ConsistencySchedule(
        settings["start_step"], settings["prob_early"], settings["prob_late"], settings["switch_step"]
    )


def estimated_heads(request: GenerationRequest) -> list[CharacterPlacement]:
    """Text-to-image gives no skeleton: characters are assumed side by side, left to right in request
    order, heads in the upper third (the lettering only needs somewhere sensible to aim tails)."""
    count = len(request.characters)
    return [
        CharacterPlacement(character_id=c.id, figure=i, head=(round((i + 0.5) / count, 4), 0.3), head_radius=0.08)
        for i, c in enumerate(request.characters)
    ]

"""StoryBooth's DreamBooth-LoRA on a frozen SDXL: the recipe, the training loop, cancel and resume.

The recipe's defaults are StoryBooth's (seed 001 §3.2.2 and §4; its public code,
``dreambooth/train_text_to_image_lora_sdxl_log_normal.py`` with ``scripts/train_lognormal.sh``,
where the two differ the code wins and is cited):

- LoRA rank 4, alpha 4, gaussian init, on ``to_q``/``to_k``/``to_v``/``to_out.0`` of **every** UNet
  attention. The paper says "self-attention"; its code's PEFT ``target_modules`` match the
  cross-attention (attn2) projections too, and that is what produced its results.
- AdamW, learning rate 1e-4 constant without warm-up, weight decay 1e-2, gradient clipping 1.0;
  batch 1 × gradient accumulation 4; 1024 px; 1,450 optimizer steps (the checkpoint the paper
  used); a checkpoint every 50 steps.
- Timesteps from StoryBooth's law (:mod:`comic_studio.training.timesteps`), uniform as an option.
- ε-prediction MSE (v-prediction where the base model is v-pred); min-SNR-γ optional (off, as in
  the seed); prior preservation optional (off: the seed's code has none). When on, DreamBooth's
  (Ruiz et al. 2023, eq. 2): 100 class pictures made by the base model itself from the class
  prompt ("a photo of a woman"), prior loss weight 1.0 — the numbers of diffusers' DreamBooth-LoRA
  SDXL script (``--num_class_images 100``, ``--prior_loss_weight 1.0``), which the issue adopts;
  the class pictures are sampled with that script's pipeline defaults (50 steps, guidance 5.0).
  The class pictures draw their noise and timesteps from generators of their own, so the
  instance half of every step is the same with or without them (weight 0 = instance-only, bitwise).
- Text encoders frozen by default (the seed trains none). ``train_text_encoder`` adds a LoRA on
  both SDXL text encoders' attention ``q_proj``/``k_proj``/``v_proj``/``out_proj`` (same rank,
  alpha and gaussian init), as diffusers' ``train_dreambooth_lora_sdxl.py --train_text_encoder``
  does, in a parameter group of its own at that script's defaults (``--text_encoder_lr`` 5e-6,
  ``--adam_weight_decay_text_encoder`` 1e-3; the seed is silent, so they are settings). The
  captions are then encoded every step (the cached embeddings would not move), and the 12 GB
  recipe keeps the text encoders on the GPU.

Determinism: every random draw comes from a generator the checkpoint holds (noise, timesteps, data
order; the global ones too), and a cancel saves the gradients accumulated so far, so a run
cancelled anywhere — even inside a gradient accumulation — and resumed in new objects ends with
bitwise the same weights as an uninterrupted one (tested on the CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from comic_studio.core.errors import ComicStudioError
from comic_studio.training.data import DataOrder, EncodedPicture, TrainingPicture, encode_pictures
from comic_studio.training.timesteps import TimestepLaw, diffusion_loss, sample_timesteps
from comic_studio.training.trainer_base import (
    EVALUATION_SEED,
    EVALUATION_TIMESTEPS,
    CheckpointedTrainer,
    fixed_batch_loss,
)

STORYBOOTH_TARGETS = ("to_k", "to_q", "to_v", "to_out.0")
"""Every UNet attention projection, attn1 and attn2 (StoryBooth's code; see the module docstring)."""
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
"""The CLIP text encoders' attention projections (diffusers' DreamBooth-LoRA SDXL script)."""
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
MemoryRecipe = Literal["as-the-seed-ran", "16gb", "12gb"]


class TrainingError(ComicStudioError):
    """Training cannot start or go on (bad pictures, wrong base model, a full disk…)."""


class TrainingCancelled(ComicStudioError):
    """The run was cancelled; a checkpoint to resume from was written first."""

    def __init__(self, checkpoint: Path, step: int):
        self.checkpoint = checkpoint
        self.step = step
        super().__init__(f"training cancelled at step {step}; resume from {checkpoint}")


class LoraRecipe(BaseModel):
    """The hyper-parameters of one LoRA run (serialisable: part of the request and the card)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(default=4, ge=1, le=256)  # StoryBooth §4: rank 4
    alpha: float = Field(default=4.0, gt=0)  # = rank: scale 1, as diffusers' LoRA scripts
    target_modules: tuple[str, ...] = STORYBOOTH_TARGETS
    learning_rate: float = Field(default=1e-4, gt=0, le=1)  # StoryBooth §4
    weight_decay: float = Field(default=1e-2, ge=0)  # the seed's script (AdamW weight decay 0.01)
    max_grad_norm: float = Field(default=1.0, gt=0)
    gradient_accumulation: int = Field(default=4, ge=1, le=256)  # the seed's script: batch 1 × 4
    resolution: int = Field(default=1024, ge=32, le=2048)
    steps: int = Field(default=1450, ge=1, le=100_000)  # the seed's checkpoint-1450
    checkpoint_every: int = Field(default=50, ge=1)
    timestep_law: TimestepLaw = "logit_normal"
    snr_gamma: float | None = Field(default=None, gt=0)  # min-SNR-γ; off as in the seed (γ = 5 is Hang et al.'s)
    prior_preservation: bool = False  # the seed's code has none (module docstring)
    prior_loss_weight: float = Field(default=1.0, ge=0)  # DreamBooth / diffusers' script: 1.0
    class_prompt: str = Field(default="", max_length=500)
    """The class pictures' prompt; empty: "a photo of a <class word>" from the character."""
    class_images: int = Field(default=100, ge=1, le=10_000)  # diffusers' --num_class_images default
    class_steps: int = Field(default=50, ge=1, le=500)  # the SDXL pipeline's default, as the script calls it
    class_guidance: float = Field(default=5.0, ge=0, le=30)  # likewise
    seed: int = Field(default=42, ge=0, lt=2**63)  # the seed's script: seed 42
    memory: MemoryRecipe = "as-the-seed-ran"
    train_text_encoder: bool = False  # §2 of the issue: optional, off (the seed trains none)
    text_encoder_learning_rate: float = Field(default=5e-6, gt=0, le=1)  # diffusers' --text_encoder_lr
    text_encoder_weight_decay: float = Field(default=1e-3, ge=0)  # diffusers' --adam_weight_decay_text_encoder


@dataclass(frozen=True)
class TrainingProgress:
    """One optimizer step done."""

    step: int
    total: int
    loss: float
    learning_rate: float
    steps_per_second: float
    eta_seconds: float


class LoraTrainer(CheckpointedTrainer):
    """Trains a LoRA on ``components`` (an SDXL pipeline's parts; the UNet gets an adapter named
    ``adapter_name`` for the run and keeps it until :meth:`close`).

    ``pictures`` are the character's; ``class_pictures`` (optional) are the base model's own
    pictures of the class, for prior preservation.
    """

    OTHER_DATA = "other pictures or captions"

    def __init__(
        self,
        components: dict[str, Any],
        pictures: list[TrainingPicture],
        recipe: LoraRecipe | None = None,
        *,
        class_pictures: list[TrainingPicture] | None = None,
        adapter_name: str = "trained_lora",  # not "training": nn.Module has that attribute
        device: str = "cpu",
    ):
        import torch
        from diffusers import DDPMScheduler, StableDiffusionXLPipeline
        from diffusers.optimization import get_scheduler
        from peft import LoraConfig

        self.recipe = recipe or LoraRecipe()
        if len(pictures) < 1:
            raise TrainingError("LoRA training needs at least one picture of the character")
        unet = components["unet"]
        if getattr(unet.config, "addition_embed_type", None) != "text_time":
            raise TrainingError("LoRA training needs an SDXL base model (its UNet has no SDXL size conditioning)")
        self.components = components
        self.unet = unet
        self.device = device
        self.adapter_name = adapter_name
        self.noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        self.pictures = encode_pictures(pictures, components, self.recipe.resolution, device)
        if self.recipe.prior_preservation and not class_pictures:
            raise TrainingError("prior preservation is on but no class pictures were given (the base model makes them)")
        self.class_pictures = (
            encode_pictures(class_pictures, components, self.recipe.resolution, device) if class_pictures else []
        )
        self.manifest = [p.digest for p in pictures]
        self.class_manifest = [p.digest for p in class_pictures or []]
        if self.recipe.memory == "12gb":  # cached: the VAE and text encoders are not needed on the GPU
            for name in ("vae",) if self.recipe.train_text_encoder else ("vae", *TEXT_ENCODERS):
                components[name].to("cpu")

        # The LoRA's gaussian init draws from torch's global generator: seed it for this run only.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.recipe.seed)
            unet.requires_grad_(False)
            unet.add_adapter(
                LoraConfig(
                    r=self.recipe.rank,
                    lora_alpha=self.recipe.alpha,
                    init_lora_weights="gaussian",
                    target_modules=list(self.recipe.target_modules),
                ),  # fmt: skip
                adapter_name=adapter_name,
            )
            if self.recipe.train_text_encoder:  # after the UNet's: its init draws stay as without
                for name in TEXT_ENCODERS:
                    components[name].requires_grad_(False)
                    _add_text_adapter(
                        components[name],
                        LoraConfig(
                            r=self.recipe.rank,
                            lora_alpha=self.recipe.alpha,
                            init_lora_weights="gaussian",
                            target_modules=list(TEXT_ENCODER_TARGETS),
                        ),  # fmt: skip
                        adapter_name,
                    )
        self.lora_params = {n: p for n, p in unet.named_parameters() if p.requires_grad}
        self.text_lora_params: dict[str, Any] = {}
        """The text encoders' LoRA parameters, ``text_encoder.…``/``text_encoder_2.…`` (empty when off)."""
        if self.recipe.train_text_encoder:
            for name in TEXT_ENCODERS:
                self.text_lora_params.update(
                    {f"{name}.{n}": p for n, p in components[name].named_parameters() if p.requires_grad}
                )
            # The pipeline that encodes the captions every step (with gradients to the text LoRA).
            self._encoder = StableDiffusionXLPipeline(**components, add_watermarker=False)
        for p in [*self.lora_params.values(), *self.text_lora_params.values()]:  # float32 even on a float16 model
            p.data = p.data.float()
        if self.recipe.memory in ("16gb", "12gb"):
            unet.enable_gradient_checkpointing()
            for name in TEXT_ENCODERS if self.recipe.train_text_encoder else ():
                components[name].gradient_checkpointing_enable()
        self.optimizer = _adamw(list(self.lora_params.values()), self.recipe, list(self.text_lora_params.values()))
        self.lr_scheduler = get_scheduler("constant", self.optimizer)
        self.noise_generator = torch.Generator("cpu").manual_seed(self.recipe.seed)
        self.timestep_generator = torch.Generator("cpu").manual_seed(self.recipe.seed + 1)
        self.order = DataOrder(len(self.pictures), torch.Generator("cpu").manual_seed(self.recipe.seed + 2))
        # The prior half's own draws: adding class pictures leaves the instance half's noise,
        # timesteps and order exactly as they were.
        self.prior_noise_generator = torch.Generator("cpu").manual_seed(self.recipe.seed + 3)
        self.prior_timestep_generator = torch.Generator("cpu").manual_seed(self.recipe.seed + 4)
        self.step = 0
        self.micro = 0
        self.running = 0.0
        """The loss of the micro-steps of the accumulation in progress (a checkpoint keeps it)."""
        self.losses: list[float] = []

    # ------------------------------------------------------------------ the loop
    def train(
        self,
        checkpoint: str | Path,
        *,
        cancel: Callable[[], bool] = lambda: False,
        on_progress: Callable[[TrainingProgress], None] | None = None,
        on_step_end: Callable[[LoraTrainer], bool] | None = None,
    ) -> None:
        """Train until ``recipe.steps``, writing ``checkpoint`` every ``checkpoint_every`` steps.
        When ``cancel()`` turns true (it is asked before every micro-step) the state is saved there
        and :class:`TrainingCancelled` is raised.

        ``on_step_end(trainer)`` runs after every optimizer step (after its checkpoint), and once
        at the start of a run resumed at a step boundary (so work it did not finish before a cancel,
        such as the step's samples, is done then); answering ``False`` cancels the run the same
        way. It must not draw from the training's generators (samples fork them)."""
        import torch

        recipe = self.recipe
        started, first_step = time.perf_counter(), self.step
        self.unet.train()
        if on_step_end is not None and self.step > 0 and self.micro == 0 and not on_step_end(self):
            raise TrainingCancelled(self.save(checkpoint), self.step)
        while self.step < recipe.steps:
            while self.micro < recipe.gradient_accumulation:
                if cancel():
                    raise TrainingCancelled(self.save(checkpoint), self.step)
                loss = self._micro_step_loss()
                (loss / recipe.gradient_accumulation).backward()
                self.running += float(loss.detach()) / recipe.gradient_accumulation
                self.micro += 1
            running, self.running = self.running, 0.0
            torch.nn.utils.clip_grad_norm_(list(self.trained_params.values()), recipe.max_grad_norm)
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.micro = 0
            self.step += 1
            self.losses.append(running)
            if on_progress is not None:
                done = self.step - first_step
                rate = done / max(time.perf_counter() - started, 1e-9)
                on_progress(TrainingProgress(self.step, recipe.steps, running, self.lr_scheduler.get_last_lr()[0],
                                             rate, (recipe.steps - self.step) / rate))  # fmt: skip
            if self.step % recipe.checkpoint_every == 0 or self.step == recipe.steps:
                self.save(checkpoint)
            if on_step_end is not None and not on_step_end(self):
                raise TrainingCancelled(self.save(checkpoint), self.step)
        self.unet.eval()

    def _micro_step_loss(self) -> Any:
        instance = self.pictures[self.order.next()]
        loss = self._loss(instance, self.noise_generator, self.timestep_generator)
        if self.class_pictures:
            prior = self.class_pictures[
                (self.step * self.recipe.gradient_accumulation + self.micro) % len(self.class_pictures)
            ]
            loss = loss + self.recipe.prior_loss_weight * self._loss(
                prior, self.prior_noise_generator, self.prior_timestep_generator
            )
        return loss

    @property
    def trained_params(self) -> dict[str, Any]:
        """Every parameter the run trains: the UNet's LoRA, then the text encoders' (when on)."""
        return {**self.lora_params, **self.text_lora_params}

    def _embeddings(self, picture: EncodedPicture) -> tuple[Any, Any]:
        """The caption's embeddings: cached, or (text encoders training) encoded now, with gradients."""
        if not self.text_lora_params:
            return picture.prompt_embeds, picture.pooled_embeds
        embeds, _neg, pooled, _neg_pooled = self._encoder.encode_prompt(
            picture.caption, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        return embeds, pooled

    def _loss(self, picture: EncodedPicture, noise_gen: Any, timestep_gen: Any, timesteps: Any = None) -> Any:
        """The denoising loss of one picture at a timestep drawn from ``timestep_gen`` (or the
        given ``timesteps``), noise from ``noise_gen``."""
        import torch

        vae_config = self.components["vae"].config
        sample = picture.latent_mean + picture.latent_std * torch.randn(picture.latent_mean.shape, generator=noise_gen)
        latents = sample
        if getattr(vae_config, "shift_factor", None) is not None:
            latents = latents - vae_config.shift_factor
        latents = latents * vae_config.scaling_factor
        noise = torch.randn(latents.shape, generator=noise_gen)
        if timesteps is None:
            timesteps = sample_timesteps(latents.shape[0], timestep_gen, law=self.recipe.timestep_law,
                                         num_train_timesteps=self.noise_scheduler.config.num_train_timesteps)  # fmt: skip
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        dtype, device = self.unet.dtype, self.device
        prompt_embeds, pooled_embeds = self._embeddings(picture)
        pred = self.unet(
            noisy.to(device, dtype),
            timesteps.to(device),
            encoder_hidden_states=prompt_embeds.to(device, dtype),
            added_cond_kwargs={
                "text_embeds": pooled_embeds.to(device, dtype),
                "time_ids": picture.time_ids.to(device, dtype),
            },  # fmt: skip
        ).sample.float()
        if self.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        return diffusion_loss(pred, target.to(pred.device), self.noise_scheduler, timesteps, self.recipe.snr_gamma)

    def evaluation_loss(self, seed: int = EVALUATION_SEED, timesteps: tuple[int, ...] = EVALUATION_TIMESTEPS) -> float:
        """The loss on a fixed evaluation batch: every picture at each of ``timesteps`` with noise
        from a generator seeded with ``seed``. Unlike the training loss (random t) it is comparable
        between steps, so it shows whether training learns."""
        return fixed_batch_loss(
            self.pictures, lambda picture, gen, t: self._loss(picture, gen, None, t), seed, timesteps
        )

    # ------------------------------------------------------------------ checkpoints (CheckpointedTrainer)
    def _weights_state(self) -> dict[str, Any]:
        return {"lora": {n: p.detach() for n, p in self.trained_params.items()}}

    def _load_weights(self, state: dict[str, Any]) -> None:
        for name, param in self.trained_params.items():
            param.copy_(state["lora"][name])

    def _trained_parameters(self) -> dict[str, Any]:
        return self.trained_params

    def _extra_state(self) -> dict[str, Any]:
        return {
            "class_manifest": self.class_manifest,
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "prior_noise_generator": self.prior_noise_generator.get_state(),
            "prior_timestep_generator": self.prior_timestep_generator.get_state(),
        }

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if "prior_noise_generator" in state:  # checkpoints from before prior preservation have none
            self.prior_noise_generator.set_state(state["prior_noise_generator"])
            self.prior_timestep_generator.set_state(state["prior_timestep_generator"])

    def _check_resumable(self, path: str | Path, state: dict[str, Any]) -> None:
        # Validated: a checkpoint from before a setting existed has that setting's default.
        if LoraRecipe.model_validate(state["recipe"]) != self.recipe:
            raise TrainingError(f"{path}: the checkpoint was made with other settings; start again or use those")
        if state["manifest"] != self.manifest:
            raise TrainingError(f"{path}: the checkpoint was made with other pictures or captions")
        if state.get("class_manifest", []) != self.class_manifest:
            raise TrainingError(f"{path}: the checkpoint was made with other class pictures (prior preservation)")

    def lora_state(self) -> dict[str, Any]:
        """The trained LoRA in diffusers' layout (``unet.``-prefixed keys, and ``text_encoder.``/
        ``text_encoder_2.`` ones when the text encoders train), CPU float32."""
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        state: dict[str, Any] = {}
        # The prefixes are what save_lora_weights writes and load_lora_weights looks for.
        for prefix in ("unet", *(TEXT_ENCODERS if self.text_lora_params else ())):
            peft_state = get_peft_model_state_dict(self.components[prefix], adapter_name=self.adapter_name)
            diffusers_state = convert_state_dict_to_diffusers(peft_state)
            state.update({f"{prefix}.{k}": v.detach().float().cpu().contiguous() for k, v in diffusers_state.items()})
        return state

    def close(self) -> None:
        """Take the adapter off the UNet (it is the engine's shared one)."""
        if self.adapter_name in getattr(self.unet, "peft_config", {}):
            self.unet.delete_adapters(self.adapter_name)
        if self.recipe.memory in ("16gb", "12gb"):
            self.unet.disable_gradient_checkpointing()
        self.unet.requires_grad_(False)
        self.unet.eval()
        for name in TEXT_ENCODERS if self.text_lora_params else ():
            encoder = self.components[name]
            if self.adapter_name in getattr(encoder, "peft_config", {}):
                from diffusers.utils.peft_utils import delete_adapter_layers

                delete_adapter_layers(encoder, self.adapter_name)  # what the SDXL pipeline's delete_adapters does
            if self.recipe.memory in ("16gb", "12gb"):
                encoder.gradient_checkpointing_disable()
            encoder.requires_grad_(False)


def _add_text_adapter(encoder: Any, config: Any, adapter_name: str) -> None:
    """Put a LoRA on a transformers text encoder the way its ``add_adapter`` does (peft's
    ``inject_adapter_in_model`` and the model's ``peft_config``), without its peft-version gate:
    the transformers this app allows may demand a newer peft than the ``peft>=0.13`` it requires,
    and injecting works with both."""
    from peft import inject_adapter_in_model

    inject_adapter_in_model(config, encoder, adapter_name=adapter_name)
    configs = getattr(encoder, "peft_config", None) or {}
    configs[adapter_name] = config
    encoder.peft_config = configs
    encoder._hf_peft_config_loaded = True  # noqa: SLF001 - what transformers' add_adapter sets


def _adamw(params: list[Any], recipe: LoraRecipe, text_params: list[Any] | None = None) -> Any:
    """AdamW; the 8-bit AdamW of bitsandbytes for the 16/12 GB recipes when it is installed. The
    text encoders' parameters (when they train) are a second group with their own lr and decay."""
    import torch

    groups: list[Any] = [params]
    if text_params:
        groups = [{"params": params},
                  {"params": text_params, "lr": recipe.text_encoder_learning_rate,
                   "weight_decay": recipe.text_encoder_weight_decay}]  # fmt: skip
    chosen = groups[0] if len(groups) == 1 else groups
    if recipe.memory in ("16gb", "12gb"):
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(chosen, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        except ImportError:
            pass  # the full-precision optimizer: a few hundred MB more for a rank-4 LoRA
    return torch.optim.AdamW(chosen, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)

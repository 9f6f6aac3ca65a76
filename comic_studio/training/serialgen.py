"""Fine-tuning SerialGen's standardization model (seed 004 §3.3) on a user's pairs:
``comic-studio train serialgen --data pairs.jsonl``.

Starting point: Moore-AnimateAnyone's stage 1 (the paper's "baseline") with zero FBDM/RPIM, i.e.
exactly the baseline's output. FBDM and RPIM train; with ``train_unets`` the ReferenceNet (less its
last up block, whose output nothing reads, as Moore's ``train_stage_1.py``), the denoising UNet and
the PoseGuider train too.

The recipe is Moore's stage 1 (``configs/train/stage1.yaml``), which the paper's baseline is; the
seed's own numbers are used where it gives them (§4.1):
- 512 × 768 (§4.1), 50,000 steps (§4.1), effective batch 32 (§4.1: 8 GPUs × 4) as batch-1 micro-steps
  by gradient accumulation;
- AdamW lr 1e-5, β (0.9, 0.999), weight decay 1e-2, ε 1e-8, gradient norm clipped at 1.0 (Moore);
- v-prediction on the zero-terminal-SNR scaled-linear schedule (Moore's ``enable_zero_snr``),
  uniform timesteps, noise offset 0.05, min-SNR γ = 5 (Moore's stage-1 settings);
- the image condition dropped with probability 0.1 (Moore's ``uncond_ratio``): a zero CLIP embedding
  and no reference pass, the same as classifier-free guidance's negative at inference.
Every frozen input (latent distributions, CLIP embeddings, masks, pose images) is computed once.

Data: ``pairs.jsonl``, one JSON object a line, paths relative to the file:
``{"ref_image", "ref_mask", "ref_pose", "std_image", "std_pose"}`` — the reference picture, its
person mask (white = the character; FBDM's background mask is its complement), its own pose as an
OpenPose image (RPIM), the standardized picture and the standard pose image (PoseGuider). A mask with
nobody, a mask covering the whole picture and a reference with several faces are refused by line.
Checkpoints resume bit for bit (:mod:`.checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from comic_studio.training.lora import TrainingError, TrainingProgress
from comic_studio.training.manifests import manifest_image, manifest_rows
from comic_studio.training.timesteps import diffusion_loss, sample_timesteps
from comic_studio.training.trainer_base import (
    EVALUATION_SEED,
    EVALUATION_TIMESTEPS,
    CheckpointedTrainer,
    fixed_batch_loss,
)

FIELDS = ("ref_image", "ref_mask", "ref_pose", "std_image", "std_pose")


class SerialgenRecipe(BaseModel):
    """The hyper-parameters of one run (stored in every checkpoint: a resume must use the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_unets: bool = False
    learning_rate: float = Field(default=1e-5, gt=0, le=1)  # Moore stage1.yaml
    weight_decay: float = Field(default=1e-2, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    gradient_accumulation: int = Field(default=32, ge=1, le=1024)  # §4.1: 8 × A100 × batch 4
    width: int = Field(default=512, ge=16, le=2048, multiple_of=8)  # §4.1: 512 × 768
    height: int = Field(default=768, ge=16, le=2048, multiple_of=8)
    steps: int = Field(default=50_000, ge=1, le=1_000_000)  # §4.1: 50,000 steps
    checkpoint_every: int = Field(default=100, ge=1)
    uncond_ratio: float = Field(default=0.1, ge=0, le=1)  # Moore stage1.yaml
    noise_offset: float = Field(default=0.05, ge=0, le=1)  # Moore stage1.yaml
    snr_gamma: float | None = Field(default=5.0, gt=0)  # Moore stage1.yaml
    seed: int = Field(default=42, ge=0, lt=2**63)


@dataclass(frozen=True)
class Pair:
    ref_image: Any
    background: np.ndarray
    ref_pose: Any
    std_image: Any
    std_pose: Any
    name: str


def read_pairs(manifest: str | Path, aspect: float) -> list[Pair]:
    """The pairs of ``manifest`` (JSON lines), each picture padded to ``aspect``; :class:`TrainingError`
    names the line and the field."""
    from PIL import Image

    from comic_studio.poses.standard_inputs import PAD_FILL, ReferenceInputError, check_person_mask, pad_to_aspect
    from comic_studio.vision.detect import count_faces

    path = Path(manifest)
    pairs = []
    for where, row in manifest_rows(path, "training pairs"):
        if not isinstance(row, dict) or any(not isinstance(row.get(f), str) for f in FIELDS):
            raise TrainingError(f"{where}: needs an object with the file names {', '.join(FIELDS)}")
        images = {f: manifest_image(path.parent, row[f], where, f) for f in FIELDS}
        ref = images["ref_image"].convert("RGB")
        mask = images["ref_mask"].convert("L")
        if mask.size != ref.size:
            raise TrainingError(f"{where}: ref_mask is {mask.size}, ref_image {ref.size}: they must match")
        try:
            person = check_person_mask(np.asarray(mask) > 127, f"{where}: ref_mask")
        except ReferenceInputError as exc:
            raise TrainingError(str(exc)) from exc
        faces = count_faces(ref)
        if faces > 1:
            raise TrainingError(f"{where}: ref_image shows {faces} people; a pair standardizes one character")
        background = pad_to_aspect(Image.fromarray(np.where(person, 0, 255).astype(np.uint8), "L"), aspect, 255)
        pairs.append(Pair(pad_to_aspect(ref, aspect, PAD_FILL), np.asarray(background) > 127,
                          pad_to_aspect(images["ref_pose"].convert("RGB"), aspect, (0, 0, 0)),
                          pad_to_aspect(images["std_image"].convert("RGB"), aspect, PAD_FILL),
                          pad_to_aspect(images["std_pose"].convert("RGB"), aspect, (0, 0, 0)), row["ref_image"]))  # fmt: skip
    if not pairs:
        raise TrainingError(f"{path}: no pairs")
    return pairs


@dataclass
class _Encoded:
    target_mean: Any
    target_std: Any
    ref_mean: Any
    ref_std: Any
    embeds: Any
    background: Any
    ref_pose: Any
    std_pose: Any


class SerialgenTrainer(CheckpointedTrainer):
    """Trains ``pipeline.modules`` (FBDM/RPIM; and the UNets and PoseGuider with ``train_unets``) of a
    :class:`~comic_studio.generation.models.serialgen_stage1.Stage1Pipeline` on ``pairs``."""

    GENERATORS = ("noise_generator", "timestep_generator", "drop_generator")
    drop_generator: Any  # the condition dropout's draws (set by _start_run)
    OTHER_DATA = "other pairs"

    def __init__(self, pipeline: Any, pairs: list[Pair], recipe: SerialgenRecipe | None = None) -> None:
        import torch
        from diffusers import DDPMScheduler
        from PIL import Image

        from comic_studio.generation.models.serialgen_stage1 import MOORE_SCHEDULER, mask_tensor, to_tensor

        self.recipe = recipe = recipe or SerialgenRecipe()
        if pipeline.modules is None:
            raise TrainingError("the pipeline has no FBDM/RPIM modules to train")
        self.pipeline, self.device = pipeline, pipeline.device
        w = pipeline.weights
        self.noise_scheduler = DDPMScheduler(**MOORE_SCHEDULER)
        for part in (w.reference_unet, w.denoising_unet, w.pose_guider, pipeline.vae, pipeline.image_encoder):
            part.requires_grad_(False)
        self.trained: dict[str, Any] = {"modules": pipeline.modules}
        if recipe.train_unets:
            self.trained |= {"reference_unet": w.reference_unet, "denoising_unet": w.denoising_unet,
                             "pose_guider": w.pose_guider}  # fmt: skip
            w.denoising_unet.requires_grad_(True)
            w.pose_guider.requires_grad_(True)
            for name, p in w.reference_unet.named_parameters():
                p.requires_grad_(not name.startswith("up_blocks.3"))  # unused output (Moore freezes it too)
        pipeline.modules.requires_grad_(True)
        self.params = [p for m in self.trained.values() for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=recipe.learning_rate, betas=(0.9, 0.999),
                                           weight_decay=recipe.weight_decay, eps=1e-8)  # fmt: skip
        self._start_run(recipe.seed, len(pairs), [p.name for p in pairs])
        size = (recipe.width, recipe.height)
        vae, dtype = pipeline.vae, w.denoising_unet.dtype
        with torch.no_grad():
            self.encoded = []
            for pair in pairs:
                target = vae.encode(to_tensor(pair.std_image.resize(size, Image.Resampling.BICUBIC)).to(self.device, vae.dtype) * 2 - 1).latent_dist  # fmt: skip
                ref_image = pair.ref_image.resize(size, Image.Resampling.BICUBIC)
                ref = vae.encode(to_tensor(ref_image).to(self.device, vae.dtype) * 2 - 1).latent_dist
                latent = (target.mean.shape[-2], target.mean.shape[-1])
                self.encoded.append(_Encoded(
                    target.mean.cpu(), target.std.cpu(), ref.mean.cpu(), ref.std.cpu(),
                    pipeline.image_embeds(ref_image).to(dtype).cpu(), mask_tensor(pair.background, latent),
                    to_tensor(pair.ref_pose.resize(size)), to_tensor(pair.std_pose.resize(size)),
                ))  # fmt: skip

    # ------------------------------------------------------------------ the loop

    def train(self, checkpoint: str | Path, *, cancel: Callable[[], bool] = lambda: False,
              on_progress: Callable[[TrainingProgress], None] | None = None) -> None:  # fmt: skip
        """Train until ``recipe.steps``, writing ``checkpoint`` every ``checkpoint_every`` steps; on
        ``cancel()`` (asked before every micro-step) save there and raise :class:`TrainingCancelled`."""
        for module in self.trained.values():
            module.train()
        self._accumulated_steps(checkpoint, cancel, on_progress)
        for module in self.trained.values():
            module.eval()

    def _micro_step_loss(self) -> Any:
        return self.loss(self.encoded[self.order.next()], self.noise_generator, self.timestep_generator,
                         self.drop_generator)  # fmt: skip

    def _before_optimizer_step(self) -> None:
        import torch

        torch.nn.utils.clip_grad_norm_(self.params, self.recipe.max_grad_norm)

    def loss(self, item: _Encoded, noise_gen: Any, timestep_gen: Any, drop_gen: Any | None,
             timesteps: Any = None) -> Any:  # fmt: skip
        """The v-prediction loss of one pair (``drop_gen`` None: never dropped, for evaluation)."""
        import torch

        from comic_studio.generation.models.serialgen_stage1 import ReferenceState, attached

        recipe, pipe, device = self.recipe, self.pipeline, self.device
        w, dtype = pipe.weights, pipe.weights.denoising_unet.dtype
        scale = pipe.vae.config.scaling_factor
        latents = (
            item.target_mean + item.target_std * torch.randn(item.target_mean.shape, generator=noise_gen)
        ) * scale
        ref_latents = (item.ref_mean + item.ref_std * torch.randn(item.ref_mean.shape, generator=noise_gen)) * scale
        noise = torch.randn(latents.shape, generator=noise_gen)
        if recipe.noise_offset:
            noise = noise + recipe.noise_offset * torch.randn((1, latents.shape[1], 1, 1), generator=noise_gen)
        if timesteps is None:
            timesteps = sample_timesteps(1, timestep_gen, law="uniform",
                                         num_train_timesteps=self.noise_scheduler.config.num_train_timesteps)  # fmt: skip
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps).to(device, dtype)
        target = self.noise_scheduler.get_velocity(latents, noise, timesteps).to(device)
        dropped = drop_gen is not None and float(torch.rand(1, generator=drop_gen)) < recipe.uncond_ratio
        context = (torch.zeros_like(item.embeds) if dropped else item.embeds).to(device, dtype)
        latent = (latents.shape[-2], latents.shape[-1])
        state = ReferenceState(latent, pipe.modules, background=item.background.to(device, dtype))
        state.pose_features = pipe.modules.encode_pose(item.ref_pose.to(device, dtype))
        state.pose_guide = w.pose_guider(item.std_pose.to(device, dtype))
        t = timesteps.to(device)
        with attached(w.reference_unet, w.denoising_unet, state):
            if not dropped:  # Moore's uncond forward runs no reference either
                w.reference_unet(ref_latents.to(device, dtype), torch.zeros_like(t), encoder_hidden_states=context)
            pred = w.denoising_unet(noisy, t, encoder_hidden_states=context).sample.float()
        return diffusion_loss(pred, target.float(), self.noise_scheduler, timesteps, recipe.snr_gamma)

    def evaluation_loss(self, seed: int = EVALUATION_SEED, timesteps: tuple[int, ...] = EVALUATION_TIMESTEPS) -> float:
        """The loss on a fixed batch (every pair at each of ``timesteps``, fixed noise, no dropout):
        comparable between steps, unlike the training loss."""
        return fixed_batch_loss(self.encoded, lambda item, gen, t: self.loss(item, gen, None, None, t), seed, timesteps)

    # ------------------------------------------------------------------ checkpoints (CheckpointedTrainer)

    def _weights_state(self) -> dict[str, Any]:
        return {
            "weights": {name: {k: v.detach() for k, v in m.state_dict().items()} for name, m in self.trained.items()}
        }

    def _load_weights(self, state: dict[str, Any]) -> None:
        for name, module in self.trained.items():
            module.load_state_dict(state["weights"][name])

    def _trained_parameters(self) -> dict[str, Any]:
        return {f"{name}/{k}": p for name, m in self.trained.items() for k, p in m.named_parameters()}

"""Training AnimeAdapter (seed 003 §3.3–3.4, §5.1): reconstruction with the same image as
reference and target, a frozen SD 1.5 UNet, and a frozen OpenPose controller fed the reference's
pose, so that the adapter learns appearance and leaves layout to the controller.

The base family follows the UNet (:func:`base_family`): SD 1.5 (the paper's) or SDXL (the variant
the issue asks for; the paper trains none, so its recipe is SD 1.5's with SDXL's conditioning). For
SDXL the text goes through both frozen text encoders (prompt embeddings concatenated, pooled from
the second: :func:`~comic_studio.training.data.sdxl_text_encoder`, the LoRA trainer's) and the UNet
(and an SDXL ControlNet) get SDXL's added conditioning (``text_embeds`` + ``time_ids`` of the
square training crop, as :func:`~comic_studio.training.data.encode_pictures` makes them); the
adapter's widths come from the SDXL UNet's cross-attention (2048 wide, 70 layers for SDXL base) and
its config says ``family: "sdxl"``, which the ``anime`` backend reads to render on SDXL. SD 2.x
bases (linear projections, no added conditioning) are refused: no adapter family fits them.

- Only the adapter trains (§5.1: "only 24.7M newly introduced adapter weights are updated").
- Token masks in training mode: the large negative bias on background keys before the softmax (Eq. 5).
- The pose controller: the OpenPose T2I-Adapter by default (Tab. 5: better than ControlNet, which
  is the option ``controller="controlnet"``), or none ("w/o disent." in the ablations).
- Classifier-free guidance dropout: text, image and both each with probability 0.05. The seed
  puts its schedule in a supplement we do not have; 0.05 each is IP-Adapter's (which the paper
  follows for the injection), as the issue asks. A dropped image is the fused tokens of all-zero
  hidden states (the adapter's own "no image", the same the backend uses as CFG's negative).
- AdamW, learning rate 1e-4, effective batch 16 by gradient accumulation (§5.1: "effective batch
  size 16"), ε-prediction MSE at uniform timesteps (IP-Adapter's objective; the seed gives none).
- Checkpoints resume bit for bit (:mod:`.checkpoint`: weights, optimizer, accumulated gradients,
  every generator, the data order).

The dataset is a folder with ``metadata.jsonl``: one JSON object a line, ``{"image": file,
"mask": file or null, "pose": file or null, "prompt": tags}`` (paths relative to the folder; the
mask white-on-black; the pose an OpenPose skeleton image). Prompts are tags without the character's
name (§4.4's "Training Prompt").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from comic_studio.training.lora import TrainingError, TrainingProgress
from comic_studio.training.manifests import manifest_image, manifest_rows
from comic_studio.training.timesteps import sample_timesteps
from comic_studio.training.trainer_base import (
    EVALUATION_SEED,
    EVALUATION_TIMESTEPS,
    CheckpointedTrainer,
    fixed_batch_loss,
)

MANIFEST = "metadata.jsonl"
SDXL_RESOLUTION = 1024
"""The training size the CLI picks for an SDXL base when none is given: SDXL's native one (the
paper trains no SDXL model; 512 stays the recipe's default, SD 1.5's)."""
Controller = Literal["t2i-adapter", "controlnet", "none"]


class AnimeAdapterRecipe(BaseModel):
    """The hyper-parameters of one run (stored in every checkpoint: a resume must use the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k_layers: int = Field(default=7, ge=1, le=15)  # §3.1: K = 7
    learning_rate: float = Field(default=1e-4, gt=0, le=1)  # as IP-Adapter (the seed gives none)
    weight_decay: float = Field(default=1e-2, ge=0)
    gradient_accumulation: int = Field(default=16, ge=1, le=1024)  # §5.1: effective batch 16 (batch 1 × 16)
    resolution: int = Field(default=512, ge=32, le=2048)  # SD 1.5's training size (SDXL_RESOLUTION for SDXL)
    steps: int = Field(default=30_000, ge=1, le=1_000_000)  # §5.1: 30,000 steps
    checkpoint_every: int = Field(default=100, ge=1)
    drop_text: float = Field(default=0.05, ge=0, le=1)
    drop_image: float = Field(default=0.05, ge=0, le=1)
    drop_both: float = Field(default=0.05, ge=0, le=1)
    controller: Controller = "t2i-adapter"  # Tab. 5
    controller_scale: float = Field(default=1.0, ge=0, le=2)
    cls_token: Literal["keep", "mask"] = "keep"
    mask_threshold: float = Field(default=0.5, gt=0, le=1)
    seed: int = Field(default=42, ge=0, lt=2**63)


def base_family(unet_config: Any) -> str:
    """ "sd15" or "sdxl" from a UNet's config (``unet.config`` or its ``config.json`` as a dict);
    :class:`TrainingError` for anything else (SD 2.x: linear transformer projections and no SDXL
    size conditioning)."""
    get = unet_config.get if isinstance(unet_config, dict) else lambda k, d=None: getattr(unet_config, k, d)
    addition = get("addition_embed_type", None)
    if addition == "text_time":
        return "sdxl"
    if addition is None and not get("use_linear_projection", False):
        return "sd15"
    kind = "an SD 2.x-style UNet (linear projections, no SDXL size conditioning)" if addition is None else (
        f"a UNet with {addition!r} added conditioning")  # fmt: skip
    raise TrainingError(f"AnimeAdapter trains on SD 1.5-family (the paper's) or SDXL-family base models; this is {kind}: "
                        "choose an SD 1.5 or SDXL model as the base")  # fmt: skip


@dataclass(frozen=True)
class AnimeSample:
    image: Any
    """PIL RGB."""
    mask: np.ndarray | None
    pose: Any | None
    prompt: str
    name: str


def read_dataset(folder: str | Path) -> list[AnimeSample]:
    """The samples of ``folder/metadata.jsonl``; :class:`TrainingError` names the line and field."""
    root = Path(folder)
    manifest = root / MANIFEST
    samples = []
    for where, row in manifest_rows(manifest, "training manifest", f"a dataset folder needs {MANIFEST}"):
        if not isinstance(row, dict) or not isinstance(row.get("image"), str):
            raise TrainingError(f"{where}: needs an object with 'image' (and 'mask', 'pose', 'prompt')")
        prompt = row.get("prompt", "")
        if not isinstance(prompt, str):
            raise TrainingError(f"{where}: 'prompt' must be text (tags)")
        image = manifest_image(root, row["image"], where, "image").convert("RGB")
        mask = None
        if row.get("mask"):
            mask_image = manifest_image(root, row["mask"], where, "mask").convert("L")
            if mask_image.size != image.size:
                raise TrainingError(f"{where}: the mask is {mask_image.size}, the image {image.size}: they must match")
            mask = np.asarray(mask_image) > 127
        pose = manifest_image(root, row["pose"], where, "pose").convert("RGB") if row.get("pose") else None
        samples.append(AnimeSample(image, mask, pose, prompt, row["image"]))
    if not samples:
        raise TrainingError(f"{manifest}: no samples")
    return samples


def _square(image: Any, size: int) -> Any:
    from PIL import Image

    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    return image.crop(box).resize((size, size), Image.Resampling.BICUBIC)


@dataclass
class _Encoded:
    latent_mean: Any
    latent_std: Any
    prompt_embeds: Any
    hidden: list[Any]
    mask: Any
    control: Any | None
    pooled: Any = None
    """SDXL: the second text encoder's pooled prompt embedding (``text_embeds``)."""
    time_ids: Any = None
    """SDXL: the size/crop conditioning of the training crop."""


class AnimeAdapterTrainer(CheckpointedTrainer):
    """Trains a fresh :class:`AnimeAdapter` for ``components`` (an SD 1.5 or SDXL pipeline's parts)
    with the CLIP vision ``encoder`` and the frozen pose ``controller`` (a diffusers T2IAdapter or
    ControlNetModel of the base's family, or ``None`` for ``recipe.controller == "none"``)."""

    GENERATORS = ("noise_generator", "timestep_generator", "drop_generator")
    drop_generator: Any  # the condition dropout's draws (set by _start_run)
    OTHER_DATA = "another dataset"

    def __init__(self, components: dict[str, Any], encoder: Any, processor: Any, samples: list[AnimeSample],
                 recipe: AnimeAdapterRecipe | None = None, *, controller: Any = None, encoder_id: str = "",
                 device: str = "cpu") -> None:  # fmt: skip
        import torch
        from diffusers import DDPMScheduler

        from comic_studio.generation.models.anime_adapter import AnimeAdapter, square, token_mask

        self.recipe = recipe = recipe or AnimeAdapterRecipe()
        if (recipe.controller == "none") != (controller is None):
            raise TrainingError(f"the recipe's controller is {recipe.controller!r} but a controller was {'not ' if controller is None else ''}given")  # fmt: skip
        if recipe.controller != "none" and any(s.pose is None for s in samples):
            missing = next(s.name for s in samples if s.pose is None)
            raise TrainingError(f"{missing}: no pose image; the {recipe.controller} pose controller needs one per sample (or use --controller none)")  # fmt: skip
        unet = components["unet"]
        self.family = base_family(unet.config)
        self.components, self.unet, self.controller, self.device = components, unet, controller, device
        self.noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        tokens = (encoder.config.image_size // encoder.config.patch_size) ** 2 + 1
        with torch.random.fork_rng(devices=[]):  # the adapter's init draws from the global generator
            torch.manual_seed(recipe.seed)
            self.adapter = AnimeAdapter.for_unet(
                unet, clip_hidden=encoder.config.hidden_size, encoder_layers=encoder.config.num_hidden_layers,
                tokens=tokens, family=self.family, encoder=encoder_id or "clip-vision", k_layers=recipe.k_layers,
                cls_token=recipe.cls_token, mask_threshold=recipe.mask_threshold,
            ).to(device)  # fmt: skip
        unet.requires_grad_(False)
        if controller is not None:
            controller.requires_grad_(False)
        self.params = [p for p in self.adapter.parameters()]
        self.optimizer = torch.optim.AdamW(self.params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        self._start_run(recipe.seed, len(samples), [s.name for s in samples])
        # Everything frozen is computed once: latents, text, CLIP layers, token masks, pose images.
        side = int(encoder.config.image_size)
        with torch.no_grad():
            if self.family == "sdxl":
                from comic_studio.training.data import sdxl_text_encoder

                self.empty_embeds, self.empty_pooled = sdxl_text_encoder(components, device)("")
            else:
                self.empty_embeds, self.empty_pooled = self._text(""), None
            self.encoded = []
            for s in samples:
                ref, ref_mask = square(s.image, s.mask, side)
                pixels = processor(images=ref, return_tensors="pt").pixel_values.to(device, encoder.dtype)
                hidden = self.adapter.select_layers(encoder(pixels, output_hidden_states=True).hidden_states)
                target = _square(s.image, recipe.resolution)
                control = (
                    _to_tensor(_square(s.pose, recipe.resolution), device, unet.dtype) if s.pose is not None else None
                )
                hidden_cpu, mask = [h.float().cpu() for h in hidden], token_mask(ref_mask, self.adapter.config)
                if self.family == "sdxl":
                    self.encoded.append(self._sdxl_encoded(target, s.prompt, hidden_cpu, mask, control))
                    continue
                dist = components["vae"].encode(_to_tensor(target, device, components["vae"].dtype) * 2 - 1).latent_dist
                self.encoded.append(_Encoded(dist.mean.cpu(), dist.std.cpu(), self._text(s.prompt), hidden_cpu, mask,
                                             control))  # fmt: skip
            self.no_image = [torch.zeros_like(h) for h in self.encoded[0].hidden]
        if recipe.controller == "t2i-adapter":
            self._check_t2i_adapter()

    def _check_t2i_adapter(self) -> None:
        """A T2I-Adapter whose features do not fit the UNet's down blocks (another family's: SD 1.5's
        and SDXL's add them at different places) is refused here, by name, not as a shape error in
        the first step. One no-grad forward from a generator of its own (the run's draws are untouched)."""
        import torch

        try:
            with torch.no_grad():
                self.loss(self.encoded[0], torch.Generator("cpu").manual_seed(0), None, None, torch.tensor([500]))
        except torch.cuda.OutOfMemoryError:
            raise
        except RuntimeError as exc:
            raise TrainingError(
                f"the T2I-Adapter's features do not fit this {self.family} base model's UNet ({exc}): use the OpenPose "
                f"T2I-Adapter made for the {self.family} family (for SDXL TencentARC's t2i-adapter-openpose-sdxl-1.0, "
                "with --controller-model), or the ControlNet (--controller controlnet)"
            ) from exc

    def _sdxl_encoded(self, target: Any, prompt: str, hidden: list[Any], mask: Any, control: Any) -> _Encoded:
        """The SDXL sample: latents, both text encoders and the size conditioning from the LoRA
        trainer's encoder (the square crop at ``resolution`` is its own bucket, crop offset 0)."""
        from comic_studio.training.data import TrainingPicture, encode_pictures

        pic = encode_pictures([TrainingPicture(target, prompt)], self.components, self.recipe.resolution, self.device)[
            0
        ]
        return _Encoded(pic.latent_mean, pic.latent_std, pic.prompt_embeds, hidden, mask, control, pic.pooled_embeds,
                        pic.time_ids)  # fmt: skip

    def _text(self, prompt: str) -> Any:
        tokenizer, encoder = self.components["tokenizer"], self.components["text_encoder"]
        ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids  # fmt: skip
        return encoder(ids.to(self.device))[0].float().cpu()

    # ------------------------------------------------------------------ the loop

    def train(self, checkpoint: str | Path, *, cancel: Callable[[], bool] = lambda: False,
              on_progress: Callable[[TrainingProgress], None] | None = None) -> None:  # fmt: skip
        """Train until ``recipe.steps``, writing ``checkpoint`` every ``checkpoint_every`` steps; on
        ``cancel()`` (asked before every micro-step) save there and raise :class:`TrainingCancelled`."""
        self.adapter.train()
        self._accumulated_steps(checkpoint, cancel, on_progress)
        self.adapter.eval()

    def _micro_step_loss(self) -> Any:
        return self.loss(self.encoded[self.order.next()], self.noise_generator, self.timestep_generator,
                         self.drop_generator)  # fmt: skip

    def loss(
        self, item: _Encoded, noise_gen: Any, timestep_gen: Any, drop_gen: Any | None, timesteps: Any = None
    ) -> Any:
        """The reconstruction loss of one sample (``drop_gen`` None: no CFG dropout)."""
        import torch
        import torch.nn.functional as F  # noqa: N812

        from comic_studio.generation.models.anime_adapter import AdapterState, Reference, attached

        recipe, unet, device, dtype = self.recipe, self.unet, self.device, self.unet.dtype
        vae = self.components["vae"]
        latents = item.latent_mean + item.latent_std * torch.randn(item.latent_mean.shape, generator=noise_gen)
        latents = latents * vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=noise_gen)
        if timesteps is None:
            timesteps = sample_timesteps(1, timestep_gen, law="uniform",
                                         num_train_timesteps=self.noise_scheduler.config.num_train_timesteps)  # fmt: skip
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps).to(device, dtype)
        drop = float(torch.rand(1, generator=drop_gen)) if drop_gen is not None else 1.0
        drop_text = drop < recipe.drop_text or recipe.drop_text + recipe.drop_image <= drop < recipe.drop_text + recipe.drop_image + recipe.drop_both  # fmt: skip
        drop_image = recipe.drop_text <= drop < recipe.drop_text + recipe.drop_image + recipe.drop_both
        text = (self.empty_embeds if drop_text else item.prompt_embeds).to(device, dtype)
        added: dict[str, Any] = {}
        if self.family == "sdxl":  # SDXL's added conditioning: pooled text (dropped with the text) + sizes
            pooled = self.empty_pooled if drop_text else item.pooled
            added = {"added_cond_kwargs": {"text_embeds": pooled.to(device, dtype),
                                           "time_ids": item.time_ids.to(device, dtype)}}  # fmt: skip
        hidden = self.no_image if drop_image else item.hidden
        tokens = self.adapter.fuse([h.to(device) for h in hidden]).to(dtype)
        extra: dict[str, Any] = {}
        t = timesteps.to(device)
        if self.controller is not None:
            assert item.control is not None
            with torch.no_grad():
                if recipe.controller == "controlnet":
                    down, mid = self.controller(noisy, t, encoder_hidden_states=text, controlnet_cond=item.control,
                                                conditioning_scale=recipe.controller_scale, return_dict=False,
                                                **added)  # fmt: skip
                    extra = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
                else:
                    feats = self.controller(item.control)
                    extra = {"down_intrablock_additional_residuals": [f * recipe.controller_scale for f in feats]}
        state = AdapterState([Reference(tokens, item.mask.to(device), 1.0)], training=True)
        with attached(unet, self.adapter, state):
            pred = unet(noisy, t, encoder_hidden_states=text, **extra, **added).sample.float()
        if self.prediction_type == "v_prediction":  # v-pred fine-tunes (as the LoRA trainer)
            noise = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        return F.mse_loss(pred, noise.to(pred.device), reduction="mean")

    def evaluation_loss(self, seed: int = EVALUATION_SEED, timesteps: tuple[int, ...] = EVALUATION_TIMESTEPS) -> float:
        """The loss on a fixed batch (every sample at each of ``timesteps``, fixed noise, no dropout):
        comparable between steps, unlike the training loss."""
        return fixed_batch_loss(self.encoded, lambda item, gen, t: self.loss(item, gen, None, None, t), seed, timesteps)

    # ------------------------------------------------------------------ checkpoints (CheckpointedTrainer)

    def _weights_state(self) -> dict[str, Any]:
        return {"adapter": {n: p.detach() for n, p in self.adapter.state_dict().items()}}

    def _load_weights(self, state: dict[str, Any]) -> None:
        self.adapter.load_state_dict(state["adapter"])

    def _trained_parameters(self) -> dict[str, Any]:
        return dict(self.adapter.named_parameters())


def _to_tensor(image: Any, device: Any, dtype: Any) -> Any:
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].to(device, dtype)


def write_manifest(folder: str | Path, rows: list[dict[str, Any]]) -> Path:
    """``folder/metadata.jsonl`` from ``rows`` (atomically)."""
    from comic_studio.core.atomic import atomic_write_text

    return atomic_write_text(Path(folder) / MANIFEST, "".join(json.dumps(r) + "\n" for r in rows), "the manifest")

"""StableIdentity on SDXL: two learned identity tokens per text encoder, from a face photo.

The method (seed 002 §3.1; the official code qinghew/StableIdentity and the SDXL port the seed
describes, as read in research/wave2_methods_engine_sota.md §2.2):

- **identity prior**: the 768-d CLS token of a face encoder (a ViT; the face-recognition ViT when
  installed, the generic ViT otherwise, as the SDXL port did) of the aligned face;
- **two StyleVectorizer MLPs** (depth 2 as the official config; the port used 6) with a learning-rate
  multiplier of 0.1 (EqualLinear layers) project it to 2 × 768 (CLIP-L) and 2 × 1280 (bigG) — the
  second MLP is the SDXL extension of §3.1.2;
- **editability prior (AdaIN)**: each output vector is normalised and mapped to
  ``mean + r · std`` of the celebrity-name token embeddings, per token position (the first and
  second token of each name in ``celebrity_names.json``) and per text encoder (§3.1.2: "the
  editability prior is recalculated for each encoder"); the statistics are computed once per
  tokenizer and embedding table and cached on disk;
- the rows are **injected** into both text encoders' token-embedding outputs at every step with the
  graph kept, so the gradient reaches the MLPs through the frozen encoders and UNet; nothing else
  trains;
- **two-phase masked loss** (§3.1.1 and §5.2): for t > α·T the noise MSE on the face mask plus
  λ_hair = 0.1 × the hair mask, for t ≤ α·T the same on the predicted x₀ (divided by the VAE scale
  as the official code does); α = 0.5 (the SDXL seed's default, §5.2; the original's 0.6 is a
  setting), timesteps uniform as the official script draws them;
- **SDXL added conditioning during training**: the pooled embeds of encoder 2 *with* the identity
  tokens and ``time_ids`` (size, crop 0 0, size). The public SDXL port switched it off in training
  (``addition_embed_type = "others"``) but not at inference; that mismatch is not copied;
- AdamW at 1e-5 (§5.1: "1e−5 instead of 5e−5"), 500 steps (§5.1), batch 1, 512 px.

Where the seed is silent: AdamW weight decay 1e-2 (diffusers' scripts' default, which the official
script builds on), the prompt templates (the app's own, "… <id> person"), the augmentations (the
official code's, by default: colour jitter, flip — of the face encoder's input too — random
crop-resize and paste on a black background, with its numbers: :mod:`comic_studio.training.face_augment`;
the recipe's ``augment="flip"`` keeps only the flip, on cached latents), and several photos (1–3): the MLP input is the mean of their CLS embeddings, so the result is one
identity; each step trains on one photo, in a checkpointed order.

Determinism as :mod:`comic_studio.training.lora`: every random draw comes from a generator the
checkpoint holds, so a cancelled and resumed run ends with bitwise the same MLP weights.

The result is a standard SDXL textual-inversion file ``{clip_l: [2, 768], clip_g: [2, 1280]}``
(:func:`save_identity`): diffusers' ``load_textual_inversion`` and ComfyUI's ``embedding:`` read it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from comic_studio.generation.identity import (
    celebrity_stats,
    identity_phrase,
    identity_tokens,
    pool_at_end_token,
    restore_pooling,
)
from comic_studio.training.data import DataOrder
from comic_studio.training.lora import TrainingCancelled, TrainingError, TrainingProgress
from comic_studio.training.timesteps import sample_timesteps
from comic_studio.training.trainer_base import CheckpointedTrainer

if TYPE_CHECKING:  # annotations only: the window imports this module, and vision pulls NumPy in
    from comic_studio.vision.faces import AlignedFace

FACE_ENCODER_ENV = "COMIC_STUDIO_FACE_ENCODER"
"""A transformers ViT folder to use as the face encoder (overrides the Hugging Face cache lookup)."""
FACE_ENCODERS = ("jayanta/vit-base-patch16-224-in21k-face-recognition", "google/vit-base-patch16-224-in21k")
"""Face encoders looked up in the local Hugging Face cache (never downloaded), best first: the
official face-recognition ViT, then the generic ViT the SDXL port used."""
FACE_ENCODER_IDS = ("vit-face-recognition", "vit-base-in21k")
"""The same two as catalogue entries (``comic-studio models download vit-face-recognition``): found
in the models folder or the Hugging Face cache before the plain cache lookup by repo."""
TEMPLATES = (
    "a photo of {}",
    "a close-up photo of {}",
    "a portrait of {}",
    "a cropped photo of {}",
    "a good photo of {}",
    "a bright photo of {}",
    "a photo of the face of {}",
    "a rendition of {}",
)
"""Prompt templates; ``{}`` becomes "<token 0> <token 1> person" (the official "* person")."""


class IdentityRecipe(BaseModel):
    """The hyper-parameters of one StableIdentity run (part of the card and the checkpoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=500, ge=1, le=100_000)  # seed 002 §5.1: 500 steps
    learning_rate: float = Field(default=1e-5, gt=0, le=1)  # §5.1: 1e-5 (official 5e-5)
    weight_decay: float = Field(default=1e-2, ge=0)
    alpha: float = Field(default=0.5, gt=0, lt=1)  # §5.2: α = 0.5 on SDXL (0.6 the original)
    hair_weight: float = Field(default=0.1, ge=0)  # the official λ for the hair mask
    resolution: int = Field(default=512, ge=32, le=2048)  # the official 512 px
    mlp_depth: int = Field(default=2, ge=1, le=8)  # the official identity_space.yaml (the port: 6)
    lr_multiplier: float = Field(default=0.1, gt=0, le=1)  # StyleVectorizer's lr_mul
    flip: bool = True
    augment: Literal["official", "flip"] = "official"
    """"official": the official code's colour jitter, flip, random crop-resize and paste on a
    background, in pixel space, re-encoded every step (:mod:`comic_studio.training.face_augment`;
    the paper names none); "flip": only the flip, on cached latents (cheaper: no VAE encode per step)."""
    gradient_checkpointing: bool = False
    """Recompute the UNet's activations in the backward pass: less VRAM, slower steps (the gradient
    goes through the whole frozen UNet to reach the tokens)."""
    checkpoint_every: int = Field(default=50, ge=1)  # the official README's checkpointing
    seed: int = Field(default=42, ge=0, lt=2**63)


# ------------------------------------------------------------------------------ the MLPs


@functools.cache
def _mlp_classes() -> tuple[Any, Any]:
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    class EqualLinear(nn.Module):
        """A linear layer whose parameters are stored ``1 / lr_mul`` larger and scaled back in the
        forward pass: the optimizer's steps move the output ``lr_mul`` times as fast as a plain
        layer's (StyleGAN's equalised learning rate, the StyleVectorizer's building block)."""

        def __init__(self, dim_in: int, dim_out: int, lr_mul: float):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(dim_out, dim_in) / lr_mul)
            self.bias = nn.Parameter(torch.zeros(dim_out))
            self.scale = lr_mul / math.sqrt(dim_in)
            self.lr_mul = lr_mul

        def forward(self, x: Any) -> Any:
            return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)

    class StyleVectorizer(nn.Module):
        """``dim_in`` → ``tokens × dim`` through ``depth`` EqualLinear layers with LeakyReLU (a
        LayerNorm before each layer after the first), each output vector normalised (the "IN" of
        AdaIN: zero mean, unit variance over its ``dim`` entries)."""

        def __init__(self, dim_in: int, dim: int, tokens: int, depth: int, lr_mul: float):
            super().__init__()
            width = tokens * dim
            layers: list[Any] = []
            for i in range(depth):
                if i:
                    layers.append(nn.LayerNorm(width))
                layers += [EqualLinear(dim_in if i == 0 else width, width, lr_mul), nn.LeakyReLU(0.2)]
            self.net = nn.Sequential(*layers)
            self.tokens, self.dim = tokens, dim

        def forward(self, x: Any) -> Any:
            out = self.net(x).reshape(*x.shape[:-1], self.tokens, self.dim)
            return F.layer_norm(out, (self.dim,))

    return EqualLinear, StyleVectorizer


def identity_mlps(dim_in: int, dims: tuple[int, int], recipe: IdentityRecipe) -> Any:
    """The two MLPs (CLIP-L, bigG) as one ``ModuleDict``, initialised from ``recipe.seed``."""
    import torch
    from torch import nn

    _eq, vectorizer = _mlp_classes()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        return nn.ModuleDict(
            {
                "clip_l": vectorizer(dim_in, dims[0], 2, recipe.mlp_depth, recipe.lr_multiplier),
                "clip_g": vectorizer(dim_in, dims[1], 2, recipe.mlp_depth, recipe.lr_multiplier),
            }
        )


# ------------------------------------------------------------------------------ the editability prior


# ------------------------------------------------------------------------------ the face encoder


def face_encoder_candidates(source: str = "") -> list[str]:
    """Where to look for the face encoder, best first: ``source`` (a folder), else
    ``$COMIC_STUDIO_FACE_ENCODER``, else the catalogue's entries where installed, then the repos of
    :data:`FACE_ENCODERS` in the local Hugging Face cache."""
    if source:
        return [source]
    if os.environ.get(FACE_ENCODER_ENV):
        return [os.environ[FACE_ENCODER_ENV]]
    from comic_studio.weights.catalogue import CatalogueError, load_catalogue
    from comic_studio.weights.locate import Places, locate

    found = []
    try:
        catalogue, places = load_catalogue(), Places.from_settings()
        for entry_id in FACE_ENCODER_IDS:
            hit = locate(catalogue.get(entry_id), places)
            if hit is not None:
                found.append(str(hit.path))
    except CatalogueError:
        pass  # a broken catalogue is reported where models are managed; the cache lookup still works
    return [*found, *FACE_ENCODERS]


def load_face_encoder(source: str = "", device: str = "cpu") -> Any:
    """The face encoder (a transformers ViT), from the first of :func:`face_encoder_candidates` that
    loads. Never downloads; a folder with only pickled weights loads only when pickles are allowed."""
    from transformers import ViTModel

    from comic_studio.generation.models.pickle_policy import folder_uses_safetensors

    problems = []
    for candidate in face_encoder_candidates(source):
        try:
            folder = Path(candidate).expanduser()
            safetensors = folder_uses_safetensors(folder, "face encoder") if folder.is_dir() else None
            model = ViTModel.from_pretrained(candidate, local_files_only=True, add_pooling_layer=False,
                                             use_safetensors=safetensors)  # fmt: skip
        except (OSError, ValueError) as exc:
            problems.append(f"{candidate}: {str(exc).splitlines()[0][:200]}")
            continue
        return model.to(device).eval().requires_grad_(False)
    raise TrainingError(
        "no face encoder: learning an identity needs a ViT face encoder — run `comic-studio models download "
        f"{FACE_ENCODER_IDS[0]}` (or {FACE_ENCODER_IDS[1]}), or point ${FACE_ENCODER_ENV} at a ViT folder "
        f"(tried: {'; '.join(problems)})"
    )


def face_embedding(encoder: Any, image: Any) -> Any:
    """The CLS token [hidden] of ``image`` (resized to the ViT's size, normalised to [−1, 1] as the
    in21k ViTs' processor does)."""
    import numpy as np
    import torch
    from PIL import Image

    size = int(encoder.config.image_size)
    pixels = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    tensor = torch.from_numpy(pixels / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = encoder(pixel_values=tensor.to(encoder.device, encoder.dtype))
    return out.last_hidden_state[0, 0].float().cpu()


# ------------------------------------------------------------------------------ the loss


def two_phase_loss(
    eps_pred: Any,
    noise: Any,
    latents: Any,
    noisy: Any,
    timestep: int,
    alphas_cumprod: Any,
    face: Any,
    hair: Any,
    *,
    alpha: float,
    hair_weight: float,
    num_train_timesteps: int,
    scaling_factor: float,
) -> Any:
    """StableIdentity's masked two-phase loss of one sample: for ``timestep > alpha · T`` the ε-MSE
    on ``face`` plus ``hair_weight`` × on ``hair``; otherwise the same on x₀ = (z_t − √(1−ᾱ)·ε̂)/√ᾱ
    against the clean latents, both divided by the VAE's ``scaling_factor`` (the official code)."""
    import torch.nn.functional as F  # noqa: N812

    if timestep > alpha * num_train_timesteps:
        pred, target = eps_pred, noise
    else:
        a = alphas_cumprod[timestep].to(noisy.device, noisy.dtype)
        pred = (noisy - (1 - a).sqrt() * eps_pred) / a.sqrt() / scaling_factor
        target = latents / scaling_factor
    return F.mse_loss(pred * face, target * face) + hair_weight * F.mse_loss(pred * hair, target * hair)


# ------------------------------------------------------------------------------ the trainer


@dataclass
class _Photo:
    latent_mean: Any
    latent_std: Any
    face: Any  # [1, 1, h, w] latent-size 0/1
    hair: Any
    digest: str
    pixels: Any  # [1, 3, S, S] in [-1, 1]: the official augmentations work on these
    face_full: Any  # [1, 1, S, S] 0/1
    hair_full: Any


class IdentityTrainer(CheckpointedTrainer):
    """Trains the two MLPs for one identity on ``components`` (an SDXL pipeline's parts; they get the
    two placeholder tokens of identity 0 for the run and hooks until :meth:`close`)."""

    GENERATORS = ("noise_generator", "timestep_generator", "augment_generator")
    ACCUMULATES = False
    OTHER_DATA = "other photos"

    def __init__(
        self,
        components: dict[str, Any],
        faces: list[AlignedFace],
        face_encoder: Any,
        recipe: IdentityRecipe | None = None,
        *,
        device: str = "cpu",
    ):
        import torch
        from diffusers import DDPMScheduler, StableDiffusionXLPipeline

        self.recipe = recipe or IdentityRecipe()
        if not faces:
            raise TrainingError("learning an identity needs at least one face photo of the character")
        unet = components["unet"]
        if getattr(unet.config, "addition_embed_type", None) != "text_time" or components.get("text_encoder_2") is None:
            raise TrainingError("StableIdentity needs an SDXL base model (this one has no second text encoder "
                                "or no SDXL size conditioning): choose an SDXL checkpoint")  # fmt: skip
        self.components, self.unet, self.device = components, unet, device
        self.noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        self.encoders = [(components["tokenizer"], components["text_encoder"]),
                         (components["tokenizer_2"], components["text_encoder_2"])]  # fmt: skip
        for _tok, encoder in self.encoders:
            encoder.requires_grad_(False)
        unet.requires_grad_(False)
        components["vae"].requires_grad_(False)
        if self.recipe.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        # The editability prior, from the tables as they are before the placeholder rows exist.
        self.stats = [celebrity_stats(tok, enc.get_input_embeddings().weight) for tok, enc in self.encoders]
        self.tokens = identity_tokens(0)
        self.token_ids = [_add_tokens(tok, enc, self.tokens) for tok, enc in self.encoders]
        self._pooling = pool_at_end_token(self.encoders)  # as the identity backend renders
        self.cls = torch.stack([face_embedding(face_encoder, f.image) for f in faces]).mean(dim=0)
        # The official code flips the face encoder's input with the photo: a flipped step trains
        # from the flipped face's embedding (the result is the unflipped one's, as it renders).
        self.cls_flipped = self.cls
        if self.recipe.augment == "official" and self.recipe.flip:
            from PIL import ImageOps

            self.cls_flipped = torch.stack(
                [face_embedding(face_encoder, ImageOps.mirror(f.image)) for f in faces]
            ).mean(dim=0)
        vae = components["vae"]
        if getattr(vae.config, "force_upcast", False) and vae.dtype != torch.float32:
            vae.to(torch.float32)  # SDXL's own VAE overflows in float16 (as training/data.py does)
        self.photos = [self._encode(f) for f in faces]
        self.manifest = [p.digest for p in self.photos]
        dims = tuple(int(enc.get_input_embeddings().weight.shape[1]) for _tok, enc in self.encoders)
        self.mlps = identity_mlps(int(self.cls.shape[0]), (dims[0], dims[1]), self.recipe).to(device)
        self.optimizer = torch.optim.AdamW(self.mlps.parameters(), lr=self.recipe.learning_rate,
                                           weight_decay=self.recipe.weight_decay)  # fmt: skip
        self.noise_generator = torch.Generator("cpu").manual_seed(self.recipe.seed)
        self.timestep_generator = torch.Generator("cpu").manual_seed(self.recipe.seed + 1)
        self.augment_generator = torch.Generator("cpu").manual_seed(self.recipe.seed + 3)
        self.order = DataOrder(len(self.photos), torch.Generator("cpu").manual_seed(self.recipe.seed + 2))
        self.step = 0
        self.losses: list[float] = []
        self._rows: list[Any] | None = None
        # The stock pipeline's prompt encoding, so training encodes exactly as rendering does.
        self._pipe = StableDiffusionXLPipeline(**components, add_watermarker=False)
        self._hooks = [
            enc.get_input_embeddings().register_forward_hook(functools.partial(self._inject, i))
            for i, (_tok, enc) in enumerate(self.encoders)
        ]

    # ------------------------------------------------------------------ pieces
    def _encode(self, face: AlignedFace) -> _Photo:
        import numpy as np
        import torch
        import torch.nn.functional as F  # noqa: N812

        vae = self.components["vae"]
        size = self.recipe.resolution
        image = face.image.convert("RGB").resize((size, size))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            dist = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist
        grid = tuple(dist.mean.shape[-2:])

        def full(mask: Any) -> Any:
            m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
            return F.interpolate(m, size=(size, size), mode="nearest") if m.shape[-1] != size else m

        face_full, hair_full = full(face.face_mask), full(face.hair_mask)
        digest = hashlib.sha256(np.asarray(image).tobytes() + face.face_mask.tobytes() + face.hair_mask.tobytes())
        return _Photo(dist.mean.float().cpu(), dist.std.float().cpu(), _latent_mask(face_full, grid),
                      _latent_mask(hair_full, grid), digest.hexdigest(), pixels, face_full, hair_full)  # fmt: skip

    def _augmented(self, photo: _Photo, flip: bool, noise_gen: Any) -> tuple[Any, Any, Any]:
        """(latents before scaling, face, hair) of one step under the official augmentations: the
        photo augmented in pixel space and encoded again (the sample drawn with ``noise_gen``)."""
        import torch

        from comic_studio.training.face_augment import official_augment

        pixels, face, hair = official_augment(photo.pixels, photo.face_full, photo.hair_full,
                                              self.augment_generator, flip=flip)  # fmt: skip
        vae = self.components["vae"]
        with torch.no_grad():
            dist = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist
        mean, std = dist.mean.float().cpu(), dist.std.float().cpu()
        grid = tuple(mean.shape[-2:])
        latents = mean + std * torch.randn(mean.shape, generator=noise_gen)
        return latents, _latent_mask(face, grid), _latent_mask(hair, grid)

    def rows(self, cls: Any = None) -> list[Any]:
        """The identity's token rows for each encoder ([2, 768], [2, 1280]): mean + r · std, from
        ``cls`` (default: the photos' face embedding)."""
        cls = self.cls if cls is None else cls
        r_l = self.mlps["clip_l"](cls.to(self.device))
        r_g = self.mlps["clip_g"](cls.to(self.device))
        return [mean.to(r.device) + r * std.to(r.device) for r, (mean, std) in zip((r_l, r_g), self.stats, strict=True)]

    def _inject(self, which: int, _module: Any, inputs: tuple[Any, ...], output: Any) -> Any:
        """Forward hook on a token-embedding table: the placeholder positions get the MLP rows."""
        if self._rows is None:
            return output
        ids = inputs[0]
        out = output.clone()
        rows = self._rows[which].to(out.device, out.dtype)
        for k, token_id in enumerate(self.token_ids[which]):
            hit = ids == token_id
            if bool(hit.any()):
                out[hit] = rows[k].expand(int(hit.sum()), -1)
        return out

    @contextmanager
    def injecting(self, rows: list[Any]) -> Iterator[None]:
        self._rows = rows
        try:
            yield
        finally:
            self._rows = None

    def prompt(self, template: str = TEMPLATES[0]) -> str:
        return template.format(f"{identity_phrase(0)} person")

    def encode_prompt(self, prompt: str, rows: list[Any]) -> tuple[Any, Any]:
        """(prompt embeds, pooled embeds) of ``prompt`` with the rows injected, as the SDXL
        pipeline encodes a prompt (the graph to ``rows`` is kept)."""
        with self.injecting(rows):
            embeds, _n, pooled, _np = self._pipe.encode_prompt(
                prompt, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
        return embeds, pooled

    def _loss(
        self, photo: _Photo, noise_gen: Any, timestep: int, template: str, flip: bool, augment: bool = False
    ) -> Any:
        """One step's loss; ``augment``: the official augmentations (draws from the augmentation
        generator), else at most the flip of the cached latents."""
        import torch

        vae_config = self.components["vae"].config
        cls = self.cls
        if augment:
            latents, face, hair = self._augmented(photo, flip, noise_gen)
            cls = self.cls_flipped if flip else self.cls
        else:
            latents = photo.latent_mean + photo.latent_std * torch.randn(photo.latent_mean.shape, generator=noise_gen)
            face, hair = photo.face, photo.hair
            if flip:
                latents, face, hair = latents.flip(-1), face.flip(-1), hair.flip(-1)
        if getattr(vae_config, "shift_factor", None) is not None:
            latents = latents - vae_config.shift_factor
        latents = latents * vae_config.scaling_factor
        noise = torch.randn(latents.shape, generator=noise_gen)
        t = torch.tensor([timestep], dtype=torch.long)
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        embeds, pooled = self.encode_prompt(self.prompt(template), self.rows(cls))
        size = float(self.recipe.resolution)
        time_ids = torch.tensor([[size, size, 0.0, 0.0, size, size]])  # SDXL: (original, crop, target)
        dtype, device = self.unet.dtype, self.device
        pred = self.unet(
            noisy.to(device, dtype), t.to(device), encoder_hidden_states=embeds.to(dtype),
            added_cond_kwargs={"text_embeds": pooled.to(dtype), "time_ids": time_ids.to(device, dtype)},
        ).sample.float()  # fmt: skip
        noisy, noise, latents = noisy.to(pred.device), noise.to(pred.device), latents.to(pred.device)
        alphas = self.noise_scheduler.alphas_cumprod
        if self.prediction_type == "v_prediction":  # ε̂ from v̂ = √ᾱ·ε − √(1−ᾱ)·x₀
            a = alphas[timestep].to(pred.device)
            pred = a.sqrt() * pred + (1 - a).sqrt() * noisy
        return two_phase_loss(
            pred, noise, latents, noisy, timestep, alphas, face.to(pred.device), hair.to(pred.device),
            alpha=self.recipe.alpha, hair_weight=self.recipe.hair_weight,
            num_train_timesteps=self.noise_scheduler.config.num_train_timesteps,
            scaling_factor=vae_config.scaling_factor,
        )  # fmt: skip

    # ------------------------------------------------------------------ the loop
    def train(
        self,
        checkpoint: str | Path,
        *,
        cancel: Callable[[], bool] = lambda: False,
        on_progress: Callable[[TrainingProgress], None] | None = None,
        on_step_end: Callable[[IdentityTrainer], bool] | None = None,
    ) -> None:
        """Train until ``recipe.steps``, checkpointing every ``checkpoint_every`` steps; on
        ``cancel()`` (asked before every step) save and raise :class:`TrainingCancelled`.

        ``on_step_end(trainer)`` as :meth:`comic_studio.training.lora.LoraTrainer.train`'s (the
        samples): after every step and once at the start of a resumed run; ``False`` cancels."""
        recipe = self.recipe
        started, first_step = time.perf_counter(), self.step
        total_t = self.noise_scheduler.config.num_train_timesteps
        if on_step_end is not None and self.step > 0 and not on_step_end(self):
            raise TrainingCancelled(self.save(checkpoint), self.step)
        while self.step < recipe.steps:
            if cancel():
                raise TrainingCancelled(self.save(checkpoint), self.step)
            photo = self.photos[self.order.next()]
            timestep = int(sample_timesteps(1, self.timestep_generator, law="uniform", num_train_timesteps=total_t)[0])
            pick = int(len(TEMPLATES) * float(_uniform(self.augment_generator)))
            flip = recipe.flip and float(_uniform(self.augment_generator)) < 0.5
            loss = self._loss(photo, self.noise_generator, timestep, TEMPLATES[pick], flip,
                              augment=recipe.augment == "official")  # fmt: skip
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.losses.append(float(loss.detach()))
            if on_progress is not None:
                rate = (self.step - first_step) / max(time.perf_counter() - started, 1e-9)
                on_progress(TrainingProgress(self.step, recipe.steps, self.losses[-1], recipe.learning_rate, rate,
                                             (recipe.steps - self.step) / rate))  # fmt: skip
            if self.step % recipe.checkpoint_every == 0 or self.step == recipe.steps:
                self.save(checkpoint)
            if on_step_end is not None and not on_step_end(self):
                raise TrainingCancelled(self.save(checkpoint), self.step)

    def render_samples(self, settings: Any, prompts: tuple[str, ...], *, cancel: Callable[[], bool]) -> list[Any]:
        """The fixed-prompt samples with the identity rows as they are now
        (:func:`comic_studio.training.samples.render_samples` with the rows injected)."""
        import torch

        from comic_studio.training.samples import render_samples

        with torch.no_grad():
            rows = [r.detach() for r in self.rows()]
        with self.injecting(rows):
            return render_samples(self, settings, prompts, cancel=cancel)

    def batch_loss(self, seed: int = 1234, timesteps: tuple[int, ...] = (100, 300, 500, 700, 900)) -> Any:
        """The mean loss on a fixed batch — every photo at each of ``timesteps`` (both phases), noise
        from ``seed``, the first template, no flip — with its graph to the MLPs."""
        import torch

        generator = torch.Generator("cpu").manual_seed(seed)
        losses = [self._loss(photo, generator, t, TEMPLATES[0], False) for photo in self.photos for t in timesteps]
        return torch.stack(losses).mean()

    def evaluation_loss(self, seed: int = 1234, timesteps: tuple[int, ...] = (100, 300, 500, 700, 900)) -> float:
        """:meth:`batch_loss` as a number: comparable between steps, unlike the training loss."""
        import torch

        with torch.no_grad():
            return float(self.batch_loss(seed, timesteps))

    # ------------------------------------------------------------------ results and checkpoints
    def embeddings(self) -> dict[str, Any]:
        """The trained token rows as an SDXL textual inversion: ``{clip_l: [2, D1], clip_g: [2, D2]}``."""
        import torch

        with torch.no_grad():
            rows = self.rows()
        return {"clip_l": rows[0].detach().float().cpu().contiguous(),
                "clip_g": rows[1].detach().float().cpu().contiguous()}  # fmt: skip

    # CheckpointedTrainer's save/resume: one step a batch, so no micro-steps and no kept gradients.
    def _weights_state(self) -> dict[str, Any]:
        return {"mlps": {n: p.detach() for n, p in self.mlps.state_dict().items()}}

    def _load_weights(self, state: dict[str, Any]) -> None:
        self.mlps.load_state_dict(state["mlps"])

    def mlp_state(self) -> dict[str, Any]:
        """The MLPs' weights (CPU float32), kept beside the tokens so the identity can be trained further."""
        return {n: p.detach().float().cpu().contiguous() for n, p in self.mlps.state_dict().items()}

    def close(self) -> None:
        """Remove the hooks and the placeholder tokens (the components may be used again)."""
        for hook in self._hooks:
            hook.remove()
        if self.recipe.gradient_checkpointing:
            self.unet.disable_gradient_checkpointing()
        restore_pooling(self._pooling)
        self._pooling = []
        self._hooks = []
        for (tokenizer, encoder), _ids in zip(self.encoders, self.token_ids, strict=True):
            _remove_tokens(tokenizer, encoder, self.tokens)


def _latent_mask(mask: Any, grid: tuple[int, ...]) -> Any:
    """A [1, 1, S, S] mask on the latent grid, binarised at 0.5 as the official code does."""
    import torch.nn.functional as F  # noqa: N812

    return (F.interpolate(mask, size=tuple(grid), mode="area") > 0.5).float()


def _uniform(generator: Any) -> Any:
    import torch

    return torch.rand((), generator=generator)


def _add_tokens(tokenizer: Any, encoder: Any, tokens: tuple[str, ...]) -> list[int]:
    """Add ``tokens`` to the tokenizer and grow the encoder's table (new rows are never read: the
    hook replaces them). Returns their ids."""
    import torch

    if any(t in tokenizer.get_vocab() for t in tokens):
        raise TrainingError(f"the tokenizer already has the identity tokens {tokens}")
    tokenizer.add_tokens(list(tokens))
    with torch.random.fork_rng(devices=[]):  # resizing may draw from the global generator
        encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return [int(tokenizer.convert_tokens_to_ids(t)) for t in tokens]


def _remove_tokens(tokenizer: Any, encoder: Any, tokens: tuple[str, ...]) -> None:
    from diffusers.loaders.textual_inversion import TextualInversionLoaderMixin

    present = [t for t in tokens if t in tokenizer.get_vocab()]
    if present:
        TextualInversionLoaderMixin.unload_textual_inversion(None, present, tokenizer=tokenizer, text_encoder=encoder)


# ------------------------------------------------------------------------------ the files


IDENTITY_METHOD = "stableidentity-sdxl"


def save_identity(path: str | Path, embeddings: dict[str, Any], card: dict[str, Any]) -> Path:
    """Write the textual-inversion file (``clip_l``/``clip_g``) with ``card`` in its metadata, atomically."""
    from safetensors.torch import save_file

    from comic_studio.core.atomic import atomic_path
    from comic_studio.training.export import CARD_KEY

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, "the identity tokens") as tmp:
        save_file({k: embeddings[k] for k in ("clip_l", "clip_g")}, str(tmp),
                  metadata={"format": "pt", CARD_KEY: json.dumps(card)})  # fmt: skip
    return target


def load_identity(data: bytes, where: str) -> dict[str, Any]:
    """The ``clip_l``/``clip_g`` rows of an identity file's bytes ([2, D] each); raises
    :class:`TrainingError` naming ``where`` for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        state = load(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise TrainingError(f"{where}: not a textual-inversion file ({exc})") from exc
    for key in ("clip_l", "clip_g"):
        if key not in state or state[key].ndim != 2:
            raise TrainingError(f"{where}: not an SDXL textual inversion (needs {key!r} of [tokens, width])")
    return {"clip_l": state["clip_l"], "clip_g": state["clip_g"]}

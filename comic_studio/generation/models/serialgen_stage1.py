"""SerialGen's standardization model (seed 004 §3.3): Animate Anyone's image stage plus FBDM and RPIM.

- **ReferenceNet**: a copy of the SD 1.5 UNet, run once at t = 0 on the reference latent with the
  CLIP image embedding as its context. Each of its self-attention layers (``attn1``) records its
  input (the normed hidden states); the denoising UNet's matching ``attn1`` concatenates that to its
  own input along the token axis and uses the result as keys and values (§3.1: "concatenated ... along
  the spatial dimension", so K/V are twice as long). Layers are matched by name (the two UNets have
  one architecture).
- **PoseGuider**: the target (standard) pose image through a conv stack down to latent size, a
  zero-initialised ``conv_out`` to the UNet's first width (320), added to the output of the denoising
  UNet's ``conv_in``. Animate Anyone's paper gives 16-32-64-128; Moore-AnimateAnyone's released
  weights use 16-32-96-256 (``scripts/pose2vid.py``), so the widths are a setting and the loader reads
  them from the file.
- **CLIP image embedding** (one token) is the cross-attention context of both UNets; classifier-free
  guidance uses a zero embedding and, as Moore's ``ReferenceAttentionControl`` does, lets the
  unconditional rows attend without the reference.
- **FBDM** (§3.3, Eq. 3): two learnable vectors v_f, v_b per ReferenceNet self-attention, added to
  its input by the reference's *background* mask m_b resized to the layer:
  f̃ = (f + v_b)∘m′ + (f + v_f)∘(1 − m′). So v_b lands exactly where m′ = 1 (background). The seed
  does not say how m is resized: nearest here, so m′ stays a partition of the grid as Eq. 3 reads.
- **RPIM** (§3.3, Eq. 4): the reference's own pose image through a light four-layer conv net (the
  layer widths are in the paper's supplement, which we do not have: 16-32-64-128 with three stride-2
  steps to latent size, as the PoseGuider's, a setting), then per self-attention a 1×1 conv to its
  width, resized to its grid (bilinear) and added: f̃ = f̃ + f_p.
- FBDM and RPIM start at zero (the vectors and the 1×1 convs), which is exactly the paper's
  "baseline" (Tab. 3) and therefore exactly Moore's stage 1 with its weights.
- FBDM/RPIM change the input of the ReferenceNet's self-attention itself (the seed adds them "within
  each self-attention module of the ReferenceNet"), so the recorded features and the ReferenceNet's
  deeper layers both see them.

The inference recipe (§4.1): the reference padded to 512 × 768, DDIM, 20 steps. The noise schedule
is Moore's stage-1 training schedule (``configs/train/stage1.yaml`` with ``enable_zero_snr``:
scaled-linear betas rescaled to zero terminal SNR, v-prediction, trailing timesteps), which the
released weights were trained with; guidance 3.5 is Moore's script default (the seed gives none).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from torch import nn
from torch.nn import functional as F  # noqa: N812

from comic_studio.core.errors import ComicStudioError
from comic_studio.generation.models.loading import ModelLoadError, read_state_dict

PAPER_POSE_GUIDER_CHANNELS = (16, 32, 64, 128)
"""Animate Anyone's PoseGuider (the issue's 3→16…128)."""
MOORE_POSE_GUIDER_CHANNELS = (16, 32, 96, 256)
"""Moore-AnimateAnyone's released ``pose_guider.pth`` (``train_stage_1.py``, ``pose2vid.py``)."""
RPIM_CHANNELS = (16, 32, 64, 128)
MOORE_FILES = ("denoising_unet", "reference_unet", "pose_guider")
"""Moore-AnimateAnyone's stage-1 weight files (``.pth``; a ``.safetensors`` of the same name is preferred)."""
MODULES_FILE = "serialgen_modules.safetensors"
MODULES_CONFIG = "serialgen_modules.json"
DEFAULT_STEPS = 20  # §4.1: DDIM, 20 steps
DEFAULT_GUIDANCE = 3.5  # Moore's scripts/pose2vid.py --cfg default
DEFAULT_SIZE = (512, 768)  # §4.1: references padded to 512 × 768
MOORE_SCHEDULER = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "steps_offset": 1, "clip_sample": False, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing",
    "prediction_type": "v_prediction",
}  # fmt: skip
"""The schedule Moore's stage 1 trained with (stage1.yaml + enable_zero_snr)."""


class Stage1Error(ComicStudioError):
    """The standardization model cannot run as asked (inputs or weights); says what to do."""


# --------------------------------------------------------------------------- modules


def _conv_stack(channels: tuple[int, ...], pairs: bool) -> tuple[nn.Conv2d, nn.ModuleList]:
    conv_in = nn.Conv2d(3, channels[0], kernel_size=3, padding=1)
    blocks = nn.ModuleList()
    for a, b in zip(channels[:-1], channels[1:]):
        if pairs:  # Animate Anyone's block: a same-width conv, then a stride-2 one
            blocks.append(nn.Conv2d(a, a, kernel_size=3, padding=1))
        blocks.append(nn.Conv2d(a, b, kernel_size=3, padding=1, stride=2))
    return conv_in, blocks


class PoseGuider(nn.Module):
    """Pose image in [0, 1] (B, 3, H, W) → (B, ``out_channels``, H/8, W/8); zero at initialisation."""

    def __init__(self, out_channels: int = 320, channels: tuple[int, ...] = PAPER_POSE_GUIDER_CHANNELS):
        super().__init__()
        self.channels = tuple(channels)
        self.conv_in, self.blocks = _conv_stack(self.channels, pairs=True)
        self.conv_out = nn.Conv2d(self.channels[-1], out_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv_in(pose))
        for block in self.blocks:
            x = F.silu(block(x))
        return self.conv_out(x)


def self_attention_layers(unet: Any) -> list[tuple[str, int]]:
    """(processor name, width) of every self-attention (``attn1``) of ``unet``, in its order."""
    return [
        (f"{name}.processor", module.to_q.in_features)
        for name, module in unet.named_modules()
        if name.endswith("attn1") and hasattr(module, "set_processor")
    ]


@dataclass(frozen=True)
class ModulesConfig:
    layers: tuple[str, ...]
    widths: tuple[int, ...]
    rpim_channels: tuple[int, ...] = RPIM_CHANNELS

    def to_json(self) -> str:
        return json.dumps({"layers": list(self.layers), "widths": list(self.widths),
                           "rpim_channels": list(self.rpim_channels)}, indent=1)  # fmt: skip


class SerialGenModules(nn.Module):
    """FBDM's two vectors and RPIM's 1×1 projection per ReferenceNet self-attention, and RPIM's pose
    encoder; all zero-initialised where the paper's baseline must be kept (vectors, projections)."""

    def __init__(self, config: ModulesConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.index = {name: i for i, name in enumerate(config.layers)}
        self.foreground = nn.ParameterList([nn.Parameter(torch.zeros(c)) for c in config.widths])
        self.background = nn.ParameterList([nn.Parameter(torch.zeros(c)) for c in config.widths])
        # RPIM's "light convolutional network composed of four layers" (§3.3). Its random start is
        # drawn from ``seed``, not the global generator: two fresh runs must train alike.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.pose_in, self.pose_blocks = _conv_stack(tuple(config.rpim_channels), pairs=False)
        self.pose_proj = nn.ModuleList([nn.Conv2d(config.rpim_channels[-1], c, kernel_size=1) for c in config.widths])
        for proj in self.pose_proj:
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)

    @classmethod
    def for_unet(cls, unet: Any, rpim_channels: tuple[int, ...] = RPIM_CHANNELS) -> SerialGenModules:
        layers = self_attention_layers(unet)
        return cls(ModulesConfig(tuple(n for n, _ in layers), tuple(w for _, w in layers), tuple(rpim_channels)))

    def encode_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """The reference's pose image in [0, 1] → RPIM's pose features at latent size."""
        x = F.silu(self.pose_in(pose))
        for i, block in enumerate(self.pose_blocks):
            x = block(x)
            if i < len(self.pose_blocks) - 1:
                x = F.silu(x)
        return x

    def fbdm(self, name: str, features: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """Eq. 3 on (B, L, C) ``features`` with the background mask already on the layer's grid
        as (B, L, 1), 1 = background."""
        i = self.index[name]
        vf = self.foreground[i].to(features.dtype)
        vb = self.background[i].to(features.dtype)
        m = background.to(features.dtype)
        return (features + vb) * m + (features + vf) * (1 - m)

    def rpim(self, name: str, pose_features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Eq. 4's f_p for layer ``name``: 1×1-matched to its width, resized to its grid, as (B, L, C)."""
        p = self.pose_proj[self.index[name]](pose_features)
        if tuple(p.shape[-2:]) != grid:
            p = F.interpolate(p, size=grid, mode="bilinear", align_corners=False)
        return p.flatten(2).transpose(1, 2)


def layer_grid(tokens: int, latent: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) of a layer with ``tokens`` positions in a UNet whose input is ``latent`` (each
    stride-2 step rounds up, as the convolutions do)."""
    h, w = latent
    while h * w > tokens:
        h, w = (h + 1) // 2, (w + 1) // 2
    if h * w != tokens:
        raise ValueError(f"no UNet level of a {latent} latent has {tokens} positions")
    return h, w


# --------------------------------------------------------------------------- attention processors


@dataclass
class ReferenceState:
    """What one generation shares between the ReferenceNet's writers and the denoising UNet's readers."""

    latent: tuple[int, int]
    modules: SerialGenModules | None = None
    background: torch.Tensor | None = None
    """(B, 1, H, W) at latent size, 1 = background (FBDM's m_b)."""
    pose_features: torch.Tensor | None = None
    """RPIM's encoded reference pose (B, C, H, W)."""
    bank: dict[str, torch.Tensor] = field(default_factory=dict)
    plain_rows: int = 0
    """Leading batch rows of the denoising UNet that attend without the reference (CFG's negative)."""
    pose_guide: torch.Tensor | None = None
    """The PoseGuider's output, added after the denoising UNet's conv_in."""


class ReferenceWriter(AttnProcessor2_0):
    """A ReferenceNet self-attention: FBDM + RPIM on its input, which is recorded and then attended."""

    def __init__(self, name: str, state: ReferenceState):
        super().__init__()
        self.name, self.state = name, state

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: Any = None,
                 attention_mask: Any = None, temb: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:  # fmt: skip
        state = self.state
        if state.modules is not None and (state.background is not None or state.pose_features is not None):
            grid = layer_grid(hidden_states.shape[1], state.latent)
            if state.background is not None:
                m = F.interpolate(state.background.to(hidden_states.dtype), size=grid, mode="nearest")
                hidden_states = state.modules.fbdm(self.name, hidden_states, m.flatten(2).transpose(1, 2))
            if state.pose_features is not None:
                hidden_states = hidden_states + state.modules.rpim(self.name, state.pose_features, grid).to(
                    hidden_states.dtype
                )
        state.bank[self.name] = hidden_states
        return super().__call__(attn, hidden_states, None, attention_mask, temb)


def reference_context(hidden_states: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The keys/values of a denoising self-attention: its own tokens, then the reference's (2× long)."""
    return torch.cat([hidden_states, reference.to(hidden_states.dtype)], dim=1)


class ReferenceReader(AttnProcessor2_0):
    """A denoising-UNet self-attention that also attends to the ReferenceNet's recorded input."""

    def __init__(self, name: str, state: ReferenceState):
        super().__init__()
        self.name, self.state = name, state

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: Any = None,
                 attention_mask: Any = None, temb: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:  # fmt: skip
        reference = self.state.bank.get(self.name)
        if reference is None:
            return super().__call__(attn, hidden_states, None, attention_mask, temb)
        if reference.shape[0] != hidden_states.shape[0]:
            raise RuntimeError(f"{self.name}: {reference.shape[0]} reference rows for {hidden_states.shape[0]}")
        k = self.state.plain_rows
        parts = []
        if k:
            parts.append(super().__call__(attn, hidden_states[:k], None, attention_mask, temb))
        own = hidden_states[k:]
        parts.append(super().__call__(attn, own, reference_context(own, reference[k:]), attention_mask, temb))
        return torch.cat(parts) if len(parts) > 1 else parts[0]


@contextlib.contextmanager
def attached(reference_unet: Any, denoising_unet: Any, state: ReferenceState) -> Iterator[ReferenceState]:
    """Writers on the ReferenceNet's, readers on the denoising UNet's self-attentions, and the pose
    guide after its conv_in, for the ``with`` block; the previous processors come back after."""
    before_ref, before_den = dict(reference_unet.attn_processors), dict(denoising_unet.attn_processors)
    ref_names = {n for n, _ in self_attention_layers(reference_unet)}
    den_names = {n for n, _ in self_attention_layers(denoising_unet)}
    if ref_names != den_names:
        raise Stage1Error("the ReferenceNet and the denoising UNet have different architectures")
    reference_unet.set_attn_processor({n: ReferenceWriter(n, state) if n in ref_names else p
                                       for n, p in before_ref.items()})  # fmt: skip
    denoising_unet.set_attn_processor({n: ReferenceReader(n, state) if n in den_names else p
                                       for n, p in before_den.items()})  # fmt: skip

    def add_pose(_module: Any, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        return output if state.pose_guide is None else output + state.pose_guide.to(output.dtype)

    hook = denoising_unet.conv_in.register_forward_hook(add_pose)
    try:
        yield state
    finally:
        hook.remove()
        reference_unet.set_attn_processor(before_ref)
        denoising_unet.set_attn_processor(before_den)


# --------------------------------------------------------------------------- weights


@dataclass
class Stage1Weights:
    reference_unet: Any
    denoising_unet: Any
    pose_guider: PoseGuider


def moore_files(folder: Path) -> dict[str, Path | None]:
    """Each of Moore's stage-1 files in ``folder`` (``NAME.safetensors`` before ``NAME.pth``), or None."""
    found: dict[str, Path | None] = {}
    for name in MOORE_FILES:
        found[name] = next((folder / f"{name}{s}" for s in (".safetensors", ".pth") if (folder / f"{name}{s}").is_file()),
                           None)  # fmt: skip
    return found


def _strict(module: Any, state: dict[str, Any], path: Path) -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        problem = (f"missing {', '.join(missing[:3])}" if missing else "") + ("; " if missing and unexpected else "") + (
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else "")  # fmt: skip
        raise ModelLoadError(f"{path.name}: not Moore-AnimateAnyone stage-1 weights for this base model ({problem})")


def pose_guider_channels(state: dict[str, Any], path: Path) -> tuple[tuple[int, ...], int]:
    """(widths, output channels) of a PoseGuider state dict: read from its conv shapes."""
    try:
        widths = [int(state["conv_in.weight"].shape[0])]
        i = 1
        while f"blocks.{i}.weight" in state:
            widths.append(int(state[f"blocks.{i}.weight"].shape[0]))
            i += 2
        return tuple(widths), int(state["conv_out.weight"].shape[0])
    except (KeyError, AttributeError, IndexError) as exc:
        raise ModelLoadError(f"{path.name}: not a PoseGuider state dict (no {exc})") from exc


def load_moore_stage1(folder: str | Path, base_unet: Any, *, allow_pickle: bool = False) -> Stage1Weights:
    """Moore-AnimateAnyone's stage-1 weights in ``folder`` onto copies of ``base_unet`` (an SD 1.5
    ``UNet2DConditionModel``) and a :class:`PoseGuider`, every key matched (strict). The released
    ``denoising_unet.pth`` of the stage-1 ("3D" UNet without motion modules) has the 2D UNet's key
    names: its inflated convolutions are ``Conv2d`` subclasses with 2D weights."""
    import copy

    root = Path(folder)
    files = moore_files(root)
    missing = [f"{n}.pth" for n, p in files.items() if p is None]
    if missing:
        raise ModelLoadError(f"{root}: missing {', '.join(missing)} (Moore-AnimateAnyone's stage-1 weights)")
    loaded: dict[str, Any] = {}
    for name in ("reference_unet", "denoising_unet"):
        path = files[name]
        assert path is not None
        unet = copy.deepcopy(base_unet)
        _strict(unet, read_state_dict(path, allow_pickle=allow_pickle), path)
        loaded[name] = unet.eval()
    path = files["pose_guider"]
    assert path is not None
    state = read_state_dict(path, allow_pickle=allow_pickle)
    widths, out = pose_guider_channels(state, path)
    if out != base_unet.config.block_out_channels[0]:
        raise ModelLoadError(f"{path.name}: its output has {out} channels, the UNet's conv_in {base_unet.config.block_out_channels[0]}")  # fmt: skip
    guider = PoseGuider(out, widths)
    _strict(guider, state, path)
    return Stage1Weights(loaded["reference_unet"], loaded["denoising_unet"], guider.eval())


def save_modules(modules: SerialGenModules, folder: str | Path) -> Path:
    """FBDM/RPIM weights as ``serialgen_modules.safetensors`` + its JSON config, atomically."""
    from safetensors.torch import save as save_bytes

    from comic_studio.core.atomic import atomic_write_bytes, atomic_write_text

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in modules.state_dict().items()}
    atomic_write_text(root / MODULES_CONFIG, modules.config.to_json(), "the SerialGen modules' config")
    return atomic_write_bytes(root / MODULES_FILE, save_bytes(tensors), "the SerialGen modules")


def load_modules(folder: str | Path, reference_unet: Any) -> SerialGenModules:
    """Trained FBDM/RPIM weights from ``folder``; they must belong to ``reference_unet``'s layout."""
    from comic_studio.core.safe_read import UnsafeInputError, read_json

    root = Path(folder)
    try:
        raw = read_json(root / MODULES_CONFIG)
        config = ModulesConfig(tuple(raw["layers"]), tuple(int(w) for w in raw["widths"]),
                               tuple(int(c) for c in raw["rpim_channels"]))  # fmt: skip
    except (UnsafeInputError, KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{root / MODULES_CONFIG}: not a SerialGen modules config ({exc})") from exc
    expected = self_attention_layers(reference_unet)
    if list(zip(config.layers, config.widths)) != expected:
        raise ModelLoadError(f"{root}: these FBDM/RPIM weights were trained for another base model's layout")
    modules = SerialGenModules(config)
    path = root / MODULES_FILE
    _strict(modules, read_state_dict(path), path)
    return modules.eval()


# --------------------------------------------------------------------------- inference


@dataclass
class Stage1Pipeline:
    """Everything stage 1 runs on (float32/16 on one device)."""

    weights: Stage1Weights
    modules: SerialGenModules | None
    """FBDM/RPIM (None: Moore's stage 1 as released, with no place for them at all)."""
    vae: Any
    image_encoder: Any
    """A ``CLIPVisionModelWithProjection`` whose projection width is the UNets' cross-attention width."""
    device: str = "cpu"

    @property
    def dtype(self) -> Any:
        return self.weights.denoising_unet.dtype

    def image_embeds(self, image: Any) -> torch.Tensor:
        """The reference's CLIP image embedding as one context token (B=1, 1, D): the picture squashed
        to the encoder's square (as Moore's pipeline does) and CLIP-normalised."""
        side = int(self.image_encoder.config.image_size)
        pixels = clip_pixels(image, side).to(self.device, self.image_encoder.dtype)
        return self.image_encoder(pixels).image_embeds.unsqueeze(1)

    def latents(self, image: Any) -> torch.Tensor:
        """The VAE's mean latent of an RGB PIL image (already at the generation size), scaled."""
        x = to_tensor(image).to(self.device, self.vae.dtype) * 2 - 1
        return self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor

    def write_reference(self, state: ReferenceState, ref_latents: torch.Tensor, context: torch.Tensor) -> None:
        """The ReferenceNet's single pass at t = 0 (fills ``state.bank``)."""
        t = torch.zeros(ref_latents.shape[0], dtype=torch.long, device=ref_latents.device)
        self.weights.reference_unet(ref_latents, t, encoder_hidden_states=context, return_dict=False)

    def generate(self, reference: Any, background: np.ndarray, reference_pose: Any, target_pose: Any, *,
                 width: int, height: int, seed: int, steps: int = DEFAULT_STEPS,
                 guidance: float = DEFAULT_GUIDANCE,
                 on_step: Callable[[int, int], bool] | None = None) -> Any:  # fmt: skip
        """The standardized picture (PIL RGB, ``width`` × ``height``) of ``reference`` (PIL, already
        padded to the size's aspect) with its background mask (bool, True = background) and its pose
        image, in the ``target_pose`` image's pose. ``on_step`` returning False stops (None returned)."""
        from diffusers import DDIMScheduler
        from PIL import Image

        scheduler = DDIMScheduler(**MOORE_SCHEDULER)
        scheduler.set_timesteps(steps, device=self.device)
        dtype, device = self.dtype, self.device
        image = reference.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        cfg = guidance > 1.0
        with torch.no_grad():
            embeds = self.image_embeds(image).to(dtype)
            context = torch.cat([torch.zeros_like(embeds), embeds]) if cfg else embeds
            ref_latents = self.latents(image).to(dtype)
            latent_size = (ref_latents.shape[-2], ref_latents.shape[-1])
            rows = 2 if cfg else 1
            state = ReferenceState(latent_size, self.modules, plain_rows=1 if cfg else 0)
            state.background = mask_tensor(background, latent_size).to(device, dtype).repeat(rows, 1, 1, 1)
            if self.modules is not None:
                ref_pose = to_tensor(reference_pose.convert("RGB").resize((width, height))).to(device, dtype)
                state.pose_features = self.modules.encode_pose(ref_pose).repeat(rows, 1, 1, 1)
            guide = self.weights.pose_guider(
                to_tensor(target_pose.convert("RGB").resize((width, height))).to(device, dtype)
            )
            state.pose_guide = guide.repeat(rows, 1, 1, 1)
            generator = torch.Generator("cpu").manual_seed(seed)
            latents = torch.randn((1, 4, *latent_size), generator=generator).to(device, dtype)
            latents = latents * scheduler.init_noise_sigma
            with attached(self.weights.reference_unet, self.weights.denoising_unet, state):
                self.write_reference(state, ref_latents.repeat(rows, 1, 1, 1), context)
                for i, t in enumerate(scheduler.timesteps):
                    model_in = scheduler.scale_model_input(torch.cat([latents] * rows), t)
                    pred = self.weights.denoising_unet(model_in, t, encoder_hidden_states=context, return_dict=False)[0]
                    if cfg:
                        uncond, cond = pred.chunk(2)
                        pred = uncond + guidance * (cond - uncond)
                    latents = scheduler.step(pred, t, latents, return_dict=False)[0]
                    if on_step is not None and on_step(i + 1, steps) is False:
                        return None
            decoded = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        pixels = ((decoded[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(pixels, "RGB")


def to_tensor(image: Any) -> torch.Tensor:
    """PIL RGB → (1, 3, H, W) float in [0, 1] (the pose images' range: Moore's do_normalize=False)."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def clip_pixels(image: Any, side: int) -> torch.Tensor:
    from PIL import Image

    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    return (to_tensor(image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)) - mean) / std


def mask_tensor(background: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """A bool (H, W) background mask → (1, 1, h, w) float at ``size`` (nearest, see the module doc)."""
    m = torch.from_numpy(np.asarray(background, dtype=np.float32))[None, None]
    return F.interpolate(m, size=size, mode="nearest")


# --------------------------------------------------------------------------- finding and loading the models

STAGE1_ID = "animateanyone-stage1"
ENCODER_ID = "sd-image-variations-image-encoder"


def _installed(spec: str, default_id: str, what: str, places: Any = None) -> Path:
    from comic_studio.weights.catalogue import CatalogueError, load_catalogue
    from comic_studio.weights.locate import Places, locate

    spec = spec.strip() or default_id
    path = Path(spec).expanduser()
    if path.exists():
        return path
    try:
        entry = load_catalogue().get(spec)
    except CatalogueError as exc:
        raise ModelLoadError(f"{what}: {spec!r} is neither a folder nor a catalogue id ({exc})") from exc
    found = locate(entry, places or Places.from_settings())
    if found is None:
        files = ", ".join(Path(f.path).name for f in entry.files)
        raise ModelLoadError(
            f"{what} needs {entry.name} ({files} from {entry.repo}), which is not installed: download "
            f"{entry.id!r} in the Models window (or with the models download command), or name a folder holding them"
        )
    return found.path


def stage1_folder(spec: str = "", places: Any = None) -> Path:
    """The folder of Moore-AnimateAnyone's stage-1 files: ``spec`` is a folder or a catalogue id (empty:
    :data:`STAGE1_ID`). :class:`ModelLoadError` names the files missing and where to get them."""
    folder = _installed(spec, STAGE1_ID, "the serialgen standardizer", places)
    missing = [f"{n}.pth" for n, p in moore_files(folder).items() if p is None]
    if missing:
        raise ModelLoadError(f"{folder}: missing {', '.join(missing)} (Moore-AnimateAnyone's stage-1 weights, "
                             f"from {STAGE1_ID!r} in the Models window)")  # fmt: skip
    return folder


def encoder_folder(spec: str = "", places: Any = None) -> Path:
    """The CLIP image encoder (``CLIPVisionModelWithProjection`` folder) stage 1 was trained with."""
    return _installed(spec, ENCODER_ID, "the serialgen standardizer's image encoder", places)


def load_image_encoder(folder: Path, *, dtype: Any, device: str, allow_pickle: bool) -> Any:
    """A ``CLIPVisionModelWithProjection`` from ``folder``; pickled weights only when allowed."""
    from transformers import CLIPVisionModelWithProjection

    has_safetensors = any(folder.glob("*.safetensors"))
    if not has_safetensors and not allow_pickle:
        raise ModelLoadError(f"{folder}: the image encoder's weights are pickled (pytorch_model.bin); refused. "
                             "Allow pickled weights in Preferences (or --allow-pickle), or convert them to model.safetensors")  # fmt: skip
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True,
                                                                use_safetensors=has_safetensors)  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: not a CLIP image encoder with projection: {exc}") from exc
    return encoder.to(device).eval()


def build_pipeline(unet: Any, vae: Any, weights_folder: Path, encoder_path: Path, *, modules_folder: str = "",
                   dtype: Any = None, device: str = "cpu", allow_pickle: bool = False) -> Stage1Pipeline:  # fmt: skip
    """Stage 1 on the SD 1.5 base ``unet``/``vae``: Moore's weights, the image encoder, and FBDM/RPIM
    (trained ones from ``modules_folder``, else zero = the paper's baseline)."""
    weights = load_moore_stage1(weights_folder, unet, allow_pickle=allow_pickle)
    dtype = dtype or unet.dtype
    encoder = load_image_encoder(encoder_path, dtype=dtype, device=device, allow_pickle=allow_pickle)
    width = int(unet.config.cross_attention_dim)
    if int(encoder.config.projection_dim) != width:
        raise ModelLoadError(f"{encoder_path}: its image embedding has {encoder.config.projection_dim} values, the "
                             f"UNets' context {width} (stage 1 needs sd-image-variations' ViT-L/14 encoder)")  # fmt: skip
    modules = (load_modules(modules_folder, weights.reference_unet) if modules_folder
               else SerialGenModules.for_unet(weights.reference_unet))  # fmt: skip
    for part in (weights.reference_unet, weights.denoising_unet, weights.pose_guider, modules):
        part.to(device, dtype)
    return Stage1Pipeline(weights, modules, vae, encoder, device)

"""AnimeAdapter (seed 003): fine-grained CLIP patch tokens, injected through token-masked decoupled
cross-attention in every cross-attention layer of a Stable Diffusion UNet.

Shared by the ``anime`` backend (inference) and the trainer: both import it from here (the
generation layer sits below backends and training).

The pieces, each as the paper specifies (section numbers are the seed's):

- **Fine-grained tokens** (§3.1, Eq. 2): the hidden states of the last K layers of a CLIP vision
  encoder (ViT-L/14 at 224 px: 257 tokens, CLS + 16×16 patches), each through its own
  ``Linear(d_clip → d_ctx)`` with bias, scaled by a learnable scalar and summed. Token-wise only (no
  resampler), so token t still describes patch t of the reference and can be masked.
  K = 7 is the paper's default (§3.1, Tab. 6 ablates 3/7/11/15).
- **Decoupled cross-attention in all cross-attention layers** (§3.2 Eq. 3, "Full-Blocks" beats
  "Up-Blocks" in Tab. 3): each layer gets ``to_k_ip`` / ``to_v_ip`` (``d_ctx → inner``, no bias, as
  IP-Adapter) and its output is text attention + Σᵢ λᵢ · masked image attention of reference i
  (Eq. 4).
- **Token masks** (§3.3): the reference's foreground mask area-pooled to the patch grid and
  thresholded. In training a large negative bias goes on the masked keys before the softmax
  (Eq. 5); at inference the full softmax is kept and the binary mask multiplied in after it, with
  no renormalisation (Eq. 6).

Where the paper is silent these are settings (:class:`AnimeAdapterConfig`), named as such:
the CLS token's treatment (``cls_token``: "keep" by default — it carries the global appearance and
guarantees a non-empty key set in training), the pooling threshold (0.5), the size of the
"large negative bias" (−1e4: ``exp`` of it underflows to exactly 0 in float32/bfloat16/float16, so
masked tokens get exactly zero attention and zero gradient) and the layer scales' initial value
(1/K, so the fused tokens start at the scale of one projected layer).

Note on Eq. 6: because the softmax is *not* renormalised, background keys still take their share of
the attention mass. Their *values* never reach the output (tested exactly), but their keys lower the
weight the foreground gets. That is the paper's rule; in training (Eq. 5) background tokens have no
influence at all.

Saved as ``anime_adapter.safetensors`` (``proj.{k}.weight/bias``, ``layer_scale`` [K],
``ip.{n}.to_k_ip.weight`` / ``ip.{n}.to_v_ip.weight`` in the UNet's cross-attention order) plus
``config.json`` (family, encoder, K, layer indices, token count, the UNet layer names and widths).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from comic_studio.core.atomic import atomic_path, atomic_write_text
from comic_studio.core.safe_read import UnsafeInputError, read_json
from comic_studio.generation.models.loading import ModelLoadError, read_state_dict

DEFAULT_K = 7
"""§3.1: "We use K = 7 in all main experiments"."""
K_RANGE = (1, 15)
"""The paper ablates K ∈ {3, 7, 11, 15} (Tab. 6); any K up to 15 is allowed (tests use 3)."""
TRAIN_MASK_BIAS = -1.0e4
"""Eq. 5's "large negative bias" (the value is not given): exp(−1e4) is exactly 0 in every float type."""
MASK_THRESHOLD = 0.5
"""A patch is foreground when at least this fraction of it is (the paper gives no threshold)."""
CLS_MODES = ("keep", "mask")
"""What the CLS token's mask is: the paper is silent. "keep": always attended (it has no patch);
"mask": never."""
WEIGHTS_FILE = "anime_adapter.safetensors"
CONFIG_FILE = "config.json"
FAMILIES = ("sd15", "sdxl")
MAX_CONFIG_BYTES = 1024 * 1024


class AdapterFormatError(ModelLoadError):
    """An AnimeAdapter weights folder is missing, damaged or of another UNet; names the file."""


@dataclass(frozen=True)
class AnimeAdapterConfig:
    """What the adapter is built for; stored beside the weights as ``config.json``."""

    family: str
    """The base family: "sd15" (the paper's: its 24.7 M parameters fit SD1.5 + ViT-L/14 + K = 7) or "sdxl"."""
    encoder: str
    """The CLIP vision encoder it reads (a catalogue id or a description)."""
    clip_hidden: int
    encoder_layers: int
    """The encoder's transformer depth (24 for ViT-L/14): the fused layers are its last ``k_layers``."""
    tokens: int
    """Tokens per reference: CLS + patches (257 for ViT-L/14 at 224 px)."""
    context_dim: int
    """The UNet's cross-attention width (768 for SD1.5)."""
    k_layers: int = DEFAULT_K
    layer_names: tuple[str, ...] = ()
    """The UNet's cross-attention processor names, in order (``ip.{n}`` is the n-th)."""
    layer_widths: tuple[int, ...] = ()
    """Each cross-attention layer's inner width (what ``to_k_ip`` maps to)."""
    cls_token: str = "keep"
    mask_threshold: float = MASK_THRESHOLD
    format_version: int = 1
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not K_RANGE[0] <= self.k_layers <= min(K_RANGE[1], self.encoder_layers):
            raise ValueError(
                f"k_layers must be in {K_RANGE[0]}..{min(K_RANGE[1], self.encoder_layers)}, got {self.k_layers}"
            )
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.cls_token not in CLS_MODES:
            raise ValueError(f"cls_token must be one of {CLS_MODES}, got {self.cls_token!r}")
        if len(self.layer_names) != len(self.layer_widths):
            raise ValueError("layer_names and layer_widths differ in length")

    @property
    def layer_indices(self) -> list[int]:
        """Indices into transformers' ``hidden_states`` (entry 0 is the embeddings, entry i the
        output of layer i): the last K layers."""
        return list(range(self.encoder_layers - self.k_layers + 1, self.encoder_layers + 1))

    @property
    def grid(self) -> int:
        """Patches per side (16 for ViT-L/14 at 224 px)."""
        return math.isqrt(self.tokens - 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_indices"] = self.layer_indices
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnimeAdapterConfig:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("layer_names", "layer_widths"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


def cross_attention_layers(unet: Any) -> list[tuple[str, int]]:
    """``(processor name, inner width)`` of every cross-attention layer of ``unet``, in
    ``unet.attn_processors`` order (down, mid, up): 16 layers for SD1.5, 70 for SDXL."""
    out = []
    for name in unet.attn_processors:
        if name.endswith("attn2.processor"):
            attn = unet.get_submodule(name[: -len(".processor")])
            out.append((name, int(attn.to_k.out_features)))
    return out


class IPProjection(nn.Module):
    """One cross-attention layer's image-branch projections (W'_k, W'_v of Eq. 3)."""

    def __init__(self, context_dim: int, width: int) -> None:
        super().__init__()
        self.to_k_ip = nn.Linear(context_dim, width, bias=False)
        self.to_v_ip = nn.Linear(context_dim, width, bias=False)


class AnimeAdapter(nn.Module):
    """The trainable part: K token projections with layer scales, and the image-branch K/V of every
    cross-attention layer. Its ``state_dict`` keys are the weights file's."""

    def __init__(self, config: AnimeAdapterConfig) -> None:
        super().__init__()
        self.config = config
        self.proj = nn.ModuleList(nn.Linear(config.clip_hidden, config.context_dim) for _ in range(config.k_layers))
        # Eq. 2's γ_k; their initial value is not given (1/K: the sum starts at one layer's scale).
        self.layer_scale = nn.Parameter(torch.full((config.k_layers,), 1.0 / config.k_layers))
        self.ip = nn.ModuleList(IPProjection(config.context_dim, width) for width in config.layer_widths)

    @classmethod
    def for_unet(cls, unet: Any, *, clip_hidden: int, encoder_layers: int, tokens: int, family: str = "sd15",
                 encoder: str = "clip-vit-l-14-vision", k_layers: int = DEFAULT_K, **settings: Any) -> AnimeAdapter:  # fmt: skip
        """A freshly initialised adapter for ``unet`` (works on the ``meta`` device too)."""
        layers = cross_attention_layers(unet)
        config = AnimeAdapterConfig(
            family=family, encoder=encoder, clip_hidden=clip_hidden, encoder_layers=encoder_layers, tokens=tokens,
            context_dim=int(unet.config.cross_attention_dim), k_layers=k_layers,
            layer_names=tuple(n for n, _ in layers), layer_widths=tuple(w for _, w in layers), **settings,
        )  # fmt: skip
        return cls(config)

    def fuse(self, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
        """Eq. 2: F = Σ_k γ_k · W_k h^(k). ``hidden_states`` are the K selected layers' outputs,
        ``[batch, tokens, d_clip]`` each; the result is ``[batch, tokens, d_ctx]``."""
        if len(hidden_states) != self.config.k_layers:
            raise ValueError(f"expected {self.config.k_layers} hidden layers, got {len(hidden_states)}")
        fused = None
        for k, (proj, h) in enumerate(zip(self.proj, hidden_states)):
            term = self.layer_scale[k] * proj(h.to(proj.weight.dtype))
            fused = term if fused is None else fused + term
        assert fused is not None
        return fused

    def select_layers(self, all_hidden_states: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The last K layers' outputs from transformers' ``output_hidden_states`` tuple."""
        expected = self.config.encoder_layers + 1
        if len(all_hidden_states) != expected:
            raise ValueError(
                f"the image encoder has {len(all_hidden_states) - 1} layers, the adapter expects "
                f"{self.config.encoder_layers} ({self.config.encoder})"
            )
        return [all_hidden_states[i] for i in self.config.layer_indices]


# ------------------------------------------------------------------------------ masks


def token_mask(foreground: np.ndarray | None, config: AnimeAdapterConfig) -> torch.Tensor:
    """§3.3's token-level mask ``[tokens]`` (1 = foreground, attended): ``foreground`` (a boolean or
    0..1 ``(H, W)`` array aligned with the encoder's square input) area-pooled to the patch grid and
    thresholded; CLS first, per ``config.cls_token``. ``None``: every token is foreground."""
    if foreground is None:
        mask = torch.ones(config.tokens)
        if config.cls_token == "mask":
            mask[0] = 0.0
        return mask
    grid = config.grid
    fg = torch.as_tensor(np.asarray(foreground, dtype=np.float32))[None, None]
    pooled = F.adaptive_avg_pool2d(fg, (grid, grid))[0, 0]  # area pooling: each patch's foreground fraction
    patches = (pooled >= config.mask_threshold).float().flatten()
    cls = torch.ones(1) if config.cls_token == "keep" else torch.zeros(1)
    return torch.cat([cls, patches])


def region_tokens(region: torch.Tensor, queries: int) -> torch.Tensor:
    """An output-placement mask ``[batch, H, W]`` (0..1) at one attention layer's resolution:
    ``[batch, queries]``. The layer's grid is the factorisation of ``queries`` whose shape is closest
    to the mask's (the latent keeps the image's aspect ratio)."""
    height, width = region.shape[-2:]
    target = math.log(width / height)
    best_h = min(
        (h for h in range(1, queries + 1) if queries % h == 0),
        key=lambda h: abs(math.log((queries // h) / h) - target),
    )
    pooled = F.adaptive_avg_pool2d(region[:, None].float(), (best_h, queries // best_h))
    return pooled.flatten(1)


def masked_image_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor, *, training: bool
) -> torch.Tensor:
    """Attention of ``query`` ``[B, heads, N, d]`` over one reference's tokens ``key``/``value``
    ``[B, heads, T, d]`` with the token mask ``[B, T]`` (1 = foreground).

    Training (Eq. 5): TRAIN_MASK_BIAS on masked keys' logits before the softmax. Inference (Eq. 6):
    the full softmax, then the binary mask multiplied into the weights, not renormalised; since
    ``(softmax ⊙ m) V = softmax (m ⊙ V)`` that is the fused kernel with masked values zeroed."""
    m = mask.to(query.dtype)
    if training:
        bias = (1.0 - m)[:, None, None, :] * TRAIN_MASK_BIAS
        return F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
    return F.scaled_dot_product_attention(query, key, value * m[:, None, :, None])


# ------------------------------------------------------------------------------ processors


@dataclass
class Reference:
    """One reference for one job: its fused tokens ``[batch, T, d_ctx]`` (the batch as the UNet
    sees it: under CFG the negative half first), its token mask ``[batch, T]`` (or ``[T]``), λ, and
    where in the output it applies (``[batch or 1, H, W]`` 0..1, ``None``: everywhere)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    scale: float = 1.0
    region: torch.Tensor | None = None


@dataclass
class AdapterState:
    """What every processor of one attached adapter reads during a call (set per job)."""

    references: list[Reference] = field(default_factory=list)
    training: bool = False


class AnimeAttnProcessor:
    """Cross-attention with the AnimeAdapter image branch (Eq. 4). With no references it *is* the
    stock processor (delegated: a pipeline without references is bit-identical to diffusers')."""

    def __init__(self, projection: IPProjection, state: AdapterState, stock: Any) -> None:
        self.projection = projection
        self.state = state
        self.stock = stock

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:  # fmt: skip
        refs = [r for r in self.state.references if r.scale != 0.0]
        if not refs or encoder_hidden_states is None:
            return self.stock(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, _, _ = hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, encoder_hidden_states.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], -1, attn.heads, head_dim).transpose(1, 2)

        q = heads(query)
        out = F.scaled_dot_product_attention(q, heads(key), heads(value), attn_mask=attention_mask)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        queries = out.shape[1]
        for ref in refs:
            tokens = _batched(ref.tokens.to(query.dtype), batch)
            mask = _batched(ref.mask if ref.mask.ndim == 2 else ref.mask[None], batch)
            # The projections' own precision (float32 in training over a half-precision UNet; the
            # UNet's when rendering), the attention in the UNet's.
            own = self.projection.to_k_ip.weight.dtype
            k_ip = heads(self.projection.to_k_ip(tokens.to(own)).to(query.dtype))
            v_ip = heads(self.projection.to_v_ip(tokens.to(own)).to(query.dtype))
            image = masked_image_attention(q, k_ip, v_ip, mask, training=self.state.training)
            image = image.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
            if ref.region is not None:
                image = image * _batched(region_tokens(ref.region, queries), batch)[..., None].to(image.dtype)
            out = out + ref.scale * image
        hidden_states = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def _batched(x: torch.Tensor, batch: int) -> torch.Tensor:
    if x.shape[0] == batch:
        return x
    if x.shape[0] == 1:
        return x.expand(batch, *x.shape[1:])
    raise ValueError(f"a reference input has batch {x.shape[0]}, the UNet runs batch {batch}")


@contextmanager
def attached(unet: Any, adapter: AnimeAdapter, state: AdapterState) -> Iterator[AdapterState]:
    """The adapter's processors on every cross-attention layer of ``unet`` inside the block, the
    UNet's own processors back afterwards (the UNet is shared with other backends)."""
    layers = cross_attention_layers(unet)
    names = [n for n, _ in layers]
    if tuple(names) != adapter.config.layer_names or tuple(w for _, w in layers) != adapter.config.layer_widths:
        raise AdapterFormatError(
            f"these AnimeAdapter weights were made for a {adapter.config.family} UNet with "
            f"{len(adapter.config.layer_names)} cross-attention layers; this UNet has {len(names)} (or other widths). "
            "Use adapter weights trained for this base model's family."
        )
    before = unet.attn_processors
    processors = dict(before)
    for name, projection in zip(names, adapter.ip):
        # The layer's own processor answers whenever no reference is active (a bit-identical no-op).
        processors[name] = AnimeAttnProcessor(projection, state, before[name])
    unet.set_attn_processor(processors)
    try:
        yield state
    finally:
        unet.set_attn_processor(before)


# ------------------------------------------------------------------------------ reference encoding


def square(image: Any, foreground: np.ndarray | None, size: int) -> tuple[Any, np.ndarray | None]:
    """The reference and its mask centre-cropped to a square and resized to the encoder's input
    side: the same geometry for both, so token t of the image is cell t of the mask."""
    from PIL import Image

    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    picture = image.convert("RGB").crop(box).resize((size, size), Image.Resampling.BICUBIC)
    if foreground is None:
        return picture, None
    if foreground.shape != (h, w):
        raise ValueError(f"the reference mask is {foreground.shape[1]}×{foreground.shape[0]}, the image {w}×{h}")
    crop = np.asarray(foreground, dtype=np.float32)[box[1] : box[3], box[0] : box[2]]
    return picture, crop


def encode_hidden(encoder: Any, processor: Any, image: Any, adapter: AnimeAdapter) -> list[torch.Tensor]:
    """The K selected hidden layers of ``encoder`` for one square reference ``image`` (``[1, T, d]`` each)."""
    pixels = processor(images=image, return_tensors="pt").pixel_values.to(device=encoder.device, dtype=encoder.dtype)
    with torch.no_grad():
        out = encoder(pixels, output_hidden_states=True)
    return adapter.select_layers(out.hidden_states)


def encoder_side(encoder: Any) -> int:
    return int(encoder.config.image_size)


# ------------------------------------------------------------------------------ files


def save_adapter(adapter: AnimeAdapter, folder: str | Path) -> Path:
    """``anime_adapter.safetensors`` + ``config.json`` in ``folder``, each replaced atomically."""
    from safetensors.torch import save_file

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in adapter.state_dict().items()}
    with atomic_path(target / WEIGHTS_FILE, "AnimeAdapter weights") as tmp:
        save_file(state, str(tmp), metadata={"format": "comic-studio-anime-adapter"})
    atomic_write_text(target / CONFIG_FILE, json.dumps(adapter.config.to_json(), indent=2), "AnimeAdapter config")
    return target


def load_adapter(folder: str | Path, *, dtype: torch.dtype = torch.float32, device: str = "cpu") -> AnimeAdapter:
    """The adapter saved in ``folder`` (see :func:`save_adapter`); :class:`AdapterFormatError` names
    the file and what is wrong."""
    root = Path(folder)
    config_path = root / CONFIG_FILE
    try:
        data = read_json(config_path, limit=MAX_CONFIG_BYTES)
    except UnsafeInputError as exc:
        raise AdapterFormatError(
            f"{config_path}: {exc.problem} (an AnimeAdapter folder needs its config.json)"
        ) from exc
    if not isinstance(data, dict):
        raise AdapterFormatError(f"{config_path}: not a JSON object")
    try:
        config = AnimeAdapterConfig.from_json(data)
    except (TypeError, ValueError) as exc:
        raise AdapterFormatError(f"{config_path}: not an AnimeAdapter config ({exc})") from exc
    state = read_state_dict(root / WEIGHTS_FILE)
    adapter = AnimeAdapter(config)
    try:
        adapter.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise AdapterFormatError(f"{root / WEIGHTS_FILE}: does not match {config_path} ({exc})") from exc
    return adapter.to(device=device, dtype=dtype).eval()


def trainable_parameters(adapter: AnimeAdapter) -> int:
    return sum(p.numel() for p in adapter.parameters() if p.requires_grad)
